package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/daemon"
)

func init() {
	register(&command{
		name:    "batches plan",
		summary: "plan transport batches for the accepted workers: as few vehicles as possible, counties kept together",
		run:     runBatchesPlan,
	})
	register(&command{
		name:    "batches list",
		summary: "list transport batches",
		run:     runBatchesList,
	})
	register(&command{
		name:    "batches show",
		summary: "show one batch with its manifest",
		run:     runBatchesShow,
	})
	register(&command{
		name:    "batches depart",
		summary: "record who boarded a batch; the others go back to accepted or available",
		run:     runBatchesDepart,
	})
}

var transportModes = map[string]commonv1.TransportMode{
	"bus":    commonv1.TransportMode_TRANSPORT_MODE_BUS,
	"train":  commonv1.TransportMode_TRANSPORT_MODE_TRAIN,
	"flight": commonv1.TransportMode_TRANSPORT_MODE_FLIGHT,
}

func modeWord(m commonv1.TransportMode) string {
	return strings.ToLower(strings.TrimPrefix(m.String(), "TRANSPORT_MODE_"))
}

func stateWord(s sendingv1.BatchState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "BATCH_STATE_"))
}

// parseCLIDate reads YYYY-MM-DD.
func parseCLIDate(s string) (*commonv1.Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a date YYYY-MM-DD", s)
	}
	return &commonv1.Date{Year: int32(t.Year()), Month: int32(t.Month()), Day: int32(t.Day())}, nil
}

func fmtDate(d *commonv1.Date) string {
	if d == nil {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.GetYear(), d.GetMonth(), d.GetDay())
}

func fmtTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return ts.AsTime().In(civil.Zone).Format("2006-01-02 15:04")
}

// batchName accepts `batches/ID` or the bare id.
func batchName(s string) string { return resourceName("batches", s) }

// resourceName is the resource name `collection/ID` of an argument given as the name or as the
// bare ID.
func resourceName(collection, s string) string {
	if strings.HasPrefix(s, collection+"/") {
		return s
	}
	return collection + "/" + s
}

// printBatches writes one row per batch.
func printBatches(w io.Writer, bs []*sendingv1.Batch) {
	if len(bs) == 0 {
		fmt.Fprintln(w, tr("No batches."))
		return
	}
	t := regions.Default()
	tb := newTable("batch", "state", "mode", "seats", "workers", "poor", "boarded", "from", "to", "start", "departure (CST)").alignRight(3, 4, 5, 6)
	var workers, poor int
	for _, b := range bs {
		p := 0
		for _, e := range b.GetManifest() {
			if e.GetRegisteredPoor() {
				p++
			}
		}
		boarded := ""
		if b.GetState() == sendingv1.BatchState_BATCH_STATE_DEPARTED {
			boarded = fmt.Sprint(len(b.GetBoardedWorkerIds()))
		}
		tb.add(false, b.GetBatchId(), stateWord(b.GetState()), modeWord(b.GetMode()), b.GetSeats(), len(b.GetManifest()), p, boarded,
			b.GetOrigin()+" "+t.Name(b.GetOrigin()), b.GetDestinationCounty()+" "+t.Name(b.GetDestinationCounty()),
			fmtDate(b.GetStartDate()), fmtTime(b.GetPlannedDepartureTime()))
		workers += len(b.GetManifest())
		poor += p
	}
	if len(bs) > 1 {
		tb.add(false, tr("%d batches", len(bs)), "", "", "", workers, poor, "", "", "", "", "")
	}
	tb.render(w, false)
}

func runBatchesPlan(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("labourlink batches plan")
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Sending)
	mode := fs.String("mode", "bus", "vehicle: bus, train or flight")
	seats := fs.Int("seats", 0, "seats per vehicle (default: the service's for the mode: bus 45, train coach 118, flight 180)")
	region := fs.String("region", "", "only workers going to this receiving province (code, such as 440000)")
	start := fs.String("start-date", "", "only workers whose jobs start on this date (YYYY-MM-DD)")
	departure := fs.String("departure", "", "departure time of the batches, RFC 3339 such as 2027-02-27T08:00:00+08:00 (default: 08:00 two days before the start date)")
	escort := fs.String("escort-name", "", "name of the escorting official")
	contact := fs.String("escort-contact", "", "work contact of the escort")
	requestID := fs.String("request-id", "", "idempotency key; repeat it to get the same plan back (default: a new one)")
	out := addOutputFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, tr("Usage: labourlink batches plan [-mode bus|train|flight] [-seats N] [flags]\n\nPlans transport batches for every accepted worker not yet on one: one group per destination\n(receiving province and work county) and start date, as few vehicles as possible, workers of\none home county together where that costs no extra vehicle. Planned workers become SCHEDULED\nand each manifest is sent to the receiving service.\n\nFlags:"))
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	m, ok := transportModes[strings.ToLower(*mode)]
	if !ok {
		return fmt.Errorf("-mode must be bus, train or flight, not %q", *mode)
	}
	req := &sendingv1.PlanBatchesRequest{Mode: m, ReceivingRegion: *region, EscortName: *escort, EscortContact: *contact, RequestId: *requestID}
	if *seats != 0 { // 0, the flag's default, leaves seats unset: the service's default for the mode
		req.Seats = new(int32(*seats))
	}
	if req.RequestId == "" {
		req.RequestId = newRequestID()
	}
	if *start != "" {
		date, err := parseCLIDate(*start)
		if err != nil {
			return fmt.Errorf("-start-date: %w", err)
		}
		req.StartDate = date
	}
	if *departure != "" {
		t, err := time.Parse(time.RFC3339, *departure)
		if err != nil {
			return fmt.Errorf("-departure: %q is not an RFC 3339 time such as 2027-02-27T08:00:00+08:00", *departure)
		}
		req.PlannedDepartureTime = timestamppb.New(t)
	}
	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	resp, err := sendingv1.NewTransportServiceClient(cc).PlanBatches(ctx, req)
	if err != nil {
		return err
	}
	if out.json {
		return writeJSON(env.stdout, resp)
	}
	if len(resp.GetBatches()) == 0 {
		fmt.Fprintln(env.stdout, tr("No accepted workers wait for a batch."))
		return nil
	}
	fmt.Fprint(env.stdout, tr("Planned %d batches (request id %s):\n\n", len(resp.GetBatches()), req.GetRequestId()))
	printBatches(env.stdout, resp.GetBatches())
	return nil
}

func runBatchesList(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("labourlink batches list")
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Sending)
	state := fs.String("state", "", "only batches in this state: planned, departed or cancelled")
	region := fs.String("region", "", "only batches to this receiving province")
	out := addOutputFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	req := &sendingv1.ListBatchesRequest{ReceivingRegion: *region, PageSize: 1000}
	if *state != "" {
		v, ok := sendingv1.BatchState_value["BATCH_STATE_"+strings.ToUpper(*state)]
		if !ok || v == 0 {
			return fmt.Errorf("-state must be planned, departed or cancelled, not %q", *state)
		}
		req.State = sendingv1.BatchState(v)
	}
	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	client := sendingv1.NewTransportServiceClient(cc)
	var all []*sendingv1.Batch
	for {
		resp, err := client.ListBatches(ctx, req)
		if err != nil {
			return err
		}
		all = append(all, resp.GetBatches()...)
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	return out.print(env, &sendingv1.ListBatchesResponse{Batches: all}, func() { printBatches(env.stdout, all) })
}

// splitBatchArg takes the batch named before the flags (`batches depart BATCH -boarded ...`).
func splitBatchArg(args []string) (string, []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}

func runBatchesShow(ctx context.Context, env *cliEnv, args []string) error {
	batch, args := splitBatchArg(args)
	fs := newFlagSet("labourlink batches show")
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Sending)
	out := addOutputFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if batch == "" && fs.NArg() == 1 {
		batch = fs.Arg(0)
	}
	if batch == "" {
		return fmt.Errorf("usage: labourlink batches show BATCH")
	}
	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	resp, err := sendingv1.NewTransportServiceClient(cc).GetBatch(ctx, &sendingv1.GetBatchRequest{Name: batchName(batch)})
	if err != nil {
		return err
	}
	return out.print(env, resp, func() { printBatch(env.stdout, resp.GetBatch()) })
}

// printBatch writes a batch and its manifest.
func printBatch(w io.Writer, b *sendingv1.Batch) {
	printBatches(w, []*sendingv1.Batch{b})
	fmt.Fprintln(w)
	boarded := map[string]bool{}
	for _, id := range b.GetBoardedWorkerIds() {
		boarded[id] = true
	}
	t := regions.Default()
	departed := b.GetState() == sendingv1.BatchState_BATCH_STATE_DEPARTED
	tb := newTable("worker", "home county", "vacancy", "poor", "boarded")
	for _, e := range b.GetManifest() {
		on := ""
		if departed {
			on = "no"
			if boarded[e.GetWorkerId()] {
				on = "yes"
			}
		}
		poor := ""
		if e.GetRegisteredPoor() {
			poor = "yes"
		}
		tb.add(departed && !boarded[e.GetWorkerId()], e.GetWorkerId(), e.GetHomeCounty()+" "+t.Name(e.GetHomeCounty()), e.GetVacancy(), poor, on)
	}
	tb.render(w, false)
}

func runBatchesDepart(ctx context.Context, env *cliEnv, args []string) error {
	batch, args := splitBatchArg(args)
	fs := newFlagSet("labourlink batches depart")
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Sending)
	boardedList := fs.String("boarded", "", "ids of the manifest workers who boarded, comma-separated (required; \"\" for none with -none)")
	none := fs.Bool("none", false, "nobody boarded")
	noShowTo := fs.String("no-show-to", "accepted", "where the workers who did not board go: accepted (keep the place) or available (give it up)")
	at := fs.String("time", "", "actual departure time, RFC 3339 (default: now)")
	requestID := fs.String("request-id", "", "idempotency key; repeat it to get the same answer back (default: a new one)")
	out := addOutputFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, tr("Usage: labourlink batches depart BATCH -boarded ID,ID,... [-no-show-to accepted|available]\n\nRecords the departure of a planned batch: the listed workers boarded (DEPARTED, one ledger\nevent each); the other manifest workers are no-shows and go back to ACCEPTED or AVAILABLE.\n\nFlags:"))
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if batch == "" && fs.NArg() == 1 {
		batch = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if batch == "" {
		return fmt.Errorf("name the batch: labourlink batches depart BATCH -boarded ID,ID,...")
	}
	var boarded []string
	for _, id := range strings.Split(*boardedList, ",") {
		if id = strings.TrimSpace(id); id != "" {
			boarded = append(boarded, id)
		}
	}
	if len(boarded) == 0 && !*none {
		return fmt.Errorf("-boarded is required (or -none when nobody boarded)")
	}
	req := &sendingv1.RecordDepartureRequest{Name: batchName(batch), BoardedWorkerIds: boarded, RequestId: *requestID}
	switch strings.ToLower(*noShowTo) {
	case "accepted":
		req.NoShowDisposition = sendingv1.NoShowDisposition_NO_SHOW_DISPOSITION_RETURN_TO_ACCEPTED
	case "available":
		req.NoShowDisposition = sendingv1.NoShowDisposition_NO_SHOW_DISPOSITION_RETURN_TO_AVAILABLE
	default:
		return fmt.Errorf("-no-show-to must be accepted or available, not %q", *noShowTo)
	}
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return fmt.Errorf("-time: %q is not an RFC 3339 time such as 2027-02-27T08:05:00+08:00", *at)
		}
		req.ActualDepartureTime = timestamppb.New(t)
	}
	if req.RequestId == "" {
		req.RequestId = newRequestID()
	}
	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	resp, err := sendingv1.NewTransportServiceClient(cc).RecordDeparture(ctx, req)
	if err != nil {
		return err
	}
	if out.json {
		return writeJSON(env.stdout, resp)
	}
	b := resp.GetBatch()
	fmt.Fprint(env.stdout, tr("%s departed at %s: %d of %d boarded; no-shows back to %s.\n\n", b.GetBatchId(), fmtTime(b.GetActualDepartureTime()),
		len(b.GetBoardedWorkerIds()), len(b.GetManifest()), strings.ToLower(*noShowTo)))
	printBatch(env.stdout, b)
	return nil
}

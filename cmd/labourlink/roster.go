package main

// The roster commands: `labourlink roster import FILE.csv`, `labourlink roster get NAME`,
// `labourlink roster list`.
//
// `roster import` is a CSV import (see csvimport.go) to RosterService.ImportWorkers; rejected
// rows are read back with ListImportRejections, and an import cut short is resumed (GetImport).

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/csvimport"
	"github.com/eastwest/labourlink/services/codes/occupation"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/daemon"
)

func init() {
	register(&command{name: "roster import", summary: "import a worker roster from a CSV file (UTF-8 or GBK, as spreadsheets save it)", run: runRosterImport})
	register(&command{name: "roster get", summary: "show one worker (identity number and phone masked unless -full)", run: runRosterGet})
	register(&command{name: "roster list", summary: "list workers as a table, with filters", run: runRosterList})
	register(&command{name: "roster return-home", summary: "record that a worker came back home (ends the trip, reports it to the ledger)", run: runRosterReturnHome})
}

// Keys of the columns that are not WorkerRow fields and are ignored on import: a serial number
// and a note column, as spreadsheet templates often have (and the three columns a rejects file
// adds, rejectsColumns).
const (
	rosterColSerial = "serial_number"
	rosterColNote   = "note"
)

// rosterColumns is the CSV layout of a roster file: key (the WorkerRow field) and the header
// names accepted for it. Header names are matched ignoring case, full-/half-width forms and
// surrounding spaces. Keep README text (notes/readme-3.md) in step.
var rosterColumns = append([]csvimport.Column{
	{Key: "id_number", Aliases: []string{"身份证号", "身份证号码", "公民身份号码", "证件号码", "identity_number", "id_no"}, Required: true, Text: "identity number"},
	{Key: "full_name", Aliases: []string{"姓名", "name"}, Required: true},
	{Key: "phone", Aliases: []string{"手机号", "手机号码", "联系电话", "电话", "mobile"}, Required: true},
	{Key: "home_county", Aliases: []string{"户籍县", "户籍县代码", "户籍地县区代码", "县区代码", "county"}, Required: true},
	{Key: "registered_poor", Aliases: []string{"建档立卡", "是否建档立卡", "脱贫户", "poor"}},
	{Key: "occupations", Aliases: []string{"工种", "工种代码", "职业", "职业代码", "occupation"}},
	{Key: "education", Aliases: []string{"学历", "文化程度"}},
	{Key: "preferred_destinations", Aliases: []string{"意向省份", "意向务工省份", "目的地", "destinations"}},
	{Key: "available_from", Aliases: []string{"可出发日期", "可上岗日期"}},
	{Key: "health_check_passed", Aliases: []string{"体检合格", "体检是否合格"}},
	{Key: "health_check_date", Aliases: []string{"体检日期"}},
	{Key: "sex", Aliases: []string{"性别"}},
	{Key: "birth_date", Aliases: []string{"出生日期"}},
	{Key: rosterColSerial, Aliases: []string{"序号", "编号", "no."}},
	{Key: rosterColNote, Aliases: []string{"备注", "remarks", "notes"}},
}, rejectsColumns...)

// rosterMaxChunk is the most rows one message may carry (RosterService limit).
const rosterMaxChunk = 5000

// workerRowFrom maps a CSV row to the WorkerRow sent to the service. Cells are trimmed by
// csvimport; everything else (validation, normalisation) is the service's.
func workerRowFrom(r csvimport.Row) *sendingv1.WorkerRow {
	return &sendingv1.WorkerRow{
		RowNumber:             int64(r.Number),
		IdNumber:              r.Get("id_number"),
		FullName:              r.Get("full_name"),
		Phone:                 r.Get("phone"),
		HomeCounty:            r.Get("home_county"),
		RegisteredPoor:        r.Get("registered_poor"),
		Occupations:           r.Get("occupations"),
		Education:             r.Get("education"),
		PreferredDestinations: r.Get("preferred_destinations"),
		AvailableFrom:         r.Get("available_from"),
		HealthCheckPassed:     r.Get("health_check_passed"),
		HealthCheckDate:       r.Get("health_check_date"),
		Sex:                   r.Get("sex"),
		BirthDate:             r.Get("birth_date"),
	}
}

// rosterImport is `labourlink roster import`.
var rosterImport = &csvImport[*sendingv1.WorkerRow]{
	name:     "roster import",
	kind:     daemon.Sending,
	chunk:    2000,
	maxChunk: rosterMaxChunk,
	columns:  rosterColumns,
	rowFrom:  workerRowFrom,
	usage: `Usage: labourlink roster import [flags] FILE.csv|FILE.xlsx

Imports the workers of a CSV file (saved from Excel, WPS or LibreOffice; UTF-8 with or without
BOM, or GBK) into the sending service. The first row names the columns, in English or Chinese:
  id_number (身份证号)  full_name (姓名)  phone (手机号)  home_county (户籍县)   required
  registered_poor (建档立卡)  occupations (工种)  education (学历)
  preferred_destinations (意向省份)  available_from (可出发日期)
  health_check_passed (体检合格)  health_check_date (体检日期)  sex (性别)  birth_date (出生日期)
Columns 序号 and 备注 (serial number, note) are ignored.
An .xlsx workbook is read directly (its first sheet, or -sheet NAME); format the identity-number
column as text (a number loses digits: such rows are refused).
Rejected rows are written with their reasons to FILE.rejects.csv (FILE.rejects.xlsx for a
workbook, or -rejects NAME.xlsx): fix them there and import that file. Importing the same file again changes nothing.

Flags:
`,
	waitNote:           "%d rows sent, waiting for the last commit",
	doneNote:           "%d rows sent and committed",
	waitOnTerminalOnly: true,
	connect: func(cc grpc.ClientConnInterface) importService[*sendingv1.WorkerRow] {
		client := sendingv1.NewRosterServiceClient(cc)
		return importService[*sendingv1.WorkerRow]{
			prior: func(ctx context.Context, importID string) (*commonv1.ImportSummary, bool, error) {
				resp, err := client.GetImport(ctx, &sendingv1.GetImportRequest{ImportId: importID})
				return resp.GetSummary(), resp.GetComplete(), err
			},
			open: func(ctx context.Context, importID string) (importStream[*sendingv1.WorkerRow], error) {
				stream, err := client.ImportWorkers(ctx)
				return importStream[*sendingv1.WorkerRow]{
					send: func(rows []*sendingv1.WorkerRow, final bool, totalRows int64) error {
						req := &sendingv1.ImportWorkersRequest{ImportId: importID, Rows: rows, Final: final}
						if final {
							req.TotalRows = totalRows
						}
						return stream.Send(req)
					},
					closeAndRecv: func() (*commonv1.ImportSummary, error) {
						resp, err := stream.CloseAndRecv()
						return resp.GetSummary(), err
					},
				}, err
			},
			listRejections: func(ctx context.Context, importID, pageToken string) ([]*commonv1.RowRejection, string, error) {
				resp, err := client.ListImportRejections(ctx, &sendingv1.ListImportRejectionsRequest{ImportId: importID, PageSize: 10000, PageToken: pageToken})
				return resp.GetRejections(), resp.GetNextPageToken(), err
			},
		}
	},
}

func runRosterImport(ctx context.Context, env *cliEnv, args []string) error {
	return runCSVImport(ctx, env, args, rosterImport)
}

// parseInterspersed parses flags that may come before or after the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	return parseFlags(fs, append([]string{"--"}, pos...))
}

// parseFlags parses args into fs; a bad flag (which fs has explained on its output, with the
// usage) ends the command with exitUsage; -h with flag.ErrHelp.
//
// The flags' help is shown in cliLang (localizeFlags).
func parseFlags(fs *flag.FlagSet, args []string) error {
	localizeFlags(fs)
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return exitError{code: exitUsage}
}

// --- get and list ---

// rosterWorkerName accepts `workers/ID` or the bare worker id.
func rosterWorkerName(s string) string { return resourceName("workers", s) }

func runRosterGet(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("labourlink roster get")
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Sending)
	out := addOutputFlag(fs)
	full := fs.Bool("full", false, "show the identity number and phone in full (for this province's operators)")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, tr("Usage: labourlink roster get [flags] WORKER_ID|workers/WORKER_ID\n\nFlags:"))
		fs.PrintDefaults()
	}
	if err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("give one worker id")
	}
	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	view := sendingv1.WorkerView_WORKER_VIEW_BASIC
	if *full {
		view = sendingv1.WorkerView_WORKER_VIEW_FULL
	}
	resp, err := sendingv1.NewRosterServiceClient(cc).GetWorker(ctx, &sendingv1.GetWorkerRequest{Name: rosterWorkerName(fs.Arg(0)), View: view})
	if err != nil {
		return err
	}
	return out.print(env, resp, func() { printWorker(env.stdout, resp.GetWorker()) })
}

func printWorker(w io.Writer, wk *sendingv1.Worker) {
	t := regions.Default()
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-20s %s\n", k, v)
		}
	}
	line("name", wk.GetName())
	line("status", rosterStatusWord(wk.GetStatus()))
	if wk.GetErased() {
		line("erased", "yes: personal data deleted")
	}
	line("identity number", wk.GetIdNumber())
	line("full name", wk.GetFullName())
	if wk.GetSex() != commonv1.Sex_SEX_UNSPECIFIED {
		line("sex", strings.ToLower(strings.TrimPrefix(wk.GetSex().String(), "SEX_")))
	}
	line("birth date", rosterDate(wk.GetBirthDate()))
	line("phone", wk.GetPhone())
	if c := wk.GetHomeCounty(); c != "" {
		line("home county", c+" "+t.Name(c))
	}
	if !wk.GetErased() {
		line("registered poor", yesNo(wk.GetRegisteredPoor()))
	}
	var occ []string
	for _, o := range wk.GetOccupations() {
		occ = append(occ, o+" "+occupation.Title(o))
	}
	line("occupations", strings.Join(occ, "; "))
	if e := wk.GetEducation(); e != sendingv1.Education_EDUCATION_UNSPECIFIED {
		line("education", strings.ToLower(strings.TrimPrefix(e.String(), "EDUCATION_")))
	}
	var dest []string
	for _, p := range wk.GetPreferredDestinations() {
		dest = append(dest, p+" "+t.Name(p))
	}
	if len(dest) == 0 && !wk.GetErased() {
		dest = []string{"any"}
	}
	line("destinations", strings.Join(dest, ", "))
	line("available from", rosterDate(wk.GetAvailableFrom()))
	if !wk.GetErased() {
		hc := yesNo(wk.GetHealthCheckPassed())
		if d := rosterDate(wk.GetHealthCheckDate()); d != "" {
			hc += " (" + d + ")"
		}
		line("health check passed", hc)
	}
	if ts := wk.GetCreateTime(); ts != nil {
		line("created", ts.AsTime().In(time.Local).Format(time.DateTime))
	}
	if trips := wk.GetTrips(); len(trips) > 0 {
		fmt.Fprint(w, tr("\njourney (%d trips)\n", len(trips)))
		tb := newTable("#", "batch", "to", "vacancy", "employer", "departed", "arrived", "onboarded", "left job, follow-ups", "came home", "note").alignRight(0)
		for i, tr := range trips {
			home := fmtTime(tr.GetReturnTime())
			if home == "" {
				home = "away"
				if i < len(trips)-1 {
					home = "not recorded"
				}
			}
			to := tr.GetReceivingRegion() + " " + t.Name(tr.GetReceivingRegion())
			if c := tr.GetWorkCounty(); c != "" {
				to += " / " + c + " " + t.Name(c)
			}
			tb.add(false, i+1, tr.GetBatchId(), to, strings.TrimPrefix(tr.GetVacancy(), "vacancies/"), tr.GetEmployerName(),
				tripDeparture(tr), tripArrival(tr), rosterDate(tr.GetOnboardDate()), tripLeaving(tr), home, tr.GetReturnNote())
		}
		tb.render(w, false)
	}
	if ts := wk.GetUpdateTime(); ts != nil {
		line("updated", ts.AsTime().In(time.Local).Format(time.DateTime))
	}
}

// tripDeparture is the departed column of a journey: the batch's departure time, marked when
// the worker was not recorded boarding it but was reported arrived on it.
func tripDeparture(trip *sendingv1.Trip) string {
	if trip.GetArrivedWithoutDeparture() {
		return fmtTime(trip.GetDepartureTime()) + tr(" (not boarded here)")
	}
	return fmtTime(trip.GetDepartureTime())
}

// tripArrival is the arrival column of a journey: the time, or that the worker did not turn up.
func tripArrival(trip *sendingv1.Trip) string {
	if trip.GetNoShow() {
		return tr("no-show")
	}
	return fmtTime(trip.GetArrivalTime())
}

// tripLeaving is the "left job, follow-ups" column of a journey: the day and reason, the checkpoints after
// the onboarding, the incidents.
func tripLeaving(trip *sendingv1.Trip) string {
	var parts []string
	if d := trip.GetLeftJobDate(); d != nil {
		left := rosterDate(d)
		if r := trip.GetLeftJobReason(); r != "" {
			left += " (" + r + ")"
		}
		parts = append(parts, left)
	}
	for _, cp := range trip.GetCheckpoints() {
		parts = append(parts, tr("%dm: %s", cp.GetMonths(), map[bool]string{true: tr("employed"), false: tr("not employed")}[cp.GetStillEmployed()]))
	}
	if n := trip.GetIncidents(); n > 0 {
		parts = append(parts, tr("%d incidents", n))
	}
	return strings.Join(parts, "; ")
}

// parseYesNo reads the value of a yes/no flag (yes, true, 1, 是 / no, false, 0, 否): nil when
// empty (not given).
func parseYesNo(flagName, s string) (*bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return nil, nil
	case "yes", "true", "1", "是":
		return new(true), nil
	case "no", "false", "0", "否":
		return new(false), nil
	}
	return nil, fmt.Errorf("-%s must be yes or no, not %q", flagName, s)
}

func yesNo(b bool) string {
	if b {
		return tr("yes")
	}
	return tr("no")
}

func rosterDate(d *commonv1.Date) string {
	if d == nil {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.GetYear(), d.GetMonth(), d.GetDay())
}

func rosterStatusWord(s sendingv1.WorkerStatus) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "WORKER_STATUS_"))
}

// parseRosterStatus reads available, AVAILABLE or WORKER_STATUS_AVAILABLE.
func parseRosterStatus(s string) (sendingv1.WorkerStatus, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	u = strings.ReplaceAll(u, "-", "_")
	if !strings.HasPrefix(u, "WORKER_STATUS_") {
		u = "WORKER_STATUS_" + u
	}
	v, ok := sendingv1.WorkerStatus_value[u]
	if !ok || v == 0 {
		var names []string
		for i := 1; i < len(sendingv1.WorkerStatus_name); i++ {
			names = append(names, rosterStatusWord(sendingv1.WorkerStatus(i)))
		}
		return 0, fmt.Errorf("-status %q: use one of %s", s, strings.Join(names, ", "))
	}
	return sendingv1.WorkerStatus(v), nil
}

func runRosterList(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("labourlink roster list")
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Sending)
	statusFlag := fs.String("status", "", "only workers with this status (available, proposed, accepted, scheduled, departed, arrived, employed, left_job, returned_home, withdrawn, placed_locally)")
	county := fs.String("county", "", "only workers from this home county (6-digit code)")
	occ := fs.String("occupation", "", "only workers who can do this occupation (ISCO-08 code, such as 8212)")
	poor := fs.String("poor", "", "yes: only registered-poor workers; no: only the others")
	dest := fs.String("destination", "", "only workers willing to go to this province (code, such as 440000: in their preferences, or no preference)")
	health := fs.String("health-check", "", "yes: only workers who passed the health check; no: only the others")
	availBy := fs.String("available-by", "", "only workers who can start work by this date (YYYY-MM-DD)")
	out := addOutputFlag(fs)
	updatedAfter := fs.String("updated-after", "", "only workers changed after this time, RFC 3339 such as 2027-02-27T08:00:00+08:00 (erased ones too, as tombstones)")
	lf := addListFlags(fs, "workers")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, tr("Usage: labourlink roster list [flags]\n\nLists workers in worker-id order, identity numbers and phones masked.\n\nFlags:"))
		fs.PrintDefaults()
	}
	if err := parseListArgs(fs, args, lf); err != nil {
		return err
	}
	req := &sendingv1.ListWorkersRequest{HomeCounty: *county, Occupation: *occ, DestinationProvince: *dest, PageToken: *lf.pageToken}
	var err error
	if req.HealthCheckPassed, err = parseYesNo("health-check", *health); err != nil {
		return err
	}
	if *availBy != "" {
		date, err := parseCLIDate(*availBy)
		if err != nil {
			return fmt.Errorf("-available-by: %w", err)
		}
		req.AvailableBy = date
	}
	if *updatedAfter != "" {
		t, err := time.Parse(time.RFC3339, *updatedAfter)
		if err != nil {
			return fmt.Errorf("-updated-after: %q is not an RFC 3339 time such as 2027-02-27T08:00:00+08:00", *updatedAfter)
		}
		req.UpdatedAfter = timestamppb.New(t)
	}
	if *statusFlag != "" {
		st, err := parseRosterStatus(*statusFlag)
		if err != nil {
			return err
		}
		req.Status = st
	}
	if req.RegisteredPoor, err = parseYesNo("poor", *poor); err != nil {
		return err
	}
	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	client := sendingv1.NewRosterServiceClient(cc)

	// A page may come back short when filters match few workers; keep reading until the page is
	// full or the roster ends.
	var workers []*sendingv1.Worker
	for len(workers) < *lf.pageSize {
		req.PageSize = int32(*lf.pageSize - len(workers))
		resp, err := client.ListWorkers(ctx, req)
		if err != nil {
			return err
		}
		workers = append(workers, resp.GetWorkers()...)
		req.PageToken = resp.GetNextPageToken()
		if req.PageToken == "" {
			break
		}
	}
	return out.print(env, &sendingv1.ListWorkersResponse{Workers: workers, NextPageToken: req.PageToken}, func() { printWorkers(env, workers, req.PageToken) })
}

// printWorkers prints a page of workers as a table, with the token of the next page.
func printWorkers(env *cliEnv, workers []*sendingv1.Worker, nextPageToken string) {
	t := regions.Default()
	tb := newTable("worker id", "name", "sex", "born", "home county", "poor", "occupations", "status", "phone")
	for _, w := range workers {
		sex := map[commonv1.Sex]string{commonv1.Sex_SEX_MALE: "M", commonv1.Sex_SEX_FEMALE: "F"}[w.GetSex()]
		born := ""
		if b := w.GetBirthDate(); b != nil {
			born = fmt.Sprint(b.GetYear())
		}
		tb.add(false, w.GetWorkerId(), w.GetFullName(), sex, born, w.GetHomeCounty()+" "+t.Name(w.GetHomeCounty()),
			yesNo(w.GetRegisteredPoor()), strings.Join(w.GetOccupations(), ","), rosterStatusWord(w.GetStatus()), w.GetPhone())
	}
	if len(workers) == 0 {
		fmt.Fprintln(env.stdout, tr("no workers match"))
	} else {
		tb.render(env.stdout, env.colour)
	}
	if nextPageToken != "" {
		fmt.Fprint(env.stdout, tr("\nmore: add -page-token %s\n", nextPageToken))
	}
}

func runRosterReturnHome(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("labourlink roster return-home")
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Sending)
	at := fs.String("time", "", "when the worker came back, RFC 3339 (2027-07-01T18:00:00+08:00) or a day (2027-07-01, taken as noon China time); default now")
	note := fs.String("note", "", "what to keep with the return (why, what next); not sent to the ledger")
	requestID := fs.String("request-id", "", "idempotency key: repeat the command with the same key to retry safely (default: a new one)")
	out := addOutputFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, tr("Usage: labourlink roster return-home [flags] WORKER_ID|workers/WORKER_ID\n\n"+
			"Ends the worker's current trip and reports RETURNED_HOME to the coordination ledger.\n\nFlags:"))
		fs.PrintDefaults()
	}
	if err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("give one worker id")
	}
	req := &sendingv1.RecordReturnHomeRequest{Name: rosterWorkerName(fs.Arg(0)), Note: *note, RequestId: *requestID}
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			day, derr := time.ParseInLocation(time.DateOnly, *at, civil.Zone)
			if derr != nil {
				return fmt.Errorf("-time: %q is neither an RFC 3339 time such as 2027-07-01T18:00:00+08:00 nor a day such as 2027-07-01", *at)
			}
			t = day.Add(12 * time.Hour)
		}
		req.ReturnTime = timestamppb.New(t)
	}
	if req.RequestId == "" {
		req.RequestId = newRequestID()
	}
	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	resp, err := sendingv1.NewRosterServiceClient(cc).RecordReturnHome(ctx, req)
	if err != nil {
		return err
	}
	if out.json {
		return writeJSON(env.stdout, resp)
	}
	w := resp.GetWorker()
	if trips := w.GetTrips(); len(trips) > 0 && trips[len(trips)-1].GetReturnTime() != nil {
		fmt.Fprint(env.stdout, tr("%s is home: trip on %s ended, RETURNED_HOME queued for the coordination ledger.\n\n", w.GetWorkerId(), trips[len(trips)-1].GetBatchId()))
	} else {
		fmt.Fprint(env.stdout, tr("%s is home. No trip on record (no batch departure): nothing reported to the ledger.\n\n", w.GetWorkerId()))
	}
	printWorker(env.stdout, w)
	return nil
}

// localizeFlags puts the help of fs's flags in cliLang: the catalog's translation of each
// English usage (a backquoted name in it, the flag's placeholder, is kept by the translation).
func localizeFlags(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) { f.Usage = localized(f.Usage) })
}

// newFlagSet is the flag set of a command: errors returned, not exits, and a default usage in
// cliLang ("Usage of labourlink backup:" and the flags), which a command may replace.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), tr("Usage of %s:\n", fs.Name()))
		fs.PrintDefaults()
	}
	return fs
}

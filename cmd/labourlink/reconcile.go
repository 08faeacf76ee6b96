package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/daemon"
)

func init() {
	register(&command{
		name:    "reconcile show",
		summary: "show the reconciliation of the ledger: counts per pairing and per batch, and the open discrepancies",
		run:     runReconcileShow,
	})
	register(&command{
		name:    "reconcile discrepancy",
		summary: "show one discrepancy (open or closed) by its number, as `reconcile show` lists them",
		run:     runReconcileDiscrepancy,
	})
}

func runReconcileDiscrepancy(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("labourlink reconcile discrepancy")
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Coordination)
	region := fs.String("region", "", "the province asking (a province's callers give their own code, e.g. 520000); empty for national operators")
	out := addOutputFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, tr("Usage: labourlink reconcile discrepancy [flags] NUMBER\n\n"+
			"Shows one discrepancy of the coordination service, open or closed, as it is now: its kind, batch,\n"+
			"worker, the two provinces, what is missing, when it opened and closed. NUMBER is the number\n"+
			"`labourlink reconcile show` lists (or the name discrepancies/NUMBER).\n\nFlags:"))
		fs.PrintDefaults()
	}
	if err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("give one discrepancy number (see `labourlink reconcile show`)")
	}
	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	resp, err := coordinationv1.NewReconciliationServiceClient(cc).GetDiscrepancy(ctx,
		&coordinationv1.GetDiscrepancyRequest{Name: resourceName("discrepancies", fs.Arg(0)), Region: *region})
	if err != nil {
		return err
	}
	if out.json {
		return writeJSON(env.stdout, resp)
	}
	x := resp.GetDiscrepancy()
	state := "open"
	if x.GetState() == coordinationv1.DiscrepancyState_DISCREPANCY_STATE_CLOSED {
		state = "closed"
	}
	rows := [][2]string{
		{"discrepancy", x.GetName()},
		{"kind", discrepancyWord(x.GetKind())},
		{"state", state},
		{"batch", x.GetBatchId()},
		{"worker", x.GetWorkerId()},
		{"sending", regionLabel(x.GetSendingRegion())},
		{"receiving", regionLabel(x.GetReceivingRegion())},
		{"what is missing", x.GetDetail()},
		{"opened (CST)", orText(fmtTime(x.GetOpenTime()), "-")},
		{"closed (CST)", orText(fmtTime(x.GetCloseTime()), "-")},
		{"revision", fmt.Sprint(x.GetRevision())},
	}
	for _, r := range rows {
		fmt.Fprintf(env.stdout, "%-16s %s\n", r[0]+":", r[1])
	}
	return nil
}

// parseDay parses YYYY-MM-DD ("" gives nil).
func parseDay(flagName, s string) (*commonv1.Date, error) {
	if s == "" {
		return nil, nil
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return nil, fmt.Errorf("-%s: %q is not a date YYYY-MM-DD", flagName, s)
	}
	return &commonv1.Date{Year: int32(t.Year()), Month: int32(t.Month()), Day: int32(t.Day())}, nil
}

// regionLabel is "440000 广东省".
func regionLabel(code string) string {
	if name := regions.Default().Name(code); name != "" {
		return code + " " + name
	}
	return code
}

func runReconcileShow(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("labourlink reconcile show")
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Coordination)
	region := fs.String("region", "", "only this province (sending or receiving side), e.g. 520000")
	from := fs.String("from", "", "first day of the period, YYYY-MM-DD in China Standard Time (default: the beginning)")
	to := fs.String("to", "", "last day of the period, YYYY-MM-DD (default: today)")
	openOnly := fs.Bool("open", false, "list only the batches with open discrepancies")
	out := addOutputFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, tr("Usage: labourlink reconcile show [flags]\n\nShows, from the coordination service's ledger:\n"+
			"  1. per pairing, the distinct workers departed, arrived, no-show, onboarded, still employed at\n"+
			"     3 and 6 months, left the job and returned home in the period (by event date), and the\n"+
			"     open discrepancies of the pairing;\n"+
			"  2. per transport batch (departed in the period), departed against arrived and no-show, awaiting\n"+
			"     (within the grace period), unaccounted (past it), unexpected and unverified;\n"+
			"  3. the open discrepancies worker by worker.\n"+
			"Rows that need attention are red on a terminal and marked '!' otherwise.\n\nFlags:"))
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	start, err := parseDay("from", *from)
	if err != nil {
		return err
	}
	end, err := parseDay("to", *to)
	if err != nil {
		return err
	}
	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	rc := coordinationv1.NewReconciliationServiceClient(cc)
	// The tables are written to w and printed at the end, unless -o json prints the three lists.
	var tables bytes.Buffer
	w := &tables
	var recs []*coordinationv1.BatchReconciliation
	var discs []*coordinationv1.Discrepancy

	var sums []*coordinationv1.PairingSummary
	sumReq := &coordinationv1.ListPairingSummariesRequest{PeriodStart: start, PeriodEnd: end, Region: *region, PageSize: 1000}
	for {
		resp, err := rc.ListPairingSummaries(ctx, sumReq)
		if err != nil {
			return err
		}
		sums = append(sums, resp.GetSummaries()...)
		if sumReq.PageToken = resp.GetNextPageToken(); sumReq.PageToken == "" {
			break
		}
	}
	period := tr("all time")
	if *from != "" || *to != "" {
		period = tr("%s to %s", orText(*from, tr("the beginning")), orText(*to, tr("today")))
	}
	fmt.Fprint(w, tr("Pairings (%s, distinct workers)\n", period))
	pt := newTable("receiving", "sending", "departed", "arrived", "no-show", "onboarded", "employed 3m", "employed 6m", "left job", "returned", "open discrepancies",
		"overdue checkpoints", "late incidents", "abandoned").
		alignRight(2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13)
	for _, s := range sums {
		pt.add(s.GetOpenDiscrepancies() > 0, regionLabel(s.GetReceivingRegion()), regionLabel(s.GetSendingRegion()),
			s.GetDeparted(), s.GetArrived(), s.GetNoShow(), s.GetOnboarded(), s.GetEmployedThreeMonths(), s.GetEmployedSixMonths(),
			s.GetLeftJob(), s.GetReturnedHome(), s.GetOpenDiscrepancies(),
			s.GetOpenOverdueCheckpoints(), s.GetOpenLateIncidents(), s.GetOpenAbandoned())
	}
	pt.render(w, env.colour)

	var lo, hi time.Time
	if start != nil {
		lo = civil.Start(start)
	}
	if end != nil {
		hi = civil.Start(civil.AddDays(end, 1))
	}
	fmt.Fprintln(w, tr("\nBatches"))
	bt := newTable("batch", "sending", "receiving", "departure (CST)", "departed", "arrived", "no-show", "awaiting", "unaccounted", "unexpected", "unverified").
		alignRight(4, 5, 6, 7, 8, 9, 10)
	token := ""
	for {
		resp, err := rc.ListBatchReconciliations(ctx, &coordinationv1.ListBatchReconciliationsRequest{PageSize: 1000, PageToken: token, WithOpenDiscrepancies: *openOnly})
		if err != nil {
			return err
		}
		for _, b := range resp.GetReconciliations() {
			if *region != "" && b.GetSendingRegion() != *region && b.GetReceivingRegion() != *region {
				continue
			}
			dep := "-"
			if b.GetDepartureTime() != nil {
				t := b.GetDepartureTime().AsTime()
				if (!lo.IsZero() && t.Before(lo)) || (!hi.IsZero() && !t.Before(hi)) {
					continue
				}
				dep = t.In(civil.Zone).Format("2006-01-02 15:04")
			}
			recs = append(recs, b)
			bt.add(len(b.GetDiscrepancies()) > 0 || b.GetUnaccounted()+b.GetUnexpected()+b.GetUnverified() > 0,
				b.GetBatchId(), b.GetSendingRegion(), b.GetReceivingRegion(), dep,
				b.GetDeparted(), b.GetArrived(), b.GetNoShow(), b.GetAwaiting(), b.GetUnaccounted(), b.GetUnexpected(), b.GetUnverified())
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	bt.render(w, env.colour)

	fmt.Fprintln(w, tr("\nOpen discrepancies"))
	dt := newTable("number", "kind", "batch", "worker", "sending", "receiving", "opened (CST)", "what is missing")
	n := 0
	token = ""
	for {
		resp, err := rc.ListDiscrepancies(ctx, &coordinationv1.ListDiscrepanciesRequest{Region: *region, PageSize: 1000, PageToken: token})
		if err != nil {
			return err
		}
		for _, x := range resp.GetDiscrepancies() {
			discs = append(discs, x)
			n++
			dt.add(true, strings.TrimPrefix(x.GetName(), "discrepancies/"), discrepancyWord(x.GetKind()), x.GetBatchId(), x.GetWorkerId(), x.GetSendingRegion(), x.GetReceivingRegion(), orText(fmtTime(x.GetOpenTime()), "-"), x.GetDetail())
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if n == 0 {
		fmt.Fprintln(w, tr("none"))
	} else {
		dt.render(w, env.colour)
		fmt.Fprint(w, tr("%d open discrepancies\n", n))
	}
	if out.json {
		return writeJSONMerged(env.stdout, &coordinationv1.ListPairingSummariesResponse{Summaries: sums},
			&coordinationv1.ListBatchReconciliationsResponse{Reconciliations: recs}, &coordinationv1.ListDiscrepanciesResponse{Discrepancies: discs})
	}
	_, err = io.Copy(env.stdout, &tables)
	return err
}

func discrepancyWord(k coordinationv1.DiscrepancyKind) string {
	switch k {
	case coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_UNACCOUNTED:
		return tr("unaccounted")
	case coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_UNEXPECTED:
		return tr("unexpected")
	case coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_UNVERIFIED:
		return tr("unverified")
	case coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_NO_SHOW:
		return tr("no-show")
	case coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_OVERDUE_CHECKPOINT:
		return tr("overdue checkpoint")
	case coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_LATE_INCIDENT:
		return tr("late incident")
	case coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_ABANDONED:
		return tr("abandoned")
	default:
		return k.String()
	}
}

func orText(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

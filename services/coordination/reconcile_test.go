package coordination

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
)

const (
	departed   = coordinationv1.EventKind_EVENT_KIND_DEPARTED
	arrived    = coordinationv1.EventKind_EVENT_KIND_ARRIVED
	noShow     = coordinationv1.EventKind_EVENT_KIND_NO_SHOW
	onboarded  = coordinationv1.EventKind_EVENT_KIND_ONBOARDED
	checkpoint = coordinationv1.EventKind_EVENT_KIND_EMPLOYMENT_CHECKPOINT
	leftJob    = coordinationv1.EventKind_EVENT_KIND_LEFT_JOB
	returned   = coordinationv1.EventKind_EVENT_KIND_RETURNED_HOME
	incident   = coordinationv1.EventKind_EVENT_KIND_INCIDENT

	unaccounted = coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_UNACCOUNTED
	unexpected  = coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_UNEXPECTED
	unverified  = coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_UNVERIFIED
	noShowDisc  = coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_NO_SHOW

	open   = coordinationv1.DiscrepancyState_DISCREPANCY_STATE_OPEN
	closed = coordinationv1.DiscrepancyState_DISCREPANCY_STATE_CLOSED
)

// counts is the comparable part of a batch reconciliation.
type counts struct {
	Departed, Arrived, NoShow, Awaiting, Unaccounted, Unexpected, Unverified int64
}

func countsOf(r *coordinationv1.BatchReconciliation) counts {
	return counts{r.GetDeparted(), r.GetArrived(), r.GetNoShow(), r.GetAwaiting(), r.GetUnaccounted(), r.GetUnexpected(), r.GetUnverified()}
}

func openOf(r *coordinationv1.BatchReconciliation) []string {
	var out []string
	for _, d := range r.GetDiscrepancies() {
		out = append(out, describe(d))
	}
	return out
}

func TestGracePeriodTurnsMissingArrivalIntoUnaccountedAndLateArrivalClosesIt(t *testing.T) {
	t.Parallel()
	h := startHarness(t, Config{GracePeriod: 72 * time.Hour, LoadDefaultPairings: true})
	dep := t0.Add(-time.Hour)
	h.report(t,
		ev("d1", departed, "B1", "w1", dep),
		ev("d2", departed, "B1", "w2", dep),
		ev("d3", departed, "B1", "w3", dep.Add(10*time.Minute)),
		ev("a1", arrived, "B1", "w1", t0),
	)
	r := h.batch(t, "B1")
	if got, want := countsOf(r), (counts{Departed: 3, Arrived: 1, Awaiting: 2}); got != want {
		t.Fatalf("within the grace period: %+v, want %+v", got, want)
	}
	if !r.GetDepartureTime().AsTime().Equal(dep) || !r.GetGraceDeadline().AsTime().Equal(dep.Add(72*time.Hour)) {
		t.Fatalf("departure %v deadline %v", r.GetDepartureTime().AsTime(), r.GetGraceDeadline().AsTime())
	}
	if len(r.GetDiscrepancies()) != 0 || len(h.changes(t, 0)) != 0 {
		t.Fatalf("discrepancies before the deadline: %v", openOf(r))
	}

	// One minute before the deadline nothing changes.
	h.clock.Advance(72*time.Hour - time.Hour - time.Minute)
	if _, err := h.s.ledger.ExpireDue(); err != nil {
		t.Fatal(err)
	}
	if got := countsOf(h.batch(t, "B1")); got.Awaiting != 2 || got.Unaccounted != 0 {
		t.Fatalf("a minute before the deadline: %+v", got)
	}

	// At the deadline the timer opens the two missing arrivals.
	h.clock.Advance(time.Minute)
	if _, err := h.s.ledger.ExpireDue(); err != nil {
		t.Fatal(err)
	}
	r = h.batch(t, "B1")
	if got, want := countsOf(r), (counts{Departed: 3, Arrived: 1, Unaccounted: 2}); got != want {
		t.Fatalf("after the deadline: %+v, want %+v", got, want)
	}
	if got, want := fmt.Sprint(openOf(r)), "[B1/w2/DISCREPANCY_KIND_UNACCOUNTED=DISCREPANCY_STATE_OPEN B1/w3/DISCREPANCY_KIND_UNACCOUNTED=DISCREPANCY_STATE_OPEN]"; got != want {
		t.Fatalf("open discrepancies %s, want %s", got, want)
	}
	feed := h.changes(t, 0)
	if len(feed) != 2 || feed[0].GetState() != open || feed[1].GetState() != open || !feed[0].GetOpenTime().AsTime().Equal(h.clock.Now()) {
		t.Fatalf("feed after the deadline: %v", feed)
	}
	head := feed[1].GetRevision()

	// w2 arrives late: its discrepancy closes (same name, next revision); w3 stays open.
	h.clock.Advance(8 * time.Hour)
	h.report(t, ev("a2", arrived, "B1", "w2", h.clock.Now()))
	r = h.batch(t, "B1")
	if got, want := countsOf(r), (counts{Departed: 3, Arrived: 2, Unaccounted: 1}); got != want {
		t.Fatalf("after the late arrival: %+v, want %+v", got, want)
	}
	later := h.changes(t, head)
	if len(later) != 1 {
		t.Fatalf("feed after the late arrival: %v", later)
	}
	c := later[0]
	if c.GetWorkerId() != "w2" || c.GetState() != closed || c.GetName() != feed[0].GetName() || c.GetRevision() != head+1 ||
		!c.GetCloseTime().AsTime().Equal(h.clock.Now()) || c.GetOpenTime() == nil {
		t.Fatalf("closing change = %v (opened as %v)", c, feed[0])
	}
	list, err := h.recon.ListDiscrepancies(ctxT(t), &coordinationv1.ListDiscrepanciesRequest{IncludeClosed: true})
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, d := range list.GetDiscrepancies() {
		states = append(states, describe(d))
	}
	if got, want := fmt.Sprint(states), "[B1/w2/DISCREPANCY_KIND_UNACCOUNTED=DISCREPANCY_STATE_CLOSED B1/w3/DISCREPANCY_KIND_UNACCOUNTED=DISCREPANCY_STATE_OPEN]"; got != want {
		t.Fatalf("discrepancies %s, want %s", got, want)
	}
	// Reporting the late arrival again changes nothing.
	if resp := h.report(t, ev("a2", arrived, "B1", "w2", h.clock.Now())); resp.GetDuplicates() != 1 || resp.GetRecorded() != 0 {
		t.Fatalf("repeat: %v", resp)
	}
	if n := len(h.changes(t, head)); n != 1 {
		t.Fatalf("a duplicate changed the feed: %d changes", n)
	}
}

// TestRunOpensDiscrepancyWhenDeadlinePasses checks the background timer: with an injected clock
// moved past the grace deadline, Run reconciles the batch by itself.
func TestRunOpensDiscrepancyWhenDeadlinePasses(t *testing.T) {
	t.Parallel()
	h := startHarness(t, Config{GracePeriod: time.Hour, CheckInterval: 5 * time.Millisecond, LoadDefaultPairings: true})
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- h.s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-runDone; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	h.report(t, ev("d1", departed, "B1", "w1", t0))
	h.clock.Advance(time.Hour)
	// Wait (bounded by the test's context) for the timer to open the discrepancy.
	wait := ctxT(t)
	for {
		if feed := h.changes(t, 0); len(feed) > 0 {
			if len(feed) != 1 || feed[0].GetKind() != unaccounted || feed[0].GetState() != open {
				t.Fatalf("feed = %v", feed)
			}
			break
		}
		select {
		case <-wait.Done():
			t.Fatal("the timer did not open the discrepancy")
		case <-time.After(5 * time.Millisecond):
		}
	}
	if got := countsOf(h.batch(t, "B1")); got.Unaccounted != 1 || got.Awaiting != 0 {
		t.Fatalf("counts %+v", got)
	}
}

func TestDiscrepancyKinds(t *testing.T) {
	t.Parallel()
	h := startHarness(t, Config{LoadDefaultPairings: true})
	base := t0.Add(-50 * time.Hour)
	h.report(t,
		ev("d1", departed, "B1", "w1", base),
		ev("d2", departed, "B1", "w2", base),
		ev("n1", noShow, "B1", "w1", base.Add(20*time.Hour)),
		ev("a3", arrived, "B1", "w3", base.Add(20*time.Hour)),
		ev("o4", onboarded, "B1", "w4", base.Add(30*time.Hour)),
	)
	r := h.batch(t, "B1")
	if got, want := countsOf(r), (counts{Departed: 2, Arrived: 1, NoShow: 1, Awaiting: 1, Unexpected: 1, Unverified: 1}); got != want {
		t.Fatalf("counts %+v, want %+v", got, want)
	}
	want := "[B1/w1/DISCREPANCY_KIND_NO_SHOW=DISCREPANCY_STATE_OPEN B1/w3/DISCREPANCY_KIND_UNEXPECTED=DISCREPANCY_STATE_OPEN B1/w4/DISCREPANCY_KIND_UNVERIFIED=DISCREPANCY_STATE_OPEN]"
	if got := fmt.Sprint(openOf(r)); got != want {
		t.Fatalf("open %s, want %s", got, want)
	}
	// The missing events arrive: w1 after all, w3's departure, w4's arrival (w4 is then
	// unexpected: no departure).
	h.report(t,
		ev("a1", arrived, "B1", "w1", base.Add(40*time.Hour)),
		ev("d3", departed, "B1", "w3", base),
		ev("a4", arrived, "B1", "w4", base.Add(20*time.Hour)),
	)
	r = h.batch(t, "B1")
	if got, want := countsOf(r), (counts{Departed: 3, Arrived: 3, Awaiting: 1, Unexpected: 1}); got != want {
		t.Fatalf("counts %+v, want %+v", got, want)
	}
	if got, want := fmt.Sprint(openOf(r)), "[B1/w4/DISCREPANCY_KIND_UNEXPECTED=DISCREPANCY_STATE_OPEN]"; got != want {
		t.Fatalf("open %s, want %s", got, want)
	}
	var log []string
	for _, c := range h.changes(t, 0) {
		log = append(log, describe(c))
	}
	wantLog := "[B1/w1/DISCREPANCY_KIND_NO_SHOW=DISCREPANCY_STATE_OPEN B1/w3/DISCREPANCY_KIND_UNEXPECTED=DISCREPANCY_STATE_OPEN B1/w4/DISCREPANCY_KIND_UNVERIFIED=DISCREPANCY_STATE_OPEN " +
		"B1/w1/DISCREPANCY_KIND_NO_SHOW=DISCREPANCY_STATE_CLOSED B1/w3/DISCREPANCY_KIND_UNEXPECTED=DISCREPANCY_STATE_CLOSED B1/w4/DISCREPANCY_KIND_UNEXPECTED=DISCREPANCY_STATE_OPEN B1/w4/DISCREPANCY_KIND_UNVERIFIED=DISCREPANCY_STATE_CLOSED]"
	if got := fmt.Sprint(log); got != wantLog {
		t.Fatalf("feed\n%s\nwant\n%s", got, wantLog)
	}
}

// TestIssueScenarioEndsWithTwoDiscrepancies is the ledger side of issue 6's federation scenario:
// five workers depart, three arrive and are onboarded, one is a no-show on arrival and one never
// arrives. After the grace period exactly two discrepancies are open.
func TestIssueScenarioEndsWithTwoDiscrepancies(t *testing.T) {
	t.Parallel()
	h := startHarness(t, Config{LoadDefaultPairings: true})
	base := t0.Add(-48 * time.Hour)
	var events []*coordinationv1.LedgerEvent
	for i := 1; i <= 5; i++ {
		events = append(events, ev(fmt.Sprintf("520000:departed:B1:w%d", i), departed, "B1", fmt.Sprintf("w%d", i), base))
	}
	for i := 1; i <= 3; i++ {
		events = append(events,
			ev(fmt.Sprintf("440000:arrived:B1:w%d", i), arrived, "B1", fmt.Sprintf("w%d", i), base.Add(30*time.Hour)),
			ev(fmt.Sprintf("440000:onboarded:B1:w%d", i), onboarded, "B1", fmt.Sprintf("w%d", i), base.Add(40*time.Hour)))
	}
	events = append(events, ev("440000:no_show:B1:w4", noShow, "B1", "w4", base.Add(30*time.Hour)))
	h.report(t, events...)
	h.clock.Advance(24 * time.Hour)
	if _, err := h.s.ledger.ExpireDue(); err != nil {
		t.Fatal(err)
	}
	r := h.batch(t, "B1")
	if got, want := countsOf(r), (counts{Departed: 5, Arrived: 3, NoShow: 1, Unaccounted: 1}); got != want {
		t.Fatalf("counts %+v, want %+v", got, want)
	}
	if got, want := fmt.Sprint(openOf(r)), "[B1/w4/DISCREPANCY_KIND_NO_SHOW=DISCREPANCY_STATE_OPEN B1/w5/DISCREPANCY_KIND_UNACCOUNTED=DISCREPANCY_STATE_OPEN]"; got != want {
		t.Fatalf("open %s, want %s", got, want)
	}
	sums, err := h.recon.ListPairingSummaries(ctxT(t), &coordinationv1.ListPairingSummariesRequest{Region: "520000"})
	if err != nil {
		t.Fatal(err)
	}
	if len(sums.GetSummaries()) != 1 {
		t.Fatalf("summaries %v", sums)
	}
	s := sums.GetSummaries()[0]
	if s.GetReceivingRegion() != "440000" || s.GetDeparted() != 5 || s.GetArrived() != 3 || s.GetNoShow() != 1 || s.GetOnboarded() != 3 || s.GetOpenDiscrepancies() != 2 {
		t.Fatalf("summary %v", s)
	}
}

func TestReconciliationReads(t *testing.T) {
	t.Parallel()
	h := startHarness(t, Config{LoadDefaultPairings: true})
	h.report(t,
		ev("d1", departed, "B1", "w1", t0),
		ev("d2", departed, "B2", "w2", t0),
	)
	other := ev("d3", departed, "B3", "w3", t0)
	other.SendingRegion, other.ReporterRegion = "450000", "450000"
	h.report(t, other)

	_, err := h.recon.GetBatchReconciliation(ctxT(t), &coordinationv1.GetBatchReconciliationRequest{BatchId: "nope", SendingRegion: "520000"})
	wantCode(t, err, codes.NotFound)
	// A batch is named by its sending province and its id: B3 is 450000's, not 520000's.
	_, err = h.recon.GetBatchReconciliation(ctxT(t), &coordinationv1.GetBatchReconciliationRequest{BatchId: "B3", SendingRegion: "520000"})
	wantCode(t, err, codes.NotFound)
	if _, err = h.recon.GetBatchReconciliation(ctxT(t), &coordinationv1.GetBatchReconciliationRequest{BatchId: "B3", SendingRegion: "450000"}); err != nil {
		t.Fatalf("batch B3 of its own sending province: %v", err)
	}
	_, err = h.recon.GetBatchReconciliation(ctxT(t), &coordinationv1.GetBatchReconciliationRequest{})
	fv := fieldViolations(t, err)
	if _, ok := fv["batch_id"]; !ok {
		t.Fatalf("empty batch id: %v", err)
	}
	if _, ok := fv["sending_region"]; !ok {
		t.Fatalf("empty sending region: %v", err)
	}

	var ids []string
	tok := ""
	for {
		resp, err := h.recon.ListBatchReconciliations(ctxT(t), &coordinationv1.ListBatchReconciliationsRequest{SendingRegion: "520000", PageSize: 1, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range resp.GetReconciliations() {
			ids = append(ids, r.GetBatchId())
		}
		if tok = resp.GetNextPageToken(); tok == "" {
			break
		}
	}
	if fmt.Sprint(ids) != "[B1 B2]" {
		t.Fatalf("batches of 520000 = %v", ids)
	}
	_, err = h.recon.ListBatchReconciliations(ctxT(t), &coordinationv1.ListBatchReconciliationsRequest{PageToken: "!!"})
	if _, ok := fieldViolations(t, err)["page_token"]; !ok {
		t.Fatalf("bad token: %v", err)
	}
	tests := []struct {
		name  string
		req   *coordinationv1.ListPairingSummariesRequest
		field string
	}{
		{"end before start", &coordinationv1.ListPairingSummariesRequest{PeriodStart: date(2025, 3, 2), PeriodEnd: date(2025, 3, 1)}, "period_end"},
		{"not a date", &coordinationv1.ListPairingSummariesRequest{PeriodStart: date(2025, 2, 30)}, "period_start"},
		{"not a province", &coordinationv1.ListPairingSummariesRequest{Region: "520100"}, "region"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.recon.ListPairingSummaries(ctxT(t), tt.req)
			if _, ok := fieldViolations(t, err)[tt.field]; !ok {
				t.Fatalf("error %v, want a violation of %s", err, tt.field)
			}
		})
	}
	_, err = h.recon.ListDiscrepancyChanges(ctxT(t), &coordinationv1.ListDiscrepancyChangesRequest{AfterRevision: -1})
	if _, ok := fieldViolations(t, err)["after_revision"]; !ok {
		t.Fatalf("negative revision: %v", err)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ListBatchReconciliations with_open_discrepancies lists only the batches that have an open
// discrepancy, and a batch leaves the list when its last one closes.
func TestListBatchesWithOpenDiscrepancies(t *testing.T) {
	t.Parallel()
	h := startHarness(t, Config{LoadDefaultPairings: true})
	h.report(t,
		ev("520000:departed:B1:w1", departed, "B1", "w1", t0), ev("440000:arrived:B1:w1", arrived, "B1", "w1", t0),
		ev("440000:arrived:B2:w2", arrived, "B2", "w2", t0), // unexpected: open
		ev("440000:arrived:B3:w3", arrived, "B3", "w3", t0), // unexpected: open
	)
	list := func(open bool) string {
		t.Helper()
		var out []string
		req := &coordinationv1.ListBatchReconciliationsRequest{WithOpenDiscrepancies: open, PageSize: 1}
		for {
			resp, err := h.recon.ListBatchReconciliations(ctxT(t), req)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range resp.GetReconciliations() {
				if open && len(r.GetDiscrepancies()) == 0 {
					t.Errorf("batch %s listed without open discrepancies", r.GetBatchId())
				}
				out = append(out, r.GetBatchId())
			}
			if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
				return fmt.Sprint(out)
			}
		}
	}
	if got := list(false); got != "[B1 B2 B3]" {
		t.Fatalf("all batches %s", got)
	}
	if got := list(true); got != "[B2 B3]" {
		t.Fatalf("batches with open discrepancies %s, want [B2 B3]", got)
	}
	h.report(t, ev("520000:departed:B2:w2", departed, "B2", "w2", t0)) // closes B2's
	if got := list(true); got != "[B3]" {
		t.Fatalf("after B2 closed: %s, want [B3]", got)
	}
	// A token of the filtered listing is not one of the whole list.
	first, err := h.recon.ListBatchReconciliations(ctxT(t), &coordinationv1.ListBatchReconciliationsRequest{PageSize: 1})
	if err != nil || first.GetNextPageToken() == "" {
		t.Fatalf("first page: %v, %v", first, err)
	}
	_, err = h.recon.ListBatchReconciliations(ctxT(t), &coordinationv1.ListBatchReconciliationsRequest{WithOpenDiscrepancies: true, PageToken: first.GetNextPageToken()})
	if v := fieldViolations(t, err); v["page_token"] == "" {
		t.Fatalf("token of another listing: violations %v", v)
	}
}

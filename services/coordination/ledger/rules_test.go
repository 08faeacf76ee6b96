package ledger

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/paging"
)

const grace = 72 * time.Hour

// facts builds the facts of batch B1 from events.
func facts(events ...*coordinationv1.LedgerEvent) *batchFacts {
	f := newBatchFacts()
	for _, e := range events {
		f.add(e)
	}
	return f
}

func wantedStrings(want []wantedDiscrepancy) []string {
	var out []string
	for _, w := range want {
		out = append(out, w.worker+":"+strings.TrimPrefix(w.kind.String(), "DISCREPANCY_KIND_"))
	}
	sort.Strings(out)
	return out
}

// The reconciliation rule (rules.go) on its own: counts, deadline and the discrepancies called
// for, before and after the grace deadline.
func TestReconcile(t *testing.T) {
	t.Parallel()
	dep := t0.Add(-time.Hour)
	type counts struct{ departed, arrived, noShow, awaiting, unaccounted, unexpected, unverified int64 }
	tests := []struct {
		name   string
		events []*coordinationv1.LedgerEvent
		now    time.Time
		counts counts
		want   []string
	}{
		{"nothing yet", nil, t0, counts{}, nil},
		{"departed, awaiting", []*coordinationv1.LedgerEvent{ev("d1", departed, "B1", "w1", dep)}, t0,
			counts{departed: 1, awaiting: 1}, nil},
		{"departed, past the deadline", []*coordinationv1.LedgerEvent{ev("d1", departed, "B1", "w1", dep)}, dep.Add(grace),
			counts{departed: 1, unaccounted: 1}, []string{"w1:UNACCOUNTED"}},
		{"departed and arrived", []*coordinationv1.LedgerEvent{ev("d1", departed, "B1", "w1", dep), ev("a1", arrived, "B1", "w1", t0)}, dep.Add(grace),
			counts{departed: 1, arrived: 1}, nil},
		{"no-show", []*coordinationv1.LedgerEvent{ev("d1", departed, "B1", "w1", dep), ev("n1", noShow, "B1", "w1", t0)}, t0,
			counts{departed: 1, noShow: 1}, []string{"w1:NO_SHOW"}},
		{"a later arrival overrides a no-show", []*coordinationv1.LedgerEvent{
			ev("d1", departed, "B1", "w1", dep), ev("n1", noShow, "B1", "w1", t0), ev("a1", arrived, "B1", "w1", t0.Add(time.Hour)),
		}, t0, counts{departed: 1, arrived: 1}, nil},
		{"arrived without departure", []*coordinationv1.LedgerEvent{ev("a1", arrived, "B1", "w1", t0)}, t0,
			counts{arrived: 1, unexpected: 1}, []string{"w1:UNEXPECTED"}},
		{"onboarded without arrival", []*coordinationv1.LedgerEvent{ev("d1", departed, "B1", "w1", dep), ev("o1", onboarded, "B1", "w1", t0)}, t0,
			counts{departed: 1, awaiting: 1, unverified: 1}, []string{"w1:UNVERIFIED"}},
		{"a worker departed twice counts once", []*coordinationv1.LedgerEvent{ev("d1", departed, "B1", "w1", dep), ev("d2", departed, "B1", "w1", t0)}, t0,
			counts{departed: 1, awaiting: 1}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, deadline, want := reconcile("B1", facts(tt.events...), grace, tt.now)
			got := counts{rec.GetDeparted(), rec.GetArrived(), rec.GetNoShow(), rec.GetAwaiting(), rec.GetUnaccounted(), rec.GetUnexpected(), rec.GetUnverified()}
			if got != tt.counts {
				t.Errorf("counts %+v, want %+v", got, tt.counts)
			}
			if fmt.Sprint(wantedStrings(want)) != fmt.Sprint(tt.want) {
				t.Errorf("discrepancies %v, want %v", wantedStrings(want), tt.want)
			}
			if tt.counts.departed > 0 && (!deadline.Equal(dep.Add(grace)) || !rec.GetGraceDeadline().AsTime().Equal(deadline)) {
				t.Errorf("deadline %v (record %v), want the earliest departure + grace %v", deadline, rec.GetGraceDeadline(), dep.Add(grace))
			}
			if tt.counts.departed == 0 && (!deadline.IsZero() || rec.GetGraceDeadline() != nil) {
				t.Errorf("deadline %v without departures", deadline)
			}
		})
	}
}

// planDiscrepancies opens the new ones, closes the open ones no longer called for, leaves the
// others alone, in key order.
func TestPlanDiscrepancies(t *testing.T) {
	t.Parallel()
	rec := &coordinationv1.BatchReconciliation{BatchId: "B1", SendingRegion: "520000", ReceivingRegion: "440000"}
	open := coordinationv1.DiscrepancyState_DISCREPANCY_STATE_OPEN
	closed := coordinationv1.DiscrepancyState_DISCREPANCY_STATE_CLOSED
	unexpected := coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_UNEXPECTED
	unaccounted := coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_UNACCOUNTED
	key := func(w string, k coordinationv1.DiscrepancyKind) string {
		return string(discrepancyKey("B1", w, byte(k)))
	}
	stored := map[string]*coordinationv1.Discrepancy{
		key("w1", unaccounted): {Name: "discrepancies/1", Kind: unaccounted, State: open, WorkerId: "w1"},
		key("w2", unaccounted): {Name: "discrepancies/2", Kind: unaccounted, State: open, WorkerId: "w2"},
		key("w3", unaccounted): {Name: "discrepancies/3", Kind: unaccounted, State: closed, WorkerId: "w3"},
	}
	want := []wantedDiscrepancy{
		{unexpected, "w4", "arrived"},
		{unaccounted, "w2", "still missing"},
	}
	changes := planDiscrepancies(rec, stored, want, t0)
	var got []string
	for _, c := range changes {
		got = append(got, fmt.Sprintf("%s %s %s", c.d.GetWorkerId(), c.d.GetName(), strings.TrimPrefix(c.d.GetState().String(), "DISCREPANCY_STATE_")))
		if c.key != key(c.d.GetWorkerId(), c.d.GetKind()) {
			t.Errorf("change of %s under key %q", c.d.GetWorkerId(), c.key)
		}
	}
	// w1 closes (no longer wanted), w2 stays open (no change), w3 stays closed, w4 opens (no
	// name yet: the store names it).
	if fmt.Sprint(got) != "[w1 discrepancies/1 CLOSED w4  OPEN]" {
		t.Fatalf("changes %q", got)
	}
	if !changes[0].d.GetCloseTime().AsTime().Equal(t0) || !changes[1].d.GetOpenTime().AsTime().Equal(t0) {
		t.Errorf("times %v, %v", changes[0].d.GetCloseTime(), changes[1].d.GetOpenTime())
	}
	if w4 := changes[1].d; w4.GetBatchId() != "B1" || w4.GetSendingRegion() != "520000" || w4.GetReceivingRegion() != "440000" || w4.GetDetail() != "arrived" {
		t.Errorf("new discrepancy %v", w4)
	}
	if stored[key("w1", unaccounted)].GetState() != open {
		t.Error("the plan changed the stored discrepancy")
	}
	// A closed one wanted again opens again.
	again := planDiscrepancies(rec, stored, []wantedDiscrepancy{{unaccounted, "w2", ""}, {unaccounted, "w3", "back"}}, t0)
	if len(again) != 2 || again[1].d.GetName() != "discrepancies/3" || again[1].d.GetState() != open || again[1].d.GetCloseTime() != nil {
		t.Fatalf("changes %v", again)
	}
}

func TestCategory(t *testing.T) {
	t.Parallel()
	checkpoint := func(months int32, still bool) *coordinationv1.LedgerEvent {
		e := ev("c", coordinationv1.EventKind_EVENT_KIND_EMPLOYMENT_CHECKPOINT, "", "w1", t0)
		e.Details = &coordinationv1.LedgerEvent_EmploymentCheckpoint{EmploymentCheckpoint: &coordinationv1.EmploymentCheckpointDetails{Months: months, StillEmployed: still}}
		return e
	}
	tests := []struct {
		ev   *coordinationv1.LedgerEvent
		want byte
	}{
		{ev("d", departed, "B1", "w1", t0), catDeparted},
		{ev("a", arrived, "B1", "w1", t0), catArrived},
		{ev("n", noShow, "B1", "w1", t0), catNoShow},
		{ev("o", onboarded, "B1", "w1", t0), catOnboarded},
		{checkpoint(3, true), catEmployed3},
		{checkpoint(6, true), catEmployed6},
		{checkpoint(6, false), 0},
		{checkpoint(1, true), 0},
		{ev("l", coordinationv1.EventKind_EVENT_KIND_LEFT_JOB, "", "w1", t0), catLeftJob},
		{ev("r", coordinationv1.EventKind_EVENT_KIND_RETURNED_HOME, "", "w1", t0), catReturnedHome},
		{ev("i", coordinationv1.EventKind_EVENT_KIND_INCIDENT, "", "w1", t0), 0},
	}
	for _, tt := range tests {
		if got := category(tt.ev); got != tt.want {
			t.Errorf("category of %s (months %d, still %v) = %d, want %d", tt.ev.GetKind(), tt.ev.GetEmploymentCheckpoint().GetMonths(), tt.ev.GetEmploymentCheckpoint().GetStillEmployed(), got, tt.want)
		}
	}
}

// Registered-poor workers count for the sending province when they depart and for the receiving
// one when onboarded, in the year of the event in China time.
func TestAssessmentKeyOf(t *testing.T) {
	t.Parallel()
	// 00:30 on New Year's Day in China is still 2024 in UTC.
	newYear := time.Date(2025, 1, 1, 0, 30, 0, 0, civil.Zone)
	poor := func(e *coordinationv1.LedgerEvent) *coordinationv1.LedgerEvent {
		e.RegisteredPoor = true
		return e
	}
	tests := []struct {
		name string
		ev   *coordinationv1.LedgerEvent
		want []byte
	}{
		{"departed", poor(ev("d", departed, "B1", "w1", newYear)), assessmentKey("520000", 2025, catDeparted, "w1")},
		{"onboarded", poor(ev("o", onboarded, "B1", "w1", newYear.Add(-time.Hour))), assessmentKey("440000", 2024, catOnboarded, "w1")},
		{"arrived", poor(ev("a", arrived, "B1", "w1", newYear)), nil},
		{"not registered poor", ev("d", departed, "B1", "w1", newYear), nil},
	}
	for _, tt := range tests {
		if got := assessmentKeyOf(tt.ev); string(got) != string(tt.want) || (got == nil) != (tt.want == nil) {
			t.Errorf("%s: key %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestRecord(t *testing.T) {
	t.Parallel()
	e := ev("d1", departed, "B1", "w1", t0)
	rec := record(e, t0.Add(time.Minute))
	if !rec.GetRecordTime().AsTime().Equal(t0.Add(time.Minute)) || rec.GetReporterRole().String() != "REGION_ROLE_SENDING" {
		t.Fatalf("record %v", rec)
	}
	if e.GetRecordTime() != nil {
		t.Fatal("record changed the reported event")
	}
	if !sameFact(rec, e) {
		t.Fatal("the recorded event is not the same fact as the reported one")
	}
	other := ev("d1", departed, "B1", "w1", t0.Add(time.Second))
	if sameFact(rec, other) {
		t.Fatal("another time is the same fact")
	}
	if r := record(ev("a1", arrived, "B1", "w1", t0), t0); r.GetReporterRole().String() != "REGION_ROLE_RECEIVING" {
		t.Fatalf("arrival reported by %v", r.GetReporterRole())
	}
}

// The page tokens of the ledger's Lists hold keys of their List's shape, and a discrepancies
// token of one batch is not one of another batch's listing.
func TestListingTokens(t *testing.T) {
	t.Parallel()
	check := func(l paging.Listing, tok string) bool {
		var v apierror.Violations
		l.Check(&v, tok)
		return v.Len() == 0
	}
	b1 := discrepanciesListing(&coordinationv1.ListDiscrepanciesRequest{BatchId: "B1"})
	all := discrepanciesListing(&coordinationv1.ListDiscrepanciesRequest{})
	tests := []struct {
		name    string
		listing paging.Listing
		tok     string
		ok      bool
	}{
		{"a key of batch B1", b1, b1.Token(discrepancyKey("B1", "w1", 1)), true},
		{"a key of batch B2 in the listing of B1", b1, b1.Token(discrepancyKey("B2", "w1", 1)), false},
		{"a key of any batch in the listing of all", all, all.Token(discrepancyKey("B2", "w1", 1)), true},
		{"not a discrepancy key", all, all.Token([]byte("B1\x00w1")), false},
		{"a batch id", batchReconciliationsListing(&coordinationv1.ListBatchReconciliationsRequest{}),
			batchReconciliationsListing(&coordinationv1.ListBatchReconciliationsRequest{}).Token([]byte("B1")), true},
		{"not a batch id", batchReconciliationsListing(&coordinationv1.ListBatchReconciliationsRequest{}),
			batchReconciliationsListing(&coordinationv1.ListBatchReconciliationsRequest{}).Token([]byte("a b")), false},
		{"a sequence number", eventsListing(&coordinationv1.ListEventsRequest{}),
			eventsListing(&coordinationv1.ListEventsRequest{}).Token(make([]byte, 8)), true},
		{"not a sequence number", eventsListing(&coordinationv1.ListEventsRequest{}),
			eventsListing(&coordinationv1.ListEventsRequest{}).Token([]byte("B1")), false},
		{"an events token with other filters", eventsListing(&coordinationv1.ListEventsRequest{WorkerId: "w1"}),
			eventsListing(&coordinationv1.ListEventsRequest{}).Token(make([]byte, 8)), false},
	}
	for _, tt := range tests {
		if got := check(tt.listing, tt.tok); got != tt.ok {
			t.Errorf("%s: accepted %v, want %v", tt.name, got, tt.ok)
		}
	}
}

// The period of a pairing summary: China-time days, both included; to the end of today (China
// time) when it has no end.
func TestSummaryPeriod(t *testing.T) {
	t.Parallel()
	day := func(y, m, d int32) *commonv1.Date { return &commonv1.Date{Year: y, Month: m, Day: d} }
	cst := func(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, civil.Zone) }
	// 20:00 UTC on 28 February is already 1 March in China.
	lateUTC := time.Date(2025, 2, 28, 20, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		req         *coordinationv1.ListPairingSummariesRequest
		now         time.Time
		from, until time.Time
	}{
		{"both days", &coordinationv1.ListPairingSummariesRequest{PeriodStart: day(2025, 2, 27), PeriodEnd: day(2025, 2, 28)}, t0,
			cst(2025, 2, 27, 0), cst(2025, 3, 1, 0)},
		{"one day", &coordinationv1.ListPairingSummariesRequest{PeriodStart: day(2024, 12, 31), PeriodEnd: day(2024, 12, 31)}, t0,
			cst(2024, 12, 31, 0), cst(2025, 1, 1, 0)},
		{"no start", &coordinationv1.ListPairingSummariesRequest{PeriodEnd: day(2025, 2, 28)}, t0, EarliestOccur, cst(2025, 3, 1, 0)},
		{"no end: to the end of today in China", &coordinationv1.ListPairingSummariesRequest{}, lateUTC, EarliestOccur, cst(2025, 3, 2, 0)},
	}
	for _, tt := range tests {
		from, until := summaryPeriod(tt.req, tt.now)
		if !from.Equal(tt.from) || !until.Equal(tt.until) {
			t.Errorf("%s: [%v, %v), want [%v, %v)", tt.name, from, until, tt.from, tt.until)
		}
	}
}

func TestFilters(t *testing.T) {
	t.Parallel()
	rec := &coordinationv1.BatchReconciliation{SendingRegion: "520000", ReceivingRegion: "440000"}
	for req, want := range map[*coordinationv1.ListBatchReconciliationsRequest]bool{
		{}: true, {SendingRegion: "520000"}: true, {ReceivingRegion: "440000", SendingRegion: "520000"}: true,
		{SendingRegion: "450000"}: false, {ReceivingRegion: "520000"}: false,
	} {
		if got := batchMatches(req, rec); got != want {
			t.Errorf("batchMatches(%v) = %v, want %v", req, got, want)
		}
	}
	open := &coordinationv1.Discrepancy{State: coordinationv1.DiscrepancyState_DISCREPANCY_STATE_OPEN, Kind: coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_NO_SHOW, SendingRegion: "520000", ReceivingRegion: "440000"}
	closed := &coordinationv1.Discrepancy{State: coordinationv1.DiscrepancyState_DISCREPANCY_STATE_CLOSED}
	for _, tt := range []struct {
		req  *coordinationv1.ListDiscrepanciesRequest
		d    *coordinationv1.Discrepancy
		want bool
	}{
		{&coordinationv1.ListDiscrepanciesRequest{}, open, true},
		{&coordinationv1.ListDiscrepanciesRequest{}, closed, false},
		{&coordinationv1.ListDiscrepanciesRequest{IncludeClosed: true}, closed, true},
		{&coordinationv1.ListDiscrepanciesRequest{Kind: coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_UNEXPECTED}, open, false},
		{&coordinationv1.ListDiscrepanciesRequest{Region: "440000"}, open, true},
		{&coordinationv1.ListDiscrepanciesRequest{Region: "450000"}, open, false},
	} {
		if got := discrepancyMatches(tt.req, tt.d); got != tt.want {
			t.Errorf("discrepancyMatches(%v, %v) = %v, want %v", tt.req, tt.d, got, tt.want)
		}
	}
	e := ev("e1", departed, "B1", "w1", t0)
	for _, tt := range []struct {
		req  *coordinationv1.ListEventsRequest
		want bool
	}{
		{&coordinationv1.ListEventsRequest{}, true},
		{&coordinationv1.ListEventsRequest{WorkerId: "w1", BatchId: "B1", Kind: departed, Region: "520000"}, true},
		{&coordinationv1.ListEventsRequest{WorkerId: "w2"}, false},
		{&coordinationv1.ListEventsRequest{BatchId: "B2"}, false},
		{&coordinationv1.ListEventsRequest{Kind: arrived}, false},
		{&coordinationv1.ListEventsRequest{Region: "450000"}, false},
	} {
		if got := eventMatches(tt.req, e); got != tt.want {
			t.Errorf("eventMatches(%v) = %v, want %v", tt.req, got, tt.want)
		}
	}
}

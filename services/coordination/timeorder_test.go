package coordination

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
)

// ReportEvents refuses, event by event, a fact that contradicts in time what the ledger has of
// the same worker on the same batch (INVALID_ARGUMENT on the event's field, with the reason),
// takes the others of the same call, and changes nothing for the refused ones: the refused
// event is not listed and an unchanged retry is refused again. A real trip, with an arrival
// dated minutes before the departure by another province's clock, is taken whole.
func TestReportEventsRefusesFactsOutOfTimeOrder(t *testing.T) {
	t.Parallel()
	h := startHarness(t, Config{LoadDefaultPairings: true})
	now := h.clock.Now()
	dep := now.Add(-400 * 24 * time.Hour)
	onb := civil.Start(civil.Today(dep.Add(24 * time.Hour)))
	cp := func(id, worker string, at time.Time, months int32) *coordinationv1.LedgerEvent {
		e := ev(id, checkpoint, "520000-B1", worker, at)
		e.Details = &coordinationv1.LedgerEvent_EmploymentCheckpoint{EmploymentCheckpoint: &coordinationv1.EmploymentCheckpointDetails{Months: months, StillEmployed: true}}
		return e
	}
	// w1's real trip.
	h.report(t,
		ev("d1", departed, "520000-B1", "w1", dep),
		ev("a1", arrived, "520000-B1", "w1", dep.Add(-20*time.Minute)), // the receiving clock is behind
		ev("o1", onboarded, "520000-B1", "w1", civil.Start(civil.Today(dep))),
		cp("c1", "w1", onb.AddDate(0, 3, 0), 3),
		ev("l1", leftJob, "520000-B1", "w1", onb.AddDate(0, 4, 0)),
	)
	// w2: departure taken; then, in one call, each contradiction beside a good event.
	h.report(t, ev("d2", departed, "520000-B1", "w2", dep), ev("a2", arrived, "520000-B1", "w2", dep.Add(5*time.Hour)),
		ev("o2", onboarded, "520000-B1", "w2", onb))
	bad := []*coordinationv1.LedgerEvent{
		ev("x-arrival", arrived, "520000-B1", "w3", dep.Add(-3*time.Hour)), // 0: w3 has no departure yet: taken
		ev("x-dep", departed, "520000-B1", "w3", dep),                      // 1: after w3's arrival: refused
		ev("x-onb", onboarded, "520000-B1", "w2", onb),                     // 2: the same as o2 but another id: taken (not ordered against itself)
		cp("x-cp", "w2", onb.AddDate(0, 2, 0), 3),                          // 3: 3-month checkpoint at 2 months: refused
		ev("x-left", leftJob, "520000-B1", "w2", onb.Add(-24*time.Hour)),   // 4: before onboarding: refused
		ev("x-ok", leftJob, "520000-B1", "w2", onb.AddDate(0, 1, 0)),       // 5: in order: taken
	}
	wantRefused := map[int32]string{
		1: "occur_time",
		3: "employment_checkpoint.months",
		4: "occur_time",
	}
	for round := range 2 {
		resp, err := h.ledger.ReportEvents(ctxT(t), &coordinationv1.ReportEventsRequest{Events: bad})
		if err != nil {
			t.Fatal(err)
		}
		got := map[int32]string{}
		for _, r := range resp.GetRefusals() {
			if codes.Code(r.GetCode()) != codes.InvalidArgument || r.GetMessage() == "" {
				t.Errorf("round %d: refusal %v, want INVALID_ARGUMENT with a reason", round, r)
			}
			got[r.GetIndex()] = r.GetField()
		}
		if len(got) != len(wantRefused) {
			t.Errorf("round %d: refusals %v, want %v", round, resp.GetRefusals(), wantRefused)
		}
		for i, f := range wantRefused {
			if got[i] != f {
				t.Errorf("round %d: event %d refused on %q, want %q (refusals %v)", round, i, got[i], f, resp.GetRefusals())
			}
		}
		if round == 0 && resp.GetRecorded() != 3 {
			t.Errorf("recorded %d, want 3 (x-arrival, x-onb, x-ok)", resp.GetRecorded())
		}
		if round == 1 && (resp.GetRecorded() != 0 || resp.GetDuplicates() != 3) {
			t.Errorf("retry: recorded %d, duplicates %d; want 0 and 3", resp.GetRecorded(), resp.GetDuplicates())
		}
	}
	list, err := h.ledger.ListEvents(ctxT(t), &coordinationv1.ListEventsRequest{BatchId: "520000-B1", PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, e := range list.GetEvents() {
		ids[e.GetEventId()] = true
	}
	for _, id := range []string{"x-dep", "x-cp", "x-left"} {
		if ids[id] {
			t.Errorf("refused event %s is in the ledger", id)
		}
	}
	if len(ids) != 11 {
		t.Errorf("%d events of the batch in the ledger, want 11: %v", len(ids), ids)
	}
}

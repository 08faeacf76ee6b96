package coordination

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
)

// openKinds lists the open discrepancies as worker/KIND, sorted.
func (h *harness) openKinds(t *testing.T) string {
	t.Helper()
	resp, err := h.recon.ListDiscrepancies(ctxT(t), &coordinationv1.ListDiscrepanciesRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range resp.GetDiscrepancies() {
		out = append(out, d.GetWorkerId()+"/"+strings.TrimPrefix(d.GetKind().String(), "DISCREPANCY_KIND_"))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// at moves the clock to t and runs the deadline timer's pass.
func (h *harness) at(t *testing.T, when time.Time) {
	t.Helper()
	h.clock.Advance(when.Sub(h.clock.Now()))
	if _, err := h.s.ledger.ExpireDue(); err != nil {
		t.Fatal(err)
	}
}

func cst(y int, m time.Month, d, hour int) time.Time {
	return time.Date(y, m, d, hour, 0, 0, 0, civil.Zone)
}

func TestDeadlinesOpenAndCloseWithTheClock(t *testing.T) {
	t.Parallel()
	start := cst(2026, 1, 5, 9)
	h := newHarness(t, t.TempDir(), zapLogger(t), Config{GracePeriod: 72 * time.Hour, LoadDefaultPairings: true}, start)
	t.Cleanup(h.close)
	resp, err := h.registry.SetPairingAgreement(ctxT(t), &coordinationv1.SetPairingAgreementRequest{
		Name: "pairings/440000-520000", RequestId: "agree-1",
		Agreement: &coordinationv1.ProgrammeAgreement{ArrivalGracePeriod: durationpb.New(24 * time.Hour), CheckpointToleranceDays: 10},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetPairing().GetAgreement().GetCheckpointToleranceDays() != 10 {
		t.Fatalf("SetPairingAgreement returned %v", resp.GetPairing())
	}

	step := func(name string, when time.Time, want string, events ...*coordinationv1.LedgerEvent) {
		t.Helper()
		h.at(t, when)
		if len(events) > 0 {
			h.report(t, events...)
		}
		if got := h.openKinds(t); got != want {
			t.Fatalf("%s (%s): open %q, want %q", name, civil.FormatTime(when), got, want)
		}
	}
	dep := start.Add(-time.Hour)
	incident := func(id, worker string, at time.Time) *coordinationv1.LedgerEvent {
		e := ev(id, coordinationv1.EventKind_EVENT_KIND_INCIDENT, "", worker, at)
		e.Details = &coordinationv1.LedgerEvent_Incident{Incident: &coordinationv1.IncidentDetails{Kind: "injury"}}
		return e
	}
	absence := func(id, worker string, first, back *time.Time) *coordinationv1.LedgerEvent {
		at := *first
		if back != nil {
			at = *back
		}
		e := ev(id, coordinationv1.EventKind_EVENT_KIND_ABSENCE, "", worker, at)
		a := &coordinationv1.AbsenceDetails{FirstDay: civil.Today(*first)}
		if back != nil {
			a.BackDay = civil.Today(*back)
		}
		e.Details = &coordinationv1.LedgerEvent_Absence{Absence: a}
		return e
	}
	checkpoint := func(id, worker string, at time.Time) *coordinationv1.LedgerEvent {
		e := ev(id, coordinationv1.EventKind_EVENT_KIND_EMPLOYMENT_CHECKPOINT, "", worker, at)
		e.Details = &coordinationv1.LedgerEvent_EmploymentCheckpoint{EmploymentCheckpoint: &coordinationv1.EmploymentCheckpointDetails{Months: 3, StillEmployed: true}}
		return e
	}
	onboardDay := cst(2026, 1, 6, 0)

	// Arrival within the agreement's grace period (24 h, not the service's 72 h).
	step("departed", start, "",
		ev("d1", departed, "B1", "w1", dep), ev("d2", departed, "B1", "w2", dep), ev("d3", departed, "B1", "w3", dep),
		ev("a1", arrived, "B1", "w1", start), ev("a2", arrived, "B1", "w2", start))
	step("before the grace deadline", dep.Add(24*time.Hour-time.Minute), "")
	step("grace deadline", dep.Add(24*time.Hour), "w3/UNACCOUNTED")
	step("late arrival", dep.Add(25*time.Hour), "",
		ev("a3", arrived, "B1", "w3", dep.Add(25*time.Hour)),
		ev("o1", coordinationv1.EventKind_EVENT_KIND_ONBOARDED, "B1", "w1", onboardDay),
		ev("o2", coordinationv1.EventKind_EVENT_KIND_ONBOARDED, "B1", "w2", onboardDay))

	// Incidents: one working day after the incident's day. Friday 2026-02-13's next working day
	// is the Saturday worked before the Spring Festival (调休), so the report is due by the end
	// of 2026-02-14.
	fri := cst(2026, 2, 13, 10)
	step("incident on time", cst(2026, 2, 14, 23), "", incident("i1", "w2", fri))
	step("incident late", cst(2026, 2, 15, 9), "w1/LATE_INCIDENT", incident("i2", "w1", fri))

	// Absence: from Thursday 2026-02-12, five consecutive working days are 12, 13, 14 (调休),
	// 24 and 25 (after the Spring Festival): abandoned from 2026-02-26 00:00.
	first := cst(2026, 2, 12, 0)
	step("absent", cst(2026, 2, 16, 9), "w1/LATE_INCIDENT", absence("ab1", "w2", &first, nil))
	step("absent, four working days", cst(2026, 2, 25, 23), "w1/LATE_INCIDENT")
	step("absent, five working days", cst(2026, 2, 26, 0), "w1/LATE_INCIDENT w2/ABANDONED")
	h.checkSummary(t, map[string]int64{"late_incidents": 1, "abandoned": 1})
	back := cst(2026, 3, 2, 0)
	step("back at work", cst(2026, 3, 2, 9), "w1/LATE_INCIDENT", absence("ab2", "w2", &first, &back))

	// Checkpoints: 3 months after 2026-01-06 is 2026-04-06, plus the agreement's 10 days.
	step("w2 left before the checkpoint", cst(2026, 3, 10, 9), "w1/LATE_INCIDENT",
		ev("l2", coordinationv1.EventKind_EVENT_KIND_LEFT_JOB, "", "w2", cst(2026, 3, 10, 0)))
	step("late incident reviewed", cst(2026, 2, 15, 9).Add(30*24*time.Hour), "")
	step("within the tolerance", cst(2026, 4, 16, 23), "")
	step("checkpoint overdue", cst(2026, 4, 17, 0), "w1/OVERDUE_CHECKPOINT")
	h.checkSummary(t, map[string]int64{"overdue_checkpoints": 1})
	step("checkpoint reported late", cst(2026, 4, 20, 9), "", checkpoint("c1", "w1", cst(2026, 4, 6, 0)))

	// The feed has every kind opened and closed once.
	opened, closed := map[string]int{}, map[string]int{}
	for _, d := range h.changes(t, 0) {
		k := strings.TrimPrefix(d.GetKind().String(), "DISCREPANCY_KIND_")
		if d.GetState() == coordinationv1.DiscrepancyState_DISCREPANCY_STATE_OPEN {
			opened[k]++
		} else {
			closed[k]++
		}
	}
	for _, k := range []string{"UNACCOUNTED", "LATE_INCIDENT", "ABANDONED", "OVERDUE_CHECKPOINT"} {
		if opened[k] != 1 || closed[k] != 1 {
			t.Errorf("%s opened %d, closed %d times in the feed; want once each", k, opened[k], closed[k])
		}
	}
	// The 6-month checkpoint of w1 is the next deadline.
	if got, want := h.batch(t, "B1").GetNextDeadline().AsTime(), cst(2026, 7, 17, 0); !got.Equal(want) {
		t.Errorf("next deadline %s, want %s", civil.FormatTime(got), civil.FormatTime(want))
	}
}

// checkSummary compares the pairing's open counts by kind.
func (h *harness) checkSummary(t *testing.T, want map[string]int64) {
	t.Helper()
	resp, err := h.recon.ListPairingSummaries(ctxT(t), &coordinationv1.ListPairingSummariesRequest{Region: "520000", PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range resp.GetSummaries() {
		if s.GetReceivingRegion() != "440000" {
			continue
		}
		got := map[string]int64{"unaccounted": s.GetOpenUnaccounted(), "overdue_checkpoints": s.GetOpenOverdueCheckpoints(),
			"late_incidents": s.GetOpenLateIncidents(), "abandoned": s.GetOpenAbandoned()}
		for k, n := range got {
			if n != want[k] {
				t.Errorf("pairing summary %s = %d, want %d", k, n, want[k])
			}
		}
		return
	}
	t.Fatal("no summary of 440000-520000")
}

func TestSetPairingAgreementValidation(t *testing.T) {
	t.Parallel()
	h := startHarness(t, Config{LoadDefaultPairings: true})
	for _, tc := range []struct {
		req   *coordinationv1.SetPairingAgreementRequest
		field string
	}{
		{&coordinationv1.SetPairingAgreementRequest{Name: "pairings/440000-520000"}, "agreement"},
		{&coordinationv1.SetPairingAgreementRequest{Name: "pairings/x", Agreement: &coordinationv1.ProgrammeAgreement{}}, "name"},
		{&coordinationv1.SetPairingAgreementRequest{Name: "pairings/440000-520000", Agreement: &coordinationv1.ProgrammeAgreement{ArrivalGracePeriod: durationpb.New(time.Second)}}, "agreement.arrival_grace_period"},
		{&coordinationv1.SetPairingAgreementRequest{Name: "pairings/440000-520000", Agreement: &coordinationv1.ProgrammeAgreement{CheckpointToleranceDays: 91}}, "agreement.checkpoint_tolerance_days"},
		{&coordinationv1.SetPairingAgreementRequest{Name: "pairings/440000-520000", Agreement: &coordinationv1.ProgrammeAgreement{IncidentReportWorkingDays: -1}}, "agreement.incident_report_working_days"},
		{&coordinationv1.SetPairingAgreementRequest{Name: "pairings/440000-520000", Agreement: &coordinationv1.ProgrammeAgreement{AbandonmentWorkingDays: 31}}, "agreement.abandonment_working_days"},
	} {
		_, err := h.registry.SetPairingAgreement(ctxT(t), tc.req)
		if _, ok := fieldViolations(t, err)[tc.field]; !ok {
			t.Errorf("%v: violations %v, want %s", tc.req, fieldViolations(t, err), tc.field)
		}
	}
	_, err := h.registry.SetPairingAgreement(ctxT(t), &coordinationv1.SetPairingAgreementRequest{Name: "pairings/110000-520000", Agreement: &coordinationv1.ProgrammeAgreement{}})
	wantCode(t, err, codes.NotFound)
	// A repeat with the same request id returns the first response.
	req := &coordinationv1.SetPairingAgreementRequest{Name: "pairings/440000-520000", RequestId: "r1", Agreement: &coordinationv1.ProgrammeAgreement{AbandonmentWorkingDays: 3}}
	for i := range 2 {
		resp, err := h.registry.SetPairingAgreement(ctxT(t), req)
		if err != nil || resp.GetPairing().GetAgreement().GetAbandonmentWorkingDays() != 3 {
			t.Fatalf("call %d: %v, %v", i, resp, err)
		}
	}
	_ = fmt.Sprint
}

func TestAbsenceEventValidation(t *testing.T) {
	t.Parallel()
	h := startHarness(t, Config{LoadDefaultPairings: true})
	day := civil.Today(t0)
	for _, tc := range []struct {
		details *coordinationv1.LedgerEvent_Absence
		field   string
	}{
		{nil, "absence"},
		{&coordinationv1.LedgerEvent_Absence{Absence: &coordinationv1.AbsenceDetails{}}, "absence.first_day"},
		{&coordinationv1.LedgerEvent_Absence{Absence: &coordinationv1.AbsenceDetails{FirstDay: date(2025, 2, 30)}}, "absence.first_day"},
		{&coordinationv1.LedgerEvent_Absence{Absence: &coordinationv1.AbsenceDetails{FirstDay: day, BackDay: day}}, "absence.back_day"},
	} {
		e := ev("x1", coordinationv1.EventKind_EVENT_KIND_ABSENCE, "", "520000-w1", t0)
		if tc.details != nil {
			e.Details = tc.details
		}
		resp, err := h.ledger.ReportEvents(ctxT(t), &coordinationv1.ReportEventsRequest{Events: []*coordinationv1.LedgerEvent{e}})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetRefusals()) != 1 || !strings.Contains(fmt.Sprint(resp.GetRefusals()[0]), tc.field) {
			t.Errorf("%v: refusals %v, want one on %s", tc.details, resp.GetRefusals(), tc.field)
		}
	}
}

// A file of schema 7 has no deadlines after onboarding in its index: schema 8 schedules every
// batch, so that the first pass opens the checkpoint overdue since.
func TestSchema8SchedulesStoredBatchesForTheirDeadlines(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	start := cst(2026, 1, 5, 9)
	h := newHarness(t, dir, zapLogger(t), Config{LoadDefaultPairings: true}, start)
	h.report(t,
		ev("d1", departed, "B1", "w1", start), ev("a1", arrived, "B1", "w1", start.Add(time.Hour)),
		ev("o1", coordinationv1.EventKind_EVENT_KIND_ONBOARDED, "B1", "w1", cst(2026, 1, 6, 0)))
	h.close()
	// As schema 7 left it: no deadline index entries (the bucket is made again, empty).
	asVersion(t, dir, 7, "ledgerDeadlines")
	h = newHarness(t, dir, zapLogger(t), Config{LoadDefaultPairings: true}, cst(2026, 4, 22, 9))
	t.Cleanup(h.close)
	if _, err := h.s.ledger.ExpireDue(); err != nil {
		t.Fatal(err)
	}
	if got := h.openKinds(t); got != "w1/OVERDUE_CHECKPOINT" {
		t.Fatalf("open after the migration: %q, want the overdue 3-month checkpoint", got)
	}
}

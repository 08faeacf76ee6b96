package receiving

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
)

// RecordAbsence keeps the spells of absence of an onboarded worker on the record and writes
// one ABSENCE ledger event per report (absent, then back), with ids stable across retries;
// a repeat (by request id or content) writes nothing, overlapping spells and a second back
// day are refused on their fields, and the spells survive a restart.
func TestRecordAbsence(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.intakeScenario("520000-gz-bus-1", 3)
	w1, w3 := "520000-gz-bus-1-w-1", "520000-gz-bus-1-w-3"
	e.clock.Add(20 * time.Hour)
	onboardDay := today(e.clock.Now())
	if _, err := e.intake.ConfirmArrivals(ctx(t), &receivingv1.ConfirmArrivalsRequest{Name: b.GetName(), Confirmations: []*receivingv1.ArrivalConfirmation{
		{WorkerId: w1, Outcome: outcomeArrived}, {WorkerId: w3, Outcome: outcomeArrived}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.intake.RecordOnboarding(ctx(t), &receivingv1.RecordOnboardingRequest{WorkerId: w1, OnboardDate: onboardDay}); err != nil {
		t.Fatal(err)
	}
	start := civil.Start(onboardDay)
	day := func(n int) *commonv1.Date { return civil.Today(start.AddDate(0, 0, n)) }
	e.clock.Add(30 * 24 * time.Hour)

	report := func(reqID, w string, first, back *commonv1.Date) (*receivingv1.RecordAbsenceResponse, error) {
		return e.intake.RecordAbsence(ctx(t), &receivingv1.RecordAbsenceRequest{WorkerId: w, RequestId: reqID,
			Absence: &receivingv1.Absence{FirstDay: first, BackDay: back}})
	}
	for _, s := range []struct {
		name        string
		reqID       string
		first, back *commonv1.Date
		adds        int
	}{
		{"absent from day 10", "ab-1", day(10), nil, 1},
		{"the same request again", "ab-1", day(10), nil, 0},
		{"the same report, no request id", "", day(10), nil, 0},
		{"back on day 17", "ab-2", day(10), day(17), 1},
		{"back again", "", day(10), day(17), 0},
		{"absent again, from day 10 (a spell back stays back)", "", day(10), nil, 0},
		{"a second spell, already back", "", day(20), day(22), 1},
	} {
		before := len(e.ledgerEvents())
		if _, err := report(s.reqID, w1, s.first, s.back); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := len(e.ledgerEvents()) - before; got != s.adds {
			t.Fatalf("%s: %d outbox entries added, want %d", s.name, got, s.adds)
		}
	}

	// Refusals, each on its field.
	for _, tc := range []struct {
		name        string
		w           string
		first, back *commonv1.Date
		code        codes.Code
		field       string
	}{
		{"no first day", w1, nil, nil, codes.InvalidArgument, "absence.first_day"},
		{"in the future", w1, today(e.clock.Now().Add(48 * time.Hour)), nil, codes.InvalidArgument, "absence.first_day"},
		{"back before first", w1, day(12), day(11), codes.InvalidArgument, "absence.back_day"},
		{"before onboarding", w1, day(-1), nil, codes.InvalidArgument, "absence.first_day"},
		{"inside a recorded spell", w1, day(12), nil, codes.InvalidArgument, "absence.first_day"},
		{"around a recorded spell", w1, day(19), day(25), codes.InvalidArgument, "absence.first_day"},
		{"back on another day", w1, day(10), day(18), codes.InvalidArgument, "absence.back_day"},
		{"not onboarded", w3, day(10), nil, codes.FailedPrecondition, ""},
	} {
		_, err := report("", tc.w, tc.first, tc.back)
		if tc.field == "" {
			wantCode(t, err, tc.code, "")
			continue
		}
		if _, ok := violations(t, err)[tc.field]; !ok {
			t.Errorf("%s: %v, want a violation on %s", tc.name, err, tc.field)
		}
	}

	check := func() {
		t.Helper()
		var ids []string
		for _, ev := range e.ledgerEvents() {
			if ev.GetKind() != coordinationv1.EventKind_EVENT_KIND_ABSENCE {
				continue
			}
			ids = append(ids, ev.GetEventId())
			if ev.GetWorkerId() != w1 || ev.GetBatchId() != b.GetBatchId() || ev.GetAbsence().GetFirstDay() == nil || ev.GetSendingRegion() != sending {
				t.Errorf("incomplete absence event %v", ev)
			}
		}
		want := []string{
			region + ":absence:520000-gz-bus-1:" + w1 + ":" + civil.Format(day(10)) + ":absent",
			region + ":absence:520000-gz-bus-1:" + w1 + ":" + civil.Format(day(10)) + ":" + civil.Format(day(17)),
			region + ":absence:520000-gz-bus-1:" + w1 + ":" + civil.Format(day(20)) + ":" + civil.Format(day(22)),
		}
		if len(ids) != len(want) {
			t.Fatalf("absence events %v, want %v", ids, want)
		}
		for i := range want {
			if ids[i] != want[i] {
				t.Errorf("absence event %d: %s, want %s", i, ids[i], want[i])
			}
		}
		r, err := e.intake.GetEmploymentRecord(ctx(t), &receivingv1.GetEmploymentRecordRequest{Name: "employmentRecords/" + w1})
		if err != nil {
			t.Fatal(err)
		}
		if a := r.GetRecord().GetAbsences(); len(a) != 2 || civil.Compare(a[0].GetBackDay(), day(17)) != 0 || civil.Compare(a[1].GetFirstDay(), day(20)) != 0 {
			t.Errorf("absences on the record: %v", a)
		}
	}
	check()
	e.restart()
	check()
	if _, err := report("ab-2", w1, day(10), day(17)); err != nil {
		t.Fatalf("retry after restart: %v", err)
	}
	check()
}

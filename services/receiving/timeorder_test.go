package receiving

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/receiving/intake"
)

// Every contradiction in time is refused over gRPC with INVALID_ARGUMENT on the field at fault,
// and nothing changes (the trip's record, the batch and the outbox are as before): an arrival
// before its batch's departure (beyond the clock-skew tolerance) or before the vacancy's start
// window opens, onboarding before arrival, a checkpoint at N months sooner than N months after
// onboarding, the job left before onboarding. The legitimate sequences beside them (an arrival
// minutes before the departure by the other province's clock, onboarding on the day of arrival)
// are taken.
func TestIntakeRefusesFactsOutOfTimeOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	now := e.clock.Now()
	v := e.createVacancy(goodVacancy(t)) // starts 2025-04-01: its window is open
	late := goodVacancy(t)
	late.StartDate = civil.AddDays(today(now), intake.StartWindowDays+60) // still closed 40 days on
	late.ValidThrough = civil.AddDays(late.GetStartDate(), 60)
	vLate := e.createVacancy(late)
	ws := []string{sending + "-A", sending + "-B", sending + "-C"}
	e.accept(e.submit(candidate(v.GetName(), ws[0]))[0].GetName())
	e.accept(e.submit(candidate(vLate.GetName(), ws[1]))[0].GetName())
	e.accept(e.submit(candidate(v.GetName(), ws[2]))[0].GetName())
	bA := e.announceOne("520000-B00000011", ws[0], v.GetName(), true)
	bB := e.announceOne("520000-B00000012", ws[1], vLate.GetName(), true)
	bC := e.announceOne("520000-B00000013", ws[2], v.GetName(), true)
	// C arrives 30 minutes "before" the departure (the receiving clock is behind), onboarded the
	// same day.
	if _, err := e.intake.ConfirmArrivals(ctx(t), &receivingv1.ConfirmArrivalsRequest{Name: bC.GetName(), Confirmations: []*receivingv1.ArrivalConfirmation{
		{WorkerId: ws[2], Outcome: outcomeArrived, Time: timestamppb.New(now.Add(-30 * time.Minute))}}}); err != nil {
		t.Fatalf("an arrival within the clock skew: %v", err)
	}
	if _, err := e.intake.RecordOnboarding(ctx(t), &receivingv1.RecordOnboardingRequest{WorkerId: ws[2], OnboardDate: today(now)}); err != nil {
		t.Fatalf("onboarding on the day of arrival: %v", err)
	}
	e.clock.Add(40 * 24 * time.Hour)
	later := today(e.clock.Now())

	tests := []struct {
		name   string
		worker string
		batch  *receivingv1.IntakeBatch
		call   func() error
		field  string
	}{
		{"arrival hours before the departure", ws[0], bA, func() error {
			_, err := e.intake.ConfirmArrivals(ctx(t), &receivingv1.ConfirmArrivalsRequest{Name: bA.GetName(), Confirmations: []*receivingv1.ArrivalConfirmation{
				{WorkerId: ws[0], Outcome: outcomeArrived, Time: timestamppb.New(now.Add(-3 * time.Hour))}}})
			return err
		}, "confirmations[0].time"},
		{"arrival before the vacancy's start window", ws[1], bB, func() error {
			_, err := e.intake.ConfirmArrivals(ctx(t), &receivingv1.ConfirmArrivalsRequest{Name: bB.GetName(), Confirmations: []*receivingv1.ArrivalConfirmation{
				{WorkerId: ws[1], Outcome: outcomeArrived}}})
			return err
		}, "confirmations[0].time"},
		{"job left before onboarding", ws[2], bC, func() error {
			_, err := e.intake.RecordJobLeft(ctx(t), &receivingv1.RecordJobLeftRequest{WorkerId: ws[2], LeftDate: civil.AddDays(today(now), -1), Reason: "回乡"})
			return err
		}, "left_date"},
		{"3-month checkpoint after 40 days", ws[2], bC, func() error {
			_, err := e.intake.RecordCheckpoint(ctx(t), &receivingv1.RecordCheckpointRequest{WorkerId: ws[2],
				Checkpoint: &receivingv1.Checkpoint{CheckDate: later, Months: 3, StillEmployed: true}})
			return err
		}, "checkpoint.months"},
		{"checkpoint dated before onboarding", ws[2], bC, func() error {
			_, err := e.intake.RecordCheckpoint(ctx(t), &receivingv1.RecordCheckpointRequest{WorkerId: ws[2],
				Checkpoint: &receivingv1.Checkpoint{CheckDate: civil.AddDays(today(now), -2), Months: 1, StillEmployed: true}})
			return err
		}, "checkpoint.check_date"},
	}
	for _, tt := range tests {
		recName := "employmentRecords/" + tt.worker + "~" + tt.batch.GetBatchId()
		before, batchBefore, outbox := e.record(recName), e.batchNamed(tt.batch.GetName()), len(e.ledgerEvents())
		err := tt.call()
		if _, ok := violations(t, err)[tt.field]; !ok {
			t.Errorf("%s: %v, want INVALID_ARGUMENT on %s", tt.name, err, tt.field)
		}
		if got := e.record(recName); !proto.Equal(got, before) {
			t.Errorf("%s: the record changed to %v", tt.name, got)
		}
		if got := e.batchNamed(tt.batch.GetName()); !proto.Equal(got, batchBefore) {
			t.Errorf("%s: the batch changed to %v", tt.name, got)
		}
		if n := len(e.ledgerEvents()); n != outbox {
			t.Errorf("%s: %d outbox entries, want %d", tt.name, n, outbox)
		}
	}
	// Onboarding before arrival, on a worker who arrived: refused, then the right day is taken.
	if _, err := e.intake.ConfirmArrivals(ctx(t), &receivingv1.ConfirmArrivalsRequest{Name: bA.GetName(), Confirmations: []*receivingv1.ArrivalConfirmation{
		{WorkerId: ws[0], Outcome: outcomeArrived}}}); err != nil {
		t.Fatal(err)
	}
	_, err := e.intake.RecordOnboarding(ctx(t), &receivingv1.RecordOnboardingRequest{WorkerId: ws[0], OnboardDate: civil.AddDays(later, -1)})
	if _, ok := violations(t, err)["onboard_date"]; !ok {
		t.Errorf("onboarding the day before arrival: %v, want INVALID_ARGUMENT on onboard_date", err)
	}
	if _, err := e.intake.RecordOnboarding(ctx(t), &receivingv1.RecordOnboardingRequest{WorkerId: ws[0], OnboardDate: later}); err != nil {
		t.Errorf("onboarding on the day of arrival: %v", err)
	}
}

// batchNamed reads an intake batch.
func (e *env) batchNamed(name string) *receivingv1.IntakeBatch {
	e.t.Helper()
	resp, err := e.intake.GetIntakeBatch(ctx(e.t), &receivingv1.GetIntakeBatchRequest{Name: name})
	if err != nil {
		e.t.Fatalf("GetIntakeBatch %s: %v", name, err)
	}
	return resp.GetBatch()
}

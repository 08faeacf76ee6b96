package intake

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/receiving/candidates"
)

func date(y, m, d int32) *commonv1.Date { return &commonv1.Date{Year: y, Month: m, Day: d} }

func TestWholeMonths(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b [3]int32
		want int32
	}{
		{[3]int32{2025, 1, 31}, [3]int32{2025, 4, 30}, 2},
		{[3]int32{2025, 1, 15}, [3]int32{2025, 4, 15}, 3},
		{[3]int32{2024, 11, 1}, [3]int32{2025, 5, 1}, 6},
		{[3]int32{2025, 3, 1}, [3]int32{2025, 3, 1}, 0},
	}
	for _, tt := range tests {
		if got := civil.WholeMonths(date(tt.a[0], tt.a[1], tt.a[2]), date(tt.b[0], tt.b[1], tt.b[2])); got != tt.want {
			t.Errorf("wholeMonths(%v, %v) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// reason is the ErrorReason of a rule's error (UNSPECIFIED when it has none).
func reason(err error) commonv1.ErrorReason {
	var e *apierror.Error
	if errors.As(err, &e) {
		return e.ErrorReason()
	}
	return commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED
}

// wantErr fails unless err is as wanted: nil for UNSPECIFIED and invalid false, that reason,
// or INVALID_ARGUMENT.
func wantErr(t *testing.T, name string, err error, want commonv1.ErrorReason, invalid bool) {
	t.Helper()
	switch {
	case invalid:
		if apierror.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: err = %v, want INVALID_ARGUMENT", name, err)
		}
	case reason(err) != want || (want == 0) != (err == nil):
		t.Errorf("%s: err = %v, want reason %v", name, err, want)
	}
}

// wantViolation fails unless err is INVALID_ARGUMENT with a field violation on field.
func wantViolation(t *testing.T, name string, err error, field string) {
	t.Helper()
	_, fields := apierror.DetailsOf(apierror.Status(err))
	for _, f := range fields {
		if f.Field == field {
			return
		}
	}
	t.Errorf("%s: err = %v (violations %v), want INVALID_ARGUMENT on %s", name, err, fields, field)
}

func TestAdmit(t *testing.T) {
	t.Parallel()
	b := &receivingv1.IntakeBatch{BatchId: "b1", SendingRegion: "520000"}
	e := &receivingv1.IntakeEntry{WorkerId: "520000-w", Vacancy: "vacancies/v1"}
	accepted := &receivingv1.Candidate{Name: "candidates/c1", State: candidates.Accepted}
	tests := []struct {
		name string
		c    *receivingv1.Candidate
		rec  *receivingv1.EmploymentRecord
		want commonv1.ErrorReason
	}{
		{"accepted, new here", accepted, nil, 0},
		{"accepted, no-show before", accepted, &receivingv1.EmploymentRecord{Status: noShow}, 0},
		{"accepted, left a job before", accepted, &receivingv1.EmploymentRecord{Status: leftJob}, 0},
		{"no candidate", nil, nil, commonv1.ErrorReason_ERROR_REASON_CANDIDATE_NOT_ACCEPTED},
		{"pending", &receivingv1.Candidate{State: candidates.Pending}, nil, commonv1.ErrorReason_ERROR_REASON_CANDIDATE_NOT_ACCEPTED},
		{"already arrived", accepted, &receivingv1.EmploymentRecord{Status: arrived}, commonv1.ErrorReason_ERROR_REASON_WORKER_ALREADY_HERE},
		{"already employed", accepted, &receivingv1.EmploymentRecord{Status: employed}, commonv1.ErrorReason_ERROR_REASON_WORKER_ALREADY_HERE},
	}
	for _, tt := range tests {
		wantErr(t, tt.name, admit(0, b, e, tt.c, tt.rec), tt.want, false)
	}
}

func TestDepartAndCancel(t *testing.T) {
	t.Parallel()
	manifest := func() *receivingv1.IntakeBatch {
		return &receivingv1.IntakeBatch{BatchId: "b1", Entries: []*receivingv1.IntakeEntry{{WorkerId: "w1"}, {WorkerId: "w2"}}}
	}
	tests := []struct {
		name          string
		b             func() *receivingv1.IntakeBatch
		boarded       []string
		wantChanged   bool
		want          commonv1.ErrorReason
		invalid       bool
		cancelChanged bool
		cancelWant    commonv1.ErrorReason
	}{
		{"first report", manifest, []string{"w1"}, true, 0, false, true, 0},
		{"a worker not on the manifest", manifest, []string{"w9"}, false, 0, true, true, 0},
		{"a later report", func() *receivingv1.IntakeBatch { b := manifest(); b.State = batchDeparted; return b }, []string{"w2"}, false, 0, false, false, commonv1.ErrorReason_ERROR_REASON_BATCH_DEPARTED},
		{"cancelled", func() *receivingv1.IntakeBatch { b := manifest(); b.State = batchCancelled; return b }, nil, false, commonv1.ErrorReason_ERROR_REASON_BATCH_CANCELLED, false, false, 0},
	}
	for _, tt := range tests {
		b := tt.b()
		changed, err := depart(b, tt.boarded, nil)
		wantErr(t, tt.name+": depart", err, tt.want, tt.invalid)
		if changed != tt.wantChanged {
			t.Errorf("%s: depart changed = %t, want %t", tt.name, changed, tt.wantChanged)
		}
		if changed && (b.GetState() != batchDeparted || !b.GetEntries()[0].GetDeparted() || b.GetEntries()[1].GetDeparted()) {
			t.Errorf("%s: departed batch %v", tt.name, b)
		}
		changed, err = cancels(tt.b())
		wantErr(t, tt.name+": cancels", err, tt.cancelWant, false)
		if changed != tt.cancelChanged {
			t.Errorf("%s: cancels = %t, want %t", tt.name, changed, tt.cancelChanged)
		}
	}
}

func TestArrive(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 10, 0, 0, 0, civil.Zone)
	left := now.Add(-5 * time.Hour)
	b := &receivingv1.IntakeBatch{BatchId: "b1", SendingRegion: "520000", State: batchDeparted, DepartureTime: timestamppb.New(left)}
	vac := &receivingv1.Vacancy{Name: "vacancies/v1", StartDate: date(2025, 3, 10)}
	arrivedC := &receivingv1.ArrivalConfirmation{WorkerId: "w1", Outcome: outcomeArrived}
	noShowC := &receivingv1.ArrivalConfirmation{WorkerId: "w1", Outcome: outcomeNoShow}
	arrivedAt := func(at time.Time) *receivingv1.ArrivalConfirmation {
		return &receivingv1.ArrivalConfirmation{WorkerId: "w1", Outcome: outcomeArrived, Time: timestamppb.New(at)}
	}
	tests := []struct {
		name       string
		outcome    receivingv1.ArrivalOutcome // the entry's before
		c          *receivingv1.ArrivalConfirmation
		rec        *receivingv1.EmploymentRecord
		vac        *receivingv1.Vacancy
		wantStatus receivingv1.EmploymentStatus
		wantEvent  coordinationv1.EventKind // UNSPECIFIED: no event
		want       commonv1.ErrorReason
		invalid    bool // INVALID_ARGUMENT on confirmations[0].time
	}{
		{"arrived", 0, arrivedC, &receivingv1.EmploymentRecord{BatchId: "b1", Status: expected}, vac, arrived, coordinationv1.EventKind_EVENT_KIND_ARRIVED, 0, false},
		{"no-show", 0, noShowC, &receivingv1.EmploymentRecord{BatchId: "b1", Status: expected}, vac, noShow, coordinationv1.EventKind_EVENT_KIND_NO_SHOW, 0, false},
		{"late arrival after a no-show", outcomeNoShow, arrivedC, &receivingv1.EmploymentRecord{BatchId: "b1", Status: noShow}, vac, arrived, coordinationv1.EventKind_EVENT_KIND_ARRIVED, 0, false},
		{"confirmed before", outcomeArrived, arrivedC, nil, vac, 0, 0, 0, false},
		{"arrived cannot become a no-show", outcomeArrived, noShowC, nil, vac, 0, 0, commonv1.ErrorReason_ERROR_REASON_ARRIVAL_ALREADY_CONFIRMED, false},
		{"a trip whose record is not on file gets one", 0, arrivedC, nil, vac, arrived, coordinationv1.EventKind_EVENT_KIND_ARRIVED, 0, false},
		{"arrival minutes before the departure (clock skew)", 0, arrivedAt(left.Add(-40 * time.Minute)), nil, vac, arrived, coordinationv1.EventKind_EVENT_KIND_ARRIVED, 0, false},
		{"arrival hours before the departure", 0, arrivedAt(left.Add(-2 * time.Hour)), nil, vac, 0, 0, 0, true},
		{"arrival on the first day of the start window", 0, arrivedC, nil, &receivingv1.Vacancy{StartDate: civil.AddDays(civil.Today(now), StartWindowDays)}, arrived, coordinationv1.EventKind_EVENT_KIND_ARRIVED, 0, false},
		{"arrival before the start window", 0, arrivedC, nil, &receivingv1.Vacancy{StartDate: civil.AddDays(civil.Today(now), StartWindowDays+1)}, 0, 0, 0, true},
		{"a no-show is not an arrival: no time order", 0, noShowC, nil, &receivingv1.Vacancy{StartDate: date(2025, 10, 1)}, noShow, coordinationv1.EventKind_EVENT_KIND_NO_SHOW, 0, false},
	}
	for _, tt := range tests {
		e := &receivingv1.IntakeEntry{WorkerId: "w1", Vacancy: "vacancies/v1", Outcome: tt.outcome}
		rec, ev, err := arrive("440000", 0, b, e, tt.c, tt.rec, tt.vac, now)
		if tt.invalid {
			wantViolation(t, tt.name, err, "confirmations[0].time")
			if e.GetOutcome() != tt.outcome {
				t.Errorf("%s: refused, but the entry's outcome changed to %v", tt.name, e.GetOutcome())
			}
			continue
		}
		wantErr(t, tt.name, err, tt.want, false)
		if err != nil {
			continue
		}
		if ev.GetKind() != tt.wantEvent || rec.GetStatus() != tt.wantStatus {
			t.Errorf("%s: arrive = %v, event %v; want status %v, event %v", tt.name, rec, ev, tt.wantStatus, tt.wantEvent)
		}
		if ev != nil && rec.GetName() != "employmentRecords/w1~b1" && tt.rec == nil {
			t.Errorf("%s: new record named %q, want employmentRecords/w1~b1", tt.name, rec.GetName())
		}
		if ev != nil && (ev.GetBatchId() != "b1" || ev.GetEventId() == "" || ev.GetReceivingRegion() != "440000") {
			t.Errorf("%s: event %v is not about batch b1 of 440000", tt.name, ev)
		}
	}
}

func TestFollowUpRules(t *testing.T) {
	t.Parallel()
	onboarded := func() *receivingv1.EmploymentRecord {
		return &receivingv1.EmploymentRecord{WorkerId: "w1", BatchId: "b1", Status: employed, OnboardDate: date(2025, 1, 15),
			Checkpoints: []*receivingv1.Checkpoint{{CheckDate: date(2025, 2, 15), Months: 1, StillEmployed: true}}}
	}
	arrivedRec := &receivingv1.EmploymentRecord{WorkerId: "w1", Status: arrived,
		ArrivalTime: timestamppb.New(time.Date(2025, 1, 10, 9, 0, 0, 0, civil.Zone))}
	// Arrived 00:30 by a clock that may be up to ledgerclient.ClockSkew fast.
	arrivedAfterMidnight := &receivingv1.EmploymentRecord{WorkerId: "w1", Status: arrived,
		ArrivalTime: timestamppb.New(time.Date(2025, 1, 10, 0, 30, 0, 0, civil.Zone))}
	vac := &receivingv1.Vacancy{Name: "vacancies/v1", StartDate: date(2025, 1, 15)}
	lateVac := &receivingv1.Vacancy{Name: "vacancies/v2", StartDate: civil.AddDays(date(2025, 1, 12), StartWindowDays+1)}
	type result struct {
		event   bool
		want    commonv1.ErrorReason
		invalid bool
	}
	tests := []struct {
		name string
		run  func() (bool, error)
		want result
	}{
		{"onboard an arrived worker", func() (bool, error) { return onboards(arrivedRec, date(2025, 1, 12), vac) }, result{event: true}},
		{"onboard the day of arrival", func() (bool, error) { return onboards(arrivedRec, date(2025, 1, 10), vac) }, result{event: true}},
		{"onboard before arrival", func() (bool, error) { return onboards(arrivedRec, date(2025, 1, 9), vac) }, result{invalid: true}},
		{"onboard the day before an arrival just after midnight (clock skew)", func() (bool, error) {
			return onboards(arrivedAfterMidnight, date(2025, 1, 9), vac)
		}, result{event: true}},
		{"onboard before the vacancy's start window", func() (bool, error) { return onboards(arrivedRec, date(2025, 1, 12), lateVac) }, result{invalid: true}},
		{"onboard again the same day", func() (bool, error) { return onboards(onboarded(), date(2025, 1, 15), vac) }, result{}},
		{"onboard again another day", func() (bool, error) { return onboards(onboarded(), date(2025, 1, 16), vac) },
			result{want: commonv1.ErrorReason_ERROR_REASON_ALREADY_ONBOARDED}},
		{"onboard a worker not arrived", func() (bool, error) {
			return onboards(&receivingv1.EmploymentRecord{Status: expected}, date(2025, 1, 16), vac)
		}, result{want: commonv1.ErrorReason_ERROR_REASON_NOT_ARRIVED}},
		{"a new checkpoint", func() (bool, error) {
			ev, err := checkpoint("440000", onboarded(), &receivingv1.Checkpoint{CheckDate: date(2025, 4, 15), Months: 3, StillEmployed: true})
			return ev != nil, err
		}, result{event: true}},
		{"the same checkpoint again", func() (bool, error) {
			ev, err := checkpoint("440000", onboarded(), &receivingv1.Checkpoint{CheckDate: date(2025, 2, 15), Months: 1, StillEmployed: true})
			return ev != nil, err
		}, result{}},
		{"another checkpoint for the same months", func() (bool, error) {
			ev, err := checkpoint("440000", onboarded(), &receivingv1.Checkpoint{CheckDate: date(2025, 2, 16), Months: 1})
			return ev != nil, err
		}, result{want: commonv1.ErrorReason_ERROR_REASON_CHECKPOINT_ALREADY_RECORDED}},
		{"more months than passed", func() (bool, error) {
			ev, err := checkpoint("440000", onboarded(), &receivingv1.Checkpoint{CheckDate: date(2025, 4, 14), Months: 3})
			return ev != nil, err
		}, result{invalid: true}},
		{"a checkpoint before onboarding", func() (bool, error) {
			ev, err := checkpoint("440000", arrivedRec, &receivingv1.Checkpoint{CheckDate: date(2025, 4, 14), Months: 3})
			return ev != nil, err
		}, result{want: commonv1.ErrorReason_ERROR_REASON_NOT_ONBOARDED}},
		{"leave", func() (bool, error) {
			ev, err := leave("440000", onboarded(), date(2025, 5, 1), "回乡")
			return ev != nil, err
		}, result{event: true}},
		{"leave before onboarding", func() (bool, error) {
			ev, err := leave("440000", onboarded(), date(2025, 1, 14), "回乡")
			return ev != nil, err
		}, result{invalid: true}},
		{"leave again the same", func() (bool, error) {
			r := onboarded()
			if _, err := leave("440000", r, date(2025, 5, 1), "回乡"); err != nil {
				return false, err
			}
			ev, err := leave("440000", r, date(2025, 5, 1), "回乡")
			return ev != nil, err
		}, result{}},
		{"leave again otherwise", func() (bool, error) {
			r := onboarded()
			if _, err := leave("440000", r, date(2025, 5, 1), "回乡"); err != nil {
				return false, err
			}
			ev, err := leave("440000", r, date(2025, 5, 2), "回乡")
			return ev != nil, err
		}, result{want: commonv1.ErrorReason_ERROR_REASON_ALREADY_LEFT}},
		{"an incident, then the same again", func() (bool, error) {
			r := onboarded()
			in := &receivingv1.Incident{IncidentDate: date(2025, 3, 1), IncidentKind: receivingv1.IncidentKind_INCIDENT_KIND_INJURY, Description: "手部轻伤"}
			if incident("440000", r, in) == nil {
				return false, nil
			}
			return incident("440000", r, in) != nil, nil
		}, result{}},
	}
	for _, tt := range tests {
		event, err := tt.run()
		wantErr(t, tt.name, err, tt.want.want, tt.want.invalid)
		if err == nil && event != tt.want.event {
			t.Errorf("%s: records a fact = %t, want %t", tt.name, event, tt.want.event)
		}
	}
}

// The same fact always has the same event id; different facts have different ones.
func TestEventIDs(t *testing.T) {
	t.Parallel()
	r := &receivingv1.EmploymentRecord{WorkerId: "w1", BatchId: "b1", Status: employed, OnboardDate: date(2025, 1, 15)}
	a := incident("440000", proto.Clone(r).(*receivingv1.EmploymentRecord), &receivingv1.Incident{IncidentDate: date(2025, 3, 1), IncidentKind: receivingv1.IncidentKind_INCIDENT_KIND_INJURY, Description: "a"})
	b := incident("440000", proto.Clone(r).(*receivingv1.EmploymentRecord), &receivingv1.Incident{IncidentDate: date(2025, 3, 1), IncidentKind: receivingv1.IncidentKind_INCIDENT_KIND_INJURY, Description: "a"})
	c := incident("440000", proto.Clone(r).(*receivingv1.EmploymentRecord), &receivingv1.Incident{IncidentDate: date(2025, 3, 1), IncidentKind: receivingv1.IncidentKind_INCIDENT_KIND_INJURY, Description: "b"})
	if a.GetEventId() != b.GetEventId() || a.GetEventId() == c.GetEventId() {
		t.Errorf("event ids %q, %q, %q: want the first two equal and the third different", a.GetEventId(), b.GetEventId(), c.GetEventId())
	}
}

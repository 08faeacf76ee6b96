package roster

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/platform/store"
)

// employmentEnv is a roster over a real bbolt file, without gRPC: ApplyEmployment is called
// in a transaction, as the employment follower calls it.
type employmentEnv struct {
	t   *testing.T
	svc *Service
	db  *store.DB
	n   int
}

func newEmploymentEnv(t *testing.T) *employmentEnv {
	t.Helper()
	lg := zaptest.NewLogger(t)
	db, err := store.Open(filepath.Join(t.TempDir(), "sending.db"), testSchema, lg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &employmentEnv{t: t, db: db, svc: New(db, lg, Config{Region: rosterRegion, Now: fixedClock})}
}

// departure is when the test workers board (the day before fixedClock).
var departure = time.Date(2026, 11, 19, 8, 0, 0, 0, civil.Zone)

// departed stores a new worker and walks it through the lifecycle onto batch (DEPARTED, with
// the trip). It returns its id.
func (e *employmentEnv) departed(batch string) string {
	e.t.Helper()
	e.n++
	id := fmt.Sprintf("%s-W%08d", rosterRegion, e.n)
	e.update(func(tx *bbolt.Tx) error {
		if err := putWorker(tx, &sendingv1.Worker{WorkerId: id, Status: stAvailable}); err != nil {
			return err
		}
		return e.depart(tx, id, batch)
	})
	return id
}

// depart moves the AVAILABLE worker id onto batch.
func (e *employmentEnv) depart(tx *bbolt.Tx, id, batch string) error {
	for _, to := range []workerStatus{stProposed, stAccepted, stScheduled} {
		if _, err := e.svc.ChangeStatus(tx, id, to, "test"); err != nil {
			return err
		}
	}
	_, err := e.svc.Depart(tx, id, &sendingv1.Trip{BatchId: batch, ReceivingRegion: "440000",
		Vacancy: "vacancies/440000-V1", DepartureTime: timestamppb.New(departure)}, "boarded")
	return err
}

func (e *employmentEnv) update(fn func(tx *bbolt.Tx) error) {
	e.t.Helper()
	if err := e.db.Update(fn); err != nil {
		e.t.Fatal(err)
	}
}

// apply applies changes in one transaction each and returns whether each was written.
func (e *employmentEnv) apply(changes ...*receivingv1.EmploymentChange) []bool {
	e.t.Helper()
	var out []bool
	for _, c := range changes {
		e.update(func(tx *bbolt.Tx) error {
			ok, err := e.svc.ApplyEmployment(tx, "440000", c)
			out = append(out, ok)
			return err
		})
	}
	return out
}

func (e *employmentEnv) worker(id string) *sendingv1.Worker {
	e.t.Helper()
	var w *sendingv1.Worker
	if err := e.db.View(func(tx *bbolt.Tx) (err error) { w, err = Read(tx, id); return err }); err != nil {
		e.t.Fatal(err)
	}
	return w
}

// echange is a change of kind for worker id on batch, day days after the departure.
func echange(kind receivingv1.EmploymentChangeKind, id, batch string, day int) *receivingv1.EmploymentChange {
	return &receivingv1.EmploymentChange{Kind: kind, WorkerId: id, BatchId: batch, EmployerName: "深圳市南山电子有限公司",
		WorkCounty: "440305", OccurTime: timestamppb.New(departure.AddDate(0, 0, day))}
}

const (
	kArrived    = receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_ARRIVED
	kNoShow     = receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_NO_SHOW
	kOnboarded  = receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_ONBOARDED
	kCheckpoint = receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_CHECKPOINT
	kLeftJob    = receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_LEFT_JOB
	kIncident   = receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_INCIDENT
)

func checkpoint(id, batch string, day int, months int32, still bool) *receivingv1.EmploymentChange {
	c := echange(kCheckpoint, id, batch, day)
	c.Detail = &receivingv1.EmploymentChange_Checkpoint{Checkpoint: &receivingv1.EmploymentCheckpointDetail{Months: months, StillEmployed: still}}
	return c
}

func leftJob(id, batch string, day int, reason string) *receivingv1.EmploymentChange {
	c := echange(kLeftJob, id, batch, day)
	c.Detail = &receivingv1.EmploymentChange_LeftJob{LeftJob: &receivingv1.LeftJobDetail{Reason: reason}}
	return c
}

func dayOf(day int) *commonv1.Date { return civil.Today(departure.AddDate(0, 0, day)) }

// Each change of the employment feed is written on the trip of its batch and moves the status
// along the lifecycle when it can; what cannot move the status is still recorded on the trip.
func TestApplyEmploymentMovesTheStatusAndRecordsTheTrip(t *testing.T) {
	t.Parallel()
	const batch = "520000-B0001"
	base := func(tr *sendingv1.Trip) *sendingv1.Trip {
		tr.BatchId, tr.ReceivingRegion, tr.Vacancy, tr.DepartureTime = batch, "440000", "vacancies/440000-V1", timestamppb.New(departure)
		tr.EmployerName, tr.WorkCounty = "深圳市南山电子有限公司", "440305"
		return tr
	}
	arrival := timestamppb.New(departure.AddDate(0, 0, 1))
	for _, tt := range []struct {
		name    string
		before  func(e *employmentEnv, id string) // after the departure
		changes func(id string) []*receivingv1.EmploymentChange
		status  workerStatus
		trip    *sendingv1.Trip
	}{
		{
			name: "arrived",
			changes: func(id string) []*receivingv1.EmploymentChange {
				return []*receivingv1.EmploymentChange{echange(kArrived, id, batch, 1)}
			},
			status: stArrived,
			trip:   base(&sendingv1.Trip{ArrivalTime: arrival}),
		},
		{
			name: "the whole trip: arrived, onboarded, checkpoint at 3 months, left the job",
			changes: func(id string) []*receivingv1.EmploymentChange {
				return []*receivingv1.EmploymentChange{echange(kArrived, id, batch, 1), echange(kOnboarded, id, batch, 2),
					checkpoint(id, batch, 95, 3, true), leftJob(id, batch, 120, "合同期满")}
			},
			status: stLeftJob,
			trip: base(&sendingv1.Trip{ArrivalTime: arrival, OnboardDate: dayOf(2),
				Checkpoints: []*sendingv1.TripCheckpoint{{Months: 3, StillEmployed: true, CheckDate: dayOf(95)}},
				LeftJobDate: dayOf(120), LeftJobReason: "合同期满"}),
		},
		{
			name: "onboarded without a reported arrival: ARRIVED taken on the way",
			changes: func(id string) []*receivingv1.EmploymentChange {
				return []*receivingv1.EmploymentChange{echange(kOnboarded, id, batch, 2)}
			},
			status: stEmployed,
			trip:   base(&sendingv1.Trip{OnboardDate: dayOf(2)}),
		},
		{
			name: "no-show: stays DEPARTED, the trip marked",
			changes: func(id string) []*receivingv1.EmploymentChange {
				return []*receivingv1.EmploymentChange{echange(kNoShow, id, batch, 1)}
			},
			status: stDeparted,
			trip:   base(&sendingv1.Trip{NoShow: true}),
		},
		{
			name: "incidents counted, a repeated checkpoint replaces the first, no status",
			changes: func(id string) []*receivingv1.EmploymentChange {
				return []*receivingv1.EmploymentChange{echange(kIncident, id, batch, 3), echange(kIncident, id, batch, 4),
					checkpoint(id, batch, 95, 3, true), checkpoint(id, batch, 96, 3, false)}
			},
			status: stDeparted,
			trip: base(&sendingv1.Trip{Incidents: 2,
				Checkpoints: []*sendingv1.TripCheckpoint{{Months: 3, StillEmployed: false, CheckDate: dayOf(96)}}}),
		},
		{
			name: "left the job while not employed here: recorded, status unchanged",
			changes: func(id string) []*receivingv1.EmploymentChange {
				return []*receivingv1.EmploymentChange{leftJob(id, batch, 9, "")}
			},
			status: stDeparted,
			trip:   base(&sendingv1.Trip{LeftJobDate: dayOf(9)}),
		},
		{
			name: "a late arrival of a worker already back home: recorded on the ended trip, status unchanged",
			before: func(e *employmentEnv, id string) {
				e.update(func(tx *bbolt.Tx) error {
					_, err := e.svc.ReturnHome(context.Background(), tx, id, departure.Add(2*time.Hour), "")
					return err
				})
			},
			changes: func(id string) []*receivingv1.EmploymentChange {
				return []*receivingv1.EmploymentChange{echange(kArrived, id, batch, 1)}
			},
			status: stReturnedHome,
			trip:   base(&sendingv1.Trip{ArrivalTime: arrival, ReturnTime: timestamppb.New(departure.Add(2 * time.Hour))}),
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEmploymentEnv(t)
			id := e.departed(batch)
			if tt.before != nil {
				tt.before(e, id)
			}
			for i, ok := range e.apply(tt.changes(id)...) {
				if !ok {
					t.Errorf("change %d not written", i)
				}
			}
			w := e.worker(id)
			if w.GetStatus() != tt.status {
				t.Errorf("status %s, want %s", w.GetStatus(), tt.status)
			}
			if len(w.GetTrips()) != 1 || !proto.Equal(w.GetTrips()[0], tt.trip) {
				t.Errorf("trips %v,\nwant %v", w.GetTrips(), tt.trip)
			}
			// Applying the last change again changes nothing but what it counts (incidents).
			if cs := tt.changes(id); cs[len(cs)-1].GetKind() != kIncident {
				before := e.worker(id)
				e.apply(cs[len(cs)-1])
				if after := e.worker(id); after.GetStatus() != before.GetStatus() || !proto.Equal(after.GetTrips()[0], before.GetTrips()[0]) {
					t.Errorf("applying the last change again changed the worker: %v -> %v", before, after)
				}
			}
		})
	}
}

// A worker out twice: the first trip's late facts land on the first trip and move no status;
// the second trip's facts do not touch the first trip.
func TestApplyEmploymentKeepsEveryTrip(t *testing.T) {
	t.Parallel()
	e := newEmploymentEnv(t)
	id := e.departed("520000-B0001")
	e.apply(echange(kArrived, id, "520000-B0001", 1), echange(kOnboarded, id, "520000-B0001", 2), leftJob(id, "520000-B0001", 30, "回乡"))
	e.update(func(tx *bbolt.Tx) error {
		if _, err := e.svc.ChangeStatus(tx, id, stAvailable, "back in the pool"); err != nil {
			return err
		}
		return e.depart(tx, id, "520000-B0002")
	})
	first := proto.Clone(e.worker(id).GetTrips()[0]).(*sendingv1.Trip)

	// The second trip: arrival and onboarding.
	e.apply(echange(kArrived, id, "520000-B0002", 40), echange(kOnboarded, id, "520000-B0002", 41))
	w := e.worker(id)
	if w.GetStatus() != stEmployed || len(w.GetTrips()) != 2 {
		t.Fatalf("after the second trip's onboarding: %s with %d trips, want EMPLOYED with 2", w.GetStatus(), len(w.GetTrips()))
	}
	if !proto.Equal(w.GetTrips()[0], first) {
		t.Errorf("the second trip's facts changed the first trip: %v, was %v", w.GetTrips()[0], first)
	}
	if got := w.GetTrips()[1].GetOnboardDate(); civil.Compare(got, dayOf(41)) != 0 {
		t.Errorf("second trip onboarded %v, want %v", got, dayOf(41))
	}

	// A late checkpoint of the first trip (not employed at 3 months): on the first trip, no status.
	e.apply(checkpoint(id, "520000-B0001", 95, 3, false))
	w = e.worker(id)
	if w.GetStatus() != stEmployed {
		t.Errorf("a late fact of the first trip moved the status to %s", w.GetStatus())
	}
	if cps := w.GetTrips()[0].GetCheckpoints(); len(cps) != 1 || cps[0].GetStillEmployed() {
		t.Errorf("first trip's checkpoints %v, want one, not employed", cps)
	}
	if len(w.GetTrips()[1].GetCheckpoints()) != 0 {
		t.Errorf("the first trip's checkpoint landed on the second: %v", w.GetTrips()[1])
	}
}

// Changes with nothing to write on are skipped (reported false), changing nothing.
func TestApplyEmploymentSkipsWhatItCannotPlace(t *testing.T) {
	t.Parallel()
	e := newEmploymentEnv(t)
	id := e.departed("520000-B0001")
	before := e.worker(id)
	got := e.apply(echange(kArrived, "520000-W99999999", "520000-B0001", 1), echange(kArrived, id, "520000-B0404", 1))
	if got[0] || got[1] {
		t.Errorf("written = %v, want both skipped", got)
	}
	if after := e.worker(id); !proto.Equal(after, before) {
		t.Errorf("a skipped change changed the worker: %v -> %v", before, after)
	}
}

package roster

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
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

const (
	injury = receivingv1.IncidentKind_INCIDENT_KIND_INJURY
	other  = receivingv1.IncidentKind_INCIDENT_KIND_OTHER
)

func incident(id, batch string, day int, kind receivingv1.IncidentKind, detail string) *receivingv1.EmploymentChange {
	c := echange(kIncident, id, batch, day)
	c.Detail = &receivingv1.EmploymentChange_Incident{Incident: &receivingv1.IncidentDetail{IncidentKind: kind, Detail: detail}}
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
			name: "incidents counted once each, a repeated checkpoint replaces the first, no status",
			changes: func(id string) []*receivingv1.EmploymentChange {
				return []*receivingv1.EmploymentChange{incident(id, batch, 3, injury, ""), incident(id, batch, 4, injury, ""),
					incident(id, batch, 4, injury, ""), incident(id, batch, 4, other, "宿舍失火"),
					checkpoint(id, batch, 95, 3, true), checkpoint(id, batch, 96, 3, false)}
			},
			status: stDeparted,
			trip: base(&sendingv1.Trip{Incidents: 3,
				IncidentReports: []*sendingv1.TripIncident{
					{IncidentDate: dayOf(3), Kind: "INCIDENT_KIND_INJURY"}, {IncidentDate: dayOf(4), Kind: "INCIDENT_KIND_INJURY"},
					{IncidentDate: dayOf(4), Kind: "INCIDENT_KIND_OTHER", Detail: "宿舍失火"}},
				Checkpoints: []*sendingv1.TripCheckpoint{{Months: 3, StillEmployed: false, CheckDate: dayOf(96)}}}),
		},
		{
			name: "a late arrival after a no-show: ARRIVED, no longer a no-show",
			changes: func(id string) []*receivingv1.EmploymentChange {
				return []*receivingv1.EmploymentChange{echange(kNoShow, id, batch, 1), echange(kArrived, id, batch, 1)}
			},
			status: stArrived,
			trip:   base(&sendingv1.Trip{ArrivalTime: arrival}),
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
			// Applying every change again, in order (the feed followed again from revision 0),
			// leaves the status and the trip as they were (a fact a later one replaced, such as
			// a checkpoint, is written again on the way, so the etag may move).
			before := e.worker(id)
			e.apply(tt.changes(id)...)
			if after := e.worker(id); after.GetStatus() != before.GetStatus() || !tripsEqual(after.GetTrips(), before.GetTrips()) {
				t.Errorf("applying the changes again changed the worker:\n%v\n-> %v", before, after)
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

// A worker out twice, the whole feed applied, then applied again from the start (the follower
// restarted from 0 after REVISION_AHEAD): the statuses, both trips and their incident counts are
// as after the first pass.
func TestApplyEmploymentReplayOfTwoTripsChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEmploymentEnv(t)
	const b1, b2 = "520000-B0001", "520000-B0002"
	id := e.departed(b1)
	first := []*receivingv1.EmploymentChange{echange(kArrived, id, b1, 1), echange(kOnboarded, id, b1, 2),
		incident(id, b1, 10, injury, ""), incident(id, b1, 11, other, "工资拖欠"), leftJob(id, b1, 30, "回乡")}
	e.apply(first...)
	e.update(func(tx *bbolt.Tx) error {
		if _, err := e.svc.ReturnHome(context.Background(), tx, id, departure.AddDate(0, 0, 31), ""); err != nil {
			return err
		}
		if _, err := e.svc.ChangeStatus(tx, id, stAvailable, "back in the pool"); err != nil {
			return err
		}
		return e.depart(tx, id, b2)
	})
	second := []*receivingv1.EmploymentChange{echange(kArrived, id, b2, 41), echange(kOnboarded, id, b2, 42), incident(id, b2, 50, injury, "")}
	e.apply(second...)
	want := e.worker(id)
	if want.GetStatus() != stEmployed || len(want.GetTrips()) != 2 || want.GetTrips()[0].GetIncidents() != 2 || want.GetTrips()[1].GetIncidents() != 1 {
		t.Fatalf("after the feed: %s, trips %v; want EMPLOYED on the second of 2 trips with 2 and 1 incidents", want.GetStatus(), want.GetTrips())
	}
	for i, ok := range e.apply(append(first, second...)...) {
		if !ok {
			t.Errorf("replayed change %d not written", i)
		}
	}
	if got := e.worker(id); got.GetStatus() != want.GetStatus() || !tripsEqual(got.GetTrips(), want.GetTrips()) {
		t.Errorf("after the replay: %s, trips %v;\nwant %s, trips %v", got.GetStatus(), got.GetTrips(), want.GetStatus(), want.GetTrips())
	}
}

func tripsEqual(a, b []*sendingv1.Trip) bool {
	return slices.EqualFunc(a, b, func(x, y *sendingv1.Trip) bool { return proto.Equal(x, y) })
}

// A manifest worker who did not board (the place kept: ACCEPTED) and whom the receiving side
// reports arrived, then onboarded, on the batch leaves the pool: the trip comes from the
// manifest, marked arrived_without_departure, and the status follows the facts. A worker not on
// the manifest, a batch that has not departed, and a worker elsewhere in the roster are skipped.
func TestApplyEmploymentArrivedWithoutDeparture(t *testing.T) {
	t.Parallel()
	const batch = "520000-B0001"
	tripFor := func(batchID, workerID string) *sendingv1.Trip {
		return &sendingv1.Trip{BatchId: batchID, ReceivingRegion: "440000", Vacancy: "vacancies/440000-V1", DepartureTime: timestamppb.New(departure)}
	}
	for _, tt := range []struct {
		name     string
		status   workerStatus // before
		manifest bool         // on batch's manifest without boarding
		changes  func(id string) []*receivingv1.EmploymentChange
		written  bool
		want     workerStatus
	}{
		{name: "arrived, then onboarded", status: stAccepted, manifest: true, written: true, want: stEmployed,
			changes: func(id string) []*receivingv1.EmploymentChange {
				return []*receivingv1.EmploymentChange{echange(kArrived, id, batch, 1), echange(kOnboarded, id, batch, 2)}
			}},
		{name: "onboarded without an arrival", status: stAccepted, manifest: true, written: true, want: stEmployed,
			changes: func(id string) []*receivingv1.EmploymentChange {
				return []*receivingv1.EmploymentChange{echange(kOnboarded, id, batch, 2)}
			}},
		{name: "a no-show of a worker who did not board: nothing", status: stAccepted, manifest: true, want: stAccepted,
			changes: func(id string) []*receivingv1.EmploymentChange {
				return []*receivingv1.EmploymentChange{echange(kNoShow, id, batch, 1)}
			}},
		{name: "not on the manifest", status: stAccepted, want: stAccepted,
			changes: func(id string) []*receivingv1.EmploymentChange {
				return []*receivingv1.EmploymentChange{echange(kArrived, id, batch, 1)}
			}},
		{name: "on another planned batch by now", status: stScheduled, manifest: true, want: stScheduled,
			changes: func(id string) []*receivingv1.EmploymentChange {
				return []*receivingv1.EmploymentChange{echange(kArrived, id, batch, 1)}
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEmploymentEnv(t)
			e.svc.cfg.ManifestTrip = func(_ *bbolt.Tx, batchID, workerID string) (*sendingv1.Trip, error) {
				if !tt.manifest || batchID != batch {
					return nil, nil
				}
				return tripFor(batchID, workerID), nil
			}
			id := fmt.Sprintf("%s-W%08d", rosterRegion, 1)
			e.update(func(tx *bbolt.Tx) error {
				if err := putWorker(tx, &sendingv1.Worker{WorkerId: id, Status: stAvailable}); err != nil {
					return err
				}
				for _, to := range []workerStatus{stProposed, stAccepted, stScheduled} {
					if _, err := e.svc.ChangeStatus(tx, id, to, "test"); err != nil {
						return err
					}
					if to == tt.status {
						break
					}
				}
				return nil
			})
			for i, ok := range e.apply(tt.changes(id)...) {
				if ok != tt.written {
					t.Errorf("change %d written = %t, want %t", i, ok, tt.written)
				}
			}
			w := e.worker(id)
			if w.GetStatus() != tt.want {
				t.Errorf("status %s, want %s", w.GetStatus(), tt.want)
			}
			if !tt.written {
				if len(w.GetTrips()) != 0 {
					t.Errorf("trips %v, want none", w.GetTrips())
				}
				return
			}
			if len(w.GetTrips()) != 1 {
				t.Fatalf("trips %v, want one", w.GetTrips())
			}
			tr := w.GetTrips()[0]
			if !tr.GetArrivedWithoutDeparture() || tr.GetBatchId() != batch || !tr.GetDepartureTime().AsTime().Equal(departure) ||
				tr.GetOnboardDate() == nil || tr.GetEmployerName() == "" {
				t.Errorf("trip %v, want the batch's trip from the manifest, arrived without departure, onboarded", tr)
			}
			before := e.worker(id)
			e.apply(tt.changes(id)...)
			if after := e.worker(id); !proto.Equal(after, before) {
				t.Errorf("applying the changes again changed the worker:\n%v\n-> %v", before, after)
			}
		})
	}
}

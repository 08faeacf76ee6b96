package roster

// What the receiving provinces report of this province's workers (their employment feeds,
// labourlink.receiving.v1.EmploymentFeedService, followed by services/sending/demand) applied
// to the journey: ApplyEmployment, called in the transaction that records the feed's position.
//
// A change names the worker and the batch of the trip. It is written on THAT trip (found by
// batch id; nothing of another trip is touched) and, when that trip is the worker's current one,
// moves the status through move, the one place statuses change:
//
//	ARRIVED     arrival_time; DEPARTED -> ARRIVED
//	ONBOARDED   onboard_date; ARRIVED -> EMPLOYED, or DEPARTED -> ARRIVED -> EMPLOYED (the
//	            arrival was missed: both moves, at the onboarding's time)
//	CHECKPOINT  a TripCheckpoint appended (one per number of months: a repeat replaces it);
//	            no status
//	LEFT_JOB    left_job_date and reason; EMPLOYED -> LEFT_JOB
//	INCIDENT    a TripIncident appended and incidents counted, once per incident (day, kind,
//	            detail: the same incident delivered again is not counted again); no status
//	NO_SHOW     no_show on the trip (cleared by a later ARRIVED: a late arrival); the status
//	            stays DEPARTED: the worker boarded here but was not seen there, so the
//	            roster does not know where they are. DEPARTED
//	            keeps them off every plan and match (those take AVAILABLE and ACCEPTED
//	            workers), `roster get` shows the trip as a no-show, and it takes an operator's
//	            ChangeWorkerStatus (RETURNED_HOME when they are found back home) to move on.
//
// Every change is idempotent: applied again (a repeat, or the feed followed again from revision
// 0 after the receiving data was replaced: REVISION_AHEAD in services/sending/demand) it writes
// the same values, appends nothing a trip already holds, and moves no status the first one moved.
//
// A worker on the batch's manifest who did not board here (the place kept: ACCEPTED) but whom
// the receiving province reports ARRIVED or ONBOARDED on the batch travelled on their own, or
// the departure record was wrong: the trip is added from the batch's manifest
// (Config.ManifestTrip) with arrived_without_departure, the worker moves ACCEPTED -> SCHEDULED
// -> DEPARTED at the batch's departure and on as above, so that no plan puts them on another
// bus. No DEPARTED event is reported to the ledger: the coordination service keeps the worker
// UNEXPECTED on the batch (arrived, no departure) for an operator. A worker in another status
// (on another planned batch, back in the pool, out again) is left as they are and logged.
//
// Every change also fills in the trip's employer and work county when they are not known yet.
// A late fact of an earlier trip (not the current one) updates that trip and moves no status.
// A change that cannot move the status (the worker is already past it, for example RETURNED_HOME
// or LEFT_JOB and out again) is still written on its trip; a change with no trip to write on (an
// unknown worker, a batch the worker never boarded here) is skipped. Skips are logged with worker
// and batch ids only and never block the feed.

import (
	"errors"
	"fmt"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/store"
)

// ApplyEmployment applies change c of the employment feed of receiving province code inside tx.
// It reports whether the change was written on a trip, and returns an error only when the store
// fails: a change that cannot apply is skipped (see the file comment). The follower has skipped
// kinds it does not know.
func (s *Service) ApplyEmployment(tx *bbolt.Tx, code string, c *receivingv1.EmploymentChange) (bool, error) {
	lg := s.lg.With(zap.String("receiving_region", code), zap.Int64("revision", c.GetRevision()),
		zap.String("kind", c.GetKind().String()), zap.String("worker_id", c.GetWorkerId()), zap.String("batch_id", c.GetBatchId()))
	w, err := Read(tx, c.GetWorkerId())
	if errors.Is(err, apierror.ErrNotFound) {
		lg.Warn("employment change for a worker not in the roster: skipped")
		return false, nil
	}
	if err != nil {
		return false, err
	}
	trip := tripOf(w, c.GetBatchId())
	if trip == nil {
		if w, err = s.arrivedWithoutDeparture(tx, w, c, lg); w == nil || err != nil {
			return false, err
		}
		trip = tripOf(w, c.GetBatchId())
	}
	before := proto.Clone(trip)
	writeTrip(trip, c)
	current := trip == CurrentTrip(w)
	if !proto.Equal(before, trip) {
		if err := putWorker(tx, w); err != nil {
			return false, fmt.Errorf("record employment change on worker %s: %w", w.GetWorkerId(), err)
		}
	}
	if !current {
		lg.Info("employment change of an earlier trip: recorded on that trip, status unchanged")
		return true, nil
	}
	at := c.GetOccurTime().AsTime()
	why := "reported by receiving province " + code
	steps := statusSteps(c.GetKind(), w.GetStatus())
	if steps == nil && movesStatus(c.GetKind()) {
		lg.Info("employment change recorded on the trip; the worker's status is already past it or elsewhere: unchanged",
			zap.String("status", w.GetStatus().String()))
	}
	for _, to := range steps {
		if _, err := s.move(tx, w.GetWorkerId(), to, statusWord(to)+" "+why, at, tripChange{}); err != nil {
			if errors.Is(err, apierror.ErrFailedPrecondition) {
				lg.Warn("employment change recorded on the trip; status move refused", zap.String("to", to.String()), zap.Error(err))
				return true, nil
			}
			return false, err
		}
	}
	if c.GetKind() == receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_NO_SHOW {
		lg.Warn("the receiving province reports a worker who departed here as not having turned up: the worker stays DEPARTED for an operator")
	}
	return true, nil
}

// arrivedWithoutDeparture gives worker w, not recorded boarding the batch of change c, the trip
// of that batch when c says the worker is there (see the file comment) and returns the worker
// after it; nil when the change is skipped.
func (s *Service) arrivedWithoutDeparture(tx *bbolt.Tx, w *sendingv1.Worker, c *receivingv1.EmploymentChange, lg *zap.Logger) (*sendingv1.Worker, error) {
	kind := c.GetKind()
	there := kind == receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_ARRIVED || kind == receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_ONBOARDED
	var trip *sendingv1.Trip
	if there && s.cfg.ManifestTrip != nil {
		var err error
		if trip, err = s.cfg.ManifestTrip(tx, c.GetBatchId(), w.GetWorkerId()); err != nil {
			return nil, err
		}
	}
	if trip == nil {
		lg.Warn("employment change for a batch the worker did not board here: skipped")
		return nil, nil
	}
	if w.GetStatus() != stAccepted {
		lg.Warn("the receiving province reports a worker who did not board the batch here as there, but the worker is elsewhere in the roster: skipped for an operator",
			zap.String("status", w.GetStatus().String()))
		return nil, nil
	}
	trip.ArrivedWithoutDeparture = true
	why := "reported on " + c.GetBatchId() + " by receiving province " + trip.GetReceivingRegion() + " without a recorded departure"
	at := trip.GetDepartureTime().AsTime()
	if _, err := s.move(tx, w.GetWorkerId(), stScheduled, why, at, tripChange{}); err != nil {
		return nil, err
	}
	w, err := s.move(tx, w.GetWorkerId(), stDeparted, why, at, tripChange{start: trip})
	if err != nil {
		return nil, err
	}
	lg.Warn("the receiving province reports a worker who did not board here as there: trip added from the manifest without a departure, the worker out of the pool; the ledger shows the worker UNEXPECTED on the batch")
	return w, nil
}

// tripOf returns the worker's trip on batch (the latest, if boarded twice), or nil.
func tripOf(w *sendingv1.Worker, batch string) *sendingv1.Trip {
	trips := w.GetTrips()
	for i := len(trips) - 1; i >= 0; i-- {
		if trips[i].GetBatchId() == batch {
			return trips[i]
		}
	}
	return nil
}

// movesStatus reports whether a change of kind moves the status when it can.
func movesStatus(kind receivingv1.EmploymentChangeKind) bool {
	switch kind {
	case receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_ARRIVED,
		receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_ONBOARDED,
		receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_LEFT_JOB:
		return true
	}
	return false
}

// statusSteps returns the moves change kind makes from status from (nil: none).
func statusSteps(kind receivingv1.EmploymentChangeKind, from workerStatus) []workerStatus {
	switch kind {
	case receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_ARRIVED:
		if from == stDeparted {
			return []workerStatus{stArrived}
		}
	case receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_ONBOARDED:
		switch from {
		case stDeparted:
			return []workerStatus{stArrived, stEmployed}
		case stArrived:
			return []workerStatus{stEmployed}
		}
	case receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_LEFT_JOB:
		if from == stEmployed {
			return []workerStatus{stLeftJob}
		}
	}
	return nil
}

// writeTrip writes what change c says on trip.
func writeTrip(trip *sendingv1.Trip, c *receivingv1.EmploymentChange) {
	if trip.EmployerName == "" {
		trip.EmployerName = c.GetEmployerName()
	}
	if trip.WorkCounty == "" {
		trip.WorkCounty = c.GetWorkCounty()
	}
	day := civil.Today(c.GetOccurTime().AsTime())
	switch c.GetKind() {
	case receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_ARRIVED:
		trip.ArrivalTime = c.GetOccurTime()
		trip.NoShow = false // a late arrival: the receiving side never turns an arrival into a no-show
	case receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_NO_SHOW:
		trip.NoShow = true
	case receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_ONBOARDED:
		trip.OnboardDate = day
	case receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_CHECKPOINT:
		cp := &sendingv1.TripCheckpoint{Months: c.GetCheckpoint().GetMonths(), StillEmployed: c.GetCheckpoint().GetStillEmployed(), CheckDate: day}
		for i, old := range trip.Checkpoints {
			if old.GetMonths() == cp.GetMonths() {
				trip.Checkpoints[i] = cp
				return
			}
		}
		trip.Checkpoints = append(trip.Checkpoints, cp)
	case receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_LEFT_JOB:
		trip.LeftJobDate = day
		trip.LeftJobReason = c.GetLeftJob().GetReason()
	case receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_INCIDENT:
		in := &sendingv1.TripIncident{IncidentDate: day, Kind: c.GetIncident().GetIncidentKind().String(), Detail: c.GetIncident().GetDetail()}
		for _, old := range trip.IncidentReports {
			if proto.Equal(old, in) {
				return // the same incident again
			}
		}
		trip.IncidentReports = append(trip.IncidentReports, in)
		trip.Incidents = int32(len(trip.IncidentReports))
	}
}

// KeepIncidentReports gives every trip of a data file older than sending schema 7, which
// counted incidents without keeping them, one TripIncident without details per incident
// counted, so that `incidents` is the number of `incident_reports` on every trip. It returns how
// many workers it changed. An incident counted before the upgrade and delivered again after it
// (a feed followed again from the start) cannot be told from a new one and is counted again.
func KeepIncidentReports(tx *bbolt.Tx) (int, error) {
	var changed []*sendingv1.Worker
	err := workers.Scan(tx, store.Range{}, func(_ []byte, w *sendingv1.Worker) (bool, error) {
		touched := false
		for _, t := range w.GetTrips() {
			for int(t.GetIncidents()) > len(t.GetIncidentReports()) {
				t.IncidentReports = append(t.IncidentReports, &sendingv1.TripIncident{})
				touched = true
			}
		}
		if touched {
			changed = append(changed, w)
		}
		return true, nil
	})
	if err != nil {
		return 0, err
	}
	for _, w := range changed {
		if err := putWorker(tx, w); err != nil {
			return 0, fmt.Errorf("incidents of worker %s: %w", w.GetWorkerId(), err)
		}
	}
	return len(changed), nil
}

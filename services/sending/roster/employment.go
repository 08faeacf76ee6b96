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
//	INCIDENT    incidents + 1; no status
//	NO_SHOW     no_show on the trip; the status stays DEPARTED: the worker boarded here but
//	            was not seen there, so the roster does not know where they are. DEPARTED
//	            keeps them off every plan and match (those take AVAILABLE and ACCEPTED
//	            workers), `roster get` shows the trip as a no-show, and it takes an operator's
//	            ChangeWorkerStatus (RETURNED_HOME when they are found back home) to move on.
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
		lg.Warn("employment change for a batch the worker did not board here: skipped")
		return false, nil
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
		trip.Incidents++
	}
}

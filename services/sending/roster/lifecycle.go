package roster

// The worker lifecycle (DESIGN.md, and the WorkerStatus comment in roster.proto):
//
//	AVAILABLE -> PROPOSED                    matched and proposed to an employer
//	PROPOSED  -> ACCEPTED | AVAILABLE        employer accepted | rejected
//	ACCEPTED  -> SCHEDULED                   put on a transport batch manifest
//	SCHEDULED -> DEPARTED | ACCEPTED | AVAILABLE   boarded | no-show keeps the place | gives it up
//	DEPARTED  -> ARRIVED | RETURNED_HOME     (the return may be learnt before the arrival)
//	ARRIVED   -> EMPLOYED | RETURNED_HOME
//	EMPLOYED  -> LEFT_JOB | RETURNED_HOME
//	LEFT_JOB  -> AVAILABLE | RETURNED_HOME
//	RETURNED_HOME -> AVAILABLE | PLACED_LOCALLY   back in the pool | taken over by a local employer
//	AVAILABLE -> PLACED_LOCALLY
//	PLACED_LOCALLY -> AVAILABLE                   the local placement ends
//	any status but DEPARTED, ARRIVED (and WITHDRAWN itself) -> WITHDRAWN
//	WITHDRAWN -> AVAILABLE
//
// A move to the current status is not a move and is refused. An erased worker (DeleteWorker)
// keeps moving along the lifecycle, so that batches and ledger events of the past stay
// consistent, but never back into the pool (AVAILABLE or PROPOSED): there is nothing left to
// match.

import (
	"fmt"
	"strings"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
)

type workerStatus = sendingv1.WorkerStatus

const (
	stAvailable     = sendingv1.WorkerStatus_WORKER_STATUS_AVAILABLE
	stProposed      = sendingv1.WorkerStatus_WORKER_STATUS_PROPOSED
	stAccepted      = sendingv1.WorkerStatus_WORKER_STATUS_ACCEPTED
	stScheduled     = sendingv1.WorkerStatus_WORKER_STATUS_SCHEDULED
	stDeparted      = sendingv1.WorkerStatus_WORKER_STATUS_DEPARTED
	stArrived       = sendingv1.WorkerStatus_WORKER_STATUS_ARRIVED
	stEmployed      = sendingv1.WorkerStatus_WORKER_STATUS_EMPLOYED
	stLeftJob       = sendingv1.WorkerStatus_WORKER_STATUS_LEFT_JOB
	stReturnedHome  = sendingv1.WorkerStatus_WORKER_STATUS_RETURNED_HOME
	stWithdrawn     = sendingv1.WorkerStatus_WORKER_STATUS_WITHDRAWN
	stPlacedLocally = sendingv1.WorkerStatus_WORKER_STATUS_PLACED_LOCALLY
)

// transitions lists the legal moves other than withdrawal (see canWithdraw).
var transitions = map[workerStatus][]workerStatus{
	stAvailable:     {stProposed, stPlacedLocally},
	stProposed:      {stAccepted, stAvailable},
	stAccepted:      {stScheduled},
	stScheduled:     {stDeparted, stAccepted, stAvailable},
	stDeparted:      {stArrived, stReturnedHome},
	stArrived:       {stEmployed, stReturnedHome},
	stEmployed:      {stLeftJob, stReturnedHome},
	stLeftJob:       {stAvailable, stReturnedHome},
	stReturnedHome:  {stAvailable, stPlacedLocally},
	stWithdrawn:     {stAvailable},
	stPlacedLocally: {stAvailable},
}

// canMove reports whether the lifecycle allows a worker in status from to move to status to.
func canMove(from, to workerStatus) bool {
	if from == to || !isRealStatus(from) || !isRealStatus(to) {
		return false
	}
	if to == stWithdrawn {
		return from != stDeparted && from != stArrived
	}
	for _, t := range transitions[from] {
		if t == to {
			return true
		}
	}
	return false
}

// isRealStatus reports whether s is a defined status other than UNSPECIFIED.
func isRealStatus(s workerStatus) bool {
	_, ok := sendingv1.WorkerStatus_name[int32(s)]
	return ok && s != sendingv1.WorkerStatus_WORKER_STATUS_UNSPECIFIED
}

// nextStatuses returns the statuses a worker in status from may move to, for error messages.
func nextStatuses(from workerStatus) []workerStatus {
	var out []workerStatus
	for v := range len(sendingv1.WorkerStatus_name) {
		if to := workerStatus(v); canMove(from, to) {
			out = append(out, to)
		}
	}
	return out
}

// statusWord renders a status for people: AVAILABLE rather than WORKER_STATUS_AVAILABLE.
func statusWord(s workerStatus) string {
	return strings.TrimPrefix(s.String(), "WORKER_STATUS_")
}

// checkMove returns nil if w may move to status to, else a FAILED_PRECONDITION error with reason
// ILLEGAL_STATUS_TRANSITION (or WORKER_ERASED).
func CheckMove(w *sendingv1.Worker, to workerStatus) error {
	from := w.GetStatus()
	if !canMove(from, to) {
		var allowed []string
		for _, s := range nextStatuses(from) {
			allowed = append(allowed, statusWord(s))
		}
		next := "none"
		if len(allowed) > 0 {
			next = strings.Join(allowed, ", ")
		}
		return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_ILLEGAL_STATUS_TRANSITION,
			"worker %s is %s and cannot move to %s (allowed from %s: %s)",
			w.GetWorkerId(), statusWord(from), statusWord(to), statusWord(from), next).
			WithMetadata("from", from.String()).WithMetadata("to", to.String())
	}
	if w.GetErased() && (to == stAvailable || to == stProposed) {
		return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_WORKER_ERASED,
			"worker %s was erased and cannot return to the pool (%s)", w.GetWorkerId(), statusWord(to))
	}
	return nil
}

// changeStatus moves the worker with workerID to status to inside tx (read-write), if the
// lifecycle allows it, and stores it with a new update_time. It returns the worker after the
// change (unmasked), or an error wrapping apierror.ErrNotFound (no such worker) or
// apierror.ErrFailedPrecondition with reason ILLEGAL_STATUS_TRANSITION / WORKER_ERASED.
//
// This is the only way any part of the sending service changes a worker's status: the
// ChangeWorkerStatus RPC, matching (AVAILABLE -> PROPOSED, decisions) and transport (SCHEDULED,
// DEPARTED, no-shows) all call it, in the same transaction as their own change and outbox
// entries. reason is why, in words (for example "employer accepted"); it may hold what an
// operator typed, so it is not logged.
func (s *Service) ChangeStatus(tx *bbolt.Tx, workerID string, to workerStatus, reason string) (*sendingv1.Worker, error) {
	return s.move(tx, workerID, to, reason, s.cfg.Now(), tripChange{})
}

// move is ChangeStatus at time at (when it happened, which may be earlier than now), with the
// trip side of the journey (journey.go): a move to DEPARTED adds the trip of tc, a move to
// RETURNED_HOME ends the current trip and reports the return to the ledger.
func (s *Service) move(tx *bbolt.Tx, workerID string, to workerStatus, reason string, at time.Time, tc tripChange) (*sendingv1.Worker, error) {
	w, err := Read(tx, workerID)
	if err != nil {
		return nil, err
	}
	return s.moveRead(tx, w, to, reason, at, tc)
}

// ChangeStatusOf is ChangeStatus of w, the worker as Read in tx just before (a caller that
// read it to decide, such as a match run proposing thousands of workers, saves reading it
// again). w is the changed worker afterwards.
func (s *Service) ChangeStatusOf(tx *bbolt.Tx, w *sendingv1.Worker, to workerStatus, reason string) error {
	_, err := s.moveRead(tx, w, to, reason, s.cfg.Now(), tripChange{})
	return err
}

// moveRead is move of w, read in tx.
func (s *Service) moveRead(tx *bbolt.Tx, w *sendingv1.Worker, to workerStatus, reason string, at time.Time, tc tripChange) (*sendingv1.Worker, error) {
	workerID := w.GetWorkerId()
	if err := CheckMove(w, to); err != nil {
		return nil, err
	}
	if len(reason) > MaxStatusReasonLen {
		return nil, apierror.InvalidArgument("status change reason is longer than %d bytes", MaxStatusReasonLen)
	}
	from := w.Status
	now := timestamppb.New(s.cfg.Now())
	w.Status = to
	w.StatusReason = reason
	w.StatusChangeTime = now
	w.UpdateTime = now
	if err := s.journey(tx, w, to, at, tc); err != nil {
		return nil, err
	}
	s.placements(w, from, to, tc)
	if err := putWorker(tx, w); err != nil {
		return nil, fmt.Errorf("change status of worker %s: %w", workerID, err)
	}
	s.lg.Debug("worker status changed", zap.String("worker_id", workerID),
		zap.String("from", from.String()), zap.String("to", to.String()))
	return w, nil
}

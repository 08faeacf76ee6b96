package roster

// The journey: a worker's trips out of the province (Worker.trips), kept in the worker's own
// record so that every read of a worker shows them and every change of them is one write with
// the status. A trip begins when the worker boards a batch (Depart, called by transport in the
// transaction of RecordDeparture) and ends with the return home (RecordReturnHome, or
// ChangeWorkerStatus to RETURNED_HOME): both go through move, the one place a status changes,
// so no path to RETURNED_HOME can forget the ledger event. Nothing of an earlier trip is changed
// by a later one.

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/outbox"
)

const (
	// MaxReturnNoteLen bounds RecordReturnHomeRequest.note, in bytes.
	MaxReturnNoteLen = 500
	// clockSkew is how far ahead of this service's clock a return time may be: the clocks of
	// the machines operators type on differ by minutes.
	clockSkew = 5 * time.Minute
)

// Depart moves the worker with workerID to DEPARTED at the trip's departure time and adds the
// trip (batch, receiving region, vacancy, departure time) to the worker's journey, inside tx.
func (s *Service) Depart(tx *bbolt.Tx, workerID string, trip *sendingv1.Trip, reason string) (*sendingv1.Worker, error) {
	if trip.GetBatchId() == "" || trip.GetDepartureTime() == nil {
		return nil, fmt.Errorf("depart worker %s: the trip needs its batch and departure time", workerID)
	}
	return s.move(tx, workerID, stDeparted, reason, trip.GetDepartureTime().AsTime(), tripChange{start: trip})
}

// tripChange is what a move does to the journey besides the status.
type tripChange struct {
	start      *sendingv1.Trip           // with a move to DEPARTED: the trip that begins
	returnNote string                    // with a move to RETURNED_HOME: kept with the trip that ends
	call       context.Context           // the call of a RecordReturnHome, whose trace the return's ledger event carries (nil: none)
	placement  *sendingv1.LocalPlacement // with a move to PLACED_LOCALLY: the placement that begins (local.go)
}

// ReturnHome moves the worker with workerID to RETURNED_HOME: the current trip ends at time at
// with note, and the return goes to the ledger (RecordReturnHome) in the trace of ctx, the call.
func (s *Service) ReturnHome(ctx context.Context, tx *bbolt.Tx, workerID string, at time.Time, note string) (*sendingv1.Worker, error) {
	return s.move(tx, workerID, stReturnedHome, "returned home", at, tripChange{returnNote: note, call: ctx})
}

// CurrentTrip returns the worker's trip that has not ended, or nil.
func CurrentTrip(w *sendingv1.Worker) *sendingv1.Trip {
	trips := w.GetTrips()
	if n := len(trips); n > 0 && trips[n-1].GetReturnTime() == nil {
		return trips[n-1]
	}
	return nil
}

// journey applies the trip side of a move of w to status to at time at.
func (s *Service) journey(tx *bbolt.Tx, w *sendingv1.Worker, to workerStatus, at time.Time, tc tripChange) error {
	switch to {
	case stDeparted:
		trip := tc.start
		if trip == nil {
			return nil // a status set by hand (ChangeWorkerStatus) records no trip
		}
		// A worker may board again without a recorded return (left a job, back in the pool while
		// still away): the earlier trip stays as it is, without a return time.
		w.Trips = append(w.Trips, trip)
	case stReturnedHome:
		cur := CurrentTrip(w)
		if cur == nil {
			return nil // no trip on record (statuses set by hand): nothing to end or report
		}
		if at.Before(cur.GetDepartureTime().AsTime()) {
			var v apierror.Violations
			v.Addf("return_time", "%s is before the departure of the worker's current trip (%s, batch %s)",
				at.UTC().Format(time.RFC3339), cur.GetDepartureTime().AsTime().UTC().Format(time.RFC3339), cur.GetBatchId())
			return v.Err()
		}
		cur.ReturnTime = timestamppb.New(at)
		cur.ReturnNote = tc.returnNote
		call := tc.call
		if call == nil {
			call = context.Background() // a status set by hand or from the employment feed: untraced
		}
		_, err := outbox.Put(call, tx, s.cfg.Now(), ledgerclient.Destination, "", &coordinationv1.LedgerEvent{
			EventId:         ReturnEventID(s.cfg.Region, cur.GetBatchId(), w.GetWorkerId()),
			Kind:            coordinationv1.EventKind_EVENT_KIND_RETURNED_HOME,
			ReporterRegion:  s.cfg.Region,
			SendingRegion:   s.cfg.Region,
			ReceivingRegion: cur.GetReceivingRegion(),
			WorkerId:        w.GetWorkerId(),
			BatchId:         cur.GetBatchId(),
			Vacancy:         cur.GetVacancy(),
			OccurTime:       cur.GetReturnTime(),
			RegisteredPoor:  w.GetRegisteredPoor(),
		})
		return err
	}
	return nil
}

// ReturnEventID is the ledger event id of the return home from the trip on batch: one per trip,
// so that a retried or repeated report is one event.
func ReturnEventID(region, batchID, workerID string) string {
	return region + ":returned:" + batchID + ":" + workerID
}

// RebuildTrips gives the worker with workerID the trips of the batches it boarded, for a data
// file written before trips were kept (transport.BuildTrips, sending schema 5). trips are
// oldest first. A worker that has trips already keeps them. If the worker is RETURNED_HOME, its
// last trip ends at its status change (the return was set by hand, and was never reported to
// the ledger: the upgrade does not report it now either, as the count may have been reported
// another way).
func RebuildTrips(tx *bbolt.Tx, workerID string, trips []*sendingv1.Trip) error {
	w, err := Read(tx, workerID)
	if err != nil || len(w.GetTrips()) > 0 {
		return err
	}
	w.Trips = trips
	if w.GetStatus() == stReturnedHome && w.GetStatusChangeTime() != nil {
		if last := trips[len(trips)-1]; !w.GetStatusChangeTime().AsTime().Before(last.GetDepartureTime().AsTime()) {
			last.ReturnTime = w.GetStatusChangeTime()
		}
	}
	return putWorker(tx, w)
}

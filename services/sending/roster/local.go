package roster

// Local placements of returnees (Worker.local_placements): the roster's side of the take-over
// (the local employers themselves are services/sending/returnees). A placement begins with the
// move to PLACED_LOCALLY (PlaceLocally) and ends with any move out of it, through move like
// every status change, so that no path out of PLACED_LOCALLY leaves a placement open or a count
// of placed workers wrong. The index BucketLocalPlacements follows the worker's record in
// putWorker.

import (
	"bytes"
	"fmt"

	"go.etcd.io/bbolt"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
)

// PlaceLocally moves the worker with workerID to PLACED_LOCALLY with the new placement p (its
// local_employer, kind and start_date set), inside tx.
func (s *Service) PlaceLocally(tx *bbolt.Tx, workerID string, p *sendingv1.LocalPlacement) (*sendingv1.Worker, error) {
	if p.GetLocalEmployer() == "" || p.GetStartDate() == nil {
		return nil, fmt.Errorf("place worker %s: the placement needs its employer and start date", workerID)
	}
	return s.move(tx, workerID, stPlacedLocally, "placed with "+p.GetLocalEmployer(), s.cfg.Now(), tripChange{placement: p})
}

// CurrentPlacement returns the worker's local placement that has not ended, or nil.
func CurrentPlacement(w *sendingv1.Worker) *sendingv1.LocalPlacement {
	ps := w.GetLocalPlacements()
	if n := len(ps); n > 0 && ps[n-1].GetEndDate() == nil {
		return ps[n-1]
	}
	return nil
}

// placements applies the local-placement side of a move of w (now in status from) to status to.
func (s *Service) placements(w *sendingv1.Worker, from, to workerStatus, tc tripChange) {
	if from == stPlacedLocally {
		if cur := CurrentPlacement(w); cur != nil {
			cur.EndDate = civil.Today(s.cfg.Now())
		}
	}
	if to == stPlacedLocally && tc.placement != nil {
		w.LocalPlacements = append(w.LocalPlacements, tc.placement)
	}
}

// PlacedWith returns how many workers are placed with the local employer named employer now.
func PlacedWith(tx *bbolt.Tx, employer string) (int, error) {
	b := tx.Bucket(BucketLocalPlacements)
	if b == nil {
		return 0, fmt.Errorf("bucket %s does not exist", BucketLocalPlacements)
	}
	prefix := append([]byte(employer), 0)
	n := 0
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		n++
	}
	return n, nil
}

// indexPlaced keeps w's entry in BucketLocalPlacements: present while w is PLACED_LOCALLY with
// an open placement, under that placement's employer. Only the last placement can have an entry
// (an earlier one ended, and its entry went, before the next began).
func indexPlaced(b *bbolt.Bucket, w *sendingv1.Worker) error {
	if b == nil {
		return fmt.Errorf("bucket %s does not exist", BucketLocalPlacements)
	}
	ps := w.GetLocalPlacements()
	if len(ps) == 0 {
		return nil
	}
	last := ps[len(ps)-1]
	key := append(append([]byte(last.GetLocalEmployer()), 0), w.GetWorkerId()...)
	if w.GetStatus() == stPlacedLocally && last.GetEndDate() == nil {
		return b.Put(key, []byte{})
	}
	return b.Delete(key)
}

package transport

// The storage of transport (model: etcd server/storage/schema): BucketBatches, batch id ->
// sendingv1.Batch.

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/paging"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending/roster"
)

// BucketBatches is the bucket of the batches. The string is that of the files on disk: never
// change it.
var BucketBatches = []byte("batches")

// Buckets are transport's buckets, for the sending service's store.Schema.
func Buckets() [][]byte { return [][]byte{BucketBatches} }

var batches = store.NewTable[*sendingv1.Batch](BucketBatches)

// batchesSize and batchesListing page ListBatches (services/platform/paging).
var batchesSize = paging.Size{Default: 100, Max: 1000}

func batchesListing(r *sendingv1.ListBatchesRequest) paging.Listing {
	return paging.For("batches", r.GetState().String(), r.GetReceivingRegion())
}

// GetBatch reads the batch with id; a missing batch is an error wrapping apierror.ErrNotFound.
func GetBatch(tx *bbolt.Tx, id string) (*sendingv1.Batch, error) {
	b, ok, err := batches.Get(tx, []byte(id))
	if err != nil {
		return nil, fmt.Errorf("read batch %s: %w", id, err)
	}
	if !ok {
		return nil, apierror.NotFound("batch %s not found", batchName(id))
	}
	return b, nil
}

// PutBatch stores b under its batch id.
func PutBatch(tx *bbolt.Tx, b *sendingv1.Batch) error {
	return batches.Put(tx, []byte(b.GetBatchId()), b)
}

// ManifestTrip returns the trip of worker workerID on batch batchID when the batch departed with
// the worker on its manifest but not among those who boarded (roster.Config.ManifestTrip): the
// trip of the entry as a boarding worker gets it (entryTrip), at the batch's departure time.
// Otherwise (no such batch, not departed, not on the manifest, boarded) it returns nil.
func ManifestTrip(tx *bbolt.Tx, batchID, workerID string) (*sendingv1.Trip, error) {
	b, ok, err := batches.Get(tx, []byte(batchID))
	if err != nil || !ok || b.GetState() != batchDeparted || slices.Contains(b.GetBoardedWorkerIds(), workerID) {
		return nil, err
	}
	for _, e := range b.GetManifest() {
		if e.GetWorkerId() == workerID {
			return entryTrip(tx, b, e, b.GetActualDepartureTime())
		}
	}
	return nil, nil
}

// BuildTrips rebuilds the trips of the workers (Worker.trips) from the departed batches, for a
// data file of a sending schema older than 5, written before trips were kept: a trip per batch
// a worker boarded, oldest first. It returns how many workers it gave trips.
func BuildTrips(tx *bbolt.Tx) (int, error) {
	type boarding struct {
		at   time.Time
		trip *sendingv1.Trip
	}
	byWorker := map[string][]boarding{}
	err := batches.Scan(tx, store.Range{}, func(_ []byte, b *sendingv1.Batch) (bool, error) {
		if b.GetState() != batchDeparted {
			return true, nil
		}
		vacancy := map[string]string{}
		for _, e := range b.GetManifest() {
			vacancy[e.GetWorkerId()] = e.GetVacancy()
		}
		for _, id := range b.GetBoardedWorkerIds() {
			byWorker[id] = append(byWorker[id], boarding{at: b.GetActualDepartureTime().AsTime(), trip: &sendingv1.Trip{
				BatchId: b.GetBatchId(), ReceivingRegion: b.GetReceivingRegion(), Vacancy: vacancy[id],
				DepartureTime: b.GetActualDepartureTime(),
			}})
		}
		return true, nil
	})
	if err != nil {
		return 0, err
	}
	for _, id := range slices.Sorted(maps.Keys(byWorker)) {
		bs := byWorker[id]
		slices.SortStableFunc(bs, func(a, b boarding) int { return a.at.Compare(b.at) })
		trips := make([]*sendingv1.Trip, len(bs))
		for i, b := range bs {
			trips[i] = b.trip
		}
		if err := roster.RebuildTrips(tx, id, trips); err != nil {
			return 0, fmt.Errorf("trips of worker %s: %w", id, err)
		}
	}
	return len(byWorker), nil
}

package transport

// The storage of transport (model: etcd server/storage/schema): BucketBatches, batch id ->
// sendingv1.Batch.

import (
	"fmt"

	"go.etcd.io/bbolt"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/paging"
	"github.com/eastwest/labourlink/services/platform/store"
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

package roster

// The roster's storage (model: etcd server/storage/schema): its buckets, typed tables over them
// and the index kept with every change of a worker.
//
//   - BucketWorkers: worker id -> sendingv1.Worker, unmasked (the resource name is not stored;
//     it is derived from the id on the way out).
//   - BucketWorkerByIDHash: keyed hash of the identity number -> worker id (idindex.go; the key
//     in BucketRosterSecrets). Only live workers have an entry: DeleteWorker removes it, so the
//     same person imported again gets a new worker id.
//   - BucketAvailableWorkers: worker id -> empty, for every worker whose status is AVAILABLE and
//     who is not erased (the pool matching reads). Written in the same transaction as every
//     worker (putWorker, applyRow); built for files of sending schema version 1 by
//     BuildAvailableIndex.
//   - BucketLocalPlacements: local employer id NUL worker id -> empty, for every worker placed
//     with that local employer now (PLACED_LOCALLY, its last LocalPlacement open). Written by
//     putWorker with every change of a worker (indexPlaced); counted by PlacedWith.
//   - BucketWorkersByCounty, BucketWorkersByCountyName: the live workers by home county, and by
//     home county and normalised name (countyindex.go), written with every worker (putWorker,
//     applyRow); built for files before sending schema 9 by BuildCountyIndexes.
//   - BucketImports: import id -> storagev1.ImportRecord.
//   - BucketImportRejections: import id NUL row number, index -> commonv1.RowRejection.

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	storagev1 "github.com/eastwest/labourlink/proto/labourlink/storage/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/store"
)

// Bucket names of the roster. The strings are those of the files on disk: never change them.
var (
	BucketWorkers          = []byte("workers")
	BucketAvailableWorkers = []byte("availableWorkers")
	BucketImports          = []byte("imports")
	BucketImportRejections = []byte("importRejections")
	BucketLocalPlacements  = []byte("localPlacements")
)

// Buckets are the roster's buckets, for the sending service's store.Schema.
func Buckets() [][]byte {
	return [][]byte{BucketWorkers, BucketWorkerByIDHash, BucketRosterSecrets, BucketAvailableWorkers, BucketImports, BucketImportRejections, BucketLocalPlacements, BucketLookupRecords, BucketWorkersByCounty, BucketWorkersByCountyName}
}

var (
	workers    = store.NewTable[*sendingv1.Worker](BucketWorkers)
	imports    = store.NewTable[*storagev1.ImportRecord](BucketImports)
	rejections = store.NewTable[*commonv1.RowRejection](BucketImportRejections)
)

// Read reads the worker with id in tx (read-only or read-write). The worker is unmasked and has
// its resource name set; it does not alias the transaction's memory. A missing worker is an
// error wrapping apierror.ErrNotFound. Erased workers (tombstones) are returned with Erased set
// and no personal data.
func Read(tx *bbolt.Tx, id string) (*sendingv1.Worker, error) {
	w, ok, err := workers.Get(tx, []byte(id))
	if err != nil {
		return nil, fmt.Errorf("read worker %s: %w", id, err)
	}
	if !ok {
		return nil, errWorkerNotFound(id)
	}
	w.Name = WorkerName(id)
	return w, nil
}

// putWorker stores w (its WorkerId must be set) and keeps the indexes of available workers, of
// local placements and by county and name (countyindex.go). The resource name is not stored.
func putWorker(tx *bbolt.Tx, w *sendingv1.Worker) error {
	if w.GetWorkerId() == "" {
		return errors.New("put worker: no worker id")
	}
	etag, err := nextEtag(tx.Bucket(BucketWorkers))
	if err != nil {
		return err
	}
	w.Etag = etag
	c := proto.Clone(w).(*sendingv1.Worker)
	c.Name = ""
	old, _, err := workers.Get(tx, []byte(w.GetWorkerId()))
	if err != nil {
		return fmt.Errorf("put worker %s: %w", w.GetWorkerId(), err)
	}
	cb, err := openCountyBuckets(tx)
	if err != nil {
		return err
	}
	if err := cb.indexCounty(old, c); err != nil {
		return err
	}
	if err := workers.Put(tx, []byte(w.GetWorkerId()), c); err != nil {
		return err
	}
	if err := indexAvailable(tx.Bucket(BucketAvailableWorkers), w); err != nil {
		return err
	}
	return indexPlaced(tx.Bucket(BucketLocalPlacements), w)
}

// The etag of a worker (AIP-154) is stored in its record: the workers bucket's sequence when the
// record was last written (putWorker, an import row that changed it), in decimal. A record
// written before etags existed, or created by an import and not changed since, has none stored:
// its etag is initialEtag until its first change. The etag says nothing of the worker's data.
const initialEtag = "0"

// nextEtag returns a new etag from the workers bucket b's sequence.
func nextEtag(b *bbolt.Bucket) (string, error) {
	if b == nil {
		return "", fmt.Errorf("bucket %s does not exist", BucketWorkers)
	}
	n, err := b.NextSequence()
	if err != nil {
		return "", fmt.Errorf("next worker etag: %w", err)
	}
	return strconv.FormatUint(n, 10), nil
}

// Etag returns the etag of the stored worker w.
func Etag(w *sendingv1.Worker) string {
	if w.GetEtag() == "" {
		return initialEtag
	}
	return w.GetEtag()
}

// checkEtag refuses a change of w made from another version than the one with the given etag
// (ABORTED, ETAG_MISMATCH); an empty etag asks for no check.
func checkEtag(w *sendingv1.Worker, etag string) error {
	if etag == "" || etag == Etag(w) {
		return nil
	}
	return apierror.Aborted(commonv1.ErrorReason_ERROR_REASON_ETAG_MISMATCH,
		"worker %s changed since it was read (etag %q, now %q): read it again and redo the change", w.GetName(), etag, Etag(w))
}

// InPool reports whether w belongs in the pool that matching reads: AVAILABLE and not erased.
func InPool(w *sendingv1.Worker) bool {
	return w.GetStatus() == sendingv1.WorkerStatus_WORKER_STATUS_AVAILABLE && !w.GetErased()
}

// indexAvailable puts or removes w's entry in the index of available workers b.
func indexAvailable(b *bbolt.Bucket, w *sendingv1.Worker) error {
	if b == nil {
		return fmt.Errorf("bucket %s does not exist", BucketAvailableWorkers)
	}
	id := []byte(w.GetWorkerId())
	if InPool(w) {
		if b.Get(id) != nil {
			return nil
		}
		return b.Put(id, []byte{})
	}
	return b.Delete(id)
}

// ForEachAvailable calls fn with every worker whose status is AVAILABLE and who is not erased, in
// worker-id order, inside tx. It walks the index of available workers and decodes only those, so
// a scan of a large roster with few available workers is cheap. The worker passed to fn is
// unmasked and fn may keep it. fn returning an error stops the iteration and returns that error;
// fn must not change workers (collect ids and call ChangeStatus after the iteration).
func ForEachAvailable(tx *bbolt.Tx, fn func(*sendingv1.Worker) error) error {
	c := tx.Bucket(BucketAvailableWorkers).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		w, err := Read(tx, string(k))
		if err != nil {
			return fmt.Errorf("index of available workers: %w", err)
		}
		if err := fn(w); err != nil {
			return err
		}
	}
	return nil
}

// ForEachWorker calls fn with every worker of the roster (tombstones of erased workers too), in
// worker-id order, inside tx, decoding one at a time: a scan of millions of workers holds one in
// memory. The worker is unmasked and valid after the call. fn returning an error stops the
// iteration and returns that error; fn must not change workers.
func ForEachWorker(tx *bbolt.Tx, fn func(*sendingv1.Worker) error) error {
	return workers.Scan(tx, store.Range{}, func(_ []byte, w *sendingv1.Worker) (bool, error) {
		return true, fn(w)
	})
}

// BuildAvailableIndex makes the index of available workers from the workers bucket: the schema
// migration of files written before the index existed (sending schema version 1). It replaces an
// index that exists. tx must be read-write.
func BuildAvailableIndex(tx *bbolt.Tx) error {
	if tx.Bucket(BucketAvailableWorkers) != nil {
		if err := tx.DeleteBucket(BucketAvailableWorkers); err != nil {
			return err
		}
	}
	idx, err := tx.CreateBucket(BucketAvailableWorkers)
	if err != nil {
		return err
	}
	if tx.Bucket(BucketWorkers) == nil {
		return nil
	}
	return workers.Scan(tx, store.Range{}, func(k []byte, w *sendingv1.Worker) (bool, error) {
		if !InPool(w) {
			return true, nil
		}
		return true, idx.Put(bytes.Clone(k), []byte{})
	})
}

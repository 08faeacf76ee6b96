package intake

import (
	"go.etcd.io/bbolt"

	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/receiving/internal/check"
)

// Storage of intake (model: etcd server/storage/schema). Bucket names are those of the files
// written before the service was split into subsystems; they must not change.
var (
	// batchTable holds intake batches under their batch id.
	batchTable = store.NewTable[*receivingv1.IntakeBatch]([]byte("intakeBatches"))
	// recordTable holds employment records under the worker id (one per worker: the latest stay
	// in this province).
	recordTable = store.NewTable[*receivingv1.EmploymentRecord]([]byte("employment"))
	// arrivalsBucket is in the schema of every receiving file but holds nothing: arrivals are
	// kept on the batch's entries and the worker's record.
	arrivalsBucket = []byte("arrivals")
)

// Buckets are the buckets of intake (for the service's Schema).
func Buckets() [][]byte {
	return [][]byte{batchTable.Name(), arrivalsBucket, recordTable.Name()}
}

// getBatch reads batch id (NOT_FOUND if there is none).
func getBatch(tx *bbolt.Tx, id string) (*receivingv1.IntakeBatch, error) {
	b, ok, err := batchTable.Get(tx, []byte(id))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, apierror.NotFound("intake batch %s/%s not found", check.Batches, id)
	}
	return b, nil
}

func putBatch(tx *bbolt.Tx, b *receivingv1.IntakeBatch) error {
	return batchTable.Put(tx, []byte(b.GetBatchId()), b)
}

// getRecord reads the record of workerID (NOT_FOUND if there is none).
func getRecord(tx *bbolt.Tx, workerID string) (*receivingv1.EmploymentRecord, error) {
	r, ok, err := recordTable.Get(tx, []byte(workerID))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, apierror.NotFound("no employment record for worker %s in this province", workerID)
	}
	return r, nil
}

func putRecord(tx *bbolt.Tx, r *receivingv1.EmploymentRecord) error {
	return recordTable.Put(tx, []byte(r.GetWorkerId()), r)
}

// Onboarded reports, in tx, whether workerID is onboarded (employed, or left the job) for
// vacancy (a resource name) in this province.
func Onboarded(tx *bbolt.Tx, workerID, vacancy string) (bool, error) {
	rec, found, err := recordTable.Get(tx, []byte(workerID))
	if err != nil || !found {
		return false, err
	}
	return rec.GetVacancy() == vacancy && (rec.GetStatus() == employed || rec.GetStatus() == leftJob), nil
}

package intake

import (
	"strings"

	"go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"

	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/receiving/internal/check"
	"github.com/eastwest/labourlink/services/receiving/internal/feedlog"
	"github.com/eastwest/labourlink/services/receiving/vacancies"
)

// Storage of intake (model: etcd server/storage/schema). Bucket names are those of the files
// written before the service was split into subsystems; they must not change.
var (
	// batchTable holds intake batches under their batch id.
	batchTable = store.NewTable[*receivingv1.IntakeBatch]([]byte("intakeBatches"))
	// recordTable holds employment records, one per trip, under the trip's id
	// (tripID: worker id, `~`, batch id), so that a worker's trips are one prefix (tripPrefix).
	// Before receiving schema version 4 it held one record per worker under the worker id
	// (MigrateTrips).
	recordTable = store.NewTable[*receivingv1.EmploymentRecord]([]byte("employment"))
	// tripsBucket is the index of trips by worker: worker id -> the batch ids of the worker's
	// trips here in the order they were announced, separated by "\n" (ids hold no control
	// characters). The last one is the worker's current trip.
	tripsBucket = []byte("employmentTrips")
	// Employment is the employment feed: one log per sending province (key: its code) of the
	// facts about its workers' trips here, in bucket employmentChanges (receiving schema
	// version 5). Every fact appends to it in the transaction of the fact (putFact).
	Employment = feedlog.Feeds[*receivingv1.EmploymentChange]{
		Name:  "employment",
		Table: store.NewTable[*receivingv1.EmploymentChange]([]byte("employmentChanges")),
		Relist: "re-read your workers' trips with ListEmploymentRecords (filter sending_region, or worker_id for one worker) " +
			"and follow the feed from the compacted_revision of this error",
	}
	// arrivalsBucket is in the schema of every receiving file but holds nothing: arrivals are
	// kept on the batch's entries and the worker's record.
	arrivalsBucket = []byte("arrivals")
)

// tripSep joins the worker id and the batch id of a trip (in record names and keys). AnnounceBatch
// refuses ids that contain it, so a trip id splits one way only.
const tripSep = "~"

// Buckets are the buckets of intake (for the service's Schema).
func Buckets() [][]byte {
	return [][]byte{batchTable.Name(), arrivalsBucket, recordTable.Name(), tripsBucket, Employment.Table.Name()}
}

// tripID is the id of the trip of workerID on batchID: the key of its record and the last part
// of its name.
func tripID(workerID, batchID string) string { return workerID + tripSep + batchID }

// tripPrefix is the key prefix of the records of workerID's trips.
func tripPrefix(workerID string) []byte { return []byte(workerID + tripSep) }

// RecordName is the resource name of the record of workerID's trip on batchID.
func RecordName(workerID, batchID string) string {
	return check.Records + "/" + tripID(workerID, batchID)
}

// splitTrip splits the id part of a record name: a trip (worker, batch), or a bare worker id
// (batch "": the worker's current trip).
func splitTrip(id string) (workerID, batchID string) {
	w, b, _ := strings.Cut(id, tripSep)
	return w, b
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

// trips returns the batch ids of workerID's trips in the order announced (none: nil).
func trips(tx *bbolt.Tx, workerID string) []string {
	v := tx.Bucket(tripsBucket).Get([]byte(workerID))
	if len(v) == 0 {
		return nil
	}
	return strings.Split(string(v), "\n")
}

func putTrips(tx *bbolt.Tx, workerID string, batchIDs []string) error {
	b := tx.Bucket(tripsBucket)
	if len(batchIDs) == 0 {
		return b.Delete([]byte(workerID))
	}
	return b.Put([]byte(workerID), []byte(strings.Join(batchIDs, "\n")))
}

// currentTrip returns the batch id of workerID's current trip, "" when the worker has none.
func currentTrip(tx *bbolt.Tx, workerID string) string {
	ts := trips(tx, workerID)
	if len(ts) == 0 {
		return ""
	}
	return ts[len(ts)-1]
}

// addTrip makes batchID workerID's current trip.
func addTrip(tx *bbolt.Tx, workerID, batchID string) error {
	ts := trips(tx, workerID)
	for _, t := range ts {
		if t == batchID {
			return nil
		}
	}
	return putTrips(tx, workerID, append(ts, batchID))
}

// dropTrip removes the record of workerID's trip on batchID and the trip from the index: the
// worker's current trip is then the one announced before it.
func dropTrip(tx *bbolt.Tx, workerID, batchID string) error {
	if err := recordTable.Delete(tx, []byte(tripID(workerID, batchID))); err != nil {
		return err
	}
	ts := trips(tx, workerID)
	kept := ts[:0]
	for _, t := range ts {
		if t != batchID {
			kept = append(kept, t)
		}
	}
	return putTrips(tx, workerID, kept)
}

// findRecord reads the record of workerID's trip on batchID, or of the worker's current trip
// when batchID is "" (found false when there is none).
func findRecord(tx *bbolt.Tx, workerID, batchID string) (*receivingv1.EmploymentRecord, bool, error) {
	if batchID == "" {
		if batchID = currentTrip(tx, workerID); batchID == "" {
			return nil, false, nil
		}
	}
	return recordTable.Get(tx, []byte(tripID(workerID, batchID)))
}

// getRecord reads the record named by id, a trip id or a bare worker id (the worker's current
// trip); NOT_FOUND if there is none.
func getRecord(tx *bbolt.Tx, id string) (*receivingv1.EmploymentRecord, error) {
	workerID, batchID := splitTrip(id)
	r, ok, err := findRecord(tx, workerID, batchID)
	if err != nil {
		return nil, err
	}
	if !ok {
		if batchID != "" {
			return nil, apierror.NotFound("no employment record for worker %s on batch %s in this province", workerID, batchID)
		}
		return nil, apierror.NotFound("no employment record for worker %s in this province", workerID)
	}
	return r, nil
}

// putRecord stores r under its trip.
func putRecord(tx *bbolt.Tx, r *receivingv1.EmploymentRecord) error {
	return recordTable.Put(tx, []byte(tripID(r.GetWorkerId(), r.GetBatchId())), r)
}

// Onboarded reports, in tx, whether workerID is onboarded (employed, or left the job) for
// vacancy (a resource name) in this province, on any of the worker's trips.
func Onboarded(tx *bbolt.Tx, workerID, vacancy string) (bool, error) {
	onboarded := false
	err := recordTable.Scan(tx, store.Range{Prefix: tripPrefix(workerID)}, func(_ []byte, rec *receivingv1.EmploymentRecord) (bool, error) {
		onboarded = rec.GetVacancy() == vacancy && (rec.GetStatus() == employed || rec.GetStatus() == leftJob)
		return !onboarded, nil
	})
	return onboarded, err
}

// tripVacancy reads the vacancy of trip r for its employment-feed changes; nil when it is not
// on file (a record written by a file that lost it), so that the change then has no employer
// or county rather than the fact being refused.
func tripVacancy(tx *bbolt.Tx, r *receivingv1.EmploymentRecord) (*receivingv1.Vacancy, error) {
	vac, err := vacancies.Get(tx, check.ResourceID(r.GetVacancy(), check.Vacancies))
	if apierror.Code(err) == codes.NotFound {
		return nil, nil
	}
	return vac, err
}

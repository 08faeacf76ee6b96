package returnees

// The storage of the take-over: BucketLocalEmployers, local employer id -> sendingv1.LocalEmployer
// (without `name` and `placed`, derived on the way out: placed from the roster's index of
// current placements, roster.PlacedWith).

import (
	"fmt"
	"strconv"
	"time"

	"go.etcd.io/bbolt"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/paging"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending/roster"
)

// BucketLocalEmployers is the bucket of the local employers. The string is that of the files on
// disk: never change it.
var BucketLocalEmployers = []byte("localEmployers")

// Buckets are the take-over's buckets, for the sending service's store.Schema.
func Buckets() [][]byte { return [][]byte{BucketLocalEmployers} }

var employers = store.NewTable[*sendingv1.LocalEmployer](BucketLocalEmployers)

// employersSize and employersListing page ListLocalEmployers (services/platform/paging).
var employersSize = paging.Size{Default: 100, Max: 1000}

func employersListing(r *sendingv1.ListLocalEmployersRequest) paging.Listing {
	return paging.For("localEmployers", r.GetKind().String(), r.GetCounty(), strconv.FormatBool(r.GetResumedOnly()))
}

const namePrefix = "localEmployers/"

// employerName is the resource name of the employer with id.
func employerName(id string) string { return namePrefix + id }

// getEmployer reads the employer with id, with its name and the workers placed there now; a
// missing one is an error wrapping apierror.ErrNotFound.
func getEmployer(tx *bbolt.Tx, id string) (*sendingv1.LocalEmployer, error) {
	e, ok, err := employers.Get(tx, []byte(id))
	if err != nil {
		return nil, fmt.Errorf("read local employer %s: %w", id, err)
	}
	if !ok {
		return nil, apierror.NotFound("local employer %s not found", employerName(id))
	}
	return withPlaced(tx, id, e)
}

// withPlaced sets e's output fields derived from other records.
func withPlaced(tx *bbolt.Tx, id string, e *sendingv1.LocalEmployer) (*sendingv1.LocalEmployer, error) {
	e.Name = employerName(id)
	n, err := roster.PlacedWith(tx, e.Name)
	if err != nil {
		return nil, err
	}
	e.Placed = int32(n)
	return e, nil
}

// putEmployer stores e under its id with a new etag (the bucket's sequence), without the
// derived fields.
func putEmployer(tx *bbolt.Tx, e *sendingv1.LocalEmployer) error {
	b := tx.Bucket(BucketLocalEmployers)
	if b == nil {
		return fmt.Errorf("bucket %s does not exist", BucketLocalEmployers)
	}
	n, err := b.NextSequence()
	if err != nil {
		return err
	}
	e.Etag = "e" + strconv.FormatUint(n, 10)
	stored := &sendingv1.LocalEmployer{
		LocalEmployerId: e.GetLocalEmployerId(), DisplayName: e.GetDisplayName(), Kind: e.GetKind(), County: e.GetCounty(),
		Capacity: e.GetCapacity(), Resumed: e.GetResumed(), CreateTime: e.GetCreateTime(), UpdateTime: e.GetUpdateTime(), Etag: e.Etag,
		ResumptionChanges: e.GetResumptionChanges(),
	}
	return employers.Put(tx, []byte(e.GetLocalEmployerId()), stored)
}

// ForEachEmployer calls fn with every local employer (without the derived name and placed), in
// id order, inside tx, until fn returns an error.
func ForEachEmployer(tx *bbolt.Tx, fn func(*sendingv1.LocalEmployer) error) error {
	return employers.Scan(tx, store.Range{}, func(_ []byte, e *sendingv1.LocalEmployer) (bool, error) {
		return true, fn(e)
	})
}

// StateOn reports whether e was registered at the time at, and whether it had resumed work then:
// its last resumption change at or before at; before its first change, the state that change
// changed from (an employer registered before the changes were kept); with no change, its
// current state.
func StateOn(e *sendingv1.LocalEmployer, at time.Time) (registered, resumed bool) {
	if e.GetCreateTime().AsTime().After(at) {
		return false, false
	}
	changes := e.GetResumptionChanges()
	if len(changes) == 0 {
		return true, e.GetResumed()
	}
	for i := len(changes) - 1; i >= 0; i-- {
		if !changes[i].GetChangeTime().AsTime().After(at) {
			return true, changes[i].GetResumed()
		}
	}
	return true, !changes[0].GetResumed()
}

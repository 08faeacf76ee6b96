package returnees

// The storage of the take-over: BucketLocalEmployers, local employer id -> sendingv1.LocalEmployer
// (without `name` and `placed`, derived on the way out: placed from the roster's index of
// current placements, roster.PlacedWith). Every stored change also puts the employer's state in
// the outbox for the coordination service (ledgerclient.LocalEmployersDestination), with its
// etag's number as the version: the national recovery rate.

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/outbox"
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
// derived fields, and puts its state in the outbox for the coordination service (report), in
// tx: the national recovery rate learns every change, or none if tx does not commit.
func putEmployer(ctx context.Context, tx *bbolt.Tx, now time.Time, e *sendingv1.LocalEmployer) error {
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
	if err := employers.Put(tx, []byte(e.GetLocalEmployerId()), stored); err != nil {
		return err
	}
	return report(ctx, tx, now, stored, n)
}

// counterReported is set to 1 (store counters bucket) once every employer stored before the
// employers were reported to the coordination service has been put in the outbox
// (ReportExisting).
var counterReported = []byte("localEmployersReported")

// report puts the state of employer e, at version (its etag's number), in the outbox for the
// coordination service (ledgerclient.LocalEmployersDestination): organisation data only.
func report(ctx context.Context, tx *bbolt.Tx, now time.Time, e *sendingv1.LocalEmployer, version uint64) error {
	st := &coordinationv1.LocalEmployerState{
		Name: employerName(e.GetLocalEmployerId()), Kind: e.GetKind(), County: e.GetCounty(), Capacity: e.GetCapacity(),
		Resumed: e.GetResumed(), CreateTime: e.GetCreateTime(), ResumptionChanges: e.GetResumptionChanges(), Version: int64(version),
	}
	_, err := outbox.Put(ctx, tx, now, ledgerclient.LocalEmployersDestination, e.GetLocalEmployerId(), st)
	return err
}

// ReportExisting puts the state of every stored employer in the outbox for the coordination
// service, once: a file of a version before the employers were reported has employers the
// coordination service never heard of. It does nothing when done before (a marker in the
// counters bucket, set in tx), and reports whether it put anything.
func ReportExisting(ctx context.Context, tx *bbolt.Tx, now time.Time) (bool, error) {
	if store.Counter(tx, counterReported) != 0 {
		return false, nil
	}
	put := false
	err := ForEachEmployer(tx, func(e *sendingv1.LocalEmployer) error {
		version, err := strconv.ParseUint(strings.TrimPrefix(e.GetEtag(), "e"), 10, 64)
		if err != nil {
			return fmt.Errorf("local employer %s: etag %q: %w", e.GetLocalEmployerId(), e.GetEtag(), err)
		}
		put = true
		return report(ctx, tx, now, e, version)
	})
	if err != nil {
		return false, err
	}
	return put, store.SetCounter(tx, counterReported, 1)
}

// ForEachEmployer calls fn with every local employer (without the derived name and placed), in
// id order, inside tx, until fn returns an error.
func ForEachEmployer(tx *bbolt.Tx, fn func(*sendingv1.LocalEmployer) error) error {
	return employers.Scan(tx, store.Range{}, func(_ []byte, e *sendingv1.LocalEmployer) (bool, error) {
		return true, fn(e)
	})
}

package roster

// The indexes of live workers by home county, kept with every write of a worker (indexCounty,
// called by putWorker and by the import's applyRow: the only two places that write
// BucketWorkers):
//
//   - BucketWorkersByCounty: home county (6 digits) + worker id -> empty. ListWorkers with a
//     home_county filter walks it instead of the roster, in the same worker-id order.
//   - BucketWorkersByCountyName: home county (6 digits) + personname.Normalize(full name) + NUL +
//     worker id -> empty. FindWorkers reads it: an exact name is the prefix county+name+NUL, a
//     name prefix is county+prefix.
//
// Erased workers (tombstones: no name, no county) have no entry. The name is in clear in the
// second index's keys, as it is in the workers bucket beside it: a name search by prefix needs
// it, and names, unlike identity numbers, are not guessable by enumeration. The index never
// leaves the sending service (personal data stays in its region).

import (
	"bytes"
	"fmt"
	"strings"

	"go.etcd.io/bbolt"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/personname"
	"github.com/eastwest/labourlink/services/platform/store"
)

// Bucket names of the county indexes (never change them: they are on disk).
var (
	BucketWorkersByCounty     = []byte("workersByCounty")
	BucketWorkersByCountyName = []byte("workersByCountyName")
)

// countyLen is the length of a county code, the first bytes of every key of the county indexes.
const countyLen = 6

// countyKeys returns w's keys in BucketWorkersByCounty and BucketWorkersByCountyName, or nils
// when w has none (erased, or no home county).
func countyKeys(w *sendingv1.Worker) (byCounty, byName []byte) {
	c := w.GetHomeCounty()
	if w.GetErased() || len(c) != countyLen || w.GetWorkerId() == "" {
		return nil, nil
	}
	id, name := w.GetWorkerId(), nameKey(w.GetFullName())
	byCounty = append(append(make([]byte, 0, len(c)+len(id)), c...), id...)
	byName = append(append(append(append(make([]byte, 0, len(c)+len(name)+1+len(id)), c...), name...), 0), id...)
	return byCounty, byName
}

// nameKey is the form of a name in the keys of BucketWorkersByCountyName: normalised, without
// NUL (the separator before the worker id; personname.Check refuses control characters anyway).
func nameKey(name string) string {
	return strings.ReplaceAll(personname.Normalize(name), "\x00", "")
}

// countyBuckets are the buckets of the county indexes inside one read-write transaction.
type countyBuckets struct{ byCounty, byName *bbolt.Bucket }

func openCountyBuckets(tx *bbolt.Tx) (countyBuckets, error) {
	b := countyBuckets{tx.Bucket(BucketWorkersByCounty), tx.Bucket(BucketWorkersByCountyName)}
	if b.byCounty == nil || b.byName == nil {
		return b, fmt.Errorf("buckets %s and %s must exist", BucketWorkersByCounty, BucketWorkersByCountyName)
	}
	return b, nil
}

// indexCounty moves the county-index entries of a worker from those of old (nil: a new worker)
// to those of w: the one place the county indexes are written for a change of a worker.
func (b countyBuckets) indexCounty(old, w *sendingv1.Worker) error {
	oc, on := countyKeys(old)
	nc, nn := countyKeys(w)
	if !bytes.Equal(oc, nc) {
		if oc != nil {
			if err := b.byCounty.Delete(oc); err != nil {
				return err
			}
		}
		if nc != nil {
			if err := b.byCounty.Put(nc, []byte{}); err != nil {
				return err
			}
		}
	}
	if !bytes.Equal(on, nn) {
		if on != nil {
			if err := b.byName.Delete(on); err != nil {
				return err
			}
		}
		if nn != nil {
			if err := b.byName.Put(nn, []byte{}); err != nil {
				return err
			}
		}
	}
	return nil
}

// BuildCountyIndexes makes the county indexes from the workers bucket, replacing them if they
// exist: the migration of files before sending schema 9. It returns the number of workers
// indexed. tx must be read-write.
func BuildCountyIndexes(tx *bbolt.Tx) (int, error) {
	for _, name := range [][]byte{BucketWorkersByCounty, BucketWorkersByCountyName} {
		if tx.Bucket(name) != nil {
			if err := tx.DeleteBucket(name); err != nil {
				return 0, err
			}
		}
		if _, err := tx.CreateBucket(name); err != nil {
			return 0, err
		}
	}
	b, err := openCountyBuckets(tx)
	if err != nil || tx.Bucket(BucketWorkers) == nil {
		return 0, err
	}
	n := 0
	err = workers.Scan(tx, store.Range{}, func(k []byte, w *sendingv1.Worker) (bool, error) {
		w.WorkerId = string(k)
		if c, _ := countyKeys(w); c != nil {
			n++
		}
		return true, b.indexCounty(nil, w)
	})
	return n, err
}

// workerIDOfNameKey returns the worker id at the end of a key of BucketWorkersByCountyName.
func workerIDOfNameKey(k []byte) string {
	i := bytes.LastIndexByte(k, 0)
	if i < 0 {
		return ""
	}
	return string(k[i+1:])
}

// WorkerIDsByCountyName returns, inside tx, the ids of the live workers of home county with
// name (normalised as the index is), or with a name starting with it when prefix is set, in
// index order (name, then worker id), from the entry after the index key after (nil: from the
// first), at most limit of them (limit <= 0: all), with the index key of each (a position to go
// on from).
func WorkerIDsByCountyName(tx *bbolt.Tx, county, name string, prefix bool, after []byte, limit int) (ids []string, keys [][]byte, err error) {
	b := tx.Bucket(BucketWorkersByCountyName)
	if b == nil {
		return nil, nil, fmt.Errorf("bucket %s does not exist", BucketWorkersByCountyName)
	}
	p := []byte(county + nameKey(name))
	if !prefix {
		p = append(p, 0)
	}
	c := b.Cursor()
	k, _ := c.Seek(p)
	if after != nil && bytes.Compare(after, p) >= 0 {
		k, _ = c.Seek(after)
		if bytes.Equal(k, after) {
			k, _ = c.Next()
		}
	}
	for ; k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		if limit > 0 && len(ids) == limit {
			break
		}
		ids = append(ids, workerIDOfNameKey(k))
		keys = append(keys, bytes.Clone(k))
	}
	return ids, keys, nil
}

// WorkerIDsInCounty returns, inside tx, the ids of the live workers of home county, in worker-id
// order.
func WorkerIDsInCounty(tx *bbolt.Tx, county string) ([]string, error) {
	b := tx.Bucket(BucketWorkersByCounty)
	if b == nil {
		return nil, fmt.Errorf("bucket %s does not exist", BucketWorkersByCounty)
	}
	var ids []string
	p := []byte(county)
	c := b.Cursor()
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		ids = append(ids, string(k[countyLen:]))
	}
	return ids, nil
}

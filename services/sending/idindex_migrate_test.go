package sending

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"go.etcd.io/bbolt"
	"go.uber.org/zap/zaptest"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending/roster"
)

// A file of sending schema 7 (the index by identity number kept the numbers in clear as keys)
// opens with this version: the migration rewrites the index as keyed hashes, every live worker
// is found by its number, an erased one is not, and no number is left in the index's keys.
func TestOpenVersion7FileHashesIDNumberIndex(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sending.db")
	lg := zaptest.NewLogger(t)
	oldBucket := []byte("workerByIDNumber")
	v7 := Schema
	v7.Version = 7
	v7.Migrate = nil
	v7.Buckets = slices.DeleteFunc(slices.Clone(Schema.Buckets), func(b []byte) bool {
		return bytes.Equal(b, roster.BucketWorkerByIDHash) || bytes.Equal(b, roster.BucketRosterSecrets) || bytes.Equal(b, roster.BucketLookupRecords) ||
			bytes.Equal(b, roster.BucketWorkersByCounty) || bytes.Equal(b, roster.BucketWorkersByCountyName)
	})
	v7.Buckets = append(v7.Buckets, oldBucket)
	old, err := store.Open(path, v7, lg)
	if err != nil {
		t.Fatal(err)
	}
	live := map[string]string{} // identity number -> worker id
	var erased []string
	err = old.Update(func(tx *bbolt.Tx) error {
		for i := range 30 {
			idn := makeIDNumber("520102", fixedClock().AddDate(-30, 0, -i), i)
			w := &sendingv1.Worker{
				WorkerId: fmt.Sprintf("520000-AAAAAAAAAAAAA%c%cQ", 'A'+i/26, 'A'+i%26),
				Status:   stAvailable, HomeCounty: "520102", IdNumber: idn, FullName: testName(i),
			}
			if i%4 == 3 { // erased: a tombstone and no index entry
				w = &sendingv1.Worker{WorkerId: w.WorkerId, Status: w.Status, Erased: true}
				erased = append(erased, idn)
			} else {
				live[idn] = w.WorkerId
				if err := tx.Bucket(oldBucket).Put([]byte(idn), []byte(w.WorkerId)); err != nil {
					return err
				}
			}
			if err := store.PutProto(tx.Bucket(roster.BucketWorkers), []byte(w.WorkerId), w); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := store.Open(path, Schema, lg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(oldBucket) != nil {
			t.Error("the index of numbers in clear survived the migration")
		}
		if n := tx.Bucket(roster.BucketWorkerByIDHash).Stats().KeyN; n != len(live) {
			t.Errorf("%d index entries, want %d", n, len(live))
		}
		for idn, want := range live {
			got, err := roster.WorkerIDByIDNumber(tx, idn)
			if err != nil || got != want {
				t.Errorf("worker of a number = %q, %v; want %s", got, err, want)
			}
		}
		for _, idn := range erased {
			if got, _ := roster.WorkerIDByIDNumber(tx, idn); got != "" {
				t.Errorf("an erased worker's number names %s", got)
			}
		}
		return tx.Bucket(roster.BucketWorkerByIDHash).ForEach(func(k, _ []byte) error {
			for idn := range live {
				if bytes.Contains(k, []byte(idn[:17])) {
					t.Error("an index key holds an identity number")
				}
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

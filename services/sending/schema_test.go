package sending

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"go.etcd.io/bbolt"
	"go.uber.org/zap/zaptest"

	sendingv1 "github.com/eastwest/labourlink/proto/labour/sending/v1"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending/roster"
)

// schemaV1 is the sending schema before the index of available workers (version 1).
var schemaV1 = store.Schema{
	Name:    "sending",
	Version: 1,
	Buckets: [][]byte{
		roster.BucketWorkers, roster.BucketWorkerByIDNumber, roster.BucketImports,
		roster.BucketImportRejections, []byte("demandReplica"), []byte("feedPositions"),
		[]byte("proposals"), []byte("matchRuns"), []byte("batches"), store.BucketOutbox,
		store.BucketOutboxQuarantine, store.BucketCounters,
	},
}

// A file written with schema version 1 (no index of available workers) opens with this version:
// the migration builds the index, and matching reads the same pool of workers as the records
// say (AVAILABLE and not erased), in worker-id order.
func TestOpenVersion1FileBuildsAvailableIndex(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sending.db")
	lg := zaptest.NewLogger(t)
	old, err := store.Open(path, schemaV1, lg)
	if err != nil {
		t.Fatal(err)
	}
	statuses := []sendingv1.WorkerStatus{stAvailable, stProposed, stAvailable, stAccepted, stAvailable, stWithdrawn, stEmployed}
	var want []string
	err = old.Update(func(tx *bbolt.Tx) error {
		for i := range 40 {
			w := &sendingv1.Worker{
				WorkerId:   fmt.Sprintf("520000-AAAAAAAAAAAAA%c%cQ", 'A'+i/26, 'A'+i%26),
				Status:     statuses[i%len(statuses)],
				HomeCounty: "520102",
				IdNumber:   makeIDNumber("520102", fixedClock().AddDate(-30, 0, -i), i),
				FullName:   testName(i),
			}
			if i%5 == 4 { // a tombstone keeps its status
				w = &sendingv1.Worker{WorkerId: w.WorkerId, Status: w.Status, Erased: true}
			}
			if w.Status == stAvailable && !w.Erased {
				want = append(want, w.WorkerId)
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
	if indexed := func() bool {
		db, err := bbolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		has := false
		_ = db.View(func(tx *bbolt.Tx) error { has = tx.Bucket(roster.BucketAvailableWorkers) != nil; return nil })
		return has
	}(); indexed {
		t.Fatal("the version 1 file has an index already")
	}

	db, err := store.Open(path, Schema, lg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := New(db, lg, Config{Region: rosterRegion, Now: fixedClock}); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := db.View(func(tx *bbolt.Tx) error {
		return roster.ForEachAvailable(tx, func(w *sendingv1.Worker) error {
			got = append(got, w.GetWorkerId())
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Fatalf("pool after the migration %v, want %v", got, want)
	}
}

package roster

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"
	"pgregory.net/rapid"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/platform/store"
)

// poolOf returns the ids of the workers that belong in the pool by their records (AVAILABLE, not
// erased) and the ids in the index of available workers, both sorted.
func poolOf(t interface {
	Helper()
	Fatal(...any)
}, db *store.DB) (byRecord, byIndex []string) {
	t.Helper()
	err := db.View(func(tx *bbolt.Tx) error {
		if err := workers.Scan(tx, store.Range{}, func(k []byte, w *sendingv1.Worker) (bool, error) {
			if InPool(w) {
				byRecord = append(byRecord, string(k))
			}
			return true, nil
		}); err != nil {
			return err
		}
		return ForEachAvailable(tx, func(w *sendingv1.Worker) error {
			if !InPool(w) {
				return fmt.Errorf("worker %s in the index is %s, erased %v", w.GetWorkerId(), w.GetStatus(), w.GetErased())
			}
			byIndex = append(byIndex, w.GetWorkerId())
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return byRecord, byIndex
}

// After any sequence of imports (new workers and updates of known ones), status changes (legal
// or refused) and erasures, the index of available workers holds exactly the workers whose
// record is AVAILABLE and not erased.
func TestAvailableIndexFollowsEveryChange(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	run := 0
	statuses := []workerStatus{stAvailable, stProposed, stAccepted, stScheduled, stDeparted, stArrived, stEmployed, stLeftJob, stReturnedHome, stWithdrawn}
	rapid.Check(t, func(rt *rapid.T) {
		run++
		db, err := store.Open(filepath.Join(dir, fmt.Sprintf("run%d.db", run)), testSchema, zap.NewNop())
		if err != nil {
			rt.Fatal(err)
		}
		defer db.Close()
		s := New(db, zap.NewNop(), Config{Region: rosterRegion, Now: fixedClock})
		x := &rosterServer{s: s}
		ctx := context.Background()
		var ids []string
		steps := rapid.IntRange(1, 40).Draw(rt, "steps")
		for range steps {
			switch op := rapid.IntRange(0, 3).Draw(rt, "op"); {
			case op == 0 || len(ids) == 0: // import a row: a new worker, or an update of a known one
				i := rapid.IntRange(0, 15).Draw(rt, "row")
				row := genRow(i)
				if rapid.Bool().Draw(rt, "edit") {
					row.Phone = fmt.Sprintf("137%08d", i)
				}
				res := s.checker().validateRow(row, civil.Today(fixedClock()))
				if err := s.prepareCreate(&res, timestamppb.New(fixedClock())); err != nil {
					rt.Fatal(err)
				}
				if _, err := s.commitBatch(fmt.Sprintf("imp-%d", len(ids)), civil.Today(fixedClock()), importBatch{rows: []rowResult{res}, final: true}); err != nil {
					rt.Fatal(err)
				}
				ids = ids[:0]
				if err := db.View(func(tx *bbolt.Tx) error {
					return workers.Scan(tx, store.Range{}, func(k []byte, _ *sendingv1.Worker) (bool, error) {
						ids = append(ids, string(k))
						return true, nil
					})
				}); err != nil {
					rt.Fatal(err)
				}
			case op == 1 || op == 2: // a status change, refused when the lifecycle forbids it
				id := rapid.SampledFrom(ids).Draw(rt, "worker")
				to := rapid.SampledFrom(statuses).Draw(rt, "to")
				_, _ = x.ChangeWorkerStatus(ctx, &sendingv1.ChangeWorkerStatusRequest{Name: WorkerName(id), Status: to})
			default: // an erasure
				id := rapid.SampledFrom(ids).Draw(rt, "worker")
				if _, err := x.DeleteWorker(ctx, &sendingv1.DeleteWorkerRequest{Name: WorkerName(id)}); err != nil {
					rt.Fatal(err)
				}
			}
		}
		byRecord, byIndex := poolOf(rt, db)
		if !slices.Equal(byRecord, byIndex) {
			rt.Fatalf("index of available workers %v, records say %v", byIndex, byRecord)
		}
	})
}

// BuildAvailableIndex (the migration from sending schema version 1) makes the index from the
// records, and replaces an index that is wrong.
func TestBuildAvailableIndex(t *testing.T) {
	t.Parallel()
	env := startRoster(t, nil, "")
	ctx := context.Background()
	var names []string
	for i := range 6 {
		names = append(names, importOne(t, env, i))
	}
	if _, err := env.client.ChangeWorkerStatus(ctx, &sendingv1.ChangeWorkerStatusRequest{Name: names[1], Status: stProposed}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.client.ChangeWorkerStatus(ctx, &sendingv1.ChangeWorkerStatusRequest{Name: names[2], Status: stWithdrawn}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.client.DeleteWorker(ctx, &sendingv1.DeleteWorkerRequest{Name: names[3]}); err != nil {
		t.Fatal(err)
	}
	wantRecord, wantIndex := poolOf(t, env.db)
	if len(wantRecord) != 3 || !slices.Equal(wantRecord, wantIndex) {
		t.Fatalf("before: records %v, index %v; want the same 3", wantRecord, wantIndex)
	}
	// A wrong index: one entry missing, one too many.
	if err := env.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(BucketAvailableWorkers)
		if err := b.Delete([]byte(wantIndex[0])); err != nil {
			return err
		}
		return b.Put([]byte(names[1][len(workerNamePrefix):]), []byte{})
	}); err != nil {
		t.Fatal(err)
	}
	if err := env.db.Update(BuildAvailableIndex); err != nil {
		t.Fatal(err)
	}
	gotRecord, gotIndex := poolOf(t, env.db)
	if !slices.Equal(gotRecord, wantRecord) || !slices.Equal(gotIndex, wantIndex) {
		t.Fatalf("after: records %v, index %v; want %v", gotRecord, gotIndex, wantRecord)
	}
}

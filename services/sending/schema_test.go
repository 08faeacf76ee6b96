package sending

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap/zaptest"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending/matching"
	"github.com/eastwest/labourlink/services/sending/roster"
)

// schemaV1 is the sending schema before the index of available workers (version 1).
var schemaV1 = store.Schema{
	Name:    "sending",
	Version: 1,
	Buckets: [][]byte{
		roster.BucketWorkers, []byte("workerByIDNumber"), roster.BucketImports,
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

// A file written with schema version 2, where a failed match run kept its message in the
// string field 12 (written here by number, as the old code did), opens with this version: the
// migration makes the message the run's error status (code UNKNOWN: the old record had no
// code), drops field 12, and leaves every other fact of the runs as it was.
func TestOpenVersion2FileConvertsRunErrors(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sending.db")
	lg := zaptest.NewLogger(t)
	v2 := Schema
	v2.Version, v2.Migrate = 2, nil
	old, err := store.Open(path, v2, lg)
	if err != nil {
		t.Fatal(err)
	}
	created := timestamppb.New(fixedClock().Add(-time.Hour))
	failed := &sendingv1.MatchRun{Name: matching.RunName(1), State: sendingv1.MatchRunState_MATCH_RUN_STATE_FAILED,
		Stage: "failed", Algorithm: "max-flow", CreateTime: created, EndTime: timestamppb.New(fixedClock()),
		Warnings: []string{"replica 440000 behind by 45s"}}
	succeeded := &sendingv1.MatchRun{Name: matching.RunName(2), State: sendingv1.MatchRunState_MATCH_RUN_STATE_SUCCEEDED,
		Stage: "done", ProgressPercent: 100, Proposed: 3, CreateTime: created}
	const oldMessage = "interrupted: the service stopped while the run was working; nothing was proposed"
	err = old.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(matching.BucketMatchRuns)
		raw, err := proto.Marshal(failed)
		if err != nil {
			return err
		}
		raw = protowire.AppendTag(raw, 12, protowire.BytesType) // the old `string error = 12`
		raw = protowire.AppendString(raw, oldMessage)
		if err := b.Put(store.Uint64Key(1), raw); err != nil {
			return err
		}
		return store.PutProto(b, store.Uint64Key(2), succeeded)
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
	wantFailed := proto.Clone(failed).(*sendingv1.MatchRun)
	wantFailed.Error = &rpcstatus.Status{Code: int32(codes.Unknown), Message: oldMessage}
	for seq, want := range map[uint64]*sendingv1.MatchRun{1: wantFailed, 2: succeeded} {
		got := &sendingv1.MatchRun{}
		if err := db.View(func(tx *bbolt.Tx) error {
			_, err := store.GetProto(tx.Bucket(matching.BucketMatchRuns), store.Uint64Key(seq), got)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, want) || len(got.ProtoReflect().GetUnknown()) != 0 {
			t.Fatalf("run %d after the migration = %v (unknown fields %x), want %v", seq, got, got.ProtoReflect().GetUnknown(), want)
		}
	}
}

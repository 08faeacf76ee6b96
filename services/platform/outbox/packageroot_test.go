package outbox

import (
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	outboxv1 "github.com/eastwest/labourlink/proto/labourlink/outbox/v1"
	"github.com/eastwest/labourlink/services/platform/store"
)

// TestMigratePackageRootKeepsQueuedMessagesDeliverable stores a queued and a quarantined message
// the way a data file written before the rename holds them (type URL under labour.*), migrates,
// and reads both back as the messages they were.
func TestMigratePackageRootKeepsQueuedMessagesDeliverable(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "x.db"), store.Schema{Name: "t", Version: 1,
		Buckets: [][]byte{store.BucketOutbox, store.BucketOutboxQuarantine}}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	day := &commonv1.Date{Year: 2026, Month: 3, Day: 9}
	value, err := proto.Marshal(day)
	if err != nil {
		t.Fatal(err)
	}
	old := func() *anypb.Any {
		return &anypb.Any{TypeUrl: "type.googleapis.com/labour.common.v1.Date", Value: value}
	}
	created := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	var queued uint64
	err = db.Update(func(tx *bbolt.Tx) error {
		var err error
		if queued, err = putEnvelope(tx, envelope{destination: "coordination", payload: old(), createdAt: created, key: "batch/b-1"}); err != nil {
			return err
		}
		current, err := anypb.New(day)
		if err != nil {
			return err
		}
		if _, err := putEnvelope(tx, envelope{destination: "coordination", payload: current, createdAt: created}); err != nil {
			return err
		}
		e := Entry{Seq: 99, ID: "s-99", Destination: "coordination", Payload: old(), CreatedAt: created}
		return quarantine(tx, e, Refusal{Code: codes.InvalidArgument, Reason: "BAD"}, "a date", created)
	})
	if err != nil {
		t.Fatal(err)
	}

	for round, want := range []int{2, 0} { // the second run finds nothing left to rewrite
		var n int
		if err := db.Update(func(tx *bbolt.Tx) error { n, err = MigratePackageRoot(tx); return err }); err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("run %d rewrote %d records, want %d", round+1, n, want)
		}
	}

	err = db.View(func(tx *bbolt.Tx) error {
		e, err := decodeEnvelope(tx.Bucket(store.BucketOutbox).Bucket([]byte("coordination")).Get(store.Uint64Key(queued)))
		if err != nil {
			return err
		}
		var got commonv1.Date
		if err := e.payload.UnmarshalTo(&got); err != nil {
			t.Errorf("queued payload after migration: %v", err)
		}
		if !proto.Equal(&got, day) || e.key != "batch/b-1" || !e.createdAt.Equal(created) {
			t.Errorf("queued entry after migration = %v key %q created %v", &got, e.key, e.createdAt)
		}
		var q outboxv1.QuarantinedEntry
		if _, err := store.GetProto(tx.Bucket(store.BucketOutboxQuarantine), store.Uint64Key(99), &q); err != nil {
			return err
		}
		if q.GetType() != "labourlink.common.v1.Date" {
			t.Errorf("quarantined type = %q, want labourlink.common.v1.Date", q.GetType())
		}
		got.Reset()
		if err := q.GetPayload().UnmarshalTo(&got); err != nil || !proto.Equal(&got, day) {
			t.Errorf("quarantined payload after migration = %v, %v", &got, err)
		}
		if q.GetReason() != "BAD" || q.GetSummary() != "a date" {
			t.Errorf("quarantined entry lost its refusal: %v", &q)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

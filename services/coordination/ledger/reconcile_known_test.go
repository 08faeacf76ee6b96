package ledger

import (
	"bytes"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/coordination/registry"
	"github.com/eastwest/labourlink/services/platform/store"
)

// A report reconciles the batches it touched with its own events taken from memory (the events
// it recorded, not read back): the reconciliations and discrepancies it stores are those that
// reconciling each batch again from the file alone gives. Batches straddle the two reports, some
// workers never arrive and one arrives twice.
func TestReportReconcilesAsTheFileWould(t *testing.T) {
	t.Parallel()
	db, err := store.Open(filepath.Join(t.TempDir(), "ledger.db"), store.Schema{Name: "ledger-test", Version: 1, Buckets: append(slices.Clone(Buckets), registry.Buckets...)}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	l := New(db, zaptest.NewLogger(t), Config{Regions: regions.Default(), Now: func() time.Time { return now }, GracePeriod: 72 * time.Hour})
	if err := db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("pairings")).Put([]byte("440000-520000"), mustMarshal(t, &coordinationv1.Pairing{ReceivingRegion: "440000", SendingRegion: "520000"}))
	}); err != nil {
		t.Fatal(err)
	}
	dep := now.Add(-10 * 24 * time.Hour)
	ev := func(id string, kind coordinationv1.EventKind, reporter string, w int, at time.Time) *coordinationv1.LedgerEvent {
		return &coordinationv1.LedgerEvent{
			EventId: id, Kind: kind, ReporterRegion: reporter, SendingRegion: "520000", ReceivingRegion: "440000",
			WorkerId: fmt.Sprintf("520000-W%010d", w), BatchId: fmt.Sprintf("520000-B%d", w/7), OccurTime: timestamppb.New(at),
		}
	}
	var reports [2][]*coordinationv1.LedgerEvent
	for w := range 40 {
		r := &reports[w*2/40]
		*r = append(*r, ev(fmt.Sprintf("d%d", w), coordinationv1.EventKind_EVENT_KIND_DEPARTED, "520000", w, dep))
		if w%5 != 4 { // every fifth never arrives
			*r = append(*r, ev(fmt.Sprintf("a%d", w), coordinationv1.EventKind_EVENT_KIND_ARRIVED, "440000", w, dep.Add(30*time.Hour)))
		}
		if w == 13 { // arrives twice
			*r = append(*r, ev("a13-again", coordinationv1.EventKind_EVENT_KIND_ARRIVED, "440000", w, dep.Add(31*time.Hour)))
		}
	}
	for _, r := range reports {
		if err := db.Update(func(tx *bbolt.Tx) error { return l.Generate(tx, r, now) }); err != nil {
			t.Fatal(err)
		}
	}
	snapshot := func() map[string][]byte {
		out := map[string][]byte{}
		if err := db.View(func(tx *bbolt.Tx) error {
			for _, name := range [][]byte{batches.Name(), discrepancies.Name(), deadlines.name, openByPairing} {
				_ = tx.Bucket(name).ForEach(func(k, v []byte) error {
					out[string(name)+"/"+string(k)] = bytes.Clone(v)
					return nil
				})
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	fromReports := snapshot()
	if len(fromReports) == 0 {
		t.Fatal("the reports stored no reconciliation")
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		for b := range 40/7 + 1 {
			if err := l.reconcileBatch(tx, fmt.Sprintf("520000-B%d", b), now, nil); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	fromFile := snapshot()
	for _, k := range slices.Sorted(maps.Keys(fromFile)) {
		if !bytes.Equal(fromReports[k], fromFile[k]) {
			t.Errorf("%q: the report stored %x, the file gives %x", k, fromReports[k], fromFile[k])
		}
	}
	if len(fromReports) != len(fromFile) {
		t.Errorf("the reports stored %d records, the file gives %d", len(fromReports), len(fromFile))
	}
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

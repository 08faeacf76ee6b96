package ledger

import (
	"fmt"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"
	"go.uber.org/zap/zaptest"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/platform/store"
)

func openStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "ledger.db"), store.Schema{Name: "ledger-test", Version: 1, Buckets: Buckets}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// keyIndex.scan selects keys by prefix and after a key, as store.Table.Scan does.
func TestKeyIndexScan(t *testing.T) {
	t.Parallel()
	db := openStore(t)
	keys := func(r store.Range) string {
		var out []string
		err := db.View(func(tx *bbolt.Tx) error {
			return byWorker.scan(tx, r, func(k []byte) (bool, error) {
				out = append(out, fmt.Sprintf("%q", k))
				return true, nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(out)
	}
	err := db.Update(func(tx *bbolt.Tx) error {
		for _, k := range []string{"a", "b1", "b2", "b3", "c"} {
			if err := byWorker.put(tx, []byte(k)); err != nil {
				return err
			}
		}
		return byWorker.delete(tx, []byte("c"))
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		r    store.Range
		want string
	}{
		{store.Range{}, `["a" "b1" "b2" "b3"]`},
		{store.Range{Prefix: []byte("b")}, `["b1" "b2" "b3"]`},
		{store.Range{Prefix: []byte("b"), After: []byte("b1")}, `["b2" "b3"]`},
		{store.Range{After: []byte("b")}, `["b1" "b2" "b3"]`},
		{store.Range{Prefix: []byte("b"), After: []byte("a")}, `["b1" "b2" "b3"]`},
		{store.Range{Prefix: []byte("b"), After: []byte("b3")}, `[]`},
	}
	for _, tt := range tests {
		if got := keys(tt.r); got != tt.want {
			t.Errorf("scan(prefix %q, after %q) = %s, want %s", tt.r.Prefix, tt.r.After, got, tt.want)
		}
	}
	err = db.View(func(tx *bbolt.Tx) error {
		n, err := byWorker.count(tx, []byte("b"))
		if n != 3 {
			t.Errorf("count(b) = %d, want 3", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// putEvent stores the event and its indexes; the store functions read them back.
func TestPutEvent(t *testing.T) {
	t.Parallel()
	db := openStore(t)
	poorDeparture := ev("d1", departed, "B1", "w1", t0)
	poorDeparture.RegisteredPoor = true
	stored := []*coordinationv1.LedgerEvent{poorDeparture, ev("a1", arrived, "B1", "w1", t0), ev("d2", departed, "B2", "w2", t0)}
	err := db.Update(func(tx *bbolt.Tx) error {
		c := newCounts(tx)
		for _, e := range stored {
			if _, err := putEvent(tx, c, record(e, t0)); err != nil {
				return err
			}
		}
		return c.flush()
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *bbolt.Tx) error {
		seq, ok := eventSeq(tx, "a1")
		if !ok || seq != 2 {
			t.Errorf("a1 under %d, %v; want 2", seq, ok)
		}
		if _, ok := eventSeq(tx, "x"); ok {
			t.Error("an unknown event id has a sequence number")
		}
		e, err := event(tx, seq)
		if err != nil || !sameFact(e, stored[1]) {
			t.Errorf("event %d = %v, %v", seq, e, err)
		}
		if _, err := event(tx, 99); err == nil {
			t.Error("a missing event is not an error")
		}
		var ids []string
		if err := batchEvents(tx, "B1", nil, func(e *coordinationv1.LedgerEvent) { ids = append(ids, e.GetEventId()) }); err != nil {
			return err
		}
		if fmt.Sprint(ids) != "[d1 a1]" {
			t.Errorf("batch B1 events %v", ids)
		}
		page, last, err := listEvents(tx, &coordinationv1.ListEventsRequest{WorkerId: "w1"}, 0, 1)
		if err != nil || len(page) != 1 || page[0].GetEventId() != "d1" || last != 1 {
			t.Errorf("first page of w1: %v, last %d, %v", page, last, err)
		}
		page, last, err = listEvents(tx, &coordinationv1.ListEventsRequest{WorkerId: "w1"}, 1, 1)
		if err != nil || len(page) != 1 || page[0].GetEventId() != "a1" || last != 0 {
			t.Errorf("second page of w1: %v, last %d, %v", page, last, err)
		}
		for kind, want := range map[coordinationv1.EventKind]int64{departed: 1, onboarded: 0, arrived: 0} {
			province := "520000"
			if kind == onboarded {
				province = "440000"
			}
			if n, err := CountRegisteredPoor(tx, province, 2025, kind); err != nil || n != want {
				t.Errorf("CountRegisteredPoor(%s, %s) = %d, %v; want %d", province, kind, n, err, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

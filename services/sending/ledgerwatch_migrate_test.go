package sending

import (
	"path/filepath"
	"slices"
	"testing"

	"go.etcd.io/bbolt"
	"go.uber.org/zap/zaptest"

	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/platform/store"
)

// A file of sending schema version 8 (before the ledger watch) opens with this version: the
// buckets of what the ledger acknowledged are created empty, the ledger watch reads them (no
// checkpoint, nothing acknowledged, no failure), and the records already in the file stay; a
// program of version 8 then refuses the file.
func TestOpenVersion8FileAddsLedgerWatch(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sending.db")
	watch := ledgerclient.WatchBuckets()
	v8 := store.Schema{Name: "sending", Version: 8, Buckets: slices.DeleteFunc(slices.Clone(Schema.Buckets), func(b []byte) bool {
		return slices.ContainsFunc(watch, func(w []byte) bool { return string(w) == string(b) })
	})}
	lg := zaptest.NewLogger(t)
	old, err := store.Open(path, v8, lg)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Update(func(tx *bbolt.Tx) error { return store.SetCounter(tx, []byte("kept"), 7) }); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := store.Open(path, Schema, lg)
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *bbolt.Tx) error {
		for _, b := range watch {
			if tx.Bucket(b) == nil {
				t.Errorf("bucket %s not created", b)
			}
		}
		if n := store.Counter(tx, []byte("kept")); n != 7 {
			t.Errorf("counter kept = %d, want 7", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := ledgerclient.NewWatch(db, lg, ledgerclient.WatchConfig{Region: "520000"}).State()
	if err != nil {
		t.Fatal(err)
	}
	if st.GetCheckpoint() != nil || st.GetAcknowledgedEvents() != 0 || st.GetFailureCount() != 0 {
		t.Errorf("ledger watch of an upgraded file: %v", st)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	info, err := store.Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Version != Schema.Version {
		t.Errorf("file version %d, want %d", info.Version, Schema.Version)
	}
	if _, err := store.Open(path, v8, lg); err == nil {
		t.Errorf("a program of version 8 opened a file of version %d", Schema.Version)
	}
}

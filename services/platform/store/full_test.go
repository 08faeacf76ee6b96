package store_test

import (
	"errors"
	"fmt"
	"github.com/eastwest/labourlink/services/devtools/fulldisk"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/store"
)

// TestWriteErrorsForWantOfSpace: a write that fails with ENOSPC or EDQUOT, however wrapped,
// wraps ErrStorageFull with a message that names no file; other errors pass unchanged.
// The errors are injected through the transaction function (see TestFullDiskOnTmpfs for a real
// full disk).
func TestWriteErrorsForWantOfSpace(t *testing.T) {
	path := "/var/lib/labourlink/sending/sending.db"
	other := errors.New("bucket vanished")
	tests := []struct {
		name string
		err  error
		full bool
	}{
		{"enospc from write", &os.PathError{Op: "write", Path: path, Err: syscall.ENOSPC}, true},
		{"edquot from write", &os.PathError{Op: "write", Path: path, Err: syscall.EDQUOT}, true},
		{"wrapped twice", fmt.Errorf("commit: %w", fmt.Errorf("write pages: %w", syscall.ENOSPC)), true},
		{"bbolt grow error cut with %s", fmt.Errorf("file resize error: %s", &os.PathError{Op: "truncate", Path: path, Err: syscall.ENOSPC}), true},
		{"other error", other, false},
		{"other errno", &os.PathError{Op: "write", Path: path, Err: syscall.EIO}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTest(t, filepath.Join(t.TempDir(), "s.db"), testSchema)
			defer db.Close()
			err := db.Update(func(*bbolt.Tx) error { return tt.err })
			if got := errors.Is(err, store.ErrStorageFull); got != tt.full {
				t.Fatalf("errors.Is(%v, ErrStorageFull) = %v, want %v", err, got, tt.full)
			}
			if db.Full() != tt.full {
				t.Errorf("Full() = %v, want %v", db.Full(), tt.full)
			}
			if !tt.full {
				if !errors.Is(err, tt.err) || err.Error() != tt.err.Error() {
					t.Errorf("other error changed: %v", err)
				}
				return
			}
			if err.Error() != store.StorageFullMessage {
				t.Errorf("message = %q, want %q", err.Error(), store.StorageFullMessage)
			}
			st := apierror.Status(fmt.Errorf("import rows: %w", err))
			if st.Code().String() != "Unavailable" {
				t.Errorf("code = %v, want Unavailable", st.Code())
			}
		})
	}
}

// TestFullStateChangesOncePerTransition: many failed writes give one "storage full" log line
// and one watcher call; the next successful write turns the state back, once.
func TestFullStateChangesOncePerTransition(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	db, err := store.Open(filepath.Join(t.TempDir(), "s.db"), testSchema, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var changes []bool
	db.NotifyFull(func(full bool) { changes = append(changes, full) })
	enospc := func(*bbolt.Tx) error { return &os.PathError{Op: "write", Path: db.Path(), Err: syscall.ENOSPC} }
	put := func(tx *bbolt.Tx) error { return tx.Bucket(bucketWorkers).Put([]byte("k"), []byte("v")) }

	for range 5 {
		if err := db.Update(enospc); !errors.Is(err, store.ErrStorageFull) {
			t.Fatalf("write: %v, want storage full", err)
		}
	}
	if err := db.View(func(*bbolt.Tx) error { return nil }); err != nil {
		t.Fatalf("read while full: %v", err)
	}
	for range 3 {
		if err := db.Update(put); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Update(enospc); !errors.Is(err, store.ErrStorageFull) {
		t.Fatal(err)
	}
	if fmt.Sprint(changes) != "[true false true]" {
		t.Errorf("watcher saw %v, want [true false true]", changes)
	}
	if n := logs.FilterMessageSnippet("storage full").Len(); n != 2 {
		t.Errorf("%d 'storage full' log lines for 6 failed writes in two spells, want 2", n)
	}
	if n := logs.FilterMessageSnippet("storage writable again").Len(); n != 1 {
		t.Errorf("%d 'writable again' log lines, want 1", n)
	}
	for _, e := range logs.FilterMessageSnippet("storage full").All() {
		if e.Level != zapcore.ErrorLevel || e.ContextMap()["data_file"] != db.Path() {
			t.Errorf("storage full logged as %v with %v, want error level naming the data file", e.Level, e.ContextMap())
		}
	}
}

// TestFullDiskOnTmpfs: on a real full file system a bbolt commit fails with ErrStorageFull,
// what was committed before stays readable (also after reopening), and once space is freed the
// same write succeeds.
func TestFullDiskOnTmpfs(t *testing.T) {
	dir := fulldisk.Mount(t, "8m")
	path := filepath.Join(dir, "s.db")
	db := openTest(t, path, testSchema)
	t.Cleanup(func() { _ = db.Close() }) // before the unmount, also when the test fails
	value := make([]byte, 1000)
	putN := func(prefix string, n int) error {
		return db.Update(func(tx *bbolt.Tx) error {
			b := tx.Bucket(bucketWorkers)
			for i := range n {
				if err := b.Put(fmt.Appendf(nil, "%s-%06d", prefix, i), value); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := putN("kept", 200); err != nil {
		t.Fatal(err)
	}
	filler := fulldisk.Fill(t, dir)
	err := putN("lost", 1000) // about 2 MB of pages
	if !errors.Is(err, store.ErrStorageFull) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write on a full disk: %v, want ErrStorageFull wrapping ENOSPC", err)
	}
	if !db.Full() {
		t.Error("Full() = false after a write failed for want of space")
	}
	count := func(db *store.DB) (kept, lost int) {
		t.Helper()
		if err := db.View(func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketWorkers).ForEach(func(k, _ []byte) error {
				if string(k[:4]) == "kept" {
					kept++
				} else {
					lost++
				}
				return nil
			})
		}); err != nil {
			t.Fatal(err)
		}
		return kept, lost
	}
	if kept, lost := count(db); kept != 200 || lost != 0 {
		t.Fatalf("while full: %d kept and %d of the failed write, want 200 and 0", kept, lost)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := putN("lost", 1000); err != nil {
		t.Fatalf("write after space was freed: %v", err)
	}
	if db.Full() {
		t.Error("Full() = true after a write succeeded")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, path, testSchema)
	if kept, lost := count(db); kept != 200 || lost != 1000 {
		t.Fatalf("after reopening: %d and %d, want 200 and 1000", kept, lost)
	}
}

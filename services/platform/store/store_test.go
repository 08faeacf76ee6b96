package store_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"pgregory.net/rapid"

	"github.com/eastwest/labourlink/services/platform/store"
)

// Buckets of the tests (the names the sending service uses for its workers and batches).
var (
	bucketWorkers = []byte("workers")
	bucketBatches = []byte("batches")
)

var testSchema = store.Schema{
	Name:    "sending",
	Version: 2,
	Buckets: [][]byte{bucketWorkers, store.BucketOutbox},
}

func openTest(t *testing.T, path string, s store.Schema, opts ...store.Option) *store.DB {
	t.Helper()
	db, err := store.Open(path, s, zaptest.NewLogger(t), opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return db
}

func TestOpenCreatesDirectoryAndBuckets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "sending.db")
	db := openTest(t, path, testSchema)
	defer db.Close()
	if db.Path() != path {
		t.Errorf("Path = %q, want %q", db.Path(), path)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("data file not created: %v", err)
	}
	err := db.View(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{store.BucketMeta, store.BucketIdempotency, bucketWorkers, store.BucketOutbox} {
			if tx.Bucket(name) == nil {
				t.Errorf("bucket %s not created", name)
			}
		}
		if tx.Bucket([]byte("vacancies")) != nil { // the receiving service's (services/receiving/vacancies)
			t.Errorf("bucket %s created but not in schema", "vacancies")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sending.db")
	db := openTest(t, path, testSchema)
	var seq uint64
	err := db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketWorkers)
		var err error
		if seq, err = store.NextSeq(b); err != nil {
			return err
		}
		return store.PutProto(b, store.Uint64Key(seq), wrapperspb.String("w-1"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openTest(t, path, testSchema)
	defer db.Close()
	var got wrapperspb.StringValue
	var next uint64
	err = db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketWorkers)
		ok, err := store.GetProto(b, store.Uint64Key(seq), &got)
		if err != nil {
			return err
		}
		if !ok {
			t.Error("value lost across reopen")
		}
		next, err = store.NextSeq(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetValue() != "w-1" {
		t.Errorf("value = %q, want w-1", got.GetValue())
	}
	if next != seq+1 {
		t.Errorf("sequence after reopen = %d, want %d", next, seq+1)
	}
}

func TestSecondOpenOfLockedFileFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sending.db")
	db := openTest(t, path, testSchema)
	defer db.Close()

	// bbolt's flock is per open file, so a second Open in this process
	// contends like a second process would.
	_, err := store.Open(path, testSchema, zaptest.NewLogger(t), store.WithTimeout(50*time.Millisecond))
	if err == nil {
		t.Fatal("second Open succeeded, want in-use error")
	}
	if !errors.Is(err, store.ErrInUse) {
		t.Errorf("error %v does not wrap ErrInUse", err)
	}
	want := "data file " + path + " is in use by another process"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error = %q, want it to contain %q", err, want)
	}

	// Once closed, the file opens again.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2 := openTest(t, path, testSchema, store.WithTimeout(time.Second))
	if err := db2.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSchemaChecks(t *testing.T) {
	tests := []struct {
		name    string
		reopen  store.Schema
		wantErr string // "" means the open succeeds
	}{
		{"same schema", testSchema, ""},
		{"wrong name", store.Schema{Name: "receiving", Version: 2}, `file holds schema "sending", this program expects "receiving"`},
		{"newer file version", store.Schema{Name: "sending", Version: 1}, "schema version 2, newer than version 1"},
		{"older file version without migration", store.Schema{Name: "sending", Version: 3}, "cannot upgrade"},
		{"zero version", store.Schema{Name: "sending"}, "version above 0"},
		{"no name", store.Schema{Version: 2}, "needs a name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.db")
			db := openTest(t, path, testSchema)
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			db, err := store.Open(path, tt.reopen, zaptest.NewLogger(t))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				db.Close()
				return
			}
			if err == nil {
				db.Close()
				t.Fatalf("Open succeeded, want error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err, tt.wantErr)
			}
			// A refused open must not leave the file locked or changed.
			db = openTest(t, path, testSchema, store.WithTimeout(time.Second))
			db.Close()
		})
	}
}

func TestMigrate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	v1 := store.Schema{Name: "sending", Version: 1, Buckets: [][]byte{bucketWorkers}}
	openTest(t, path, v1).Close()

	var from uint64
	v2 := store.Schema{Name: "sending", Version: 2, Buckets: [][]byte{bucketWorkers, bucketBatches},
		Migrate: func(tx *bbolt.Tx, f uint64) error {
			from = f
			return store.PutProto(tx.Bucket(bucketWorkers), []byte("migrated"), &emptypb.Empty{})
		}}
	db := openTest(t, path, v2)
	if from != 1 {
		t.Errorf("Migrate called with from = %d, want 1", from)
	}
	err := db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketBatches) == nil {
			t.Error("new bucket not created")
		}
		ok, err := store.GetProto(tx.Bucket(bucketWorkers), []byte("migrated"), &emptypb.Empty{})
		if !ok {
			t.Error("migration change not committed")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	// The version is now 2: the v1 program is refused.
	if _, err := store.Open(path, v1, zaptest.NewLogger(t)); err == nil || !errors.Is(err, store.ErrSchemaMismatch) {
		t.Fatalf("v1 open after upgrade: err = %v, want ErrSchemaMismatch", err)
	}

	// A failing migration changes nothing.
	failing := v2
	failing.Version = 3
	failing.Migrate = func(*bbolt.Tx, uint64) error { return errors.New("boom") }
	if _, err := store.Open(path, failing, zaptest.NewLogger(t)); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("failing migration: err = %v", err)
	}
	openTest(t, path, v2).Close()
}

func TestOpenRefusesForeignFiles(t *testing.T) {
	dir := t.TempDir()

	// A bbolt file with buckets but no schema record.
	foreign := filepath.Join(dir, "foreign.db")
	bdb, err := bbolt.Open(foreign, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bdb.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucket([]byte("keys"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	bdb.Close()

	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not a database "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	notADir := filepath.Join(dir, "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, path, want string
	}{
		{"bbolt file without schema", foreign, "no schema record"},
		{"not a bbolt file", garbage, "open data file"},
		{"directory is a file", filepath.Join(notADir, "x.db"), "create data directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := store.Open(tt.path, testSchema, zaptest.NewLogger(t), store.WithTimeout(100*time.Millisecond))
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded, want error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestUseAfterCloseReturnsErrors(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "x.db"), testSchema)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(*bbolt.Tx) error { return nil }); err == nil {
		t.Error("Update after Close succeeded")
	}
	if err := db.View(func(*bbolt.Tx) error { return nil }); err == nil {
		t.Error("View after Close succeeded")
	}
}

func TestProtoHelpers(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "x.db"), testSchema)
	defer db.Close()

	key := []byte("k")
	var got wrapperspb.StringValue
	err := db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketWorkers)
		if err := store.PutProto(b, key, wrapperspb.String("first")); err != nil {
			return err
		}
		// The caller may reuse its key buffer after PutProto.
		key[0] = 'z'
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *bbolt.Tx) error {
		ok, err := store.GetProto(tx.Bucket(bucketWorkers), []byte("k"), &got)
		if !ok {
			t.Error("key k not found: PutProto did not copy the key")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Grow the file (remapping memory) after the read transaction ended; the
	// message read must not alias the old mapping.
	err = db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketWorkers)
		big := wrapperspb.Bytes(bytes.Repeat([]byte{1}, 1<<16))
		for i := range uint64(40) {
			if err := store.PutProto(b, store.Uint64Key(i), big); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetValue() != "first" {
		t.Errorf("value after tx = %q, want first", got.GetValue())
	}

	err = db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketWorkers)
		if ok, err := store.GetProto(b, []byte("missing"), &got); ok || err != nil {
			t.Errorf("GetProto(missing) = %v, %v; want false, nil", ok, err)
		}
		if err := b.Put([]byte("corrupt"), []byte{0xff, 0xff, 0xff}); err != nil {
			return err
		}
		if _, err := store.GetProto(b, []byte("corrupt"), &got); err == nil {
			t.Error("GetProto of corrupt value: no error")
		}
		if err := store.PutProto(nil, key, &got); err == nil {
			t.Error("PutProto(nil bucket): no error")
		}
		if _, err := store.GetProto(nil, key, &got); err == nil {
			t.Error("GetProto(nil bucket): no error")
		}
		if _, err := store.NextSeq(nil); err == nil {
			t.Error("NextSeq(nil bucket): no error")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPutProtoIsDeterministic(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "x.db"), testSchema)
	defer db.Close()
	m := &wrapperspb.StringValue{Value: "same"}
	want, err := (proto.MarshalOptions{Deterministic: true}).Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketWorkers)
		if err := store.PutProto(b, []byte("a"), m); err != nil {
			return err
		}
		if got := b.Get([]byte("a")); !bytes.Equal(got, want) {
			t.Errorf("stored %x, want %x", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestUint64Key(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a := rapid.Uint64().Draw(t, "a")
		b := rapid.Uint64().Draw(t, "b")
		ka, kb := store.Uint64Key(a), store.Uint64Key(b)
		if len(ka) != 8 {
			t.Fatalf("len = %d", len(ka))
		}
		if store.KeyUint64(ka) != a {
			t.Fatalf("KeyUint64(Uint64Key(%d)) = %d", a, store.KeyUint64(ka))
		}
		// Byte order equals numeric order, so cursors iterate numerically.
		cmp := bytes.Compare(ka, kb)
		switch {
		case a < b && cmp >= 0, a > b && cmp <= 0, a == b && cmp != 0:
			t.Fatalf("order of %d, %d not kept: compare = %d", a, b, cmp)
		}
	})
	for _, k := range [][]byte{nil, {1}, make([]byte, 9)} {
		if got := store.KeyUint64(k); got != 0 {
			t.Errorf("KeyUint64(%x) = %d, want 0", k, got)
		}
	}
}

func TestInstanceID(t *testing.T) {
	dir := t.TempDir()
	a := openTest(t, filepath.Join(dir, "a.db"), testSchema)
	id := a.InstanceID()
	a.Close()
	if len(id) != 16 {
		t.Fatalf("InstanceID = %q, want 16 hex digits", id)
	}
	a = openTest(t, filepath.Join(dir, "a.db"), testSchema)
	defer a.Close()
	if a.InstanceID() != id {
		t.Errorf("InstanceID changed across reopen: %q then %q", id, a.InstanceID())
	}
	b := openTest(t, filepath.Join(dir, "b.db"), testSchema)
	defer b.Close()
	if b.InstanceID() == id {
		t.Errorf("two files share InstanceID %q", id)
	}
}

// TestOpenRefusesABucketNamedTwice: each service declares its buckets beside its tables; two
// tables over one bucket would read each other's values, so a schema naming one twice does not
// open.
func TestOpenRefusesABucketNamedTwice(t *testing.T) {
	s := store.Schema{Name: "dup", Version: 1, Buckets: [][]byte{[]byte("a"), []byte("b"), []byte("a")}}
	_, err := store.Open(filepath.Join(t.TempDir(), "dup.db"), s, nil)
	if err == nil || !strings.Contains(err.Error(), `bucket "a" twice`) {
		t.Fatalf("Open with bucket a twice: err = %v, want it refused", err)
	}
}

// A write that grows the file (here by 64 MB) commits while a read transaction is open: Open maps
// the file with room to grow (store.BoltOptions), so bbolt need not map it again, which would
// wait for every open read to end (a long listing would hold up every write behind it).
func TestGrowingWriteDoesNotWaitForReaders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sending.db")
	db := openTest(t, path, testSchema)
	defer db.Close()
	reading, release := make(chan struct{}), make(chan struct{})
	read := make(chan error, 1)
	go func() {
		read <- db.View(func(*bbolt.Tx) error {
			close(reading)
			<-release
			return nil
		})
	}()
	<-reading
	wrote := make(chan error, 1)
	go func() {
		wrote <- db.Update(func(tx *bbolt.Tx) error {
			value := bytes.Repeat([]byte{7}, 64<<10)
			for i := range 1024 {
				if err := tx.Bucket(bucketWorkers).Put(store.Uint64Key(uint64(i)), value); err != nil {
					return err
				}
			}
			return nil
		})
	}()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatalf("Update: %v", err)
		}
	case <-time.After(time.Minute): // only when the write is stuck behind the read
		close(release)
		t.Fatalf("the write growing the file waited for the open read (Update: %v once it ended)", <-wrote)
	}
	close(release)
	if err := <-read; err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() < 64<<20 {
		t.Fatalf("file after the write: %d bytes, want at least 64 MB", st.Size())
	}
}

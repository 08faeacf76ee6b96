package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/eastwest/labourlink/services/devtools/wait"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/store"
)

// bucketWorkers is a bucket of the tests besides the outbox's.
var bucketWorkers = []byte("workers")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var schema = store.Schema{Name: "sending", Version: 1, Buckets: [][]byte{store.BucketOutbox, bucketWorkers}}

// fast makes tests quick without asserting anything about time.
var fast = outbox.Options{MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond, PollInterval: time.Millisecond}

func openDB(t *testing.T, path string) *store.DB {
	t.Helper()
	db, err := store.Open(path, schema, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// put stores each value for dest in its own transaction, with a change to
// another bucket, and returns the sequence numbers.
func put(t *testing.T, db *store.DB, dest string, values ...string) []uint64 {
	t.Helper()
	var seqs []uint64
	for _, v := range values {
		err := db.Update(func(tx *bbolt.Tx) error {
			if err := store.PutProto(tx.Bucket(bucketWorkers), []byte(v), wrapperspb.String(v)); err != nil {
				return err
			}
			seq, err := outbox.Put(context.Background(), tx, time.Now(), dest, "", wrapperspb.String(v))
			seqs = append(seqs, seq)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return seqs
}

func pending(t *testing.T, db *store.DB, dest string) int {
	t.Helper()
	n, err := outbox.Pending(db, dest)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// run starts r and returns a function that stops it and waits for Run.
func run(t *testing.T, r *outbox.Relay) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	}
}

// recorder is a DeliverFunc that fails the first `fail` calls, records the
// entries of successful calls, and closes done once `want` entries arrived.
type recorder struct {
	mu        sync.Mutex
	fail      int
	calls     int
	failedIDs [][]string
	delivered []outbox.Entry
	want      int
	done      chan struct{}
}

func newRecorder(fail, want int) *recorder {
	return &recorder{fail: fail, want: want, done: make(chan struct{})}
}

func ids(entries []outbox.Entry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.ID)
	}
	return out
}

// deliver fails like a peer that is down (UNAVAILABLE: every entry waits alike).
func (r *recorder) deliver(_ context.Context, entries []outbox.Entry) (outbox.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.calls <= r.fail {
		r.failedIDs = append(r.failedIDs, ids(entries))
		return outbox.Result{}, status.Error(codes.Unavailable, "peer unavailable")
	}
	before := len(r.delivered)
	r.delivered = append(r.delivered, entries...)
	if before < r.want && len(r.delivered) >= r.want {
		close(r.done)
	}
	return outbox.Result{Done: len(entries)}, nil
}

func (r *recorder) values(t *testing.T) []string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.delivered {
		var v wrapperspb.StringValue
		if err := e.UnmarshalPayload(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v.GetValue())
	}
	return out
}

func TestEntriesSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sending.db")
	db := openDB(t, path)
	seqs := put(t, db, "coordination", "a", "b", "c")
	prefix := db.InstanceID()

	// A relay whose peer is down sees the entries but cannot deliver them.
	down := newRecorder(1<<30, 0)
	r := outbox.NewRelay(db, "coordination", down.deliver, zaptest.NewLogger(t), fast)
	stop := run(t, r)
	wait.For(t, "a failed delivery", func() bool {
		down.mu.Lock()
		defer down.mu.Unlock()
		return len(down.failedIDs) > 0
	})
	stop()
	firstIDs := down.failedIDs[0]
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openDB(t, path)
	defer db.Close()
	if n := pending(t, db, "coordination"); n != 3 {
		t.Fatalf("pending after reopen = %d, want 3", n)
	}
	rec := newRecorder(0, 3)
	r = outbox.NewRelay(db, "coordination", rec.deliver, zaptest.NewLogger(t), fast)
	stop = run(t, r)
	<-rec.done
	stop()

	if got := rec.values(t); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("delivered %v, want [a b c]", got)
	}
	var wantIDs []string
	for _, s := range seqs {
		wantIDs = append(wantIDs, fmt.Sprintf("%s-%d", prefix, s))
	}
	if got := ids(rec.delivered); !slices.Equal(got, wantIDs) || !slices.Equal(firstIDs, wantIDs) {
		t.Errorf("ids before restart %v, after %v; want %v both times", firstIDs, got, wantIDs)
	}
	for i, e := range rec.delivered {
		// A failed call counts an attempt on the entry it failed on: the first.
		if e.Destination != "coordination" || e.CreatedAt.IsZero() || (e.Attempts == 0) != (i > 0) {
			t.Errorf("entry %s: destination %q, created %v, attempts %d", e.ID, e.Destination, e.CreatedAt, e.Attempts)
		}
	}
	if n, err := r.Pending(); err != nil || n != 0 {
		t.Errorf("pending after delivery = %d, %v; want 0", n, err)
	}
}

func TestRetryDeliversEachEntryOnceInOrder(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "sending.db"))
	defer db.Close()
	var values []string
	for i := range 10 {
		values = append(values, fmt.Sprintf("v%d", i))
	}
	put(t, db, "receiving-440000", values...)

	const failures = 3
	rec := newRecorder(failures, len(values))
	opts := fast
	opts.BatchSize = 3
	opts.IDPrefix = "sending-520000"
	r := outbox.NewRelay(db, "receiving-440000", rec.deliver, zaptest.NewLogger(t), opts)
	stop := run(t, r)
	<-rec.done
	stop()

	if got := rec.values(t); !slices.Equal(got, values) {
		t.Fatalf("delivered %v, want each of %v once, in order", got, values)
	}
	// Every failed call was a retry of the same first batch.
	for i, f := range rec.failedIDs {
		if !slices.Equal(f, []string{"sending-520000-1", "sending-520000-2", "sending-520000-3"}) {
			t.Errorf("failed call %d had %v, want the first batch", i, f)
		}
	}
	for i, e := range rec.delivered {
		want := uint32(0)
		if i == 0 {
			want = failures // the entry each failed call stopped at
		}
		if e.Attempts != want {
			t.Errorf("entry %s attempts = %d, want %d", e.ID, e.Attempts, want)
		}
		if len(rec.delivered) > 0 && i > 0 && e.Seq <= rec.delivered[i-1].Seq {
			t.Errorf("entry %s out of order", e.ID)
		}
	}
	if n := pending(t, db, "receiving-440000"); n != 0 {
		t.Errorf("pending = %d, want 0", n)
	}
}

func TestPutInRolledBackTransactionLeavesNothing(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "sending.db"))
	defer db.Close()
	boom := errors.New("validation failed after put")
	err := db.Update(func(tx *bbolt.Tx) error {
		if _, err := outbox.Put(context.Background(), tx, time.Now(), "coordination", "", wrapperspb.String("never")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v", err)
	}
	if n := pending(t, db, "coordination"); n != 0 {
		t.Fatalf("pending = %d after rollback, want 0", n)
	}
	if seqs := put(t, db, "coordination", "real"); seqs[0] != 1 {
		t.Errorf("first committed seq = %d, want 1 (rolled-back sequence reused)", seqs[0])
	}
	// Put refuses to run outside a read-write transaction.
	err = db.View(func(tx *bbolt.Tx) error {
		_, err := outbox.Put(context.Background(), tx, time.Now(), "coordination", "", wrapperspb.String("x"))
		return err
	})
	if err == nil {
		t.Error("Put in a read-only transaction succeeded")
	}
}

func TestDestinationsAreIndependent(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "sending.db"))
	defer db.Close()
	for i := range 5 {
		put(t, db, "down", fmt.Sprintf("d%d", i))
		put(t, db, "up", fmt.Sprintf("u%d", i))
	}
	down := newRecorder(1<<30, 0)
	up := newRecorder(0, 5)
	opts := fast
	opts.BatchSize = 2
	stopDown := run(t, outbox.NewRelay(db, "down", down.deliver, zaptest.NewLogger(t), opts))
	stopUp := run(t, outbox.NewRelay(db, "up", up.deliver, zaptest.NewLogger(t), opts))
	<-up.done
	stopUp()
	stopDown()

	if got := up.values(t); !slices.Equal(got, []string{"u0", "u1", "u2", "u3", "u4"}) {
		t.Errorf("up delivered %v", got)
	}
	for _, e := range up.delivered {
		if e.Destination != "up" {
			t.Errorf("relay for up got an entry for %q", e.Destination)
		}
	}
	if n := pending(t, db, "down"); n != 5 {
		t.Errorf("pending for down = %d, want 5", n)
	}
	if n := pending(t, db, "up"); n != 0 {
		t.Errorf("pending for up = %d, want 0", n)
	}
}

func TestNotifyWakesIdleRelay(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "sending.db"))
	defer db.Close()
	put(t, db, "coordination", "first")
	rec := newRecorder(0, 2)
	opts := fast
	opts.PollInterval = time.Hour // only Notify can wake it in this test
	r := outbox.NewRelay(db, "coordination", rec.deliver, zaptest.NewLogger(t), opts)
	stop := run(t, r)
	defer stop()
	wait.For(t, "the first entry delivered", func() bool {
		n, _ := r.Pending()
		return n == 0
	})
	put(t, db, "coordination", "second")
	r.Notify()
	r.Notify() // never blocks
	<-rec.done
	if got := rec.values(t); !slices.Equal(got, []string{"first", "second"}) {
		t.Errorf("delivered %v", got)
	}
}

func TestDamagedEntryIsSkipped(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "sending.db"))
	defer db.Close()
	put(t, db, "coordination", "a")
	err := db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(store.BucketOutbox).Bucket([]byte("coordination"))
		seq, err := store.NextSeq(tx.Bucket(store.BucketOutbox))
		if err != nil {
			return err
		}
		return b.Put(store.Uint64Key(seq), []byte{0x12, 0xff})
	})
	if err != nil {
		t.Fatal(err)
	}
	put(t, db, "coordination", "c")

	rec := newRecorder(0, 2)
	stop := run(t, outbox.NewRelay(db, "coordination", rec.deliver, zaptest.NewLogger(t), fast))
	<-rec.done
	stop()
	if got := rec.values(t); !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("delivered %v, want [a c]", got)
	}
	if n := pending(t, db, "coordination"); n != 1 {
		t.Errorf("pending = %d, want the damaged entry kept", n)
	}
}

func TestPutErrors(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "sending.db"))
	defer db.Close()
	err := db.Update(func(tx *bbolt.Tx) error {
		_, err := outbox.Put(context.Background(), tx, time.Now(), "", "", wrapperspb.String("x"))
		return err
	})
	if err == nil {
		t.Error("Put with empty destination succeeded")
	}
}

func TestRunReturnsErrorWhenStoreClosed(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "sending.db"))
	r := outbox.NewRelay(db, "coordination", newRecorder(0, 0).deliver, zaptest.NewLogger(t), fast)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Run(t.Context()); err == nil {
		t.Error("Run on a closed store returned nil")
	}
}

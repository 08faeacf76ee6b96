package store_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/store"
)

const method = "/labourlink.sending.v1.SendingService/ImportWorkers"

// handle is a handler in the recommended shape: one Update transaction, Recall
// first, else change data and Remember.
func handle(db *store.DB, requestID, value string) (*wrapperspb.StringValue, error) {
	req := &sendingv1.ChangeWorkerStatusRequest{RequestId: requestID, Reason: value}
	resp := &wrapperspb.StringValue{}
	err := db.Update(func(tx *bbolt.Tx) error {
		if ok, err := store.Recall(tx, method, req, resp); err != nil || ok {
			return err
		}
		b := tx.Bucket(bucketWorkers)
		seq, err := store.NextSeq(b)
		if err != nil {
			return err
		}
		if err := store.PutProto(b, store.Uint64Key(seq), wrapperspb.String(value)); err != nil {
			return err
		}
		resp.Value = fmt.Sprintf("%s#%d", value, seq)
		return store.Remember(tx, time.Now(), method, req, resp)
	})
	return resp, err
}

func countWorkers(t *testing.T, db *store.DB) int {
	t.Helper()
	n := 0
	if err := db.View(func(tx *bbolt.Tx) error {
		n = tx.Bucket(bucketWorkers).Stats().KeyN
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestIdempotencyRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	db := openTest(t, path, testSchema)

	first, err := handle(db, "req-1", "first")
	if err != nil {
		t.Fatal(err)
	}
	again, err := handle(db, "req-1", "first")
	if err != nil {
		t.Fatal(err)
	}
	if first.GetValue() != "first#1" || again.GetValue() != "first#1" {
		t.Fatalf("responses = %q, %q; want the first response twice", first.GetValue(), again.GetValue())
	}
	if n := countWorkers(t, db); n != 1 {
		t.Fatalf("repeat changed data: %d workers, want 1", n)
	}

	// Survives a restart.
	db.Close()
	db = openTest(t, path, testSchema)
	defer db.Close()
	again, err = handle(db, "req-1", "first")
	if err != nil {
		t.Fatal(err)
	}
	if again.GetValue() != "first#1" || countWorkers(t, db) != 1 {
		t.Fatalf("after reopen: response %q, %d workers", again.GetValue(), countWorkers(t, db))
	}

	// Another request id is a new request.
	other, err := handle(db, "req-2", "other")
	if err != nil {
		t.Fatal(err)
	}
	if other.GetValue() != "other#2" || countWorkers(t, db) != 2 {
		t.Fatalf("new request id: response %q, %d workers", other.GetValue(), countWorkers(t, db))
	}

	// The same request id with another request is refused, and changes nothing.
	_, err = handle(db, "req-1", "something else")
	st := apierror.Status(err)
	if st.Code() != codes.InvalidArgument || !strings.Contains(fmt.Sprint(st.Details()), "request_id") {
		t.Fatalf("request id reused for another request: %v, want INVALID_ARGUMENT on request_id", err)
	}
	if countWorkers(t, db) != 2 {
		t.Fatal("a refused reuse changed data")
	}

	// Recall also works in a read-only transaction.
	var got wrapperspb.StringValue
	if err := db.View(func(tx *bbolt.Tx) error {
		ok, err := store.Recall(tx, method, &sendingv1.ChangeWorkerStatusRequest{RequestId: "req-2", Reason: "other"}, &got)
		if !ok {
			t.Error("Recall in View: not found")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got.GetValue() != "other#2" {
		t.Errorf("Recall in View = %q", got.GetValue())
	}
}

func TestIdempotencyEmptyRequestID(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "x.db"), testSchema)
	defer db.Close()
	for _, v := range []string{"a", "b"} {
		resp, err := handle(db, "", v)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(resp.GetValue(), v+"#") {
			t.Errorf("response = %q, want %q#seq", resp.GetValue(), v)
		}
	}
	if n := countWorkers(t, db); n != 2 {
		t.Errorf("%d workers, want 2 (no request id: no deduplication)", n)
	}
	if err := db.View(func(tx *bbolt.Tx) error {
		if n := tx.Bucket(store.BucketIdempotency).Stats().KeyN; n != 0 {
			t.Errorf("%d idempotency entries for empty request ids", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestIdempotencyKeyedByMethod(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "x.db"), testSchema)
	defer db.Close()
	err := db.Update(func(tx *bbolt.Tx) error {
		if err := store.Remember(tx, time.Now(), "/a/A", rq("r"), wrapperspb.String("from A")); err != nil {
			return err
		}
		var got wrapperspb.StringValue
		// The same id under another method is another request: refused (see below).
		if ok, err := store.Recall(tx, "/a/B", rq("r"), &got); ok || !errors.Is(err, apierror.ErrInvalidArgument) {
			t.Errorf("Recall other method = %v, %v; want false, INVALID_ARGUMENT", ok, err)
		}
		if ok, err := store.Recall(tx, "/a/B", rq("r2"), &got); ok || err != nil {
			t.Errorf("Recall of a new id = %v, %v; want false, nil", ok, err)
		}
		// A different response type for the same key is an error, not garbage.
		if _, err := store.Recall(tx, "/a/A", rq("r"), &wrapperspb.Int64Value{}); err == nil {
			t.Error("Recall into another type: no error")
		}
		if err := store.Remember(tx, time.Now(), "bad\x00method", rq("r"), &emptypb.Empty{}); err == nil {
			t.Error("Remember with NUL in method: no error")
		}
		// An empty response is remembered too.
		if err := store.Remember(tx, time.Now(), "/a/E", rq("r"), &emptypb.Empty{}); err != nil {
			return err
		}
		if ok, err := store.Recall(tx, "/a/E", rq("r"), &emptypb.Empty{}); !ok || err != nil {
			t.Errorf("Recall empty response = %v, %v; want true, nil", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A request id is one request of the service: used under one method, it is refused under any
// other (INVALID_ARGUMENT on request_id, naming the first method), before the handler looks at
// any state; a new id, or the same id under its own method, is not.
func TestRecallRefusesRequestIDOfAnotherMethod(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "x.db"), testSchema)
	defer db.Close()
	remembered := map[string]string{ // request id -> method it was used for
		"r-1": "/labourlink.sending.v1.RosterService/ChangeWorkerStatus",
		"r-2": "/labourlink.sending.v1.RosterService/UpdateWorker",
		"r-3": "/labourlink.sending.v1.TransportService/RecordDeparture",
		"r-4": "/a/B",  // a method whose name is a prefix of another's
		"r-5": "/a/BC", // and that other
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		for id, m := range remembered {
			if err := store.Remember(tx, time.Now(), m, rq(id), wrapperspb.String(m)); err != nil {
				return err
			}
		}
		// Filler under many methods, so that the search crosses them.
		for i := range 50 {
			if err := store.Remember(tx, time.Now(), fmt.Sprintf("/z/M%02d", i), rq(fmt.Sprintf("f-%d", i)), wrapperspb.String("f")); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, id string
		wantOK           bool
		wantRefusedAs    string // the method named in the refusal
	}{
		{"repeat under its own method", "/labourlink.sending.v1.RosterService/ChangeWorkerStatus", "r-1", true, ""},
		{"status change with an update's id", "/labourlink.sending.v1.RosterService/ChangeWorkerStatus", "r-2", false, "UpdateWorker"},
		{"status change with a departure's id", "/labourlink.sending.v1.RosterService/ChangeWorkerStatus", "r-3", false, "RecordDeparture"},
		{"deletion with a status change's id", "/labourlink.sending.v1.RosterService/DeleteWorker", "r-1", false, "ChangeWorkerStatus"},
		{"prefix method, other's id", "/a/B", "r-5", false, "/a/BC"},
		{"longer method, prefix's id", "/a/BC", "r-4", false, "/a/B"},
		{"filler id under another method", "/a/B", "f-49", false, "/z/M49"},
		{"new id", "/labourlink.sending.v1.RosterService/DeleteWorker", "r-9", false, ""},
		{"new method, new id", "/b/New", "r-0", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := db.View(func(tx *bbolt.Tx) error {
				var got wrapperspb.StringValue
				ok, err := store.Recall(tx, tt.method, rq(tt.id), &got)
				if ok != tt.wantOK {
					t.Errorf("Recall = %v, want %v", ok, tt.wantOK)
				}
				return err
			})
			if tt.wantRefusedAs == "" {
				if err != nil {
					t.Fatalf("Recall: %v", err)
				}
				return
			}
			var ve *apierror.ViolationsError
			if !errors.As(err, &ve) || len(ve.Violations()) != 1 || ve.Violations()[0].Field != "request_id" {
				t.Fatalf("Recall: %v, want a violation on request_id", err)
			}
			if d := ve.Violations()[0].Description; !strings.Contains(d, tt.wantRefusedAs) {
				t.Errorf("description %q does not name %s", d, tt.wantRefusedAs)
			}
		})
	}
}

func TestRememberInRolledBackTransaction(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "x.db"), testSchema)
	defer db.Close()
	boom := errors.New("boom")
	err := db.Update(func(tx *bbolt.Tx) error {
		if err := store.Remember(tx, time.Now(), method, rq("req-1"), wrapperspb.String("lost")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v", err)
	}
	resp, err := handle(db, "req-1", "real")
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetValue() != "real#1" {
		t.Errorf("response = %q, want real (rolled-back Remember must not count)", resp.GetValue())
	}
}

func TestRecallCorruptValue(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "x.db"), testSchema)
	defer db.Close()
	err := db.Update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(store.BucketIdempotency).Put([]byte(method+"\x00r"), []byte{0x0a, 0xff}); err != nil {
			return err
		}
		if _, err := store.Recall(tx, method, rq("r"), &wrapperspb.StringValue{}); err == nil {
			t.Error("Recall of corrupt value: no error")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPruneIdempotency: records remembered before the cutoff are deleted, later ones kept,
// across several pruning transactions (more records than one chunk), and a pruned request id is
// then treated as new.
func TestPruneIdempotency(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "sending.db"), testSchema)
	defer db.Close()
	remember := func(parity int, at time.Time) {
		t.Helper()
		if err := db.Update(func(tx *bbolt.Tx) error {
			for i := parity; i < 24000; i += 2 {
				if err := store.Remember(tx, at, method, rq(fmt.Sprintf("r-%05d", i)), wrapperspb.String("x")); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	cutoff := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	remember(0, cutoff.Add(-time.Millisecond)) // the even ids: old
	remember(1, cutoff.Add(time.Millisecond))  // the odd ids: new

	n, err := store.PruneIdempotency(db, cutoff)
	if err != nil {
		t.Fatal(err)
	}
	if n != 12000 {
		t.Fatalf("pruned %d records, want 12000", n)
	}
	if err := db.View(func(tx *bbolt.Tx) error {
		for i := 0; i < 24000; i++ {
			ok, err := store.Recall(tx, method, rq(fmt.Sprintf("r-%05d", i)), &wrapperspb.StringValue{})
			if err != nil {
				return err
			}
			if ok != (i%2 == 1) {
				t.Fatalf("request r-%05d remembered=%v after pruning", i, ok)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := store.PruneIdempotency(db, cutoff); err != nil || n != 0 {
		t.Fatalf("second prune: %d, %v; want 0", n, err)
	}

	// A pruned request id runs again: the handler changes data a second time.
	if _, err := handle(db, "late", "v"); err != nil {
		t.Fatal(err)
	}
	if n, err := store.PruneIdempotency(db, time.Now().Add(time.Hour)); err != nil || n != 12001 {
		t.Fatalf("prune everything: %d, %v; want 12001", n, err)
	}
	before := countWorkers(t, db)
	if _, err := handle(db, "late", "v"); err != nil {
		t.Fatal(err)
	}
	if countWorkers(t, db) != before+1 {
		t.Fatal("a pruned request id was not treated as new")
	}
}

// rq is a request carrying requestID.
func rq(requestID string) *sendingv1.ChangeWorkerStatusRequest {
	return &sendingv1.ChangeWorkerStatusRequest{RequestId: requestID}
}

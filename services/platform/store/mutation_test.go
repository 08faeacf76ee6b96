package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/store"
)

// TestMutationLocalWrite: a mutation written through store.Local runs once per request id (a
// repeat gets the first answer, a reused id with another body is refused), a failed change
// leaves nothing, the time it is given is the time it writes, and Then runs only after a commit.
func TestMutationLocalWrite(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "x.db"), testSchema)
	var committed []string
	m := store.NewMutation(method, func(tx *bbolt.Tx, now time.Time, req *sendingv1.ChangeWorkerStatusRequest, resp *wrapperspb.StringValue) error {
		if req.GetReason() == "bad" {
			if err := store.PutProto(tx.Bucket(bucketWorkers), []byte("half"), wrapperspb.String("x")); err != nil {
				return err
			}
			return apierror.InvalidArgument("reason is bad")
		}
		b := tx.Bucket(bucketWorkers)
		seq, err := store.NextSeq(b)
		if err != nil {
			return err
		}
		resp.Value = fmt.Sprintf("%s#%d@%s", req.GetReason(), seq, now.UTC().Format(time.RFC3339))
		return store.PutProto(b, store.Uint64Key(seq), wrapperspb.String(req.GetReason()))
	}).Then(func(resp proto.Message) { committed = append(committed, resp.(*wrapperspb.StringValue).GetValue()) })
	if m.Method() != method {
		t.Fatalf("Method() = %q", m.Method())
	}
	if _, ok := m.NewRequest().(*sendingv1.ChangeWorkerStatusRequest); !ok {
		t.Fatalf("NewRequest() is a %T", m.NewRequest())
	}
	if _, ok := m.NewResponse().(*wrapperspb.StringValue); !ok {
		t.Fatalf("NewResponse() is a %T", m.NewResponse())
	}
	w := store.Local{DB: db}
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	write := func(id, reason string, now time.Time) (string, error) {
		resp := &wrapperspb.StringValue{}
		err := w.Write(context.Background(), m, now, &sendingv1.ChangeWorkerStatusRequest{RequestId: id, Reason: reason}, resp)
		return resp.GetValue(), err
	}
	first, err := write("r1", "a", at)
	if err != nil || first != "a#1@2026-03-01T08:00:00Z" {
		t.Fatalf("first write: %q, %v", first, err)
	}
	again, err := write("r1", "a", at.Add(time.Hour))
	if err != nil || again != first {
		t.Fatalf("repeat: %q, %v; want the first answer %q", again, err, first)
	}
	if _, err := write("r1", "b", at); apierror.Code(err) != codes.InvalidArgument {
		t.Fatalf("reused request id with another body: %v, want INVALID_ARGUMENT", err)
	}
	if _, err := write("r2", "bad", at); apierror.Code(err) != codes.InvalidArgument {
		t.Fatalf("failed change: %v", err)
	}
	if n := countWorkers(t, db); n != 1 {
		t.Fatalf("%d workers stored, want 1 (the repeat and the failures change nothing)", n)
	}
	if len(committed) != 2 || committed[0] != first || committed[1] != first {
		t.Fatalf("Then ran for %q, want the first write and its repeat", committed)
	}
	if _, err := write("", "c", at); err != nil {
		t.Fatal(err)
	}
	if n := countWorkers(t, db); n != 2 {
		t.Fatalf("a request without an id: %d workers, want 2", n)
	}
}

package roster

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
)

// Every mutation checks, in order: its arguments, then its request id (a repeat returns the
// first answer; the id of another request, under this method or another, is INVALID_ARGUMENT on
// request_id), and only then the state of the data. A reused id is never answered with a state
// error (a worker DEPARTED since is not FAILED_PRECONDITION for a request that will not run),
// and never runs as a new request.
func TestRequestIDCheckedBeforeState(t *testing.T) {
	t.Parallel()
	env := startRoster(t, nil, "")
	ctx := context.Background()
	a, b, c := importOne(t, env, 0), importOne(t, env, 1), importOne(t, env, 2)
	for _, to := range []workerStatus{stProposed, stAccepted, stScheduled, stDeparted} {
		if _, err := env.client.ChangeWorkerStatus(ctx, &sendingv1.ChangeWorkerStatusRequest{Name: b, Status: to}); err != nil {
			t.Fatal(err)
		}
	}
	// The first uses of three request ids.
	phone := &sendingv1.UpdateWorkerRequest{Worker: &sendingv1.Worker{Name: a, Phone: "13900000009"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"phone"}}, RequestId: "id-update"}
	if _, err := env.client.UpdateWorker(ctx, phone); err != nil {
		t.Fatal(err)
	}
	withdraw := &sendingv1.ChangeWorkerStatusRequest{Name: a, Status: stWithdrawn, Reason: "own request", RequestId: "id-withdraw"}
	first, err := env.client.ChangeWorkerStatus(ctx, withdraw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.client.DeleteWorker(ctx, &sendingv1.DeleteWorkerRequest{Name: c, RequestId: "id-delete"}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		call      func() (proto.Message, error)
		wantCode  codes.Code
		wantField string        // the one field violation
		want      proto.Message // the answer, for a repeat
	}{
		{"status change of a DEPARTED worker with an update's id", func() (proto.Message, error) {
			return env.client.ChangeWorkerStatus(ctx, &sendingv1.ChangeWorkerStatusRequest{Name: b, Status: stWithdrawn, RequestId: "id-update"})
		}, codes.InvalidArgument, "request_id", nil},
		{"status change of a DEPARTED worker with another status change's id", func() (proto.Message, error) {
			return env.client.ChangeWorkerStatus(ctx, &sendingv1.ChangeWorkerStatusRequest{Name: b, Status: stWithdrawn, RequestId: "id-withdraw"})
		}, codes.InvalidArgument, "request_id", nil},
		{"update of an erased worker with a deletion's id", func() (proto.Message, error) {
			return env.client.UpdateWorker(ctx, &sendingv1.UpdateWorkerRequest{Worker: &sendingv1.Worker{Name: c, Phone: "13900000008"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"phone"}}, RequestId: "id-delete"})
		}, codes.InvalidArgument, "request_id", nil},
		{"deletion with a status change's id does not delete", func() (proto.Message, error) {
			return env.client.DeleteWorker(ctx, &sendingv1.DeleteWorkerRequest{Name: b, RequestId: "id-withdraw"})
		}, codes.InvalidArgument, "request_id", nil},
		{"bad arguments are reported before a reused id", func() (proto.Message, error) {
			return env.client.ChangeWorkerStatus(ctx, &sendingv1.ChangeWorkerStatusRequest{Name: b, RequestId: "id-update"})
		}, codes.InvalidArgument, "status", nil},
		{"a repeat returns the first answer though the move is now illegal", func() (proto.Message, error) {
			return env.client.ChangeWorkerStatus(ctx, withdraw)
		}, codes.OK, "", first},
		{"a new id gets the state rules", func() (proto.Message, error) {
			return env.client.ChangeWorkerStatus(ctx, &sendingv1.ChangeWorkerStatusRequest{Name: b, Status: stWithdrawn, RequestId: "id-new"})
		}, codes.FailedPrecondition, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.call()
			if status.Code(err) != tt.wantCode {
				t.Fatalf("error %v, want %v", err, tt.wantCode)
			}
			if tt.wantField != "" {
				if v := fieldViolations(t, err); len(v) != 1 || v[tt.wantField] == "" {
					t.Fatalf("violations %v, want one on %s", v, tt.wantField)
				}
			}
			if tt.want != nil && !proto.Equal(got, tt.want) {
				t.Errorf("answer %v, want the first %v", got, tt.want)
			}
		})
	}
	// Nothing changed: b is still DEPARTED and not erased.
	got, err := env.client.GetWorker(ctx, &sendingv1.GetWorkerRequest{Name: b})
	if err != nil {
		t.Fatal(err)
	}
	if w := got.GetWorker(); w.GetStatus() != stDeparted || w.GetErased() {
		t.Errorf("worker after refused requests: %s", fmt.Sprint(w.GetStatus(), " erased=", w.GetErased()))
	}
}

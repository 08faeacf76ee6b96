package roster

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.etcd.io/bbolt"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
)

// The lifecycle of roster.proto's WorkerStatus comment, written out as the full table of legal
// moves (from -> to); every other pair is illegal.
func TestCanMoveMatchesTheLifecycle(t *testing.T) {
	t.Parallel()
	legal := map[workerStatus][]workerStatus{
		stAvailable:     {stProposed, stPlacedLocally, stWithdrawn},
		stProposed:      {stAccepted, stAvailable, stWithdrawn},
		stAccepted:      {stScheduled, stWithdrawn},
		stScheduled:     {stDeparted, stAccepted, stAvailable, stWithdrawn},
		stDeparted:      {stArrived, stReturnedHome},
		stArrived:       {stEmployed, stReturnedHome},
		stEmployed:      {stLeftJob, stReturnedHome, stWithdrawn},
		stLeftJob:       {stAvailable, stReturnedHome, stWithdrawn},
		stReturnedHome:  {stAvailable, stPlacedLocally, stWithdrawn},
		stWithdrawn:     {stAvailable},
		stPlacedLocally: {stAvailable, stWithdrawn},
	}
	all := []workerStatus{sendingv1.WorkerStatus_WORKER_STATUS_UNSPECIFIED, stAvailable, stProposed, stAccepted,
		stScheduled, stDeparted, stArrived, stEmployed, stLeftJob, stReturnedHome, stWithdrawn, stPlacedLocally, workerStatus(99)}
	for _, from := range all {
		for _, to := range all {
			want := false
			for _, l := range legal[from] {
				want = want || l == to
			}
			if got := canMove(from, to); got != want {
				t.Errorf("canMove(%s, %s) = %v, want %v", from, to, got, want)
			}
		}
	}
}

// importOne imports one generated row and returns the worker's resource name.
func importOne(t *testing.T, env *rosterEnv, i int) string {
	t.Helper()
	r := genRow(i)
	if _, err := importRows(context.Background(), env.client, fmt.Sprintf("one-%d", i), []*sendingv1.WorkerRow{r}, 1); err != nil {
		t.Fatal(err)
	}
	roster, _ := rosterSnapshot(t, env.db)
	return roster[r.IdNumber].GetName()
}

func TestChangeWorkerStatus(t *testing.T) {
	t.Parallel()
	env := startRoster(t, nil, "")
	ctx := context.Background()
	name := importOne(t, env, 0)

	move := func(to workerStatus, requestID string) (*sendingv1.Worker, error) {
		resp, err := env.client.ChangeWorkerStatus(ctx, &sendingv1.ChangeWorkerStatusRequest{Name: name, Status: to, Reason: "test", RequestId: requestID})
		return resp.GetWorker(), err
	}
	// A legal path through the programme.
	for _, to := range []workerStatus{stProposed, stAccepted, stScheduled, stDeparted, stArrived, stEmployed, stLeftJob, stReturnedHome, stAvailable} {
		w, err := move(to, "")
		if err != nil {
			t.Fatalf("move to %s: %v", to, err)
		}
		if w.GetStatus() != to || w.GetIdNumber() == "" || w.GetIdNumber()[4] != '*' {
			t.Fatalf("after move to %s: %v (want the status, masked)", to, w)
		}
	}

	// Illegal moves are FAILED_PRECONDITION with reason ILLEGAL_STATUS_TRANSITION and change
	// nothing.
	for _, to := range []workerStatus{stAccepted, stDeparted, stArrived, stEmployed, stAvailable} {
		_, err := move(to, "")
		st := wantCode(t, err, codes.FailedPrecondition)
		reason := ""
		for _, d := range st.Details() {
			if info, ok := d.(*errdetails.ErrorInfo); ok {
				reason = info.GetReason()
			}
		}
		if reason != "ILLEGAL_STATUS_TRANSITION" {
			t.Errorf("AVAILABLE -> %s: reason %q, want %s", to, reason, "ILLEGAL_STATUS_TRANSITION")
		}
	}
	got, err := env.client.GetWorker(ctx, &sendingv1.GetWorkerRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetWorker().GetStatus() != stAvailable {
		t.Fatalf("refused moves changed the status to %s", got.GetWorker().GetStatus())
	}
	// The last move's reason and time are kept with the worker.
	if got.GetWorker().GetStatusReason() != "test" || got.GetWorker().GetStatusChangeTime() == nil {
		t.Errorf("status reason %q, change time %v; want the last move's", got.GetWorker().GetStatusReason(), got.GetWorker().GetStatusChangeTime())
	}

	// UNSPECIFIED is a bad request, not a transition.
	_, err = move(sendingv1.WorkerStatus_WORKER_STATUS_UNSPECIFIED, "")
	wantCode(t, err, codes.InvalidArgument)
	_, err = env.client.ChangeWorkerStatus(ctx, &sendingv1.ChangeWorkerStatusRequest{Name: "workers/520000-AAAAAAAAAAAAAAAA", Status: stWithdrawn})
	wantCode(t, err, codes.NotFound)

	// A repeated request id returns the first response, even though the move is now illegal.
	first, err := move(stWithdrawn, "req-w")
	if err != nil {
		t.Fatal(err)
	}
	again, err := move(stWithdrawn, "req-w")
	if err != nil {
		t.Fatalf("repeat of a request id: %v", err)
	}
	if !proto.Equal(first, again) {
		t.Errorf("repeat answered %v, want %v", again, first)
	}
	_, err = move(stWithdrawn, "req-other")
	wantCode(t, err, codes.FailedPrecondition)
}

// changeStatus is what matching and transport call inside their own transactions.
func TestChangeStatusInTransaction(t *testing.T) {
	t.Parallel()
	env := startRoster(t, nil, "")
	var names []string
	for i := range 5 {
		names = append(names, importOne(t, env, i))
	}
	s := env.svc
	// Propose every available worker found by ForEachAvailable, in one transaction.
	err := env.db.Update(func(tx *bbolt.Tx) error {
		var ids []string
		if err := ForEachAvailable(tx, func(w *sendingv1.Worker) error {
			ids = append(ids, w.GetWorkerId())
			return nil
		}); err != nil {
			return err
		}
		if len(ids) != 5 {
			t.Errorf("ForEachAvailable found %d workers, want 5", len(ids))
		}
		for i, id := range ids {
			if i > 0 && ids[i-1] >= id {
				t.Errorf("not in worker-id order: %s then %s", ids[i-1], id)
			}
			if _, err := s.ChangeStatus(tx, id, stProposed, "matched"); err != nil {
				return err
			}
		}
		// Proposing again is illegal.
		_, err := s.ChangeStatus(tx, ids[0], stProposed, "matched")
		if !errors.Is(err, apierror.ErrFailedPrecondition) {
			t.Errorf("second proposal: %v, want failed precondition", err)
		}
		_, err = s.ChangeStatus(tx, "520000-AAAAAAAAAAAAAAAA", stProposed, "")
		if !errors.Is(err, apierror.ErrNotFound) {
			t.Errorf("missing worker: %v, want not found", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := env.db.View(func(tx *bbolt.Tx) error {
		return ForEachAvailable(tx, func(*sendingv1.Worker) error { n++; return nil })
	}); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d workers still available after proposing all", n)
	}
	// An error from fn stops the iteration and is returned.
	if _, err := env.client.ChangeWorkerStatus(context.Background(), &sendingv1.ChangeWorkerStatusRequest{Name: names[0], Status: stAvailable}); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	err = env.db.View(func(tx *bbolt.Tx) error {
		return ForEachAvailable(tx, func(*sendingv1.Worker) error { return stop })
	})
	if !errors.Is(err, stop) {
		t.Errorf("ForEachAvailable returned %v, want fn's error", err)
	}
}

// An erased worker keeps its status and can finish the programme, but never returns to the pool.
func TestErasedWorkerLifecycle(t *testing.T) {
	t.Parallel()
	env := startRoster(t, nil, "")
	ctx := context.Background()
	name := importOne(t, env, 0)
	if _, err := env.client.ChangeWorkerStatus(ctx, &sendingv1.ChangeWorkerStatusRequest{Name: name, Status: stProposed}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.client.DeleteWorker(ctx, &sendingv1.DeleteWorkerRequest{Name: name}); err != nil {
		t.Fatal(err)
	}
	_, err := env.client.ChangeWorkerStatus(ctx, &sendingv1.ChangeWorkerStatusRequest{Name: name, Status: stAvailable})
	wantCode(t, err, codes.FailedPrecondition)
	resp, err := env.client.ChangeWorkerStatus(ctx, &sendingv1.ChangeWorkerStatusRequest{Name: name, Status: stWithdrawn})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.GetWorker().GetErased() || resp.GetWorker().GetStatus() != stWithdrawn {
		t.Errorf("erased worker after withdrawal: %v", resp.GetWorker())
	}
	_, err = env.client.ChangeWorkerStatus(ctx, &sendingv1.ChangeWorkerStatusRequest{Name: name, Status: stAvailable})
	wantCode(t, err, codes.FailedPrecondition)
}

package sending

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
)

// TestReturnHomeEndsTheTripAndReportsIt: boarding a batch starts a trip on the worker; the return
// home (RecordReturnHome, or ChangeWorkerStatus to RETURNED_HOME: the same mechanism) ends it
// and queues one RETURNED_HOME ledger event for the trip's pairing; a retry adds nothing; a
// return dated before the departure or in the future is refused and changes nothing.
func TestReturnHomeEndsTheTripAndReportsIt(t *testing.T) {
	r := startReceiving(t)
	r.createVacancy(testVacancy(t, 1, flowCounty, "8212", 3))
	clock := &testClock{t: time.Now()}
	cfg := fastConfig(r.addr)
	cfg.Now = clock.now
	n := startSending(t, "", cfg, true)
	rows := make([]*sendingv1.WorkerRow, 3)
	for i := range rows {
		rows[i] = testWorkerRow(i, testCounties[i%2], "8212", i == 0)
	}
	ctx := testCtx(t)
	left := time.Date(2027, 2, 27, 8, 5, 0, 0, civil.Zone)
	b := departAll(t, r, n, clock, rows, left)
	entries := b.GetManifest()
	for _, e := range entries {
		want := []*sendingv1.Trip{{BatchId: b.GetBatchId(), ReceivingRegion: flowReceiving, Vacancy: e.GetVacancy(), DepartureTime: timestamppb.New(left),
			Occupation: "8212"}} // the vacancy's, from the replica at departure
		if got := n.worker(e.GetWorkerId()).GetTrips(); !tripsEqual(got, want) {
			t.Fatalf("trips of %s after departure = %v, want %v", e.GetWorkerId(), got, want)
		}
	}
	returnEvents := func() []*coordinationv1.LedgerEvent {
		var out []*coordinationv1.LedgerEvent
		for _, ev := range ledgerEvents(t, outboxPayloads(t, n.db, ledgerclient.Destination)) {
			if ev.GetKind() == coordinationv1.EventKind_EVENT_KIND_RETURNED_HOME {
				out = append(out, ev)
			}
		}
		return out
	}

	// Refused: before the departure, in the future. Nothing changes.
	a := entries[0]
	for _, tt := range []struct {
		name string
		at   time.Time
		code codes.Code
	}{
		{"before the departure", left.Add(-time.Minute), codes.InvalidArgument},
		{"in the future", left.Add(48 * time.Hour), codes.InvalidArgument},
	} {
		_, err := n.roster.RecordReturnHome(ctx, &sendingv1.RecordReturnHomeRequest{Name: "workers/" + a.GetWorkerId(), ReturnTime: timestamppb.New(tt.at)})
		if !hasCode(err, tt.code) || !strings.Contains(err.Error(), "return_time") {
			t.Errorf("return %s: %v, want %s on return_time", tt.name, err, tt.code)
		}
	}
	if st := n.worker(a.GetWorkerId()).GetStatus(); st != stDeparted || len(returnEvents()) != 0 {
		t.Fatalf("after refused returns: %s, %d return events; want DEPARTED and none", st, len(returnEvents()))
	}

	// A worker comes home a month later: the trip ends, one event for the pairing.
	back := left.AddDate(0, 1, 0)
	clock.set(back.Add(24 * time.Hour))
	req := &sendingv1.RecordReturnHomeRequest{Name: "workers/" + a.GetWorkerId(), ReturnTime: timestamppb.New(back), Note: "contract ended", RequestId: "home-a"}
	resp, err := n.roster.RecordReturnHome(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	w := resp.GetWorker()
	if w.GetStatus() != sendingv1.WorkerStatus_WORKER_STATUS_RETURNED_HOME || len(w.GetTrips()) != 1 ||
		!w.GetTrips()[0].GetReturnTime().AsTime().Equal(back) || w.GetTrips()[0].GetReturnNote() != "contract ended" {
		t.Fatalf("worker after the return = %v", w)
	}
	wantEvent := &coordinationv1.LedgerEvent{
		EventId:         fmt.Sprintf("%s:returned:%s:%s", rosterRegion, b.GetBatchId(), a.GetWorkerId()),
		Kind:            coordinationv1.EventKind_EVENT_KIND_RETURNED_HOME,
		ReporterRegion:  rosterRegion,
		SendingRegion:   rosterRegion,
		ReceivingRegion: flowReceiving,
		WorkerId:        a.GetWorkerId(),
		BatchId:         b.GetBatchId(),
		Vacancy:         a.GetVacancy(),
		OccurTime:       timestamppb.New(back),
		RegisteredPoor:  n.worker(a.GetWorkerId()).GetRegisteredPoor(),
	}
	if got := returnEvents(); len(got) != 1 || !proto.Equal(got[0], wantEvent) {
		t.Fatalf("return events = %v, want [%v]", got, wantEvent)
	}
	again, err := n.roster.RecordReturnHome(ctx, req)
	if err != nil || !proto.Equal(again, resp) || len(returnEvents()) != 1 {
		t.Fatalf("retry: %v, %v, %d events; want the first answer and one event", again, err, len(returnEvents()))
	}
	req.RequestId = "home-a-2"
	if _, err := n.roster.RecordReturnHome(ctx, req); !hasCode(err, codes.FailedPrecondition) {
		t.Fatalf("returning a worker already home: %v, want FAILED_PRECONDITION", err)
	}

	// ChangeWorkerStatus to RETURNED_HOME goes the same way: the trip ends, the event is queued.
	c := entries[1]
	if _, err := n.roster.ChangeWorkerStatus(ctx, &sendingv1.ChangeWorkerStatusRequest{Name: "workers/" + c.GetWorkerId(), Status: sendingv1.WorkerStatus_WORKER_STATUS_RETURNED_HOME}); err != nil {
		t.Fatal(err)
	}
	if trips := n.worker(c.GetWorkerId()).GetTrips(); len(trips) != 1 || trips[0].GetReturnTime() == nil {
		t.Fatalf("trips after ChangeWorkerStatus RETURNED_HOME = %v, want the trip ended", trips)
	}
	if got := returnEvents(); len(got) != 2 || got[1].GetWorkerId() != c.GetWorkerId() || got[1].GetBatchId() != b.GetBatchId() {
		t.Fatalf("return events = %v, want a second one for %s", got, c.GetWorkerId())
	}
}

// departAll accepts every worker of rows (acceptAll), plans them on one batch, waits until the
// receiving service has it and records its departure at left, everyone boarded (the clock an
// hour later). It returns the batch.
func departAll(t *testing.T, r *recvNode, n *sendNode, clock *testClock, rows []*sendingv1.WorkerRow, left time.Time) *sendingv1.Batch {
	t.Helper()
	acceptAll(t, r, n, rows)
	ctx := testCtx(t)
	plan, err := n.transport.PlanBatches(ctx, &sendingv1.PlanBatchesRequest{RequestId: "plan"})
	if err != nil || len(plan.GetBatches()) != 1 {
		t.Fatalf("plan: %v, %v", plan, err)
	}
	b := plan.GetBatches()[0]
	eventually(t, "the batch announced", func() (bool, string) {
		_, err := r.intake.GetIntakeBatch(ctx, &receivingv1.GetIntakeBatchRequest{Name: "intakeBatches/" + b.GetBatchId()})
		return err == nil, fmt.Sprint(err)
	})
	clock.set(left.Add(time.Hour))
	dep := &sendingv1.RecordDepartureRequest{Name: b.GetName(), ActualDepartureTime: timestamppb.New(left), RequestId: "depart"}
	for _, e := range b.GetManifest() {
		dep.BoardedWorkerIds = append(dep.BoardedWorkerIds, e.GetWorkerId())
	}
	if _, err := n.transport.RecordDeparture(ctx, dep); err != nil {
		t.Fatal(err)
	}
	return b
}

func tripsEqual(a, b []*sendingv1.Trip) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

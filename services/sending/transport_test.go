package sending

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/sending/matching"
	"github.com/eastwest/labourlink/services/sending/transport"
)

// acceptAll places the rows (see placeAll), accepts every candidate and waits until every
// worker is ACCEPTED.
func acceptAll(t *testing.T, r *recvNode, n *sendNode, rows []*sendingv1.WorkerRow) []*sendingv1.Worker {
	t.Helper()
	workers, cands := placeAll(t, r, n, rows)
	if len(cands) != len(workers) {
		t.Fatalf("%d candidates for %d workers", len(cands), len(workers))
	}
	for _, c := range cands {
		r.decide(c, true, "")
	}
	eventually(t, "every worker accepted", func() (bool, string) {
		got := countStatus(n.statuses(workers), stAccepted)
		return got == len(workers), fmt.Sprintf("%d of %d accepted", got, len(workers))
	})
	return workers
}

// TestPlanBatchesMinimumVehicles: accepted workers are grouped by destination and start date
// and carried in the minimum number of vehicles, ceil(n / seats) per group; each worker is on
// exactly one manifest and SCHEDULED; a repeat of the request plans nothing new; the receiving
// service gets every manifest.
func TestPlanBatchesMinimumVehicles(t *testing.T) {
	t.Parallel()
	r := startReceiving(t)
	r.createVacancy(testVacancy(t, 1, flowCounty, "8212", 9))
	r.createVacancy(testVacancy(t, 2, flowCounty2, "8212", 5))
	n := startSending(t, "", fastConfig(r.addr), true)
	rows := make([]*sendingv1.WorkerRow, 14)
	for i := range rows {
		rows[i] = testWorkerRow(i, testCounties[i%3], "8212", i%2 == 0)
	}
	workers := acceptAll(t, r, n, rows)
	ctx := testCtx(t)

	req := &sendingv1.PlanBatchesRequest{RequestId: "plan-1", Mode: commonv1.TransportMode_TRANSPORT_MODE_BUS, Seats: new(int32(4)), EscortName: "李卫国", EscortContact: "0851-86000000"}
	plan, err := n.transport.PlanBatches(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	// 9 workers to 440305 and 5 to 440104, all starting 2027-03-01: ceil(9/4) + ceil(5/4) = 5.
	if got := len(plan.GetBatches()); got != 5 {
		t.Fatalf("%d batches, want the minimum 5", got)
	}
	perCounty := map[string]int{}
	seen := map[string]bool{}
	for _, b := range plan.GetBatches() {
		if len(b.GetManifest()) > 4 || b.GetSeats() != 4 || b.GetState() != sendingv1.BatchState_BATCH_STATE_PLANNED {
			t.Fatalf("batch %v breaks the plan", b)
		}
		if want := transport.DefaultDeparture(cdate(2027, 3, 1)); !proto.Equal(b.GetPlannedDepartureTime(), want) {
			t.Fatalf("departure %v, want %v (08:00 two days before the start)", b.GetPlannedDepartureTime().AsTime(), want.AsTime())
		}
		perCounty[b.GetDestinationCounty()] += len(b.GetManifest())
		for _, e := range b.GetManifest() {
			if seen[e.GetWorkerId()] {
				t.Fatalf("worker %s on two manifests", e.GetWorkerId())
			}
			seen[e.GetWorkerId()] = true
		}
	}
	if perCounty[flowCounty] != 9 || perCounty[flowCounty2] != 5 {
		t.Fatalf("workers per destination %v, want 9 and 5", perCounty)
	}
	if got := countStatus(n.statuses(workers), stScheduled); got != len(workers) {
		t.Fatalf("%d workers SCHEDULED, want %d", got, len(workers))
	}
	again, err := n.transport.PlanBatches(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(again, plan) {
		t.Fatal("a repeat of the request returned another plan")
	}
	list, err := n.transport.ListBatches(ctx, &sendingv1.ListBatchesRequest{PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetBatches()) != 2 || list.GetNextPageToken() == "" {
		t.Fatalf("first page of batches = %d, token %q", len(list.GetBatches()), list.GetNextPageToken())
	}
	all, err := n.transport.ListBatches(ctx, &sendingv1.ListBatchesRequest{State: sendingv1.BatchState_BATCH_STATE_PLANNED})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.GetBatches()) != 5 {
		t.Fatalf("%d planned batches listed, want 5", len(all.GetBatches()))
	}
	eventually(t, "the receiving service to get every manifest", func() (bool, string) {
		resp, err := r.intake.ListIntakeBatches(ctx, &receivingv1.ListIntakeBatchesRequest{SendingRegion: rosterRegion})
		if err != nil {
			return false, err.Error()
		}
		return len(resp.GetBatches()) == 5, fmt.Sprintf("%d intake batches", len(resp.GetBatches()))
	})

	// Cancelling a batch puts its workers back to ACCEPTED; planning again carries them.
	b := plan.GetBatches()[0]
	if _, err := n.transport.CancelBatch(ctx, &sendingv1.CancelBatchRequest{Name: b.GetName()}); err != nil {
		t.Fatal(err)
	}
	for _, e := range b.GetManifest() {
		if st := n.worker(e.GetWorkerId()).GetStatus(); st != stAccepted {
			t.Fatalf("worker of a cancelled batch is %s", st)
		}
	}
	replan, err := n.transport.PlanBatches(ctx, &sendingv1.PlanBatchesRequest{Mode: commonv1.TransportMode_TRANSPORT_MODE_TRAIN})
	if err != nil {
		t.Fatal(err)
	}
	if len(replan.GetBatches()) != 1 || len(replan.GetBatches()[0].GetManifest()) != len(b.GetManifest()) ||
		replan.GetBatches()[0].GetSeats() != int32(DefaultSeats.Train) {
		t.Fatalf("re-plan = %v, want one train coach with the cancelled batch's workers", replan.GetBatches())
	}
}

// TestRecordDepartureLedgerEntries: recording a departure moves the boarded workers to
// DEPARTED with exactly one DEPARTED ledger event each in the outbox for the coordination
// service; no-shows given up go back to AVAILABLE and are withdrawn at the receiving service;
// the receiving service learns who boarded; a repeat of the request changes nothing.
func TestRecordDepartureLedgerEntries(t *testing.T) {
	r := startReceiving(t)
	r.createVacancy(testVacancy(t, 1, flowCounty, "8212", 6))
	clock := &testClock{t: time.Now()}
	cfg := fastConfig(r.addr)
	cfg.Now = clock.now
	n := startSending(t, "", cfg, true)
	rows := make([]*sendingv1.WorkerRow, 5)
	for i := range rows {
		rows[i] = testWorkerRow(i, testCounties[i%2], "8212", i < 2)
	}
	acceptAll(t, r, n, rows)
	ctx := testCtx(t)
	plan, err := n.transport.PlanBatches(ctx, &sendingv1.PlanBatchesRequest{RequestId: "plan"})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.GetBatches()) != 1 {
		t.Fatalf("%d batches for 5 workers in a bus, want 1", len(plan.GetBatches()))
	}
	b := plan.GetBatches()[0]
	eventually(t, "the batch announced", func() (bool, string) {
		_, err := r.intake.GetIntakeBatch(ctx, &receivingv1.GetIntakeBatchRequest{Name: "intakeBatches/" + b.GetBatchId()})
		return err == nil, fmt.Sprint(err)
	})

	var boarded, noShows []*sendingv1.ManifestEntry
	for i, e := range b.GetManifest() {
		if i < 3 {
			boarded = append(boarded, e)
		} else {
			noShows = append(noShows, e)
		}
	}
	left := time.Date(2027, 2, 27, 8, 5, 0, 0, civil.Zone)
	clock.set(left.Add(2 * time.Hour))
	req := &sendingv1.RecordDepartureRequest{
		Name:                b.GetName(),
		NoShowDisposition:   sendingv1.NoShowDisposition_NO_SHOW_DISPOSITION_RETURN_TO_AVAILABLE,
		ActualDepartureTime: timestamppb.New(left),
		RequestId:           "depart-1",
	}
	for _, e := range boarded {
		req.BoardedWorkerIds = append(req.BoardedWorkerIds, e.GetWorkerId())
	}
	ledgerBefore := len(outboxPayloads(t, n.db, ledgerclient.Destination))

	// A departure dated before the vacancy's start window opens (92 days before 2027-03-01) is
	// refused on actual_departure_time, and nothing changes.
	early := proto.Clone(req).(*sendingv1.RecordDepartureRequest)
	early.ActualDepartureTime = timestamppb.New(time.Date(2026, 11, 28, 8, 0, 0, 0, civil.Zone))
	early.RequestId = "depart-early"
	_, err = n.transport.RecordDeparture(ctx, early)
	if got := fieldViolations(t, err); !strings.Contains(got["actual_departure_time"], "start window") {
		t.Fatalf("early departure: violations %v, want actual_departure_time before the start window", got)
	}
	if got := len(outboxPayloads(t, n.db, ledgerclient.Destination)); got != ledgerBefore {
		t.Fatalf("the refused departure queued %d ledger events", got-ledgerBefore)
	}
	dep, err := n.transport.RecordDeparture(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if dep.GetBatch().GetState() != sendingv1.BatchState_BATCH_STATE_DEPARTED || len(dep.GetBatch().GetBoardedWorkerIds()) != 3 {
		t.Fatalf("departed batch = %v", dep.GetBatch())
	}

	// Exactly one DEPARTED event per boarded worker, with a deterministic id.
	var want []*coordinationv1.LedgerEvent
	for _, e := range boarded {
		if e.GetHomeCounty() == "" {
			t.Fatalf("manifest entry %v has no home county", e)
		}
		want = append(want, &coordinationv1.LedgerEvent{
			EventId:         fmt.Sprintf("%s:departed:%s:%s", rosterRegion, b.GetBatchId(), e.GetWorkerId()),
			Kind:            coordinationv1.EventKind_EVENT_KIND_DEPARTED,
			ReporterRegion:  rosterRegion,
			SendingRegion:   rosterRegion,
			ReceivingRegion: flowReceiving,
			WorkerId:        e.GetWorkerId(),
			BatchId:         b.GetBatchId(),
			Vacancy:         e.GetVacancy(),
			OccurTime:       timestamppb.New(left),
			RegisteredPoor:  e.GetRegisteredPoor(),
			// The worker's county and the vacancy's occupation (from the replica), for the
			// national dynamics.
			Details: &coordinationv1.LedgerEvent_Departed{Departed: &coordinationv1.DepartedDetails{HomeCounty: e.GetHomeCounty(), Occupation: "8212"}},
		})
	}
	checkLedger := func() {
		t.Helper()
		got := ledgerEvents(t, outboxPayloads(t, n.db, ledgerclient.Destination))
		if ledgerBefore != 0 || len(got) != len(want) {
			t.Fatalf("%d ledger entries (%d before), want %d", len(got), ledgerBefore, len(want))
		}
		for i := range want {
			if !proto.Equal(got[i], want[i]) {
				t.Fatalf("ledger entry %d = %v, want %v", i, got[i], want[i])
			}
		}
	}
	checkLedger()
	for _, e := range boarded {
		if st := n.worker(e.GetWorkerId()).GetStatus(); st != stDeparted {
			t.Fatalf("boarded worker is %s, want DEPARTED", st)
		}
	}
	for _, e := range noShows {
		if st := n.worker(e.GetWorkerId()).GetStatus(); st != stAvailable {
			t.Fatalf("no-show given up is %s, want AVAILABLE", st)
		}
	}
	rejected, err := n.proposals(ctx, &sendingv1.ListProposalsRequest{State: sendingv1.ProposalState_PROPOSAL_STATE_REJECTED})
	if err != nil {
		t.Fatal(err)
	}
	if len(rejected) != len(noShows) {
		t.Fatalf("%d proposals given up, want %d", len(rejected), len(noShows))
	}

	// The repeat returns the first response and writes nothing more.
	again, err := n.transport.RecordDeparture(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(again, dep) {
		t.Fatal("a repeat of the request returned another response")
	}
	checkLedger()
	req.RequestId = "depart-2"
	if _, err := n.transport.RecordDeparture(ctx, req); !hasCode(err, codes.FailedPrecondition) {
		t.Fatalf("departing a departed batch again: %v, want FAILED_PRECONDITION", err)
	}

	// The receiving side learns who boarded and that the no-shows gave their places up.
	eventually(t, "the receiving service to record the departure and the withdrawals", func() (bool, string) {
		ib, err := r.intake.GetIntakeBatch(ctx, &receivingv1.GetIntakeBatchRequest{Name: "intakeBatches/" + b.GetBatchId()})
		if err != nil {
			return false, err.Error()
		}
		if ib.GetBatch().GetState() != receivingv1.IntakeBatchState_INTAKE_BATCH_STATE_DEPARTED {
			return false, "batch not departed yet"
		}
		for _, e := range ib.GetBatch().GetEntries() {
			if e.GetDeparted() != slices.Contains(req.GetBoardedWorkerIds(), e.GetWorkerId()) {
				return false, fmt.Sprintf("entry %v", e)
			}
		}
		withdrawn := 0
		for _, c := range r.candidates() {
			if c.GetState() == receivingv1.CandidateState_CANDIDATE_STATE_WITHDRAWN {
				withdrawn++
			}
		}
		return withdrawn == len(noShows), fmt.Sprintf("%d withdrawn", withdrawn)
	})
	eventually(t, "the receiving outbox to empty", func() (bool, string) {
		left, err := outbox.Pending(n.db, matching.ReceivingDestination(flowReceiving))
		return err == nil && left == 0, fmt.Sprint(left, err)
	})
	// The withdrawals come back on the decision feed (5 acceptances, then 2 withdrawals) and
	// change nothing more.
	eventually(t, "the withdrawals to come back on the decision feed", func() (bool, string) {
		pos, err := n.followPosition(ctx)
		return err == nil && pos.GetDecisionRevision() == 7, fmt.Sprint(pos, err)
	})
	for _, e := range noShows {
		if st := n.worker(e.GetWorkerId()).GetStatus(); st != stAvailable {
			t.Fatalf("no-show is %s after the withdrawal came back, want AVAILABLE", st)
		}
	}
}

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// ledgerEvents decodes ledger event payloads.
func ledgerEvents(t *testing.T, payloads []*anypb.Any) []*coordinationv1.LedgerEvent {
	t.Helper()
	out := make([]*coordinationv1.LedgerEvent, len(payloads))
	for i, p := range payloads {
		out[i] = &coordinationv1.LedgerEvent{}
		if err := p.UnmarshalTo(out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestCreateBatchChecksWorkers: a hand-made batch takes only accepted workers going to one
// destination and start date.
func TestCreateBatchChecksWorkers(t *testing.T) {
	t.Parallel()
	r := startReceiving(t)
	r.createVacancy(testVacancy(t, 1, flowCounty, "8212", 2))
	r.createVacancy(testVacancy(t, 2, flowCounty2, "9313", 2))
	n := startSending(t, "", fastConfig(r.addr), true)
	rows := []*sendingv1.WorkerRow{
		testWorkerRow(0, testCounties[0], "8212", true),
		testWorkerRow(1, testCounties[1], "9313", false),
	}
	workers := acceptAll(t, r, n, rows)
	ctx := testCtx(t)
	manifest := func(ws ...*sendingv1.Worker) []*sendingv1.ManifestEntry {
		var out []*sendingv1.ManifestEntry
		for _, w := range ws {
			out = append(out, &sendingv1.ManifestEntry{WorkerId: w.GetWorkerId()})
		}
		return out
	}
	_, err := n.transport.CreateBatch(ctx, &sendingv1.CreateBatchRequest{Batch: &sendingv1.Batch{Manifest: manifest(workers...)}})
	if !hasCode(err, codes.FailedPrecondition) {
		t.Fatalf("batch to two destinations: %v, want FAILED_PRECONDITION", err)
	}
	created, err := n.transport.CreateBatch(ctx, &sendingv1.CreateBatchRequest{RequestId: "one", Batch: &sendingv1.Batch{
		Mode: commonv1.TransportMode_TRANSPORT_MODE_FLIGHT, Manifest: manifest(workers[0]),
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := created.GetBatch()
	if got.GetSeats() != int32(DefaultSeats.Flight) || got.GetOrigin() != workers[0].GetHomeCounty() ||
		got.GetDestinationCounty() != flowCounty || got.GetManifest()[0].GetHomeCounty() != workers[0].GetHomeCounty() {
		t.Fatalf("created batch = %v", got)
	}
	if _, err := n.transport.CreateBatch(ctx, &sendingv1.CreateBatchRequest{Batch: &sendingv1.Batch{Manifest: manifest(workers[0])}}); !hasCode(err, codes.FailedPrecondition) {
		t.Fatalf("a scheduled worker on a second batch: %v, want FAILED_PRECONDITION", err)
	}
	read, err := n.transport.GetBatch(ctx, &sendingv1.GetBatchRequest{Name: got.GetName()})
	if err != nil || !proto.Equal(read.GetBatch(), got) {
		t.Fatalf("GetBatch = %v, %v", read, err)
	}
	if _, err := n.transport.GetBatch(ctx, &sendingv1.GetBatchRequest{Name: "batches/x/y"}); !hasCode(err, codes.InvalidArgument) {
		t.Fatalf("bad batch name: %v, want INVALID_ARGUMENT", err)
	}
}

// TestCancelBatchTellsReceiving: cancelling an announced batch reaches the receiving service
// through the outbox relay (the intake batch is marked cancelled and its workers are no longer
// expected); the workers are planned again and the new batch is announced with them; a batch
// whose departure was reported cannot be cancelled at the receiving service.
func TestCancelBatchTellsReceiving(t *testing.T) {
	r := startReceiving(t)
	r.createVacancy(testVacancy(t, 1, flowCounty, "8212", 4))
	clock := &testClock{t: time.Now()}
	cfg := fastConfig(r.addr)
	cfg.Now = clock.now
	n := startSending(t, "", cfg, true)
	rows := make([]*sendingv1.WorkerRow, 3)
	for i := range rows {
		rows[i] = testWorkerRow(i, testCounties[i%2], "8212", i == 0)
	}
	workers := acceptAll(t, r, n, rows)
	ctx := testCtx(t)
	intakeBatch := func(id string) (*receivingv1.IntakeBatch, error) {
		resp, err := r.intake.GetIntakeBatch(ctx, &receivingv1.GetIntakeBatchRequest{Name: "intakeBatches/" + id})
		return resp.GetBatch(), err
	}
	expectedHere := func() map[string]string {
		resp, err := r.intake.ListEmploymentRecords(ctx, &receivingv1.ListEmploymentRecordsRequest{
			Status: receivingv1.EmploymentStatus_EMPLOYMENT_STATUS_EXPECTED})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, rec := range resp.GetRecords() {
			out[rec.GetWorkerId()] = rec.GetBatchId()
		}
		return out
	}

	plan, err := n.transport.PlanBatches(ctx, &sendingv1.PlanBatchesRequest{RequestId: "plan-1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.GetBatches()) != 1 {
		t.Fatalf("%d batches for 3 workers in a bus, want 1", len(plan.GetBatches()))
	}
	first := plan.GetBatches()[0]
	eventually(t, "the batch announced", func() (bool, string) {
		_, err := intakeBatch(first.GetBatchId())
		return err == nil, fmt.Sprint(err)
	})
	if got := expectedHere(); len(got) != len(workers) {
		t.Fatalf("%d workers expected at the receiving service after the announcement, want %d", len(got), len(workers))
	}

	if _, err := n.transport.CancelBatch(ctx, &sendingv1.CancelBatchRequest{Name: first.GetName(), RequestId: "cancel-1"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the receiving service to see the batch cancelled", func() (bool, string) {
		b, err := intakeBatch(first.GetBatchId())
		if err != nil {
			return false, err.Error()
		}
		return b.GetState() == receivingv1.IntakeBatchState_INTAKE_BATCH_STATE_CANCELLED, fmt.Sprintf("state %v", b.GetState())
	})
	if got := expectedHere(); len(got) != 0 {
		t.Fatalf("workers still expected after the cancellation: %v", got)
	}
	// The relay removes an entry right after the receiving service answered it.
	eventually(t, "the receiving outbox to empty", func() (bool, string) {
		got := outboxPayloads(t, n.db, matching.ReceivingDestination(flowReceiving))
		return len(got) == 0, fmt.Sprintf("%d entries left in the receiving outbox", len(got))
	})

	// The workers are planned again; the new batch is announced with the same workers.
	replan, err := n.transport.PlanBatches(ctx, &sendingv1.PlanBatchesRequest{RequestId: "plan-2"})
	if err != nil {
		t.Fatal(err)
	}
	if len(replan.GetBatches()) != 1 || len(replan.GetBatches()[0].GetManifest()) != len(workers) {
		t.Fatalf("re-plan = %v, want one batch with the %d workers", replan.GetBatches(), len(workers))
	}
	second := replan.GetBatches()[0]
	eventually(t, "the new batch announced", func() (bool, string) {
		b, err := intakeBatch(second.GetBatchId())
		if err != nil {
			return false, err.Error()
		}
		return len(b.GetEntries()) == len(workers) && b.GetState() != receivingv1.IntakeBatchState_INTAKE_BATCH_STATE_CANCELLED, fmt.Sprintf("%d entries, state %v", len(b.GetEntries()), b.GetState())
	})
	for _, w := range workers {
		if got := expectedHere()[w.GetWorkerId()]; got != second.GetBatchId() {
			t.Errorf("worker %s expected on batch %q, want %s", w.GetWorkerId(), got, second.GetBatchId())
		}
	}
	if b, err := intakeBatch(first.GetBatchId()); err != nil || b.GetState() != receivingv1.IntakeBatchState_INTAKE_BATCH_STATE_CANCELLED {
		t.Errorf("the cancelled batch after the re-plan: %v, %v", b, err)
	}

	// After the departure is reported, the receiving service refuses a cancellation.
	left := time.Date(2027, 2, 27, 8, 5, 0, 0, civil.Zone)
	clock.set(left.Add(2 * time.Hour))
	dep := &sendingv1.RecordDepartureRequest{Name: second.GetName(), ActualDepartureTime: timestamppb.New(left), RequestId: "depart-1",
		NoShowDisposition: sendingv1.NoShowDisposition_NO_SHOW_DISPOSITION_RETURN_TO_ACCEPTED}
	for _, e := range second.GetManifest() {
		dep.BoardedWorkerIds = append(dep.BoardedWorkerIds, e.GetWorkerId())
	}
	if _, err := n.transport.RecordDeparture(ctx, dep); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the departure reported", func() (bool, string) {
		b, err := intakeBatch(second.GetBatchId())
		if err != nil {
			return false, err.Error()
		}
		return b.GetState() == receivingv1.IntakeBatchState_INTAKE_BATCH_STATE_DEPARTED, fmt.Sprintf("state %v", b.GetState())
	})
	_, err = r.intake.CancelIntakeBatch(ctx, &receivingv1.CancelIntakeBatchRequest{
		BatchId: second.GetBatchId(), SendingRegion: rosterRegion, Reason: "too late", RequestId: "late-cancel"})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("cancelling a departed batch: %v, want FAILED_PRECONDITION", err)
	}
	if b, err := intakeBatch(second.GetBatchId()); err != nil || b.GetState() == receivingv1.IntakeBatchState_INTAKE_BATCH_STATE_CANCELLED {
		t.Errorf("the departed batch after a refused cancellation: %v, %v", b, err)
	}
}

package sending

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	outboxv1 "github.com/eastwest/labourlink/proto/labourlink/outbox/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/sending/matching"
)

// A submission of which the receiving service refuses one candidate, delivered any number of
// times (a later entry of the delivery batch failed, or a crash before the entry was removed),
// gives the same outcome on both sides: the refused candidate's proposal is REJECTED and its
// worker AVAILABLE; the others are SUBMITTED and live at the receiving service, once each.
func TestPartlyRefusedSubmissionDeliveredAgain(t *testing.T) {
	r := startReceiving(t)
	r.createVacancy(testVacancy(t, 1, flowCounty, "8212", 10))
	n := startSending(t, "", fastConfig(r.addr), true)
	rows := make([]*sendingv1.WorkerRow, 3)
	for i := range rows {
		rows[i] = testWorkerRow(i, testCounties[0], "8212", false)
	}
	workers := n.importWorkers(rows)
	waitReplica(t, r, n)
	n.restart(false) // no relay: the test delivers the submission itself
	run := n.runMatch(false)
	if run.GetProposed() != 3 {
		t.Fatalf("proposed %d, want 3", run.GetProposed())
	}
	payloads := outboxPayloads(t, n.db, matching.ReceivingDestination(flowReceiving))
	if len(payloads) != 1 {
		t.Fatalf("%d outbox entries, want 1", len(payloads))
	}
	// The receiving service will refuse the second candidate (an age it cannot take).
	req := &receivingv1.SubmitCandidatesRequest{}
	if err := payloads[0].UnmarshalTo(req); err != nil {
		t.Fatal(err)
	}
	refusedWorker := req.GetCandidates()[1].GetWorkerId()
	req.GetCandidates()[1].Age = 15
	payload, err := anypb.New(req)
	if err != nil {
		t.Fatal(err)
	}
	entry := outbox.Entry{Seq: 1, ID: "test-submission-1", Destination: matching.ReceivingDestination(flowReceiving), Key: matching.CandidatesKey, Payload: payload}

	cc, err := grpc.NewClient(r.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	deliver := n.svc.deliverReceiving(flowReceiving, cc)
	outcome := func() string {
		t.Helper()
		var b strings.Builder
		for _, w := range workers {
			ps, err := n.proposals(testCtx(t), &sendingv1.ListProposalsRequest{})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range ps {
				if p.GetWorkerId() == w.GetWorkerId() {
					fmt.Fprintf(&b, "%s %s %s; ", w.GetWorkerId(), p.GetState(), n.worker(w.GetWorkerId()).GetStatus())
				}
			}
		}
		fmt.Fprintf(&b, "%d candidates at receiving", len(r.candidates()))
		return b.String()
	}
	var outcomes []string
	for range 3 {
		res, err := deliver(testCtx(t), []outbox.Entry{entry})
		if err != nil || res.Done != 1 || len(res.Refused) != 0 {
			t.Fatalf("delivery = %+v, %v; want delivered (a candidate's refusal is not the message's)", res, err)
		}
		outcomes = append(outcomes, outcome())
	}
	if outcomes[0] != outcomes[1] || outcomes[1] != outcomes[2] {
		t.Fatalf("outcomes differ between deliveries:\n%s", strings.Join(outcomes, "\n"))
	}
	for _, w := range workers {
		ps, err := n.proposals(testCtx(t), &sendingv1.ListProposalsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if p.GetWorkerId() != w.GetWorkerId() {
				continue
			}
			wantState, wantStatus := sendingv1.ProposalState_PROPOSAL_STATE_SUBMITTED, stProposed
			if w.GetWorkerId() == refusedWorker {
				wantState, wantStatus = sendingv1.ProposalState_PROPOSAL_STATE_REJECTED, stAvailable
				if !strings.Contains(p.GetReason(), "age") {
					t.Errorf("refused proposal's reason %q does not say why", p.GetReason())
				}
			}
			if p.GetState() != wantState || n.worker(w.GetWorkerId()).GetStatus() != wantStatus {
				t.Errorf("worker %s: proposal %s, worker %s; want %s, %s", w.GetWorkerId(), p.GetState(), n.worker(w.GetWorkerId()).GetStatus(), wantState, wantStatus)
			}
		}
	}
	if got := len(r.candidates()); got != 2 {
		t.Fatalf("%d candidates at the receiving service, want the 2 taken", got)
	}
}

// The scenario: a worker who did not board but whom the receiving side confirmed
// arrived is planned on the next batch; the receiving service refuses that worker
// (WORKER_ALREADY_HERE). The batch goes on with the other workers, the refused worker is taken
// off the manifest (kept in refused_entries) and held WITHDRAWN with the reason, and nothing
// waits in the outbox or its quarantine.
func TestRefusedManifestWorkerDoesNotStrandTheBatch(t *testing.T) {
	r := startReceiving(t)
	r.createVacancy(testVacancy(t, 1, flowCounty, "8212", 10))
	clock := &testClock{t: time.Now()}
	cfg := fastConfig(r.addr)
	cfg.Now = clock.now
	n := startSending(t, "", cfg, true)
	ctx := testCtx(t)
	rows := make([]*sendingv1.WorkerRow, 4)
	for i := range rows {
		rows[i] = testWorkerRow(i, testCounties[0], "8212", i == 0)
	}
	first := acceptAll(t, r, n, rows)

	plan, err := n.transport.PlanBatches(ctx, &sendingv1.PlanBatchesRequest{RequestId: "plan-1"})
	if err != nil || len(plan.GetBatches()) != 1 {
		t.Fatalf("plan = %v, %v", plan, err)
	}
	b1 := plan.GetBatches()[0]
	eventually(t, "B1 announced", func() (bool, string) {
		_, err := r.intake.GetIntakeBatch(ctx, &receivingv1.GetIntakeBatchRequest{Name: "intakeBatches/" + b1.GetBatchId()})
		return err == nil, fmt.Sprint(err)
	})
	noShow := first[3].GetWorkerId()
	left := clock.now()
	dep := &sendingv1.RecordDepartureRequest{Name: b1.GetName(), ActualDepartureTime: timestamppb.New(left), RequestId: "depart-1",
		NoShowDisposition: sendingv1.NoShowDisposition_NO_SHOW_DISPOSITION_RETURN_TO_ACCEPTED}
	for _, w := range first[:3] {
		dep.BoardedWorkerIds = append(dep.BoardedWorkerIds, w.GetWorkerId())
	}
	if _, err := n.transport.RecordDeparture(ctx, dep); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B1's departure reported", func() (bool, string) {
		b, err := r.intake.GetIntakeBatch(ctx, &receivingv1.GetIntakeBatchRequest{Name: "intakeBatches/" + b1.GetBatchId()})
		return err == nil && b.GetBatch().GetState() == receivingv1.IntakeBatchState_INTAKE_BATCH_STATE_DEPARTED, fmt.Sprint(err)
	})
	// The receiving side confirms all four arrived, the no-show too.
	conf := &receivingv1.ConfirmArrivalsRequest{Name: "intakeBatches/" + b1.GetBatchId(), RequestId: "arrive-1"}
	for _, w := range first {
		conf.Confirmations = append(conf.Confirmations, &receivingv1.ArrivalConfirmation{WorkerId: w.GetWorkerId(), Outcome: receivingv1.ArrivalOutcome_ARRIVAL_OUTCOME_ARRIVED})
	}
	if _, err := r.intake.ConfirmArrivals(ctx, conf); err != nil {
		t.Fatal(err)
	}
	if st := n.worker(noShow).GetStatus(); st != stAccepted {
		t.Fatalf("the no-show is %s, want ACCEPTED (kept the place)", st)
	}
	// One more accepted worker, then the next plan puts both on a bus.
	more := n.importWorkers([]*sendingv1.WorkerRow{testWorkerRow(4, testCounties[0], "8212", false)})
	n.runMatch(false)
	eventually(t, "the new worker's candidate", func() (bool, string) {
		for _, c := range r.candidates() {
			if c.GetWorkerId() == more[0].GetWorkerId() {
				r.decide(c, true, "")
				return true, ""
			}
		}
		return false, "not yet submitted"
	})
	eventually(t, "the new worker accepted", func() (bool, string) {
		st := n.worker(more[0].GetWorkerId()).GetStatus()
		return st == stAccepted, st.String()
	})
	plan2, err := n.transport.PlanBatches(ctx, &sendingv1.PlanBatchesRequest{RequestId: "plan-2"})
	if err != nil || len(plan2.GetBatches()) != 1 || len(plan2.GetBatches()[0].GetManifest()) != 2 {
		t.Fatalf("second plan = %v, %v; want one batch with the no-show and the new worker", plan2, err)
	}
	b2 := plan2.GetBatches()[0]
	eventually(t, "B2 announced with the new worker only", func() (bool, string) {
		b, err := r.intake.GetIntakeBatch(ctx, &receivingv1.GetIntakeBatchRequest{Name: "intakeBatches/" + b2.GetBatchId()})
		if err != nil {
			return false, err.Error()
		}
		return len(b.GetBatch().GetEntries()) == 1 && b.GetBatch().GetEntries()[0].GetWorkerId() == more[0].GetWorkerId(), fmt.Sprint(b.GetBatch().GetEntries())
	})
	eventually(t, "the refused worker taken off B2 at the sending side", func() (bool, string) {
		got, err := n.transport.GetBatch(ctx, &sendingv1.GetBatchRequest{Name: b2.GetName()})
		if err != nil {
			return false, err.Error()
		}
		return len(got.GetBatch().GetManifest()) == 1 && len(got.GetBatch().GetRefusedEntries()) == 1, fmt.Sprint(got.GetBatch())
	})
	got, err := n.transport.GetBatch(ctx, &sendingv1.GetBatchRequest{Name: b2.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	re := got.GetBatch().GetRefusedEntries()[0]
	if re.GetWorkerId() != noShow || re.GetReason() != "WORKER_ALREADY_HERE" || re.GetRefuseTime() == nil {
		t.Errorf("refused entry %v", re)
	}
	if got.GetBatch().GetManifest()[0].GetWorkerId() != more[0].GetWorkerId() || got.GetBatch().GetState() != sendingv1.BatchState_BATCH_STATE_PLANNED {
		t.Errorf("B2 after the refusal: %v", got.GetBatch())
	}
	w := n.worker(noShow)
	if w.GetStatus() != stWithdrawn || !strings.Contains(w.GetStatusReason(), "WORKER_ALREADY_HERE") {
		t.Errorf("refused worker: %s %q, want WITHDRAWN with the reason", w.GetStatus(), w.GetStatusReason())
	}
	// A new plan does not put the refused worker on another bus.
	plan3, err := n.transport.PlanBatches(ctx, &sendingv1.PlanBatchesRequest{RequestId: "plan-3"})
	if err != nil || len(plan3.GetBatches()) != 0 {
		t.Errorf("third plan = %v, %v; want nothing to plan", plan3.GetBatches(), err)
	}
	eventually(t, "the outbox to empty", func() (bool, string) {
		left, err := outbox.Pending(n.db, matching.ReceivingDestination(flowReceiving))
		return err == nil && left == 0, fmt.Sprint(left, err)
	})
	if q, err := outbox.Quarantined(n.db, ""); err != nil || q != 0 {
		t.Errorf("quarantined %d, %v; want none (an item's refusal is not the message's)", q, err)
	}
}

// A message refused as a whole goes to the quarantine, visible through the OutboxService, and
// the messages behind it keep flowing; discarding a quarantined submission takes its proposals
// back.
func TestQuarantinedSubmissionDiscarded(t *testing.T) {
	r := startReceiving(t)
	r.createVacancy(testVacancy(t, 1, flowCounty, "8212", 10))
	n := startSending(t, "", fastConfig(r.addr), true)
	rows := make([]*sendingv1.WorkerRow, 2)
	for i := range rows {
		rows[i] = testWorkerRow(i, testCounties[0], "8212", false)
	}
	workers := n.importWorkers(rows)
	waitReplica(t, r, n)
	n.restart(false) // no relay while the test edits the outbox
	n.runMatch(false)
	// Spoil the stored submission as a bug would (a sending region the receiving side refuses
	// as a whole), then put a good message behind it.
	dest := matching.ReceivingDestination(flowReceiving)
	err := n.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("outbox")).Bucket([]byte(dest))
		k, _ := b.Cursor().First()
		if err := b.Delete(k); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := n.proposals(testCtx(t), &sendingv1.ListProposalsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	bad := &receivingv1.SubmitCandidatesRequest{SendingRegion: rosterRegion}
	for _, p := range ps {
		w := n.worker(p.GetWorkerId())
		bad.Candidates = append(bad.Candidates, &receivingv1.Candidate{Vacancy: p.GetVacancy(), WorkerId: w.GetWorkerId(),
			FullName: w.GetFullName(), Sex: w.GetSex(), Age: 31, Occupations: w.GetOccupations(), HomeCounty: w.GetHomeCounty()})
	}
	// The first worker only in a message refused as a whole (more than 1000 candidates), the
	// second in a good one behind it.
	tooMany := &receivingv1.SubmitCandidatesRequest{SendingRegion: rosterRegion}
	for range 1001 {
		tooMany.Candidates = append(tooMany.Candidates, bad.GetCandidates()[0])
	}
	bad.Candidates = bad.Candidates[1:]
	err = n.db.Update(func(tx *bbolt.Tx) error {
		if _, err := outbox.Put(context.Background(), tx, time.Now(), dest, matching.CandidatesKey, tooMany); err != nil {
			return err
		}
		_, err := outbox.Put(context.Background(), tx, time.Now(), dest, matching.CandidatesKey, bad)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	n.restart(true)
	eventually(t, "the good submission delivered behind the refused one", func() (bool, string) {
		return len(r.candidates()) == 1, fmt.Sprint(len(r.candidates()))
	})
	eventually(t, "the relay done with both", func() (bool, string) {
		left, err := outbox.Pending(n.db, dest)
		// The relay records the delivery's time just after it removes the entries.
		delivered := n.svc.relays.Get(dest) != nil && !n.svc.relays.Get(dest).Status().LastDelivery.IsZero()
		return err == nil && left == 0 && delivered, fmt.Sprint(left, err, delivered)
	})
	// While quarantined, the first worker's proposal waits (nothing is taken back on its own).
	if st := n.worker(ps[0].GetWorkerId()).GetStatus(); st != stProposed {
		t.Fatalf("worker of the quarantined submission is %s, want PROPOSED until an operator decides", st)
	}
	admin := outboxv1.NewOutboxServiceClient(n.conn)
	list, err := admin.ListQuarantinedEntries(testCtx(t), &outboxv1.ListQuarantinedEntriesRequest{})
	if err != nil || len(list.GetEntries()) != 1 {
		t.Fatalf("quarantine = %v, %v; want the refused submission", list, err)
	}
	q := list.GetEntries()[0]
	if q.GetReason() != "INVALID_ARGUMENT" || q.GetDestination() != dest || !strings.Contains(q.GetSummary(), "1001 candidates") || q.GetOrderingKey() != matching.CandidatesKey {
		t.Errorf("quarantined entry %v", q)
	}
	boxes, err := admin.ListOutboxes(testCtx(t), &outboxv1.ListOutboxesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var seen bool
	for _, o := range boxes.GetOutboxes() {
		if o.GetDestination() == dest {
			seen = true
			if o.GetQuarantined() != 1 || !o.GetRelayRunning() || o.GetLastDeliveryTime() == nil {
				t.Errorf("outbox %v", o)
			}
		}
	}
	if !seen {
		t.Errorf("outboxes %v lack %s", boxes.GetOutboxes(), dest)
	}
	// Discarding it takes back the proposal it stood for: REJECTED, the worker AVAILABLE; the
	// other worker's submitted proposal is not touched.
	if _, err := admin.DiscardQuarantinedEntry(testCtx(t), &outboxv1.DiscardQuarantinedEntryRequest{Name: q.GetName(), Note: "test: cannot be sent"}); err != nil {
		t.Fatal(err)
	}
	if len(workers) != 2 {
		t.Fatalf("%d workers", len(workers))
	}
	if st := n.worker(ps[0].GetWorkerId()).GetStatus(); st != stAvailable {
		t.Errorf("worker of the discarded submission is %s, want AVAILABLE", st)
	}
	if st := n.worker(ps[1].GetWorkerId()).GetStatus(); st != stProposed {
		t.Errorf("worker of the delivered submission is %s, want PROPOSED", st)
	}
	if n, err := outbox.Quarantined(n.db, ""); err != nil || n != 0 {
		t.Errorf("quarantined after the discard: %d, %v", n, err)
	}
}

package sending

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/receiving"
	"github.com/eastwest/labourlink/services/sending/matching"
)

// mixedRows returns n roster rows: occupations 8212 and 9313 alternating, home counties of
// Guizhou in turn, every third worker registered-poor.
func mixedRows(n int) []*sendingv1.WorkerRow {
	rows := make([]*sendingv1.WorkerRow, n)
	for i := range rows {
		occ := []string{"8212", "9313"}[i%2]
		rows[i] = testWorkerRow(i, testCounties[i%5], occ, i%3 == 0)
	}
	return rows
}

// TestSubmissionSurvivesReceivingDown: candidates proposed while the receiving service is down
// wait in the outbox, and once it is back on the same address it gets every candidate exactly
// once; the proposals become SUBMITTED. The candidates carry no identity number or phone.
func TestSubmissionSurvivesReceivingDown(t *testing.T) {
	r := startReceiving(t)
	r.createVacancy(testVacancy(t, 1, flowCounty, "8212", 700))
	r.createVacancy(testVacancy(t, 2, flowCounty2, "GENERAL", 550))
	n := startSending(t, "", fastConfig(r.addr), true)
	rows := mixedRows(1050)
	workers := n.importWorkers(rows)
	waitReplica(t, r, n)

	r.stop()
	run := n.runMatch(false)
	if run.GetProposed() != int64(len(workers)) {
		t.Fatalf("proposed %d workers, want all %d (1250 openings)", run.GetProposed(), len(workers))
	}
	if got := countStatus(n.statuses(workers), stProposed); got != len(workers) {
		t.Fatalf("%d workers PROPOSED, want %d", got, len(workers))
	}
	ctx := testCtx(t)
	pending, err := n.proposals(ctx, &sendingv1.ListProposalsRequest{State: sendingv1.ProposalState_PROPOSAL_STATE_PENDING_SUBMISSION})
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != len(workers) {
		t.Fatalf("%d proposals pending submission while the receiving service is down, want %d", len(pending), len(workers))
	}
	payloads := outboxPayloads(t, n.db, matching.ReceivingDestination(flowReceiving))
	if len(payloads) != 2 { // 1050 candidates: 1000 + 50
		t.Fatalf("%d outbox entries, want 2 (at most 1000 candidates each)", len(payloads))
	}
	for _, p := range payloads {
		for _, row := range rows {
			if bytes.Contains(p.GetValue(), []byte(row.GetIdNumber())) || bytes.Contains(p.GetValue(), []byte(row.GetPhone())) {
				t.Fatalf("an outbox entry carries a worker's identity number or phone")
			}
		}
	}

	r.start() // same address
	eventually(t, "every proposal submitted", func() (bool, string) {
		ps, err := n.proposals(ctx, &sendingv1.ListProposalsRequest{State: sendingv1.ProposalState_PROPOSAL_STATE_SUBMITTED})
		if err != nil {
			return false, err.Error()
		}
		return len(ps) == len(workers), fmt.Sprintf("%d of %d submitted", len(ps), len(workers))
	})
	cands := r.candidates()
	if len(cands) != len(workers) {
		t.Fatalf("receiving service has %d candidates, want %d", len(cands), len(workers))
	}
	byWorker := map[string]*receivingv1.Candidate{}
	for _, c := range cands {
		if byWorker[c.GetWorkerId()] != nil {
			t.Fatalf("worker %s submitted twice", c.GetWorkerId())
		}
		byWorker[c.GetWorkerId()] = c
	}
	for _, w := range workers {
		c := byWorker[w.GetWorkerId()]
		if c == nil {
			t.Fatalf("worker %s never reached the receiving service", w.GetWorkerId())
		}
		if c.GetFullName() != w.GetFullName() || c.GetSex() != w.GetSex() || c.GetAge() != 31 ||
			c.GetHomeCounty() != w.GetHomeCounty() || c.GetRegisteredPoor() != w.GetRegisteredPoor() ||
			!slices.Equal(c.GetOccupations(), w.GetOccupations()) {
			t.Fatalf("candidate %v does not describe worker %s", c, w.GetWorkerId())
		}
	}
	eventually(t, "the outbox to empty", func() (bool, string) {
		left, err := outbox.Pending(n.db, matching.ReceivingDestination(flowReceiving))
		return err == nil && left == 0, fmt.Sprint(left, err)
	})
}

// placeAll imports the rows, waits for the demand, runs a match and waits until every
// proposal is SUBMITTED. It returns the workers and the receiving service's candidates.
func placeAll(t *testing.T, r *recvNode, n *sendNode, rows []*sendingv1.WorkerRow) ([]*sendingv1.Worker, []*receivingv1.Candidate) {
	t.Helper()
	workers := n.importWorkers(rows)
	waitReplica(t, r, n)
	run := n.runMatch(false)
	ctx := testCtx(t)
	eventually(t, "every proposal submitted", func() (bool, string) {
		ps, err := n.proposals(ctx, &sendingv1.ListProposalsRequest{State: sendingv1.ProposalState_PROPOSAL_STATE_SUBMITTED})
		if err != nil {
			return false, err.Error()
		}
		return int64(len(ps)) == run.GetProposed(), fmt.Sprintf("%d of %d submitted", len(ps), run.GetProposed())
	})
	return workers, r.candidates()
}

func (r *recvNode) decide(c *receivingv1.Candidate, accept bool, reason string) {
	r.t.Helper()
	d := receivingv1.Decision_DECISION_REJECT
	if accept {
		d = receivingv1.Decision_DECISION_ACCEPT
	}
	if _, err := r.cand.DecideCandidate(testCtx(r.t), &receivingv1.DecideCandidateRequest{Name: c.GetName(), Decision: d, Reason: reason}); err != nil {
		r.t.Fatalf("DecideCandidate: %v", err)
	}
}

// TestDecisionsMoveWorkers: accepted candidates make their workers ACCEPTED, rejected ones send
// them back to AVAILABLE, pending ones stay PROPOSED; a restart applies nothing twice.
func TestDecisionsMoveWorkers(t *testing.T) {
	r := startReceiving(t)
	r.createVacancy(testVacancy(t, 1, flowCounty, "8212", 10))
	n := startSending(t, "", fastConfig(r.addr), true)
	rows := make([]*sendingv1.WorkerRow, 6)
	for i := range rows {
		rows[i] = testWorkerRow(i, testCounties[0], "8212", i%2 == 0)
	}
	workers, cands := placeAll(t, r, n, rows)
	if len(cands) != 6 {
		t.Fatalf("%d candidates, want 6", len(cands))
	}
	want := map[string]sendingv1.WorkerStatus{}
	for i, c := range cands {
		switch {
		case i < 3:
			r.decide(c, true, "")
			want[c.GetWorkerId()] = stAccepted
		case i < 5:
			r.decide(c, false, "体检复查未通过")
			want[c.GetWorkerId()] = stAvailable
		default:
			want[c.GetWorkerId()] = stProposed
		}
	}
	check := func() (bool, string) {
		for _, w := range workers {
			if got := n.worker(w.GetWorkerId()).GetStatus(); got != want[w.GetWorkerId()] {
				return false, fmt.Sprintf("worker %s is %s, want %s", w.GetWorkerId(), got, want[w.GetWorkerId()])
			}
		}
		return true, ""
	}
	eventually(t, "the decisions to move the workers", check)
	ctx := testCtx(t)
	rejected, err := n.proposals(ctx, &sendingv1.ListProposalsRequest{State: sendingv1.ProposalState_PROPOSAL_STATE_REJECTED})
	if err != nil {
		t.Fatal(err)
	}
	if len(rejected) != 2 || rejected[0].GetReason() != "体检复查未通过" {
		t.Fatalf("rejected proposals = %v, want 2 with the employer's reason", rejected)
	}
	accepted, err := n.proposals(ctx, &sendingv1.ListProposalsRequest{State: sendingv1.ProposalState_PROPOSAL_STATE_ACCEPTED, Vacancy: cands[0].GetVacancy()})
	if err != nil {
		t.Fatal(err)
	}
	if len(accepted) != 3 {
		t.Fatalf("%d accepted proposals for the vacancy, want 3", len(accepted))
	}
	pos, err := n.followPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pos.GetDecisionRevision() != 5 {
		t.Fatalf("decision position %d, want 5", pos.GetDecisionRevision())
	}

	n.restart(true)
	eventually(t, "the decision feed to reconnect", func() (bool, string) {
		pos, err := n.followPosition(ctx)
		return err == nil && pos.GetConnected(), fmt.Sprint(pos, err)
	})
	if ok, msg := check(); !ok {
		t.Fatal(msg)
	}
	counts, err := n.svc.demand.FeedCounters(flowReceiving)
	if err != nil {
		t.Fatal(err)
	}
	if counts["decision.applied"] != 5 || counts["decision.repeated"] != 0 {
		t.Fatalf("decisions applied %d, repeated %d; want 5 and 0", counts["decision.applied"], counts["decision.repeated"])
	}
}

// fixedClock is a sending clock that never moves, so that two services write the same times.
func fixedClock() time.Time { return time.Date(2026, 11, 20, 9, 0, 0, 0, civil.Zone) }

// copyFile copies a closed bbolt file.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestMatchOutputByteIdentical: two sending services on copies of one data file (same workers,
// same replicated demand) produce byte-identical match runs, proposals and candidate
// submissions; a dry run reports the same result and proposes nobody.
func TestMatchOutputByteIdentical(t *testing.T) {
	r := startReceiving(t)
	for i, v := range []struct {
		county, occ string
		n           int32
	}{{flowCounty, "8212", 7}, {flowCounty, "GENERAL", 9}, {flowCounty2, "9313", 6}, {flowCounty2, "8212", 4}} {
		r.createVacancy(testVacancy(t, i, v.county, v.occ, v.n))
	}
	cfg := fastConfig(r.addr)
	cfg.Now = fixedClock
	a := startSending(t, "", cfg, true)
	a.importWorkers(mixedRows(40))
	waitReplica(t, r, a)
	a.stop()
	pathB := filepath.Join(t.TempDir(), "copy.db")
	copyFile(t, a.path, pathB)
	a.start(false) // no followers or relays: nothing changes the proposals after the run
	b := startSending(t, pathB, cfg, false)

	dry := a.runMatch(true)
	if ps, err := a.proposals(testCtx(t), &sendingv1.ListProposalsRequest{}); err != nil || len(ps) != 0 {
		t.Fatalf("a dry run proposed %d workers (%v)", len(ps), err)
	}
	runA, runB := a.runMatch(false), b.runMatch(false)
	if runA.GetProposed() == 0 || runA.GetProposed() != dry.GetProposed() || !proto.Equal(&sendingv1.MatchRun{Vacancies: runA.GetVacancies()}, &sendingv1.MatchRun{Vacancies: dry.GetVacancies()}) {
		t.Fatalf("dry run %v and real run %v differ", dry.GetVacancies(), runA.GetVacancies())
	}
	marshal := func(m proto.Message) []byte {
		out, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	runB.Name = runA.GetName() // the copy's dry run was not made: its run is number 1, not 2
	if !bytes.Equal(marshal(runA), marshal(runB)) {
		t.Fatalf("match runs differ:\n%v\n%v", runA, runB)
	}
	ctx := testCtx(t)
	pa, err := a.proposals(ctx, &sendingv1.ListProposalsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	pb, err := b.proposals(ctx, &sendingv1.ListProposalsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(pa)) != runA.GetProposed() {
		t.Fatalf("%d proposals, run says %d", len(pa), runA.GetProposed())
	}
	for i := range pa {
		pb[i].MatchRun = pa[i].GetMatchRun()
		if !bytes.Equal(marshal(pa[i]), marshal(pb[i])) {
			t.Fatalf("proposal %d differs:\n%v\n%v", i, pa[i], pb[i])
		}
	}
	oa := outboxPayloads(t, a.db, matching.ReceivingDestination(flowReceiving))
	ob := outboxPayloads(t, b.db, matching.ReceivingDestination(flowReceiving))
	if len(oa) == 0 || len(oa) != len(ob) {
		t.Fatalf("outbox entries: %d and %d", len(oa), len(ob))
	}
	for i := range oa {
		if !bytes.Equal(oa[i].GetValue(), ob[i].GetValue()) {
			t.Fatalf("submission %d differs", i)
		}
	}
	// Registered-poor workers first: with more workers than openings of a kind, every placed
	// worker of an occupation short of places is poor before any non-poor one is.
	if runA.GetProposedRegisteredPoor() == 0 {
		t.Fatalf("no registered-poor worker proposed: %v", runA)
	}
}

// TestMatchRunLifecycle: a request id starts one run however often it is sent; a second run
// while one works is FAILED_PRECONDITION; a run left RUNNING by a crash is FAILED after a
// restart; ListMatchRuns lists newest first without the per-vacancy results (the BASIC view,
// the default), or with them (FULL: the run as GetMatchRun reads it).
func TestMatchRunLifecycle(t *testing.T) {
	r := startReceiving(t)
	r.createVacancy(testVacancy(t, 1, flowCounty, "GENERAL", 3))
	n := startSending(t, "", fastConfig(r.addr), true)
	n.importWorkers(mixedRows(5))
	waitReplica(t, r, n)
	ctx := testCtx(t)

	// The first run is held at the start of "solving" by a hook, so that it is still working
	// when another is started.
	reached, release := make(chan struct{}), make(chan struct{})
	n.svc.matching.OnProgress(func(stage string) {
		if stage == "solving" {
			close(reached)
			<-release
		}
	})
	first, err := n.matching.StartMatchRun(ctx, &sendingv1.StartMatchRunRequest{RequestId: "once"})
	if err != nil {
		t.Fatal(err)
	}
	<-reached
	_, err = n.matching.StartMatchRun(ctx, &sendingv1.StartMatchRunRequest{RequestId: "busy"})
	close(release)
	if !hasCode(err, codes.FailedPrecondition) {
		t.Fatalf("StartMatchRun while a run works: %v, want FAILED_PRECONDITION", err)
	}
	var done *sendingv1.MatchRun
	eventually(t, "the run to end", func() (bool, string) {
		got, err := n.matching.GetMatchRun(ctx, &sendingv1.GetMatchRunRequest{Name: first.GetMatchRun().GetName()})
		if err != nil {
			return false, err.Error()
		}
		done = got.GetMatchRun()
		return done.GetState() == sendingv1.MatchRunState_MATCH_RUN_STATE_SUCCEEDED, done.String()
	})
	if done.GetProgressPercent() != 100 || done.GetProposed() != 3 || len(done.GetVacancies()) != 1 || done.GetAlgorithm() == "" {
		t.Fatalf("finished run = %v", done)
	}
	again, err := n.matching.StartMatchRun(ctx, &sendingv1.StartMatchRunRequest{RequestId: "once"})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(again, first) {
		t.Fatalf("repeat of the request returned %v, want the first response %v", again, first)
	}

	// A run left RUNNING on disk, as after a crash in the middle.
	n.stop()
	db, err := store.Open(n.path, Schema, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(matching.BucketMatchRuns)
		seq, err := store.NextSeq(b)
		if err != nil {
			return err
		}
		return store.PutProto(b, store.Uint64Key(seq), &sendingv1.MatchRun{Name: matching.RunName(seq), State: sendingv1.MatchRunState_MATCH_RUN_STATE_RUNNING, Stage: "solving", ProgressPercent: 40})
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	n.start(true)
	list, err := n.matching.ListMatchRuns(ctx, &sendingv1.ListMatchRunsRequest{PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetMatchRuns()) != 1 || list.GetMatchRuns()[0].GetState() != sendingv1.MatchRunState_MATCH_RUN_STATE_FAILED || !strings.Contains(list.GetMatchRuns()[0].GetError().GetMessage(), "interrupted") || codes.Code(list.GetMatchRuns()[0].GetError().GetCode()) != codes.Unavailable {
		t.Fatalf("newest run after the restart = %v, want FAILED (interrupted)", list.GetMatchRuns())
	}
	next, err := n.matching.ListMatchRuns(ctx, &sendingv1.ListMatchRunsRequest{PageSize: 5, PageToken: list.GetNextPageToken()})
	if err != nil {
		t.Fatal(err)
	}
	if len(next.GetMatchRuns()) != 1 || next.GetMatchRuns()[0].GetName() != done.GetName() || next.GetMatchRuns()[0].GetVacancies() != nil {
		t.Fatalf("second page = %v, want the finished run without vacancies", next.GetMatchRuns())
	}
	full, err := n.matching.GetMatchRun(ctx, &sendingv1.GetMatchRunRequest{Name: done.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	basic := proto.Clone(full.GetMatchRun()).(*sendingv1.MatchRun)
	basic.Vacancies = nil
	for _, tt := range []struct {
		view sendingv1.MatchRunView
		want *sendingv1.MatchRun
	}{
		{sendingv1.MatchRunView_MATCH_RUN_VIEW_UNSPECIFIED, basic},
		{sendingv1.MatchRunView_MATCH_RUN_VIEW_BASIC, basic},
		{sendingv1.MatchRunView_MATCH_RUN_VIEW_FULL, full.GetMatchRun()},
	} {
		page, err := n.matching.ListMatchRuns(ctx, &sendingv1.ListMatchRunsRequest{PageSize: 5, PageToken: list.GetNextPageToken(), View: tt.view})
		if err != nil {
			t.Fatalf("view %v: %v", tt.view, err)
		}
		if len(page.GetMatchRuns()) != 1 || !proto.Equal(page.GetMatchRuns()[0], tt.want) {
			t.Errorf("view %v listed %v, want %v", tt.view, page.GetMatchRuns(), tt.want)
		}
	}
}

// TestMatchRunProgressReadBack: while a run works, GetMatchRun reads the stage and percentage
// it wrote (the run is held at the start of "solving" by a hook), and after it the result.
func TestMatchRunProgressReadBack(t *testing.T) {
	t.Parallel()
	r := startReceiving(t)
	r.createVacancy(testVacancy(t, 1, flowCounty, "GENERAL", 30))
	n := startSending(t, "", fastConfig(r.addr), true)
	n.importWorkers(mixedRows(30))
	waitReplica(t, r, n)
	reached, release := make(chan struct{}), make(chan struct{})
	n.svc.matching.OnProgress(func(stage string) {
		if stage == "solving" {
			close(reached)
			<-release
		}
	})
	ctx := testCtx(t)
	started, err := n.matching.StartMatchRun(ctx, &sendingv1.StartMatchRunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	<-reached
	got, err := n.matching.GetMatchRun(ctx, &sendingv1.GetMatchRunRequest{Name: started.GetMatchRun().GetName()})
	close(release)
	if err != nil {
		t.Fatal(err)
	}
	if run := got.GetMatchRun(); run.GetState() != runRunning || run.GetStage() != "solving" || run.GetProgressPercent() != matching.PctSolve {
		t.Fatalf("run during solving = %v, want RUNNING at stage solving, %d%%", run, matching.PctSolve)
	}
	eventually(t, "the run to end", func() (bool, string) {
		got, err := n.matching.GetMatchRun(ctx, &sendingv1.GetMatchRunRequest{Name: started.GetMatchRun().GetName()})
		if err != nil {
			return false, err.Error()
		}
		run := got.GetMatchRun()
		return run.GetState() == runSucceeded && run.GetStage() == "done" && run.GetProgressPercent() == 100 && run.GetProposed() == 30, run.String()
	})
}

// TestDecisionFeedRelistAfterCompaction: decisions made while the sending service was down and
// compacted away from the decision feed are recovered by re-reading the candidates.
func TestDecisionFeedRelistAfterCompaction(t *testing.T) {
	r := startReceiving(t, func(c *receiving.Config) {
		c.FeedRetention = 2
		c.MaintenanceInterval = 20 * time.Millisecond
	})
	r.createVacancy(testVacancy(t, 1, flowCounty, "8212", 10))
	n := startSending(t, "", fastConfig(r.addr), true)
	rows := make([]*sendingv1.WorkerRow, 5)
	for i := range rows {
		rows[i] = testWorkerRow(i, testCounties[1], "8212", false)
	}
	workers, cands := placeAll(t, r, n, rows)

	n.stop()
	want := map[string]sendingv1.WorkerStatus{}
	for i, c := range cands {
		r.decide(c, i < 3, "名额已满")
		want[c.GetWorkerId()] = map[bool]sendingv1.WorkerStatus{true: stAccepted, false: stAvailable}[i < 3]
	}
	ctx := testCtx(t)
	eventually(t, "the decision feed to compact", func() (bool, string) {
		_, err := r.cand.ListDecisions(ctx, &receivingv1.ListDecisionsRequest{SendingRegion: rosterRegion})
		return hasCode(err, codes.FailedPrecondition), fmt.Sprint(err)
	})
	n.start(true)
	eventually(t, "the decisions recovered", func() (bool, string) {
		for _, w := range workers {
			if got := n.worker(w.GetWorkerId()).GetStatus(); got != want[w.GetWorkerId()] {
				return false, fmt.Sprintf("worker %s is %s, want %s", w.GetWorkerId(), got, want[w.GetWorkerId()])
			}
		}
		return true, ""
	})
	waitReplica(t, r, n)
}

// TestRejectedWorkerPlacedElsewhere: a worker the employer rejected for vacancy A comes back
// AVAILABLE, and the next run must not propose that pair again. The pair is an exclusion the
// matcher optimises under, so the run places the worker on B and another worker on A: two
// proposals. Dropping the pair after solving instead would lose one: both workers fit both
// vacancies, and the matcher's tie-break (lowest home county first) puts the rejected worker,
// of the lower county, on A again.
func TestRejectedWorkerPlacedElsewhere(t *testing.T) {
	t.Parallel()
	r := startReceiving(t)
	vacA := r.createVacancy(testVacancy(t, 1, flowCounty, "8212", 1))
	n := startSending(t, "", fastConfig(r.addr), true)
	counties := slices.Sorted(slices.Values(testCounties[:2]))
	rowX := testWorkerRow(0, counties[0], "8212", false)
	rowX.Occupations = "8212;9313"
	rowY := testWorkerRow(1, counties[1], "8212", false)
	rowY.Occupations = "8212;9313"

	placed, cands := placeAll(t, r, n, []*sendingv1.WorkerRow{rowX})
	x := placed[0]
	if len(cands) != 1 || cands[0].GetWorkerId() != x.GetWorkerId() || cands[0].GetVacancy() != matching.VacancyName(vacA.GetVacancyId()) {
		t.Fatalf("first run's candidates = %v, want worker %s for %s", cands, x.GetWorkerId(), vacA.GetVacancyId())
	}
	r.decide(cands[0], false, "岗位不匹配")
	eventually(t, "the rejected worker back in the pool", func() (bool, string) {
		st := n.worker(x.GetWorkerId()).GetStatus()
		return st == stAvailable, st.String()
	})

	vacB := r.createVacancy(testVacancy(t, 2, flowCounty, "9313", 1))
	y := n.importWorkers([]*sendingv1.WorkerRow{rowY})[0]
	waitReplica(t, r, n)
	run := n.runMatch(false)
	if run.GetWorkersEligible() != 2 || run.GetOpenings() != 2 || run.GetProposed() != 2 {
		t.Fatalf("second run: eligible %d, openings %d, proposed %d; want 2, 2, 2",
			run.GetWorkersEligible(), run.GetOpenings(), run.GetProposed())
	}
	ps, err := n.proposals(testCtx(t), &sendingv1.ListProposalsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{} // "worker vacancy" -> state
	for _, p := range ps {
		got[p.GetWorkerId()+" "+p.GetVacancy()] = p.GetState().String()
	}
	want := map[string]string{
		x.GetWorkerId() + " " + matching.VacancyName(vacA.GetVacancyId()): proposalRejected.String(),
		x.GetWorkerId() + " " + matching.VacancyName(vacB.GetVacancyId()): proposalPending.String(),
		y.GetWorkerId() + " " + matching.VacancyName(vacA.GetVacancyId()): proposalPending.String(),
	}
	if len(got) != len(want) {
		t.Fatalf("proposals %v, want %v", got, want)
	}
	for k, st := range want {
		if got[k] != st && !(st == proposalPending.String() && got[k] == proposalSubmitted.String()) {
			t.Fatalf("proposals %v, want %v", got, want)
		}
	}
}

// TestCancelMatchRun: a run cancelled while it works is recorded CANCELLED at once, stops at
// its next stage boundary and proposes nobody (no proposal, every worker still AVAILABLE);
// cancelling it again returns it unchanged, a retry of the request id gets the first response,
// and cancelling a run that succeeded is FAILED_PRECONDITION. A new run starts once the
// cancelled one has stopped and proposes as usual.
func TestCancelMatchRun(t *testing.T) {
	t.Parallel()
	r := startReceiving(t)
	r.createVacancy(testVacancy(t, 1, flowCounty, "GENERAL", 3))
	n := startSending(t, "", fastConfig(r.addr), true)
	n.importWorkers(mixedRows(5))
	waitReplica(t, r, n)
	ctx := testCtx(t)

	reached, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	n.svc.matching.OnProgress(func(stage string) {
		if stage == "solving" {
			once.Do(func() { close(reached); <-release })
		}
	})
	started, err := n.matching.StartMatchRun(ctx, &sendingv1.StartMatchRunRequest{RequestId: "to-cancel"})
	if err != nil {
		t.Fatal(err)
	}
	name := started.GetMatchRun().GetName()
	<-reached
	cancelled, err := n.matching.CancelMatchRun(ctx, &sendingv1.CancelMatchRunRequest{Name: name, RequestId: "cancel-1"})
	close(release)
	if err != nil {
		t.Fatal(err)
	}
	if run := cancelled.GetMatchRun(); run.GetState() != sendingv1.MatchRunState_MATCH_RUN_STATE_CANCELLED || run.GetEndTime() == nil || run.GetError() != nil {
		t.Fatalf("cancelled run = %v, want CANCELLED with an end time and no error", run)
	}
	// The run stops: a new run can start (until then: MATCH_RUN_IN_PROGRESS).
	eventually(t, "the cancelled run to stop", func() (bool, string) {
		_, err := n.matching.StartMatchRun(ctx, &sendingv1.StartMatchRunRequest{DryRun: true, RequestId: fmt.Sprintf("probe-%d", time.Now().UnixNano())})
		return err == nil, fmt.Sprint(err)
	})
	eventually(t, "the dry run to end", func() (bool, string) {
		list, err := n.matching.ListMatchRuns(ctx, &sendingv1.ListMatchRunsRequest{PageSize: 1})
		if err != nil {
			return false, err.Error()
		}
		return list.GetMatchRuns()[0].GetState() != runRunning, list.String()
	})
	got, err := n.matching.GetMatchRun(ctx, &sendingv1.GetMatchRunRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if run := got.GetMatchRun(); run.GetState() != sendingv1.MatchRunState_MATCH_RUN_STATE_CANCELLED || run.GetProposed() != 0 ||
		len(run.GetVacancies()) != 0 || run.GetStage() != "cancelled" || run.GetError() != nil {
		t.Fatalf("cancelled run after it stopped = %v, want CANCELLED with nothing proposed", run)
	}
	if ps, err := n.proposals(ctx, &sendingv1.ListProposalsRequest{}); err != nil || len(ps) != 0 {
		t.Fatalf("proposals after the cancelled run: %v, %v; want none", ps, err)
	}
	avail, err := n.roster.ListWorkers(ctx, &sendingv1.ListWorkersRequest{Status: stAvailable, PageSize: 100})
	if err != nil || len(avail.GetWorkers()) != 5 {
		t.Fatalf("available workers after the cancelled run: %d, %v; want 5", len(avail.GetWorkers()), err)
	}

	// Idempotent: again with another id returns the run unchanged; the same id the first response.
	again, err := n.matching.CancelMatchRun(ctx, &sendingv1.CancelMatchRunRequest{Name: name, RequestId: "cancel-2"})
	if err != nil || !proto.Equal(again.GetMatchRun(), got.GetMatchRun()) {
		t.Fatalf("second cancel = %v, %v; want the cancelled run %v", again, err, got.GetMatchRun())
	}
	retry, err := n.matching.CancelMatchRun(ctx, &sendingv1.CancelMatchRunRequest{Name: name, RequestId: "cancel-1"})
	if err != nil || !proto.Equal(retry, cancelled) {
		t.Fatalf("retry of the cancel = %v, %v; want the first response %v", retry, err, cancelled)
	}

	// A run that ended otherwise cannot be cancelled; the real run proposes as usual.
	done := n.runMatch(false)
	if done.GetProposed() != 3 {
		t.Fatalf("run after the cancelled one proposed %d, want 3", done.GetProposed())
	}
	_, err = n.matching.CancelMatchRun(ctx, &sendingv1.CancelMatchRunRequest{Name: done.GetName()})
	if !hasCode(err, codes.FailedPrecondition) || errorInfo(err).GetReason() != apierror.Reason(commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION) {
		t.Fatalf("cancel of a succeeded run: %v, want FAILED_PRECONDITION", err)
	}
	_, err = n.matching.CancelMatchRun(ctx, &sendingv1.CancelMatchRunRequest{Name: "matchRuns/999"})
	if !hasCode(err, codes.NotFound) {
		t.Fatalf("cancel of a missing run: %v, want NOT_FOUND", err)
	}
}

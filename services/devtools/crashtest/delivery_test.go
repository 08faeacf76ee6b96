package crashtest

import (
	"context"
	"fmt"
	"github.com/eastwest/labourlink/services/devtools/wait"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/codes/creditcode"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/coordination"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/platform/failpoint"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/receiving"
	"github.com/eastwest/labourlink/services/sending"
)

// The paired provinces of the delivery test: Guizhou sends, Guangdong receives.
const (
	sendingRegion   = "520000"
	receivingRegion = "440000"
	workCounty      = "440305" // Nanshan, Shenzhen
	unitWorkers     = 4        // workers per batch of the workload
)

var cst = time.FixedZone("CST", 8*3600)

func civilDate(t time.Time) *commonv1.Date {
	t = t.In(cst)
	return &commonv1.Date{Year: int32(t.Year()), Month: int32(t.Month()), Day: int32(t.Day())}
}

// unit is one batch of the receiving workload: a vacancy, its candidates accepted, the batch
// announced, the workers' arrivals confirmed and their onboardings recorded. Each step is one
// call with a request id, repeated until it succeeds (a crash leaves its outcome unknown).
type unit struct {
	n       int
	batch   string
	workers []string
	vacancy string    // resource name, once created
	cands   []string  // candidate names, once submitted
	step    int       // the next step
	at      time.Time // the unit's "now": a repeated call must be the same request
}

func newUnit(n int) *unit {
	u := &unit{n: n, batch: fmt.Sprintf("%s-C%d", sendingRegion, n), at: time.Now()}
	for i := range unitWorkers {
		u.workers = append(u.workers, fmt.Sprintf("%s-c%d-%d", sendingRegion, n, i))
	}
	return u
}

// arrivalID and onboardingID are the event ids the receiving service gives its facts;
// departureID is the sending side's.
func arrivalID(batch, worker string) string {
	return receivingRegion + ":arrived:" + batch + ":" + worker
}
func onboardingID(batch, worker string) string {
	return receivingRegion + ":onboarded:" + batch + ":" + worker
}
func departureID(batch, worker string) string {
	return sendingRegion + ":departed:" + batch + ":" + worker
}

// steps is the number of steps of a unit: vacancy, candidates, one decision per worker, the
// announcement, the arrivals, one onboarding per worker.
const steps = 1 + 1 + unitWorkers + 1 + 1 + unitWorkers

// deliveryWorkload drives units through the receiving service and remembers which ledger events
// were acknowledged.
type deliveryWorkload struct {
	mu     sync.Mutex
	units  []*unit // done ones, then the one in progress
	acked  map[string]bool
	credit string // the employer's credit code
}

func newDeliveryWorkload(t *testing.T) *deliveryWorkload {
	code := "91440300MA5FN1234"
	check, err := creditcode.CheckChar(code)
	if err != nil {
		t.Fatal(err)
	}
	return &deliveryWorkload{acked: map[string]bool{}, credit: code + string(check)}
}

func (w *deliveryWorkload) current() *unit {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.units); n > 0 && w.units[n-1].step < steps {
		return w.units[n-1]
	}
	u := newUnit(len(w.units))
	w.units = append(w.units, u)
	return u
}

// done reports the units whose steps all succeeded.
func (w *deliveryWorkload) done() []*unit {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*unit
	for _, u := range w.units {
		if u.step == steps {
			out = append(out, u)
		}
	}
	return out
}

func (w *deliveryWorkload) ackedIDs() map[string]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]bool, len(w.acked))
	for id := range w.acked {
		out[id] = true
	}
	return out
}

// run works through units on the receiving service at addr until ctx ends, or with untilDone
// until the unit in progress is done. It returns the first error no crash explains.
func (w *deliveryWorkload) run(ctx context.Context, addr string, untilDone bool) error {
	cc, err := peers.Dial(addr, peers.Options{})
	if err != nil {
		return err
	}
	defer cc.Close()
	for ctx.Err() == nil {
		u := w.current()
		acked, err := w.do(ctx, cc, u)
		if err == nil {
			w.mu.Lock()
			for _, id := range acked {
				w.acked[id] = true
			}
			u.step++
			finished := u.step == steps
			w.mu.Unlock()
			if finished && untilDone {
				return nil
			}
			continue
		}
		if permanent(err) {
			return fmt.Errorf("unit %d step %d: %w", u.n, u.step, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// do performs the unit's next step and returns the ledger event ids its success acknowledges.
func (w *deliveryWorkload) do(ctx context.Context, cc grpc.ClientConnInterface, u *unit) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req := func(what string) string { return fmt.Sprintf("crash-u%d-%s", u.n, what) }
	now := u.at
	vac := receivingv1.NewVacancyServiceClient(cc)
	cand := receivingv1.NewCandidateServiceClient(cc)
	intake := receivingv1.NewIntakeServiceClient(cc)
	decisions := 2
	announce := decisions + unitWorkers
	switch s := u.step; {
	case s == 0:
		resp, err := vac.CreateVacancy(ctx, &receivingv1.CreateVacancyRequest{RequestId: req("vacancy"), Vacancy: &receivingv1.Vacancy{
			EmployerName: "深圳市南山电子装配有限公司", EmployerCreditCode: w.credit, WorkCounty: workCounty, Occupation: "8212",
			Headcount: unitWorkers, MonthlyWageMinYuan: 4500, MonthlyWageMaxYuan: 6000, StartDate: civilDate(now), ValidThrough: civilDate(now.AddDate(0, 3, 0)),
			MinAge: proto.Int32(18), MaxAge: proto.Int32(45), Contact: "0755-26000000 人事部",
		}})
		if err != nil {
			return nil, err
		}
		u.vacancy = resp.GetVacancy().GetName()
		return nil, nil
	case s == 1:
		var cs []*receivingv1.Candidate
		for _, wk := range u.workers {
			cs = append(cs, &receivingv1.Candidate{Vacancy: u.vacancy, WorkerId: wk, FullName: "王 小明", Sex: commonv1.Sex_SEX_MALE, Age: 28,
				Occupations: []string{"8212"}, HomeCounty: "520102", RegisteredPoor: true})
		}
		resp, err := cand.SubmitCandidates(ctx, &receivingv1.SubmitCandidatesRequest{RequestId: req("candidates"), SendingRegion: sendingRegion, Candidates: cs})
		if err != nil {
			return nil, err
		}
		if len(resp.GetRefusals()) > 0 || len(resp.GetCandidates()) != unitWorkers {
			return nil, fmt.Errorf("candidates refused: %v", resp.GetRefusals())
		}
		u.cands = nil
		for _, c := range resp.GetCandidates() {
			u.cands = append(u.cands, c.GetName())
		}
		return nil, nil
	case s < announce:
		i := s - decisions
		_, err := cand.DecideCandidate(ctx, &receivingv1.DecideCandidateRequest{RequestId: req(fmt.Sprintf("accept-%d", i)), Name: u.cands[i], Decision: receivingv1.Decision_DECISION_ACCEPT})
		return nil, err
	case s == announce:
		var entries []*receivingv1.IntakeEntry
		for _, wk := range u.workers {
			entries = append(entries, &receivingv1.IntakeEntry{WorkerId: wk, Vacancy: u.vacancy})
		}
		resp, err := intake.AnnounceBatch(ctx, &receivingv1.AnnounceBatchRequest{RequestId: req("announce"), Batch: &receivingv1.IntakeBatch{
			BatchId: u.batch, SendingRegion: sendingRegion, Mode: commonv1.TransportMode_TRANSPORT_MODE_TRAIN, DestinationCounty: workCounty,
			ExpectedArrivalTime: timestamppb.New(now), Entries: entries,
		}})
		if err == nil && len(resp.GetRefusals()) > 0 {
			err = fmt.Errorf("announcement refused: %v", resp.GetRefusals())
		}
		return nil, err
	case s == announce+1:
		var cs []*receivingv1.ArrivalConfirmation
		var ids []string
		for _, wk := range u.workers {
			cs = append(cs, &receivingv1.ArrivalConfirmation{WorkerId: wk, Outcome: receivingv1.ArrivalOutcome_ARRIVAL_OUTCOME_ARRIVED})
			ids = append(ids, arrivalID(u.batch, wk))
		}
		_, err := intake.ConfirmArrivals(ctx, &receivingv1.ConfirmArrivalsRequest{RequestId: req("arrivals"), Name: "intakeBatches/" + u.batch, Confirmations: cs})
		return ids, err
	default:
		i := s - announce - 2
		_, err := intake.RecordOnboarding(ctx, &receivingv1.RecordOnboardingRequest{RequestId: req(fmt.Sprintf("onboard-%d", i)), WorkerId: u.workers[i], OnboardDate: civilDate(now)})
		return []string{onboardingID(u.batch, u.workers[i])}, err
	}
}

// departures commits the departure events of units [from, to) to the sending service's
// outbox (the process is down), as RecordDeparture would, and returns their ids.
func departures(t *testing.T, db *store.DB, from, to int, at time.Time) []string {
	t.Helper()
	var ids []string
	if err := db.Update(func(tx *bbolt.Tx) error {
		for n := from; n < to; n++ {
			u := newUnit(n)
			for _, wk := range u.workers {
				ev := &coordinationv1.LedgerEvent{
					EventId: departureID(u.batch, wk), Kind: coordinationv1.EventKind_EVENT_KIND_DEPARTED,
					ReporterRegion: sendingRegion, SendingRegion: sendingRegion, ReceivingRegion: receivingRegion,
					WorkerId: wk, BatchId: u.batch, OccurTime: timestamppb.New(at), RegisteredPoor: true,
				}
				if _, err := outbox.Put(context.Background(), tx, time.Now(), ledgerclient.Destination, "", ev); err != nil {
					return err
				}
				ids = append(ids, ev.GetEventId())
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

// coordinationPlan, receivingPlan and sendingPlan draw the crash point a process starts with.
func coordinationPlan(rng *rand.Rand) plan {
	switch rng.IntN(5) {
	case 0: // the ledger recorded a report, the reply is never sent: the relay reports again
		return killAt(failpoint.StoreAfterCommit, rng.IntN(25))
	case 1:
		return killAt(failpoint.StoreBeforeCommit, rng.IntN(25))
	case 2: // a ReportEvents handler panics after its commit: INTERNAL, reported again
		return panicAt(failpoint.StoreAfterCommit, rng.IntN(25))
	default:
		return plan{}
	}
}

func receivingPlan(rng *rand.Rand) plan {
	switch rng.IntN(7) {
	case 0: // delivered, not removed: delivered again after the restart
		return killAt(failpoint.RelayAfterDeliver, rng.IntN(4))
	case 1:
		return panicAt(failpoint.RelayAfterDeliver, rng.IntN(4))
	case 2: // an intake call committed, its reply never sent: repeated with its request id
		return killAt(failpoint.StoreAfterCommit, rng.IntN(25))
	case 3: // in a handler, recovered (INTERNAL, repeated); in the relay, the process ends
		return panicAt(failpoint.StoreAfterCommit, rng.IntN(25))
	case 4:
		return killAt(failpoint.StoreBeforeCommit, rng.IntN(25))
	default:
		return plan{}
	}
}

func sendingPlan(rng *rand.Rand) plan {
	switch rng.IntN(5) {
	case 0:
		return killAt(failpoint.RelayAfterDeliver, rng.IntN(3))
	case 1:
		return panicAt(failpoint.RelayAfterDeliver, rng.IntN(3))
	case 2: // (a sending service commits twice while it starts)
		return killAt(failpoint.StoreAfterCommit, 2+rng.IntN(10))
	default:
		return plan{}
	}
}

// TestCrashDuringDelivery crashes the coordination, receiving and sending processes, in any
// combination, while ledger events flow from both outboxes to the ledger, and checks that every
// acknowledged event reaches the ledger exactly once.
func TestCrashDuringDelivery(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts and crashes real processes")
	}
	rng := newRand(t)
	dirC, dirR, dirS := t.TempDir(), t.TempDir(), t.TempDir()
	coord := &node{t: t, kind: "coordination", file: filepath.Join(dirC, "coordination.db"), schema: coordination.Schema,
		addr: fixedAddr(t), args: []string{"-data", dirC, "-log-level", "warn"}}
	if !coord.start(plan{}) {
		t.Fatalf("coordination did not start\n%s", coord.logTail())
	}
	recv := &node{t: t, kind: "receiving", file: filepath.Join(dirR, "receiving.db"), schema: receiving.Schema, addr: fixedAddr(t),
		args: []string{"-region", receivingRegion, "-data", dirR, "-coordination", coord.addr, "-log-level", "warn"}}
	send := &node{t: t, kind: "sending", file: filepath.Join(dirS, "sending.db"), schema: sending.Schema, addr: fixedAddr(t),
		args: []string{"-region", sendingRegion, "-data", dirS, "-coordination", coord.addr, "-log-level", "warn"}}
	nodes := []*node{coord, recv, send}
	plans := map[*node]func(*rand.Rand) plan{coord: coordinationPlan, recv: receivingPlan, send: sendingPlan}

	w := newDeliveryWorkload(t)
	c := newTally()
	departed := map[string]bool{} // departure events committed to the sending outbox
	departedUnits := 0
	departAt := time.Now().Add(-time.Hour) // before every arrival, well within the grace period
	commitDepartures := func(db *store.DB) {
		for _, id := range departures(t, db, departedUnits, departedUnits+2, departAt) {
			departed[id] = true
		}
		departedUnits += 2
	}
	// Departures wait in the sending outbox before the sending service first starts.
	db, err := store.Open(send.file, sending.Schema, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	commitDepartures(db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// startNode starts n with a drawn crash point; one that fires before the service is ready
	// counts as a crash (the file is checked), and n is started again without one.
	startNode := func(cycle int, n *node) {
		pl := plans[n](rng)
		if n.start(pl) {
			return
		}
		n.account(c, true)
		n.checkFile(c, nil)
		t.Logf("cycle %d: %s %s fired before the service was ready", cycle, n.kind, pl)
		if !n.start(plan{}) {
			t.Fatalf("%s did not start without a crash point\n%s", n.kind, n.logTail())
		}
	}

	for cycle := range cycles() {
		c.cycles++
		for _, n := range nodes {
			if n.p == nil || !n.alive() {
				startNode(cycle, n)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.run(ctx, recv.addr, false) }()
		wait := time.After(time.Duration(50+rng.IntN(450)) * time.Millisecond)
		select { // until the time is up or a crash point fires
		case <-wait:
		case <-coord.p.Done():
		case <-recv.p.Done():
		case <-send.p.Done():
		}
		var victims []*node
		for _, n := range nodes {
			if n.alive() && rng.IntN(2) == 0 {
				victims = append(victims, n)
			}
		}
		if len(victims) == 0 && coord.alive() && recv.alive() && send.alive() {
			victims = append(victims, nodes[rng.IntN(len(nodes))])
		}
		for _, n := range victims {
			n.kill()
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("cycle %d: %v\n%s\n%s", cycle, err, recv.logTail(), coord.logTail())
		}
		var crashed []string
		for _, n := range nodes {
			if n.alive() {
				continue
			}
			n.account(c, false)
			inspect := func(*store.DB) {}
			if n == send {
				inspect = commitDepartures
			}
			n.checkFile(c, inspect)
			crashed = append(crashed, fmt.Sprintf("%s (%s)", n.kind, n.plan))
			n.p = nil
		}
		t.Logf("cycle %d: crashed %v; %d units done, %d events acknowledged, %d departures committed",
			cycle, crashed, len(w.done()), len(w.ackedIDs()), len(departed))
	}

	// No more crash points: every process restarts clean, the unit in progress is finished, and
	// the ledger gets everything.
	for _, n := range nodes {
		if n.p != nil && n.alive() {
			n.kill()
			n.account(c, false)
			n.checkFile(c, nil)
		}
		if !n.start(plan{}) {
			t.Fatalf("%s did not start without a crash point\n%s", n.kind, n.logTail())
		}
	}
	if err := w.run(context.Background(), recv.addr, true); err != nil {
		t.Fatal(err)
	}
	want := w.ackedIDs()
	for id := range departed {
		want[id] = true
	}
	cc := coord.p.Conn()
	defer cc.Close()
	got := waitLedger(t, cc, want)
	var lost, phantom []string
	for id := range want {
		if got[id] == nil {
			lost = append(lost, id)
		}
	}
	for id := range got {
		if !want[id] {
			phantom = append(phantom, id)
		}
	}
	sort.Strings(lost)
	sort.Strings(phantom)
	if len(lost) > 0 || len(phantom) > 0 {
		t.Fatalf("ledger has %d events, want %d: %d acknowledged events lost %v; %d events never written %v",
			len(got), len(want), len(lost), lost[:min(len(lost), 10)], len(phantom), phantom[:min(len(phantom), 10)])
	}

	// The batches count each worker once.
	recon := coordinationv1.NewReconciliationServiceClient(cc)
	for _, u := range w.done() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		resp, err := recon.GetBatchReconciliation(ctx, &coordinationv1.GetBatchReconciliationRequest{BatchId: u.batch, SendingRegion: regions.IDOwner(u.batch)})
		cancel()
		if err != nil {
			t.Fatalf("reconciliation of %s: %v", u.batch, err)
		}
		r := resp.GetReconciliation()
		var dep int64
		if u.n < departedUnits {
			dep = unitWorkers
		}
		if r.GetArrived() != unitWorkers || r.GetDeparted() != dep || r.GetUnexpected() != unitWorkers-dep || r.GetUnverified() != 0 {
			t.Fatalf("batch %s: %v; want %d arrived, %d departed, each worker once", u.batch, r, unitWorkers, dep)
		}
	}

	// Both outboxes drain: every entry was delivered and removed. (A graceful stop can cut the
	// last delivery short after the ledger recorded it; those entries are delivered again, as
	// duplicates, after a restart.)
	for _, n := range []*node{recv, send} {
		for attempt := 0; ; attempt++ {
			n.p.Stop()
			var pending int
			n.checkFile(c, func(db *store.DB) {
				var err error
				if pending, err = outbox.Pending(db, ledgerclient.Destination); err != nil {
					t.Fatal(err)
				}
			})
			if pending == 0 {
				break
			}
			if attempt == 5 {
				t.Fatalf("%s outbox: %d ledger entries still pending", n.kind, pending)
			}
			if !n.start(plan{}) {
				t.Fatalf("%s did not start\n%s", n.kind, n.logTail())
			}
			waitLedger(t, cc, want)
		}
	}
	if got := waitLedger(t, cc, want); len(got) != len(want) {
		t.Fatalf("ledger has %d events after the outboxes drained, want %d", len(got), len(want))
	}
	coord.p.Stop()
	coord.checkFile(c, nil)
	t.Logf("delivery crash test: %s; %d ledger events checked (%d from receiving intake calls, %d departures), %d batches reconciled",
		c, len(want), len(want)-len(departed), len(departed), len(w.done()))
}

// waitLedger waits until the ledger lists every event of want (bounded by a generous limit:
// the relays back off while a peer was down), failing on an event listed twice, and returns
// what it lists.
func waitLedger(t *testing.T, cc grpc.ClientConnInterface, want map[string]bool) map[string]*coordinationv1.LedgerEvent {
	t.Helper()
	var got map[string]*coordinationv1.LedgerEvent
	wait.Until(3*time.Minute, func() bool {
		got = listLedger(t, cc)
		for id := range want {
			if got[id] == nil {
				return false
			}
		}
		return true
	})
	return got // the caller reports what is missing
}

// listLedger lists every event in the ledger, failing on an event id listed twice.
func listLedger(t *testing.T, cc grpc.ClientConnInterface) map[string]*coordinationv1.LedgerEvent {
	t.Helper()
	client := coordinationv1.NewLedgerServiceClient(cc)
	out := map[string]*coordinationv1.LedgerEvent{}
	token := ""
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		resp, err := client.ListEvents(ctx, &coordinationv1.ListEventsRequest{PageSize: 1000, PageToken: token})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.GetEvents() {
			if out[e.GetEventId()] != nil {
				t.Fatalf("event %s is in the ledger twice", e.GetEventId())
			}
			out[e.GetEventId()] = e
		}
		if token = resp.GetNextPageToken(); token == "" {
			return out
		}
	}
}

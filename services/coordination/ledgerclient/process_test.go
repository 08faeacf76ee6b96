package ledgerclient_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/codes/creditcode"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/devtools/proctest"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/receiving"
)

// End-to-end tests with real `labourlink serve` processes, killed with SIGKILL.

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitLedger waits until the ledger holds want events (bounded by a generous limit: the relays
// back off while a peer is down) and returns them.
func waitLedger(t *testing.T, cc grpc.ClientConnInterface, want int) map[string]*coordinationv1.LedgerEvent {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		got := ledgerEventIDs(t, cc)
		if len(got) >= want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRelayExactlyOnceAcrossCoordinationKills: a sending-side outbox (a data file opened by the
// test) delivers to a real coordination process that is killed with SIGKILL while the relay is
// delivering and started again on the same data; the relay is restarted too. Every event
// reaches the ledger, once, and the batches count each worker once.
func TestRelayExactlyOnceAcrossCoordinationKills(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs the labourlink binary")
	}
	lg := zaptest.NewLogger(t)
	dataC := t.TempDir()
	coordArgs := []string{"-data", dataC}
	coord := proctest.Start(t, "coordination", "", coordArgs...)
	addr := coord.Addr

	db := openOutbox(t, filepath.Join(t.TempDir(), "sending.db"))
	dep := time.Now().Add(-time.Hour)
	var all []*coordinationv1.LedgerEvent
	round := func(r, n int) {
		var evs []*coordinationv1.LedgerEvent
		for i := range n {
			evs = append(evs, departure(fmt.Sprintf("520000-R%d", r), fmt.Sprintf("w%d-%03d", r, i), dep))
		}
		putEvents(t, db, evs...)
		all = append(all, evs...)
	}

	stopRelay := startRelay(t, db, addr, lg)
	round(1, 150)
	// Kill the ledger while the relay is (most likely) in the middle of delivering round 1.
	coord.Kill()
	round(2, 150)
	stopRelay() // the sending process "restarts" its relay too
	coord = proctest.Start(t, "coordination", addr, coordArgs...)
	stopRelay = startRelay(t, db, addr, lg)
	round(3, 100)
	waitDrained(t, db)
	// Once more: kill after everything was delivered; nothing acknowledged is lost.
	coord.Kill()
	coord = proctest.Start(t, "coordination", addr, coordArgs...)
	stopRelay()

	cc := coord.Conn()
	defer cc.Close()
	got := ledgerEventIDs(t, cc)
	if len(got) != len(all) {
		t.Fatalf("%d events in the ledger, want %d", len(got), len(all))
	}
	for _, e := range all {
		if got[e.GetEventId()] == nil {
			t.Fatalf("event %s lost", e.GetEventId())
		}
	}
	recon := coordinationv1.NewReconciliationServiceClient(cc)
	for r, n := range map[int]int64{1: 150, 2: 150, 3: 100} {
		resp, err := recon.GetBatchReconciliation(callCtx(t), &coordinationv1.GetBatchReconciliationRequest{BatchId: fmt.Sprintf("520000-R%d", r), SendingRegion: regions.IDOwner(fmt.Sprintf("520000-R%d", r))})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetReconciliation().GetDeparted() != n || resp.GetReconciliation().GetAwaiting() != n {
			t.Fatalf("batch R%d: %v, want %d departed and awaiting", r, resp.GetReconciliation(), n)
		}
	}
}

// TestReceivingOutboxReachesLedgerExactlyOnceAcrossKills drives ledger events through a real
// receiving process's intake RPCs; its relay delivers them to a real coordination process. Both
// are killed with SIGKILL and restarted on their data while events are pending. In the end the
// ledger has every event the receiving service acknowledged, once, and the outbox is empty.
func TestReceivingOutboxReachesLedgerExactlyOnceAcrossKills(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs the labourlink binary")
	}
	dataC, dataR := t.TempDir(), t.TempDir()
	coordArgs := []string{"-data", dataC}
	coord := proctest.Start(t, "coordination", "", coordArgs...)
	recvArgs := []string{"-region", "440000", "-data", dataR, "-coordination", coord.Addr}
	recv := proctest.Start(t, "receiving", "", recvArgs...)

	rcc := recv.Conn()
	vac := receivingv1.NewVacancyServiceClient(rcc)
	cand := receivingv1.NewCandidateServiceClient(rcc)
	intake := receivingv1.NewIntakeServiceClient(rcc)
	now := time.Now()
	today := func() *commonv1.Date {
		y, m, d := now.In(time.FixedZone("CST", 8*3600)).Date()
		return &commonv1.Date{Year: int32(y), Month: int32(m), Day: int32(d)}
	}
	later := now.AddDate(0, 3, 0).In(time.FixedZone("CST", 8*3600))
	code := "91440300MA5FN1234"
	check, err := creditcode.CheckChar(code)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vac.CreateVacancy(callCtx(t), &receivingv1.CreateVacancyRequest{Vacancy: &receivingv1.Vacancy{
		EmployerName:       "深圳市南山电子装配有限公司",
		EmployerCreditCode: code + string(check),
		WorkCounty:         "440305",
		Occupation:         "8212",
		Headcount:          20,
		MonthlyWageMinYuan: 4500,
		MonthlyWageMaxYuan: 6000,
		StartDate:          today(),
		ValidThrough:       &commonv1.Date{Year: int32(later.Year()), Month: int32(later.Month()), Day: int32(later.Day())},
		MinAge:             proto.Int32(18),
		MaxAge:             proto.Int32(45),
		Contact:            "0755-26000000 人事部",
	}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 12
	var workers []string
	var entries []*receivingv1.IntakeEntry
	for i := range n {
		w := fmt.Sprintf("520000-gz-e2e-%02d", i)
		workers = append(workers, w)
		sub, err := cand.SubmitCandidates(callCtx(t), &receivingv1.SubmitCandidatesRequest{SendingRegion: "520000", Candidates: []*receivingv1.Candidate{{
			Vacancy: v.GetVacancy().GetName(), WorkerId: w, FullName: "王 小明", Sex: commonv1.Sex_SEX_MALE, Age: 28,
			Occupations: []string{"8212"}, HomeCounty: "520102", RegisteredPoor: true,
		}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cand.DecideCandidate(callCtx(t), &receivingv1.DecideCandidateRequest{Name: sub.GetCandidates()[0].GetName(), Decision: receivingv1.Decision_DECISION_ACCEPT}); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, &receivingv1.IntakeEntry{WorkerId: w, Vacancy: v.GetVacancy().GetName()})
	}
	const batch = "520000-e2e-1"
	if _, err := intake.AnnounceBatch(callCtx(t), &receivingv1.AnnounceBatchRequest{Batch: &receivingv1.IntakeBatch{
		BatchId: batch, SendingRegion: "520000", Mode: commonv1.TransportMode_TRANSPORT_MODE_TRAIN, DestinationCounty: "440305",
		ExpectedArrivalTime: timestamppb.New(now), Entries: entries,
	}}); err != nil {
		t.Fatal(err)
	}
	confirm := func(ws []string, outcome receivingv1.ArrivalOutcome) {
		t.Helper()
		var cs []*receivingv1.ArrivalConfirmation
		for _, w := range ws {
			cs = append(cs, &receivingv1.ArrivalConfirmation{WorkerId: w, Outcome: outcome})
		}
		if _, err := intake.ConfirmArrivals(callCtx(t), &receivingv1.ConfirmArrivalsRequest{Name: "intakeBatches/" + batch, Confirmations: cs}); err != nil {
			t.Fatal(err)
		}
	}
	onboard := func(ws ...string) {
		t.Helper()
		for _, w := range ws {
			if _, err := intake.RecordOnboarding(callCtx(t), &receivingv1.RecordOnboardingRequest{WorkerId: w, OnboardDate: today()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	arrivedKind := receivingv1.ArrivalOutcome_ARRIVAL_OUTCOME_ARRIVED
	noShowKind := receivingv1.ArrivalOutcome_ARRIVAL_OUTCOME_NO_SHOW

	// Round 1, both up: 4 arrivals reach the ledger.
	confirm(workers[0:4], arrivedKind)
	ccC := coord.Conn()
	if got := waitLedger(t, ccC, 4); len(got) != 4 {
		t.Fatalf("round 1: %d events in the ledger, want 4", len(got))
	}
	ccC.Close()

	// Round 2, the coordination process killed: 3 arrivals, 1 no-show, 2 onboardings wait in
	// the receiving outbox; then the receiving process is killed too.
	coord.Kill()
	confirm(workers[4:7], arrivedKind)
	confirm(workers[7:8], noShowKind)
	onboard(workers[0:2]...)
	rcc.Close()
	recv.Kill()

	// Both restart on their data (coordination on its old address, which the receiving service
	// was configured with); round 3 adds 4 arrivals and 2 onboardings.
	coord = proctest.Start(t, "coordination", coord.Addr, coordArgs...)
	recv = proctest.Start(t, "receiving", recv.Addr, recvArgs...)
	rcc = recv.Conn()
	intake = receivingv1.NewIntakeServiceClient(rcc)
	confirm(workers[8:12], arrivedKind)
	onboard(workers[2:4]...)
	// Kill the receiving process once more right after acknowledged writes, and restart it.
	rcc.Close()
	recv.Kill()
	recv = proctest.Start(t, "receiving", recv.Addr, recvArgs...)

	const want = 4 + 3 + 1 + 2 + 4 + 2
	ccC = coord.Conn()
	defer ccC.Close()
	got := waitLedger(t, ccC, want)
	if len(got) != want {
		t.Fatalf("%d events in the ledger, want %d", len(got), want)
	}
	for _, w := range workers {
		kind := "arrived"
		if w == workers[7] {
			kind = "no_show"
		}
		if id := "440000:" + kind + ":" + batch + ":" + w; got[id] == nil {
			t.Fatalf("event %s missing", id)
		}
	}
	resp, err := coordinationv1.NewReconciliationServiceClient(ccC).GetBatchReconciliation(callCtx(t), &coordinationv1.GetBatchReconciliationRequest{BatchId: batch, SendingRegion: regions.IDOwner(batch)})
	if err != nil {
		t.Fatal(err)
	}
	// No departures were reported (no sending service here): every arrival is unexpected.
	r := resp.GetReconciliation()
	if r.GetArrived() != 11 || r.GetNoShow() != 1 || r.GetUnexpected() != 11 || r.GetUnverified() != 0 {
		t.Fatalf("reconciliation %v", r)
	}

	// The receiving outbox drains: every entry was delivered and removed. (A stop can cut the
	// last delivery short after the ledger recorded it; the entries are then delivered again,
	// as duplicates, after a restart.)
	for attempt := 0; ; attempt++ {
		recv.Stop()
		pending := receivingPending(t, dataR)
		if pending == 0 {
			break
		}
		if attempt == 5 {
			t.Fatalf("receiving outbox: %d entries still pending", pending)
		}
		recv = proctest.Start(t, "receiving", recv.Addr, recvArgs...)
		time.Sleep(time.Second)
	}
	if got := ledgerEventIDs(t, ccC); len(got) != want {
		t.Fatalf("%d events in the ledger after draining, want %d", len(got), want)
	}
}

func receivingPending(t *testing.T, dir string) int {
	t.Helper()
	db, err := store.Open(filepath.Join(dir, "receiving.db"), receiving.Schema, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n, err := outbox.Pending(db, ledgerclient.Destination)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

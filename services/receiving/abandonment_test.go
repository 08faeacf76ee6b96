package receiving

import (
	"context"
	"net"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/coordination"
	"github.com/eastwest/labourlink/services/platform/grpcserver"
	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/platform/store"
)

// The employer's absence report travels from this service's outbox to a real coordination
// service, on one controllable clock: a worker absent from Thursday 2025-04-03 has been away
// five consecutive WORKING days at the end of Thursday 2025-04-10 (the Qingming holiday of
// 2025-04-04 to 04-06 and the weekend do not count: eight calendar days), so the ledger opens
// ABANDONED from 2025-04-11 and not before; the report that the worker is back closes it.
func TestAbsenceOpensAndClosesAbandonment(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config) { c.Coordination = lis.Addr().String() })

	lg := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	db, err := store.Open(filepath.Join(t.TempDir(), "coordination.db"), coordination.Schema, lg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	coord, err := coordination.New(db, lg, coordination.Config{LoadDefaultPairings: true, Now: e.clock.Now, CheckInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := grpcserver.New(grpcserver.Config{}, lg)
	coord.Register(srv.GRPC())
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(context.Background()) })
	runCtx, stop := context.WithCancel(context.Background())
	coordDone, recvDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(coordDone); _ = coord.Run(runCtx) }()
	go func() { defer close(recvDone); _ = e.svc.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-coordDone; <-recvDone })
	cc, err := peers.Dial(lis.Addr().String(), peers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	ledger := coordinationv1.NewLedgerServiceClient(cc)
	recon := coordinationv1.NewReconciliationServiceClient(cc)

	// Two workers depart (the sending province's report, straight to the ledger), arrive and
	// are onboarded (this service's reports, through its outbox).
	batchID := "520000-gz-bus-1"
	b := e.intakeScenario(batchID, 3)
	w1, w2 := batchID+"-w-1", batchID+"-w-2"
	var deps []*coordinationv1.LedgerEvent
	for _, w := range []string{w1, w2} {
		deps = append(deps, &coordinationv1.LedgerEvent{
			EventId: "520000:departed:" + batchID + ":" + w, Kind: coordinationv1.EventKind_EVENT_KIND_DEPARTED,
			WorkerId: w, BatchId: batchID, SendingRegion: sending, ReceivingRegion: region,
			OccurTime: b.GetDepartureTime(), ReporterRegion: sending,
		})
	}
	if resp, err := ledger.ReportEvents(ctx(t), &coordinationv1.ReportEventsRequest{Events: deps}); err != nil || resp.GetRecorded() != 2 {
		t.Fatalf("departures: %v %v", resp, err)
	}
	e.clock.Add(20 * time.Hour)
	onboardDay := today(e.clock.Now())
	if _, err := e.intake.ConfirmArrivals(ctx(t), &receivingv1.ConfirmArrivalsRequest{Name: b.GetName(), Confirmations: []*receivingv1.ArrivalConfirmation{
		{WorkerId: w1, Outcome: outcomeArrived}, {WorkerId: w2, Outcome: outcomeArrived}}}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{w1, w2} {
		if _, err := e.intake.RecordOnboarding(ctx(t), &receivingv1.RecordOnboardingRequest{WorkerId: w, OnboardDate: onboardDay}); err != nil {
			t.Fatal(err)
		}
	}

	open := func() string {
		resp, err := recon.ListDiscrepancies(ctx(t), &coordinationv1.ListDiscrepanciesRequest{PageSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range resp.GetDiscrepancies() {
			out = append(out, strings.TrimPrefix(d.GetWorkerId(), batchID+"-")+"/"+strings.TrimPrefix(d.GetKind().String(), "DISCREPANCY_KIND_"))
		}
		sort.Strings(out)
		return strings.Join(out, " ")
	}
	// settle waits until the ledger has every event of the outbox and the timer has passed the
	// clock, then checks the open discrepancies.
	settle := func(what, want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			got := open()
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s (%s): open %q, want %q", what, civil.FormatTime(e.clock.Now()), got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor(t, "the onboardings in the ledger", func() bool {
		resp, err := ledger.ListEvents(ctx(t), &coordinationv1.ListEventsRequest{Kind: coordinationv1.EventKind_EVENT_KIND_ONBOARDED})
		return err == nil && len(resp.GetEvents()) == 2
	})
	settle("onboarded", "")

	setClock := func(t0 time.Time) { e.clock.Add(t0.Sub(e.clock.Now())) }
	cst := func(m time.Month, d, h int) time.Time { return time.Date(2025, m, d, h, 0, 0, 0, civil.Zone) }
	setClock(cst(4, 3, 10))
	if _, err := e.intake.RecordAbsence(ctx(t), &receivingv1.RecordAbsenceRequest{WorkerId: w1, RequestId: "absent-1",
		Absence: &receivingv1.Absence{FirstDay: today(e.clock.Now())}}); err != nil {
		t.Fatal(err)
	}
	setClock(cst(4, 10, 23)) // four working days and most of the fifth: not yet
	// The absence event has reached the ledger (the relay is quick) before the check.
	waitFor(t, "the absence event in the ledger", func() bool {
		resp, err := ledger.ListEvents(ctx(t), &coordinationv1.ListEventsRequest{Kind: coordinationv1.EventKind_EVENT_KIND_ABSENCE})
		return err == nil && len(resp.GetEvents()) == 1
	})
	// The ledger has scheduled the batch for the end of the fifth working day, 2025-04-11 00:00.
	waitFor(t, "the abandonment deadline", func() bool {
		resp, err := recon.GetBatchReconciliation(ctx(t), &coordinationv1.GetBatchReconciliationRequest{SendingRegion: sending, BatchId: batchID})
		return err == nil && resp.GetReconciliation().GetNextDeadline().AsTime().Equal(cst(4, 11, 0))
	})
	settle("absent four and a bit working days", "")
	setClock(cst(4, 11, 0).Add(time.Minute))
	settle("absent five working days", "w-1/ABANDONED")

	setClock(cst(4, 14, 9))
	if _, err := e.intake.RecordAbsence(ctx(t), &receivingv1.RecordAbsenceRequest{WorkerId: w1, RequestId: "back-1",
		Absence: &receivingv1.Absence{FirstDay: civil.Today(cst(4, 3, 0)), BackDay: today(e.clock.Now())}}); err != nil {
		t.Fatal(err)
	}
	settle("back at work", "")

	// The feed says it: ABANDONED opened once and closed once, for w1 only.
	resp, err := recon.ListDiscrepancyChanges(ctx(t), &coordinationv1.ListDiscrepancyChangesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var changes []string
	for _, d := range resp.GetChanges() {
		changes = append(changes, strings.TrimPrefix(d.GetWorkerId(), batchID+"-")+"/"+strings.TrimPrefix(d.GetKind().String(), "DISCREPANCY_KIND_")+"/"+strings.TrimPrefix(d.GetState().String(), "DISCREPANCY_STATE_"))
	}
	if got := strings.Join(changes, " "); got != "w-1/ABANDONED/OPEN w-1/ABANDONED/CLOSED" {
		t.Errorf("discrepancy feed %q", got)
	}
}

// waitFor polls cond for up to 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/creditcode"
	"github.com/eastwest/labourlink/services/codes/idnumber"
	"github.com/eastwest/labourlink/services/platform/grpcserver"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/receiving"
	"github.com/eastwest/labourlink/services/sending"
)

// bgService is a service with background work (sending, receiving).
type bgService interface {
	Register(*grpc.Server)
	ServiceNames() []string
	Run(context.Context) error
}

// serveInProcess runs a service on a loopback listener with its background work, until the test
// ends, and returns its address.
func serveInProcess(t *testing.T, name string, schema store.Schema, build func(*store.DB) (bgService, error)) string {
	t.Helper()
	lg := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Named(name)
	db, err := store.Open(filepath.Join(t.TempDir(), name+".db"), schema, lg)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := build(db)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpcserver.New(grpcserver.Config{ServiceName: name, ShutdownTimeout: time.Second}, lg)
	svc.Register(srv.GRPC())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	srv.SetServing(svc.ServiceNames()...)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		_ = svc.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-ran
		srv.Stop(context.Background())
		db.Close()
	})
	return lis.Addr().String()
}

// waitFor polls cond until it holds (a wait for background work, with a generous deadline).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMatchAndBatchCommands walks `match run`, `match follow`, `batches plan`, `batches list`,
// `batches show` and `batches depart` against in-process sending and receiving services.
func TestMatchAndBatchCommands(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	recvAddr := serveInProcess(t, "receiving", receiving.Schema, func(db *store.DB) (bgService, error) {
		return receiving.New(db, nil, receiving.Config{Region: "440000"})
	})
	sendAddr := serveInProcess(t, "sending", sending.Schema, func(db *store.DB) (bgService, error) {
		return sending.New(db, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), sending.Config{
			Region: "520000", Receiving: map[string]string{"440000": recvAddr},
			MinBackoff: 20 * time.Millisecond, Outbox: outbox.Options{MinBackoff: 20 * time.Millisecond, PollInterval: 20 * time.Millisecond},
		})
	})
	rc, err := peers.Dial(recvAddr, peers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	sc, err := peers.Dial(sendAddr, peers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()

	first17 := "91440300MA5FN1234"
	check, err := creditcode.CheckChar(first17)
	if err != nil {
		t.Fatal(err)
	}
	vac, err := receivingv1.NewVacancyServiceClient(rc).CreateVacancy(ctx, &receivingv1.CreateVacancyRequest{Vacancy: &receivingv1.Vacancy{
		EmployerName: "深圳市南山电子装配有限公司", EmployerCreditCode: first17 + string(check), WorkCounty: "440305",
		Occupation: "GENERAL", Headcount: 5, MonthlyWageMinYuan: 4500, MonthlyWageMaxYuan: 6000,
		StartDate: &commonv1.Date{Year: 2027, Month: 3, Day: 1}, ValidThrough: &commonv1.Date{Year: 2027, Month: 6, Day: 30},
	}})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := sendingv1.NewRosterServiceClient(sc).ImportWorkers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var rows []*sendingv1.WorkerRow
	for i, name := range []string{"王春梅", "李秋菊", "张建国"} {
		first := fmt.Sprintf("5201021995050100%d", i)
		rows = append(rows, &sendingv1.WorkerRow{
			RowNumber: int64(i + 2), IdNumber: first + string(idnumber.CheckChar(first)), FullName: name,
			Phone: fmt.Sprintf("1380013800%d", i), HomeCounty: "520102", RegisteredPoor: "是",
			HealthCheckPassed: "是", HealthCheckDate: "2026-10-01",
		})
	}
	if err := stream.Send(&sendingv1.ImportWorkersRequest{ImportId: "cli-test", Rows: rows, Final: true, TotalRows: int64(len(rows))}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		t.Fatal(err)
	}
	matching := sendingv1.NewMatchingServiceClient(sc)
	waitFor(t, "the vacancy replicated", func() bool {
		resp, err := matching.ListDemand(ctx, &sendingv1.ListDemandRequest{})
		return err == nil && len(resp.GetVacancies()) == 1
	})
	waitFor(t, "the replica known current", func() bool {
		resp, err := matching.GetFollowStatus(ctx, &sendingv1.GetFollowStatusRequest{})
		return err == nil && len(resp.GetPositions()) == 1 && resp.GetPositions()[0].GetConnected() &&
			resp.GetPositions()[0].GetDemandFreshness().GetCurrentAsOf() != nil
	})

	code, out, errOut := runRoster(t, sendAddr, "match", "follow")
	if code != 0 || !strings.Contains(out, "  440000 广东省") || !strings.Contains(out, "connected:     yes") ||
		!strings.Contains(out, "watch open") {
		t.Fatalf("match follow: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runRoster(t, sendAddr, "match", "run", "-poll", "10ms", "-max-replica-staleness", "10m")
	if code != 0 || !strings.Contains(out, "proposed:         3 (60.0% of the open positions)") ||
		!strings.Contains(out, "demand replicas:  440000 广东省: current as of") ||
		!strings.Contains(out, vac.GetVacancy().GetName()) || !strings.Contains(out, "! 440000 广东省") {
		t.Fatalf("match run: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "matching [") {
		t.Fatalf("match run showed no progress:\n%s", errOut)
	}
	// The run has ended: it cannot be cancelled any more.
	code, out, errOut = runRoster(t, sendAddr, "match", "cancel", "1")
	if code == 0 || !strings.Contains(out+errOut, "FailedPrecondition") && !strings.Contains(out+errOut, "FAILED_PRECONDITION") {
		t.Fatalf("match cancel of an ended run: exit %d\n%s%s", code, out, errOut)
	}

	cands := receivingv1.NewCandidateServiceClient(rc)
	var pending []*receivingv1.Candidate
	waitFor(t, "the candidates", func() bool {
		resp, err := cands.ListCandidates(ctx, &receivingv1.ListCandidatesRequest{PageSize: 10})
		pending = resp.GetCandidates()
		return err == nil && len(pending) == 3
	})
	for _, c := range pending {
		if _, err := cands.DecideCandidate(ctx, &receivingv1.DecideCandidateRequest{Name: c.GetName(), Decision: receivingv1.Decision_DECISION_ACCEPT}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the acceptances", func() bool {
		resp, err := matching.ListProposals(ctx, &sendingv1.ListProposalsRequest{State: sendingv1.ProposalState_PROPOSAL_STATE_ACCEPTED})
		return err == nil && len(resp.GetProposals()) == 3
	})

	code, out, errOut = runRoster(t, sendAddr, "batches", "plan", "-mode", "bus", "-seats", "2", "-escort-name", "李卫国")
	if code != 0 || !strings.Contains(out, "Planned 2 batches") {
		t.Fatalf("batches plan: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runRoster(t, sendAddr, "batches", "list", "-state", "planned")
	if code != 0 || strings.Count(out, "520000-B0000000") != 2 {
		t.Fatalf("batches list: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runRoster(t, sendAddr, "batches", "show", "520000-B00000001")
	ids := regexp.MustCompile(`(?m)^520000-[A-Z2-7]{16}`).FindAllString(out, -1)
	if code != 0 || len(ids) != 2 {
		t.Fatalf("batches show: exit %d\n%s%s", code, out, errOut)
	}
	// The escort's manifest: names, masked phones, the employer; as a table and as a printable
	// page, neither with a phone in full.
	page := filepath.Join(t.TempDir(), "manifest.html")
	code, out, errOut = runRoster(t, sendAddr, "batches", "manifest", "520000-B00000001", "-html", page)
	if code != 0 || !strings.Contains(out, "李卫国") || !strings.Contains(out, "深圳市南山电子装配有限公司") ||
		strings.Count(out, "138****800") != 2 || !strings.Contains(out, ids[0]) {
		t.Fatalf("batches manifest: exit %d\n%s%s", code, out, errOut)
	}
	html, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(html), "@page { size: A4") || strings.Count(string(html), "138****800") != 2 ||
		strings.Contains(string(html), "http://") || strings.Contains(string(html), "https://") || !strings.Contains(string(html), "李卫国") {
		t.Fatalf("manifest page:\n%s", html)
	}
	for _, r := range rows {
		if strings.Contains(out, r.Phone) || strings.Contains(string(html), r.Phone) {
			t.Fatalf("a full phone in the manifest: %s", r.Phone)
		}
	}
	named := 0
	for _, r := range rows {
		if strings.Contains(string(html), r.FullName) {
			named++
		}
	}
	if named != 2 {
		t.Fatalf("manifest page names %d workers, want the batch's 2", named)
	}
	// roster find: the hotline's question, by name and county.
	code, out, errOut = runRoster(t, sendAddr, "roster", "find", "-name", "王春梅", "-county", "520102")
	if code != 0 || !strings.Contains(out, "王春梅") || !strings.Contains(out, "138****8000") || strings.Contains(out, "13800138000") ||
		!strings.Contains(out, "recorded as lookupRecords/1") {
		t.Fatalf("roster find: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runRoster(t, sendAddr, "roster", "lookups")
	if code != 0 || !strings.Contains(out, "name in 520102") || strings.Contains(out, "王春梅") {
		t.Fatalf("roster lookups: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runRoster(t, sendAddr, "batches", "depart", "520000-B00000001", "-boarded", ids[0], "-no-show-to", "available")
	if code != 0 || !strings.Contains(out, "1 of 2 boarded; no-shows back to available") || !strings.Contains(out, "! "+ids[1]) {
		t.Fatalf("batches depart: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = runRoster(t, sendAddr, "batches", "depart", "520000-B00000001", "-boarded", ids[0])
	if code != 1 || !strings.Contains(errOut, "FailedPrecondition") {
		t.Fatalf("departing twice: exit %d\n%s", code, errOut)
	}
	code, _, errOut = runRoster(t, sendAddr, "batches", "depart", "520000-B00000002")
	if code != 1 || !strings.Contains(errOut, "-boarded is required") {
		t.Fatalf("depart without -boarded: exit %d\n%s", code, errOut)
	}
}

// TestFollowStatusLayout: match follow shows one block per province, times in CST, a link
// down or a replica behind marked with "!", each feed's position with its lag (behind, catching
// up, caught up, or nothing while the head is unknown), and the last error with its time.
func TestFollowStatusLayout(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 1, 2, 32, 5, 0, time.UTC) // 10:32:05 CST
	var out strings.Builder
	printFollowStatus(&out, []*sendingv1.FollowPosition{
		{
			ReceivingRegion: "440000", Endpoint: "10.0.0.2:50053", DemandRevision: 1234, DecisionRevision: 56,
			LastChangeTime: timestamppb.New(at.Add(-time.Minute)), LastMessageTime: timestamppb.New(at),
			LastError: "demand feed: nothing received on the demand feed for 8s", LastErrorTime: timestamppb.New(at.Add(8 * time.Second)),
			DemandFreshness:    &sendingv1.ReplicaFreshness{ReceivingRegion: "440000", CurrentAsOf: timestamppb.New(at), Staleness: durationpb.New(6*time.Minute + 12*time.Second)},
			DemandLag:          &sendingv1.FeedLag{HeadRevision: 1240, AppliedRevision: 1234, RevisionsBehind: 6},
			DecisionLag:        &sendingv1.FeedLag{HeadRevision: 56, AppliedRevision: 56},
			EmploymentRevision: 17, EmploymentLag: &sendingv1.FeedLag{HeadRevision: 20, AppliedRevision: 17, RevisionsBehind: 3},
		},
		{
			ReceivingRegion: "330000", Endpoint: "10.0.0.3:50053", Connected: true, LastMessageTime: timestamppb.New(at),
			DemandFreshness: &sendingv1.ReplicaFreshness{ReceivingRegion: "330000", CurrentAsOf: timestamppb.New(at), Staleness: durationpb.New(time.Second), Connected: true},
			DemandLag:       &sendingv1.FeedLag{CaughtUp: true},
		},
	})
	want := `! 440000 广东省  10.0.0.2:50053
    connected:     NO: a watch is down or has not answered yet
    demand:        current as of 2026-12-01 10:32:05 CST (6m12s behind) BEHIND, watch DOWN
    positions:     demand revision 1234 (head 1240, 6 behind), decision revision 56 (head 56, catching up)
    employment:    revision 17 (head 20, 3 behind)
    last message:  2026-12-01 10:32:05 CST
    last change:   2026-12-01 10:31:05 CST
    last error:    2026-12-01 10:32:13 CST  demand feed: nothing received on the demand feed for 8s

  330000 浙江省  10.0.0.3:50053
    connected:     yes, the feeds answer
    demand:        current as of 2026-12-01 10:32:05 CST (1s behind), watch open
    positions:     demand revision 0 (caught up), decision revision 0
    employment:    revision 0
    last message:  2026-12-01 10:32:05 CST
    last change:   none
    last error:    none since the feeds last answered
`
	if out.String() != want {
		t.Fatalf("match follow output:\n%s\nwant:\n%s", out.String(), want)
	}
}

// TestRunSummaryShowsReplicasAndWarnings: a finished run's summary says how current each
// replica was and shows the run's warnings.
func TestRunSummaryShowsReplicasAndWarnings(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	printRunSummary(&out, &sendingv1.MatchRun{
		Name: "matchRuns/7", Algorithm: "test",
		Replicas: []*sendingv1.ReplicaFreshness{
			{ReceivingRegion: "440000", CurrentAsOf: timestamppb.New(time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)), Staleness: durationpb.New(2 * time.Minute)},
			{ReceivingRegion: "330000"},
		},
		Warnings: []string{"the demand replica of 440000 广东省 (last known current 2m0s ago): its vacancies may have been filled or closed since"},
	})
	for _, want := range []string{
		"  demand replicas:  440000 广东省: current as of 2026-12-01 10:00:00 CST (2m0s behind) BEHIND, watch DOWN\n",
		"                    330000 浙江省: never known current, watch DOWN\n",
		"! warning: the demand replica of 440000 广东省 (last known current 2m0s ago)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

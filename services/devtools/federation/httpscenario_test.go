package federation_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/devtools/federation"
	"github.com/eastwest/labourlink/services/devtools/scenario"
	"github.com/eastwest/labourlink/services/devtools/wait"
	"github.com/eastwest/labourlink/services/platform/peers"
)

// federationConns are the three services of a federation over one transport.
type federationConns struct{ coord, sending, receiving grpc.ClientConnInterface }

// TestScenarioOverHTTPJSON is the done-when of the HTTP/JSON listener: a system that speaks
// only HTTP and JSON (as curl does, docs/http.md) does the whole scenario in a real `labourlink
// dev` federation of processes — the pairing registered, the roster imported (a client stream
// in Connect envelopes), a vacancy published, a match run, the employer's acceptances, a batch
// planned and departed, arrivals confirmed with a no-show and a worker never confirmed,
// onboardings, the employment followed up (a worker leaves the job, another comes home), a
// baseline set, the assessment and the reconciliation read — and every figure it reads at the
// end equals the same read over gRPC. Then the dashboards of the three services, in a real
// Chromium, in Chinese and English, show the API's figures (checkDashboards; skipped without
// chromium unless CI=true).
func TestScenarioOverHTTPJSON(t *testing.T) {
	t.Parallel()
	const grace = 5 * time.Second
	d := startDev(t, "-grace-period", grace.String())
	var calls atomic.Int64
	over := func(kind string) connectJSON {
		return connectJSON{base: "http://" + federation.HTTPAddr(d.addrs[kind]), hc: &http.Client{Timeout: 30 * time.Second}, calls: &calls}
	}
	hc := federationConns{over("coordination"), over("sending"), over("receiving")}
	dial := func(kind string) *grpc.ClientConn {
		cc, err := peers.Dial(d.addrs[kind], peers.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return cc
	}
	gc := federationConns{dial("coordination"), dial("sending"), dial("receiving")}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// The pairing: `labourlink dev` loads the default pairs; registering them again is a no-op
	// with a request id, and a second create of Guangdong–Guizhou is ALREADY_EXISTS (HTTP 409).
	reg := coordinationv1.NewRegistryServiceClient(hc.coord)
	if _, err := reg.LoadDefaultPairings(ctx, &coordinationv1.LoadDefaultPairingsRequest{RequestId: "http-pairings"}); err != nil {
		t.Fatalf("LoadDefaultPairings over HTTP: %v", err)
	}
	_, err := reg.CreatePairing(ctx, &coordinationv1.CreatePairingRequest{
		Pairing: &coordinationv1.Pairing{ReceivingRegion: federation.ReceivingRegion, SendingRegion: federation.SendingRegion}})
	if status.Code(err) != codes.AlreadyExists {
		t.Fatalf("CreatePairing of a registered pair over HTTP: %v, want ALREADY_EXISTS", err)
	}
	pairs, err := reg.ListPairings(ctx, &coordinationv1.ListPairingsRequest{Region: federation.SendingRegion})
	if err != nil {
		t.Fatal(err)
	}
	if ps := pairs.GetPairings(); len(ps) != 1 || ps[0].GetName() != "pairings/440000-520000" || ps[0].GetSendingDisplayName() != "贵州省" {
		t.Fatalf("pairings of 520000 over HTTP: %v", ps)
	}

	const workers = 6
	res, err := scenario.Run(ctx, scenario.Conns{Coordination: hc.coord, Sending: hc.sending, Receiving: hc.receiving}, scenario.Options{
		Workers: workers, Step: func(msg string) { t.Log("over HTTP/JSON: " + msg) },
	})
	if err != nil {
		t.Fatal(err)
	}

	// The employment follow-up: an onboarded worker (not the one who came home) leaves the job,
	// one not registered poor when there is one, so that registered-poor workers stay out at
	// work for the dynamics; the ledger has it.
	today := civil.Today(time.Now())
	roster := sendingv1.NewRosterServiceClient(hc.sending)
	poor := map[string]bool{}
	for _, w := range res.Onboarded {
		got, err := roster.GetWorker(ctx, &sendingv1.GetWorkerRequest{Name: "workers/" + w})
		if err != nil {
			t.Fatalf("GetWorker over HTTP: %v", err)
		}
		poor[w] = got.GetWorker().GetRegisteredPoor()
	}
	left := res.Onboarded[1]
	for _, w := range res.Onboarded[1:] {
		if !poor[w] {
			left = w
			break
		}
	}
	var outAtWork int64 // registered-poor workers onboarded and still at work
	for _, w := range res.Onboarded {
		if poor[w] && w != left && w != res.ReturnedHome {
			outAtWork++
		}
	}
	if _, err := receivingv1.NewIntakeServiceClient(hc.receiving).RecordJobLeft(ctx, &receivingv1.RecordJobLeftRequest{
		WorkerId: left, LeftDate: today, Reason: "回乡照顾家人", RequestId: "http-left",
	}); err != nil {
		t.Fatalf("RecordJobLeft over HTTP: %v", err)
	}
	ledger := coordinationv1.NewLedgerServiceClient(hc.coord)
	if !wait.Until(time.Minute, func() bool {
		resp, err := ledger.ListEvents(ctx, &coordinationv1.ListEventsRequest{WorkerId: left, Kind: coordinationv1.EventKind_EVENT_KIND_LEFT_JOB, PageSize: 10})
		return err == nil && len(resp.GetEvents()) == 1
	}) {
		t.Fatalf("the ledger has no LEFT_JOB of %s a minute after RecordJobLeft", left)
	}

	// The local employers of Guizhou (a workshop that has resumed work, an enterprise that has
	// not), for the recovery rate.
	returnees := sendingv1.NewReturneeServiceClient(hc.sending)
	for i, e := range []*sendingv1.LocalEmployer{
		{DisplayName: "关岭县花江镇扶贫车间", Kind: sendingv1.LocalEmployerKind_LOCAL_EMPLOYER_KIND_POVERTY_ALLEVIATION_WORKSHOP, County: "520102", Capacity: 30, Resumed: true},
		{DisplayName: "贵阳示范龙头企业", Kind: sendingv1.LocalEmployerKind_LOCAL_EMPLOYER_KIND_LEADING_ENTERPRISE, County: "520103", Capacity: 200},
	} {
		if _, err := returnees.CreateLocalEmployer(ctx, &sendingv1.CreateLocalEmployerRequest{LocalEmployer: e, RequestId: fmt.Sprintf("http-employer-%d", i)}); err != nil {
			t.Fatalf("CreateLocalEmployer over HTTP: %v", err)
		}
	}

	// The assessment against a baseline, and the reconciliation once the grace period is over.
	year := int32(civil.Year(time.Now()))
	assess := coordinationv1.NewAssessmentServiceClient(hc.coord)
	if _, err := assess.SetBaseline(ctx, &coordinationv1.SetBaselineRequest{Region: federation.SendingRegion, Year: year, Count: 3, RequestId: "http-baseline"}); err != nil {
		t.Fatalf("SetBaseline over HTTP: %v", err)
	}
	recon := coordinationv1.NewReconciliationServiceClient(hc.coord)
	var open []*coordinationv1.Discrepancy
	wait.Until(grace+time.Minute, func() bool {
		resp, err := recon.ListDiscrepancies(ctx, &coordinationv1.ListDiscrepanciesRequest{PageSize: 100})
		open = resp.GetDiscrepancies()
		return err == nil && len(open) >= 2
	})
	if len(open) != 2 {
		t.Fatalf("over HTTP: %d open discrepancies %v, want the no-show %s and the unaccounted %s", len(open), open, res.NoShow, res.Missing)
	}
	kinds := map[string]coordinationv1.DiscrepancyKind{}
	for _, dsc := range open {
		kinds[dsc.GetWorkerId()] = dsc.GetKind()
	}
	if kinds[res.NoShow] != coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_NO_SHOW || kinds[res.Missing] != coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_UNACCOUNTED {
		t.Errorf("discrepancies over HTTP %v, want NO_SHOW of %s and UNACCOUNTED of %s", kinds, res.NoShow, res.Missing)
	}

	// Every figure read over HTTP/JSON equals the same read over gRPC.
	overHTTP := readFigures(t, ctx, hc, res, year, today)
	overGRPC := readFigures(t, ctx, gc, res, year, today)
	for name, g := range overGRPC {
		if h := overHTTP[name]; !proto.Equal(g, h) {
			t.Errorf("%s over HTTP/JSON differs from gRPC:\ngRPC %s\nHTTP %s", name, protojson.Format(g), protojson.Format(h))
		}
	}
	b := overHTTP["GetBatchReconciliation"].(*coordinationv1.GetBatchReconciliationResponse).GetReconciliation()
	if b.GetDeparted() != workers || b.GetArrived() != workers-2 || b.GetNoShow() != 1 || b.GetUnaccounted() != 1 {
		t.Errorf("batch reconciliation over HTTP: %v", b)
	}
	sums := overHTTP["ListPairingSummaries"].(*coordinationv1.ListPairingSummariesResponse).GetSummaries()
	if len(sums) != 1 || sums[0].GetDeparted() != workers || sums[0].GetOnboarded() != workers-2 || sums[0].GetLeftJob() != 1 ||
		sums[0].GetReturnedHome() != 1 || sums[0].GetOpenDiscrepancies() != 2 {
		t.Errorf("pairing summaries over HTTP: %v", sums)
	}
	if a := overHTTP["GetAssessment"].(*coordinationv1.GetAssessmentResponse).GetAssessment(); a.GetNumerator() == 0 || a.GetDenominator() != 3 {
		t.Errorf("assessment of %s over HTTP: %v, want the registered-poor workers sent out against the baseline 3", federation.SendingRegion, a)
	}
	if n := overHTTP["GetEmploymentDynamics"].(*sendingv1.GetEmploymentDynamicsResponse).GetTotal().GetOutAtWork(); n != outAtWork {
		t.Errorf("sending dynamics over HTTP: %d out at work today, want the %d registered-poor workers onboarded and still at work", n, outAtWork)
	}
	if r := overHTTP["GetEmploymentDynamics"].(*sendingv1.GetEmploymentDynamicsResponse).GetRecoveryTotal().GetRecoveryRate(); r.GetNumerator() != 1 || r.GetDenominator() != 2 {
		t.Errorf("sending recovery rate over HTTP: %v, want 1 of the 2 local employers resumed", r)
	}
	t.Logf("the scenario took %d HTTP/JSON requests; %d registered-poor workers out at work at the end", calls.Load(), outAtWork)

	checkDashboards(t, ctx, d, gc, year, today, outAtWork)
}

// readFigures reads the scenario's end state from the three services over conns: the
// reconciliation, pairing summaries, discrepancies, assessments, dynamics, the intake batches,
// the workers and the ledger's events of the batch.
func readFigures(t *testing.T, ctx context.Context, c federationConns, res *scenario.Result, year int32, today *commonv1.Date) map[string]proto.Message {
	t.Helper()
	recon := coordinationv1.NewReconciliationServiceClient(c.coord)
	assess := coordinationv1.NewAssessmentServiceClient(c.coord)
	dyn := coordinationv1.NewDynamicsServiceClient(c.coord)
	ledger := coordinationv1.NewLedgerServiceClient(c.coord)
	roster := sendingv1.NewRosterServiceClient(c.sending)
	sdyn := sendingv1.NewDynamicsServiceClient(c.sending)
	intake := receivingv1.NewIntakeServiceClient(c.receiving)
	out := map[string]proto.Message{}
	read := func(name string, m proto.Message, err error) {
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = m
	}
	m1, err := recon.GetBatchReconciliation(ctx, &coordinationv1.GetBatchReconciliationRequest{BatchId: res.BatchID, SendingRegion: federation.SendingRegion})
	read("GetBatchReconciliation", m1, err)
	m2, err := recon.ListPairingSummaries(ctx, &coordinationv1.ListPairingSummariesRequest{Region: federation.SendingRegion, PageSize: 100,
		PeriodStart: &commonv1.Date{Year: year, Month: 1, Day: 1}, PeriodEnd: today})
	read("ListPairingSummaries", m2, err)
	m3, err := recon.ListDiscrepancies(ctx, &coordinationv1.ListDiscrepanciesRequest{PageSize: 100})
	read("ListDiscrepancies", m3, err)
	m4, err := assess.GetAssessment(ctx, &coordinationv1.GetAssessmentRequest{Region: federation.SendingRegion, Year: year})
	read("GetAssessment", m4, err)
	m5, err := assess.ListAssessments(ctx, &coordinationv1.ListAssessmentsRequest{Year: year, PageSize: 1000})
	read("ListAssessments", m5, err)
	m6, err := dyn.GetNationalEmploymentDynamics(ctx, &coordinationv1.GetNationalEmploymentDynamicsRequest{AsOf: today})
	read("GetNationalEmploymentDynamics", m6, err)
	m7, err := ledger.ListEvents(ctx, &coordinationv1.ListEventsRequest{BatchId: res.BatchID, PageSize: 1000})
	read("ListEvents", m7, err)
	m8, err := sdyn.GetEmploymentDynamics(ctx, &sendingv1.GetEmploymentDynamicsRequest{AsOf: today})
	read("GetEmploymentDynamics", m8, err)
	m9, err := intake.ListIntakeBatches(ctx, &receivingv1.ListIntakeBatchesRequest{PageSize: 100})
	read("ListIntakeBatches", m9, err)
	for _, w := range res.Workers {
		m, err := roster.GetWorker(ctx, &sendingv1.GetWorkerRequest{Name: "workers/" + w})
		read("GetWorker "+w, m, err)
	}
	return out
}

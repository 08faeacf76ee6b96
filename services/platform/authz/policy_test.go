package authz

import (
	"context"
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	backupv1 "github.com/eastwest/labourlink/proto/labourlink/backup/v1"
	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	ledgerwatchv1 "github.com/eastwest/labourlink/proto/labourlink/ledgerwatch/v1"
	outboxv1 "github.com/eastwest/labourlink/proto/labourlink/outbox/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/identity"
)

// serviceDescs are every gRPC service a labourlink server registers.
var serviceDescs = []grpc.ServiceDesc{
	sendingv1.RosterService_ServiceDesc, sendingv1.MatchingService_ServiceDesc, sendingv1.TransportService_ServiceDesc, sendingv1.ReturneeService_ServiceDesc, sendingv1.DynamicsService_ServiceDesc, sendingv1.SubsidyService_ServiceDesc,
	receivingv1.VacancyService_ServiceDesc, receivingv1.DemandFeedService_ServiceDesc,
	receivingv1.CandidateService_ServiceDesc, receivingv1.IntakeService_ServiceDesc, receivingv1.EmploymentFeedService_ServiceDesc,
	coordinationv1.RegistryService_ServiceDesc, coordinationv1.LedgerService_ServiceDesc,
	coordinationv1.ReconciliationService_ServiceDesc, coordinationv1.AssessmentService_ServiceDesc, coordinationv1.DynamicsService_ServiceDesc, coordinationv1.EligibilityService_ServiceDesc,
	outboxv1.OutboxService_ServiceDesc, backupv1.BackupService_ServiceDesc, ledgerwatchv1.LedgerWatchService_ServiceDesc,
	healthpb.Health_ServiceDesc, reflectionv1.ServerReflection_ServiceDesc, reflectionv1alpha.ServerReflection_ServiceDesc,
}

func methodsOf(d grpc.ServiceDesc) []string {
	var out []string
	for _, m := range d.Methods {
		out = append(out, "/"+d.ServiceName+"/"+m.MethodName)
	}
	for _, s := range d.Streams {
		out = append(out, "/"+d.ServiceName+"/"+s.StreamName)
	}
	return out
}

func TestPolicyCoversEveryMethod(t *testing.T) {
	t.Parallel()
	known := map[string]bool{}
	for _, d := range serviceDescs {
		for _, m := range methodsOf(d) {
			known[m] = true
			if r, ok := policy[m]; !ok || len(r) == 0 {
				t.Errorf("%s has no authorisation rule", m)
			}
		}
	}
	// Every proto service of labourlink is in serviceDescs.
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(fd.Package()), "labourlink.") {
			return true
		}
		for i := 0; i < fd.Services().Len(); i++ {
			sd := fd.Services().Get(i)
			for j := 0; j < sd.Methods().Len(); j++ {
				m := "/" + string(sd.FullName()) + "/" + string(sd.Methods().Get(j).Name())
				if !known[m] {
					t.Errorf("%s (in %s) is missing from this test's service list", m, fd.Path())
				}
			}
		}
		return true
	})
	for m := range policy {
		if !known[m] {
			t.Errorf("policy has a rule for %s, which no service serves", m)
		}
	}
}

// inputOf returns a new request message of method.
func inputOf(t *testing.T, method string) proto.Message {
	t.Helper()
	svc, name, _ := strings.Cut(strings.TrimPrefix(method, "/"), "/")
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc))
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	md := d.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(name))
	if md == nil {
		t.Fatalf("%s: no such method", method)
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	return mt.New().Interface()
}

// Every field a rule names is a string field of the method's request, and every grant to a
// paired sending service on a request with a sending_region checks it.
// fullViews pairs each List that takes a view (AIP-157) with the Get whose resource its FULL
// view shows.
var fullViews = map[string]string{
	sendingv1.MatchingService_ListMatchRuns_FullMethodName:       sendingv1.MatchingService_GetMatchRun_FullMethodName,
	outboxv1.OutboxService_ListQuarantinedEntries_FullMethodName: outboxv1.OutboxService_GetQuarantinedEntry_FullMethodName,
}

// TestFullViewsAsTheGet: a List whose FULL view shows what its Get shows is allowed to the same
// parties as the Get, without conditions of its own, so the view gives no one more than Get.
func TestFullViewsAsTheGet(t *testing.T) {
	for list, get := range fullViews {
		l, g := policy[list], policy[get]
		if l == nil || g == nil || l.allowed() != g.allowed() {
			t.Errorf("%s is allowed to %q, %s to %q: want the same", list, l.allowed(), get, g.allowed())
		}
		for _, gr := range append(append(rule(nil), l...), g...) {
			if gr.constrained() {
				t.Errorf("%s or %s has a conditional grant: the full view needs its own check", list, get)
			}
		}
	}
}

func TestRuleFieldsExist(t *testing.T) {
	t.Parallel()
	for method, r := range policy {
		req := inputOf(t, method)
		hasSendingRegion := req.ProtoReflect().Descriptor().Fields().ByName("sending_region") != nil
		for _, g := range r {
			for _, f := range g.fields {
				if _, ok := stringField(req, f); !ok {
					t.Errorf("%s: %s is not a string field of %s", method, f, req.ProtoReflect().Descriptor().FullName())
				}
			}
			if g.who == pairedSending && hasSendingRegion && !containsString(g.fields, "sending_region") {
				t.Errorf("%s: the paired sending service's grant does not check sending_region", method)
			}
			if (g.who == provincial || g.who == regionalService) && !g.constrained() {
				t.Errorf("%s: a grant to %v must check the request's region", method, g.who)
			}
		}
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

type pairingsFunc func(ctx context.Context, receiving, sending string) (bool, error)

func (f pairingsFunc) Paired(ctx context.Context, r, s string) (bool, error) { return f(ctx, r, s) }

func TestDecisions(t *testing.T) {
	t.Parallel()
	snd := mustNew(t, identity.Sending("520000"), nil)
	rcv := mustNew(t, identity.Receiving("440000"), nil)
	crd := mustNew(t, identity.Coordination(), nil)
	type tc struct {
		name   string
		a      *Authorizer
		method string
		caller identity.Identity
		req    proto.Message
		reason string // "" for allowed
	}
	tests := []tc{
		{"own system imports", snd, sendingv1.RosterService_ImportWorkers_FullMethodName, identity.System("520000"), nil, ""},
		{"other province's system cannot import", snd, sendingv1.RosterService_ImportWorkers_FullMethodName, identity.System("510000"), nil, "CALLER_NOT_ALLOWED"},
		{"read operator cannot import", snd, sendingv1.RosterService_ImportWorkers_FullMethodName, identity.Operator("520000", false), nil, "CALLER_NOT_ALLOWED"},
		{"national full operator imports", snd, sendingv1.RosterService_ImportWorkers_FullMethodName, identity.Operator("", true), nil, ""},
		{"operator of another province cannot read", snd, sendingv1.RosterService_ListWorkers_FullMethodName, identity.Operator("440000", true), nil, "CALLER_NOT_ALLOWED"},
		{"read operator, basic view", snd, sendingv1.RosterService_GetWorker_FullMethodName, identity.Operator("520000", false),
			&sendingv1.GetWorkerRequest{Name: "workers/x"}, ""},
		{"read operator, full view", snd, sendingv1.RosterService_GetWorker_FullMethodName, identity.Operator("", false),
			&sendingv1.GetWorkerRequest{Name: "workers/x", View: sendingv1.WorkerView_WORKER_VIEW_FULL}, "FULL_VIEW_NOT_ALLOWED"},
		{"full operator, full view", snd, sendingv1.RosterService_GetWorker_FullMethodName, identity.Operator("520000", true),
			&sendingv1.GetWorkerRequest{View: sendingv1.WorkerView_WORKER_VIEW_FULL}, ""},
		{"read operator, lookup in basic view", snd, sendingv1.RosterService_LookupWorker_FullMethodName, identity.Operator("520000", false),
			&sendingv1.LookupWorkerRequest{}, ""},
		{"read operator, lookup in full view", snd, sendingv1.RosterService_LookupWorker_FullMethodName, identity.Operator("520000", false),
			&sendingv1.LookupWorkerRequest{View: sendingv1.WorkerView_WORKER_VIEW_FULL}, "FULL_VIEW_NOT_ALLOWED"},
		{"full operator, lookup in full view", snd, sendingv1.RosterService_LookupWorker_FullMethodName, identity.Operator("520000", true),
			&sendingv1.LookupWorkerRequest{View: sendingv1.WorkerView_WORKER_VIEW_FULL}, ""},
		{"read operator finds by name", snd, sendingv1.RosterService_FindWorkers_FullMethodName, identity.Operator("520000", false),
			&sendingv1.FindWorkersRequest{}, ""},
		{"another province cannot find by name", snd, sendingv1.RosterService_FindWorkers_FullMethodName, identity.Operator("440000", true),
			&sendingv1.FindWorkersRequest{}, "CALLER_NOT_ALLOWED"},
		{"a receiving service cannot find by name", snd, sendingv1.RosterService_FindWorkers_FullMethodName, identity.Receiving("440000"),
			&sendingv1.FindWorkersRequest{}, "CALLER_NOT_ALLOWED"},
		{"read operator reads a manifest", snd, sendingv1.TransportService_GetBatchManifest_FullMethodName, identity.Operator("520000", false),
			&sendingv1.GetBatchManifestRequest{}, ""},
		{"a receiving service cannot read a manifest", snd, sendingv1.TransportService_GetBatchManifest_FullMethodName, identity.Receiving("440000"),
			&sendingv1.GetBatchManifestRequest{}, "CALLER_NOT_ALLOWED"},
		{"own system, full view", snd, sendingv1.RosterService_GetWorker_FullMethodName, identity.System("520000"),
			&sendingv1.GetWorkerRequest{View: sendingv1.WorkerView_WORKER_VIEW_FULL}, ""},
		{"a service cannot read a roster", snd, sendingv1.RosterService_ListWorkers_FullMethodName, identity.Receiving("440000"), nil, "CALLER_NOT_ALLOWED"},

		{"paired sending follows the feed", rcv, receivingv1.DemandFeedService_ListDemandChanges_FullMethodName, identity.Sending("520000"),
			&receivingv1.ListDemandChangesRequest{SendingRegion: "520000"}, ""},
		{"paired sending, for another region", rcv, receivingv1.DemandFeedService_ListDemandChanges_FullMethodName, identity.Sending("520000"),
			&receivingv1.ListDemandChangesRequest{SendingRegion: "450000"}, "REGION_MISMATCH"},
		{"paired sending, no region", rcv, receivingv1.DemandFeedService_ListDemandChanges_FullMethodName, identity.Sending("520000"),
			&receivingv1.ListDemandChangesRequest{}, "REGION_MISMATCH"},
		{"unpaired sending", rcv, receivingv1.DemandFeedService_ListDemandChanges_FullMethodName, identity.Sending("510000"),
			&receivingv1.ListDemandChangesRequest{SendingRegion: "510000"}, "NOT_PAIRED"},
		{"own system reads the feed", rcv, receivingv1.DemandFeedService_ListDemandChanges_FullMethodName, identity.System("440000"), nil, ""},
		{"paired sending follows its employment feed", rcv, receivingv1.EmploymentFeedService_WatchEmployment_FullMethodName, identity.Sending("520000"),
			&receivingv1.WatchEmploymentRequest{SendingRegion: "520000"}, ""},
		{"paired sending, another province's employment feed", rcv, receivingv1.EmploymentFeedService_ListEmploymentChanges_FullMethodName, identity.Sending("520000"),
			&receivingv1.ListEmploymentChangesRequest{SendingRegion: "450000"}, "REGION_MISMATCH"},
		{"unpaired sending, employment feed", rcv, receivingv1.EmploymentFeedService_ListEmploymentChanges_FullMethodName, identity.Sending("510000"),
			&receivingv1.ListEmploymentChangesRequest{SendingRegion: "510000"}, "NOT_PAIRED"},
		{"another receiving service, employment feed", rcv, receivingv1.EmploymentFeedService_WatchEmployment_FullMethodName, identity.Receiving("330000"),
			&receivingv1.WatchEmploymentRequest{SendingRegion: "520000"}, "CALLER_NOT_ALLOWED"},
		{"read operator reads an employment feed", rcv, receivingv1.EmploymentFeedService_ListEmploymentChanges_FullMethodName, identity.Operator("440000", false),
			&receivingv1.ListEmploymentChangesRequest{SendingRegion: "520000"}, ""},
		{"paired sending re-reads its trips", rcv, receivingv1.IntakeService_ListEmploymentRecords_FullMethodName, identity.Sending("520000"),
			&receivingv1.ListEmploymentRecordsRequest{SendingRegion: "520000", WorkerId: "520000-w-1"}, ""},
		{"paired sending, another province's trips", rcv, receivingv1.IntakeService_ListEmploymentRecords_FullMethodName, identity.Sending("520000"),
			&receivingv1.ListEmploymentRecordsRequest{WorkerId: "450000-w-1"}, "REGION_MISMATCH"},
		{"announce, nested region", rcv, receivingv1.IntakeService_AnnounceBatch_FullMethodName, identity.Sending("520000"),
			&receivingv1.AnnounceBatchRequest{Batch: &receivingv1.IntakeBatch{SendingRegion: "520000"}}, ""},
		{"announce, nested region of another", rcv, receivingv1.IntakeService_AnnounceBatch_FullMethodName, identity.Sending("520000"),
			&receivingv1.AnnounceBatchRequest{Batch: &receivingv1.IntakeBatch{SendingRegion: "450000"}}, "REGION_MISMATCH"},
		{"announce, no batch", rcv, receivingv1.IntakeService_AnnounceBatch_FullMethodName, identity.Sending("520000"),
			&receivingv1.AnnounceBatchRequest{}, "REGION_MISMATCH"},
		{"own system cannot announce", rcv, receivingv1.IntakeService_AnnounceBatch_FullMethodName, identity.System("440000"),
			&receivingv1.AnnounceBatchRequest{Batch: &receivingv1.IntakeBatch{SendingRegion: "440000"}}, "CALLER_NOT_ALLOWED"},
		{"submit candidates", rcv, receivingv1.CandidateService_SubmitCandidates_FullMethodName, identity.Sending("520000"),
			&receivingv1.SubmitCandidatesRequest{SendingRegion: "520000", Candidates: []*receivingv1.Candidate{{}, {SendingRegion: "520000"}}}, ""},
		{"submit another region's candidate", rcv, receivingv1.CandidateService_SubmitCandidates_FullMethodName, identity.Sending("520000"),
			&receivingv1.SubmitCandidatesRequest{SendingRegion: "520000", Candidates: []*receivingv1.Candidate{{SendingRegion: "450000"}}}, "REGION_MISMATCH"},
		{"sending reads intake", rcv, receivingv1.IntakeService_ListIntakeBatches_FullMethodName, identity.Sending("520000"),
			&receivingv1.ListIntakeBatchesRequest{SendingRegion: "520000"}, "CALLER_NOT_ALLOWED"},
		{"other system reads intake", rcv, receivingv1.IntakeService_ListIntakeBatches_FullMethodName, identity.System("520000"), nil, "CALLER_NOT_ALLOWED"},

		{"register own region", crd, coordinationv1.RegistryService_RegisterRegion_FullMethodName, identity.Sending("520000"),
			&coordinationv1.RegisterRegionRequest{Region: &coordinationv1.Region{Code: "520000", Role: commonv1.RegionRole_REGION_ROLE_SENDING}}, ""},
		{"register another region", crd, coordinationv1.RegistryService_RegisterRegion_FullMethodName, identity.Sending("520000"),
			&coordinationv1.RegisterRegionRequest{Region: &coordinationv1.Region{Code: "510000", Role: commonv1.RegionRole_REGION_ROLE_SENDING}}, "REGION_MISMATCH"},
		{"register in another role", crd, coordinationv1.RegistryService_RegisterRegion_FullMethodName, identity.Sending("520000"),
			&coordinationv1.RegisterRegionRequest{Region: &coordinationv1.Region{Code: "520000", Role: commonv1.RegionRole_REGION_ROLE_RECEIVING}}, "ROLE_MISMATCH"},
		{"system cannot register", crd, coordinationv1.RegistryService_RegisterRegion_FullMethodName, identity.System("520000"),
			&coordinationv1.RegisterRegionRequest{Region: &coordinationv1.Region{Code: "520000", Role: commonv1.RegionRole_REGION_ROLE_SENDING}}, "CALLER_NOT_ALLOWED"},
		{"report own departures", crd, coordinationv1.LedgerService_ReportEvents_FullMethodName, identity.Sending("520000"),
			&coordinationv1.ReportEventsRequest{Events: []*coordinationv1.LedgerEvent{
				{ReporterRegion: "520000", SendingRegion: "520000", ReceivingRegion: "440000", Kind: coordinationv1.EventKind_EVENT_KIND_DEPARTED}}}, ""},
		{"report another's departures", crd, coordinationv1.LedgerService_ReportEvents_FullMethodName, identity.Sending("520000"),
			&coordinationv1.ReportEventsRequest{Events: []*coordinationv1.LedgerEvent{
				{ReporterRegion: "520000", Kind: coordinationv1.EventKind_EVENT_KIND_DEPARTED},
				{ReporterRegion: "510000", Kind: coordinationv1.EventKind_EVENT_KIND_DEPARTED}}}, "REGION_MISMATCH"},
		{"sending reports an arrival", crd, coordinationv1.LedgerService_ReportEvents_FullMethodName, identity.Sending("520000"),
			&coordinationv1.ReportEventsRequest{Events: []*coordinationv1.LedgerEvent{
				{ReporterRegion: "520000", Kind: coordinationv1.EventKind_EVENT_KIND_ARRIVED}}}, "ROLE_MISMATCH"},
		{"departure of another sending region", crd, coordinationv1.LedgerService_ReportEvents_FullMethodName, identity.Sending("520000"),
			&coordinationv1.ReportEventsRequest{Events: []*coordinationv1.LedgerEvent{
				{ReporterRegion: "520000", SendingRegion: "510000", Kind: coordinationv1.EventKind_EVENT_KIND_DEPARTED}}}, "REGION_MISMATCH"},
		{"receiving reports arrivals", crd, coordinationv1.LedgerService_ReportEvents_FullMethodName, identity.Receiving("440000"),
			&coordinationv1.ReportEventsRequest{Events: []*coordinationv1.LedgerEvent{
				{ReporterRegion: "440000", SendingRegion: "520000", ReceivingRegion: "440000", Kind: coordinationv1.EventKind_EVENT_KIND_ARRIVED}}}, ""},
		{"an operator cannot report", crd, coordinationv1.LedgerService_ReportEvents_FullMethodName, identity.Operator("", true),
			&coordinationv1.ReportEventsRequest{}, "CALLER_NOT_ALLOWED"},
		{"province reads its ledger checkpoint", crd, coordinationv1.LedgerService_GetLedgerCheckpoint_FullMethodName, identity.Operator("520000", false),
			&coordinationv1.GetLedgerCheckpointRequest{ReporterRegion: "520000"}, ""},
		{"province reads another's ledger leaves", crd, coordinationv1.LedgerService_ListLedgerLeaves_FullMethodName, identity.Operator("520000", false),
			&coordinationv1.ListLedgerLeavesRequest{ReporterRegion: "440000"}, "REGION_MISMATCH"},
		{"province reads its events", crd, coordinationv1.LedgerService_ListEvents_FullMethodName, identity.Operator("520000", false),
			&coordinationv1.ListEventsRequest{Region: "520000"}, ""},
		{"province reads all events", crd, coordinationv1.LedgerService_ListEvents_FullMethodName, identity.Operator("520000", true),
			&coordinationv1.ListEventsRequest{}, "REGION_MISMATCH"},
		{"receiving province lists its batches", crd, coordinationv1.ReconciliationService_ListBatchReconciliations_FullMethodName, identity.System("440000"),
			&coordinationv1.ListBatchReconciliationsRequest{ReceivingRegion: "440000"}, ""},
		{"own batch", crd, coordinationv1.ReconciliationService_GetBatchReconciliation_FullMethodName, identity.System("520000"),
			&coordinationv1.GetBatchReconciliationRequest{BatchId: "520000-b1", SendingRegion: "520000"}, ""},
		{"another's batch", crd, coordinationv1.ReconciliationService_GetBatchReconciliation_FullMethodName, identity.System("510000"),
			&coordinationv1.GetBatchReconciliationRequest{BatchId: "520000-b1", SendingRegion: "520000"}, "REGION_MISMATCH"},
		{"national reads any batch", crd, coordinationv1.ReconciliationService_GetBatchReconciliation_FullMethodName, identity.Operator("", false),
			&coordinationv1.GetBatchReconciliationRequest{BatchId: "520000-b1", SendingRegion: "520000"}, ""},
		{"province reads a discrepancy about it", crd, coordinationv1.ReconciliationService_GetDiscrepancy_FullMethodName, identity.Operator("440000", false),
			&coordinationv1.GetDiscrepancyRequest{Name: "discrepancies/1", Region: "440000"}, ""},
		{"province reads a discrepancy about another", crd, coordinationv1.ReconciliationService_GetDiscrepancy_FullMethodName, identity.System("510000"),
			&coordinationv1.GetDiscrepancyRequest{Name: "discrepancies/1", Region: "520000"}, "REGION_MISMATCH"},
		{"province reads a discrepancy of any province", crd, coordinationv1.ReconciliationService_GetDiscrepancy_FullMethodName, identity.System("520000"),
			&coordinationv1.GetDiscrepancyRequest{Name: "discrepancies/1"}, "REGION_MISMATCH"},
		{"national reads any discrepancy", crd, coordinationv1.ReconciliationService_GetDiscrepancy_FullMethodName, identity.Operator("", false),
			&coordinationv1.GetDiscrepancyRequest{Name: "discrepancies/1"}, ""},
		{"provincial full operator cannot set a baseline", crd, coordinationv1.AssessmentService_SetBaseline_FullMethodName, identity.Operator("520000", true),
			&coordinationv1.SetBaselineRequest{Region: "520000"}, "CALLER_NOT_ALLOWED"},
		{"national read cannot change pairings", crd, coordinationv1.RegistryService_CreatePairing_FullMethodName, identity.Operator("", false), nil, "CALLER_NOT_ALLOWED"},
		{"national read cannot set agreements", crd, coordinationv1.RegistryService_SetPairingAgreement_FullMethodName, identity.Operator("", false), nil, "CALLER_NOT_ALLOWED"},
		{"another province reads the national dynamics", crd, coordinationv1.DynamicsService_GetNationalEmploymentDynamics_FullMethodName, identity.System("510000"),
			&coordinationv1.GetNationalEmploymentDynamicsRequest{SendingRegion: "520000"}, ""},
		{"a sending service reports its own local employers", crd, coordinationv1.DynamicsService_ReportLocalEmployers_FullMethodName, identity.Sending("520000"),
			&coordinationv1.ReportLocalEmployersRequest{ReporterRegion: "520000"}, ""},
		{"a sending service cannot report another province's local employers", crd, coordinationv1.DynamicsService_ReportLocalEmployers_FullMethodName, identity.Sending("520000"),
			&coordinationv1.ReportLocalEmployersRequest{ReporterRegion: "510000"}, "REGION_MISMATCH"},
		{"a receiving service cannot report local employers", crd, coordinationv1.DynamicsService_ReportLocalEmployers_FullMethodName, identity.Receiving("440000"),
			&coordinationv1.ReportLocalEmployersRequest{ReporterRegion: "440000"}, "ROLE_MISMATCH"},
		{"a province's system cannot report its local employers", crd, coordinationv1.DynamicsService_ReportLocalEmployers_FullMethodName, identity.System("520000"),
			&coordinationv1.ReportLocalEmployersRequest{ReporterRegion: "520000"}, "CALLER_NOT_ALLOWED"},
		{"a national operator cannot report local employers", crd, coordinationv1.DynamicsService_ReportLocalEmployers_FullMethodName, identity.Operator("", true),
			&coordinationv1.ReportLocalEmployersRequest{ReporterRegion: "520000"}, "CALLER_NOT_ALLOWED"},
		{"a receiving service reads the national dynamics", crd, coordinationv1.DynamicsService_GetNationalEmploymentDynamics_FullMethodName, identity.Receiving("440000"), nil, ""},
		{"province's read operator reads its dynamics", snd, sendingv1.DynamicsService_GetEmploymentDynamics_FullMethodName, identity.Operator("520000", false), nil, ""},
		{"another province cannot read a province's dynamics", snd, sendingv1.DynamicsService_GetEmploymentDynamics_FullMethodName, identity.System("510000"), nil, "CALLER_NOT_ALLOWED"},
		{"a peer service cannot read a province's dynamics", snd, sendingv1.DynamicsService_GetEmploymentDynamics_FullMethodName, identity.Receiving("440000"), nil, "CALLER_NOT_ALLOWED"},
		{"province's read operator lists its subsidies with names", snd, sendingv1.SubsidyService_ListEligibleWorkers_FullMethodName, identity.Operator("520000", false), nil, ""},
		{"province's own system lists its subsidies with names", snd, sendingv1.SubsidyService_ListEligibleWorkers_FullMethodName, identity.System("520000"), nil, ""},
		{"a national operator does not get the names", snd, sendingv1.SubsidyService_ListEligibleWorkers_FullMethodName, identity.Operator("", true), nil, "CALLER_NOT_ALLOWED"},
		{"another province does not get the names", snd, sendingv1.SubsidyService_ListEligibleWorkers_FullMethodName, identity.Operator("440000", true), nil, "CALLER_NOT_ALLOWED"},
		{"a peer service does not get the names", snd, sendingv1.SubsidyService_ListEligibleWorkers_FullMethodName, identity.Receiving("440000"), nil, "CALLER_NOT_ALLOWED"},
		{"a sending service lists its own province's eligible workers", crd, coordinationv1.EligibilityService_ListEligibleWorkers_FullMethodName, identity.Sending("520000"),
			&coordinationv1.ListEligibleWorkersRequest{SendingRegion: "520000"}, ""},
		{"a sending service cannot list another province's", crd, coordinationv1.EligibilityService_ListEligibleWorkers_FullMethodName, identity.Sending("520000"),
			&coordinationv1.ListEligibleWorkersRequest{SendingRegion: "510000"}, "REGION_MISMATCH"},
		{"a receiving service does not list subsidies", crd, coordinationv1.EligibilityService_ListEligibleWorkers_FullMethodName, identity.Receiving("440000"),
			&coordinationv1.ListEligibleWorkersRequest{SendingRegion: "440000"}, "ROLE_MISMATCH"},
		{"anyone reads the registry", crd, coordinationv1.RegistryService_ListPairings_FullMethodName, identity.Receiving("440000"), nil, ""},
		{"coordination on a regional service: health only", snd, sendingv1.TransportService_ListBatches_FullMethodName, identity.Coordination(), nil, "CALLER_NOT_ALLOWED"},
		{"coordination on a regional service: health", snd, healthpb.Health_Check_FullMethodName, identity.Coordination(), nil, ""},
		{"unknown method", snd, "/labourlink.sending.v1.RosterService/Nope", identity.System("520000"), nil, "NO_RULE"},
		{"province's full operator backs its data up", snd, backupv1.BackupService_Backup_FullMethodName, identity.Operator("520000", true), nil, ""},
		{"province's own system backs its data up", snd, backupv1.BackupService_Backup_FullMethodName, identity.System("520000"), nil, ""},
		{"read-only operator cannot take a backup", snd, backupv1.BackupService_Backup_FullMethodName, identity.Operator("520000", false), nil, "CALLER_NOT_ALLOWED"},
		{"another province cannot take a backup", snd, backupv1.BackupService_Backup_FullMethodName, identity.Operator("440000", true), nil, "CALLER_NOT_ALLOWED"},
		{"a peer service cannot take a backup", snd, backupv1.BackupService_Backup_FullMethodName, identity.Receiving("440000"), nil, "CALLER_NOT_ALLOWED"},
		{"national full operator backs the coordination service up", crd, backupv1.BackupService_Backup_FullMethodName, identity.Operator("", true), nil, ""},
		{"national read-only operator cannot back coordination up", crd, backupv1.BackupService_Backup_FullMethodName, identity.Operator("", false), nil, "CALLER_NOT_ALLOWED"},
		{"a province's full operator cannot back coordination up", crd, backupv1.BackupService_Backup_FullMethodName, identity.Operator("520000", true), nil, "CALLER_NOT_ALLOWED"},
		{"a province's system cannot back coordination up", crd, backupv1.BackupService_Backup_FullMethodName, identity.System("520000"), nil, "CALLER_NOT_ALLOWED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.a.Authorize(context.Background(), tt.method, tt.caller, tt.req)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("allowed, want %s", tt.reason)
			}
			st := apierror.Status(err)
			if st.Code().String() != "PermissionDenied" {
				t.Fatalf("code %v, want PermissionDenied (%v)", st.Code(), err)
			}
			var e *apierror.Error
			if !errors.As(err, &e) || e.Reason() != tt.reason {
				t.Fatalf("reason %q, want %q (%v)", e.Reason(), tt.reason, err)
			}
			if !strings.Contains(err.Error(), tt.caller.String()) || !strings.Contains(err.Error(), tt.method) {
				t.Errorf("message does not name the caller and the method: %v", err)
			}
		})
	}
}

func mustNew(t *testing.T, self identity.Identity, p Pairings) *Authorizer {
	t.Helper()
	a, err := New(self, p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestPairingsFromTheRegistry(t *testing.T) {
	t.Parallel()
	var asked [][2]string
	reg := pairingsFunc(func(_ context.Context, r, s string) (bool, error) {
		asked = append(asked, [2]string{r, s})
		switch s {
		case "510000":
			return true, nil // paired in the registry, not in the default table
		case "620000":
			return false, errors.New("registry down")
		}
		return false, nil
	})
	a := mustNew(t, identity.Receiving("440000"), reg)
	m := receivingv1.CandidateService_ListDecisions_FullMethodName
	if err := a.Authorize(context.Background(), m, identity.Sending("510000"), &receivingv1.ListDecisionsRequest{SendingRegion: "510000"}); err != nil {
		t.Errorf("registry pairing refused: %v", err)
	}
	err := a.Authorize(context.Background(), m, identity.Sending("520000"), &receivingv1.ListDecisionsRequest{SendingRegion: "520000"})
	if apierror.Code(err).String() != "PermissionDenied" {
		t.Errorf("pairing missing from the registry: %v", err)
	}
	err = a.Authorize(context.Background(), m, identity.Sending("620000"), &receivingv1.ListDecisionsRequest{SendingRegion: "620000"})
	if apierror.Code(err).String() != "Unavailable" {
		t.Errorf("registry down: %v, want Unavailable", err)
	}
	if len(asked) != 3 || asked[0] != [2]string{"440000", "510000"} {
		t.Errorf("registry asked %v", asked)
	}
}

func TestNewRejectsNonServices(t *testing.T) {
	t.Parallel()
	for _, id := range []identity.Identity{identity.System("520000"), identity.Operator("", true), {Role: identity.RoleSending}} {
		if _, err := New(id, nil); err == nil {
			t.Errorf("New(%v) succeeded", id)
		}
	}
}

package authz_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/eastwest/labourlink/services/devtools/wait"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/daemon"
	"github.com/eastwest/labourlink/services/devtools/proctest"
	"github.com/eastwest/labourlink/services/platform/identity"
)

// The parties of the test federation, by short name.
var callers = map[string]identity.Identity{
	"sys520": identity.System("520000"), "sys510": identity.System("510000"),
	"sys440": identity.System("440000"), "sys330": identity.System("330000"),
	"snd520": identity.Sending("520000"), "snd510": identity.Sending("510000"),
	"rcv440": identity.Receiving("440000"), "rcv330": identity.Receiving("330000"),
	"coord":  identity.Coordination(),
	"op520r": identity.Operator("520000", false), "op520f": identity.Operator("520000", true),
	"op440r": identity.Operator("440000", false), "op440f": identity.Operator("440000", true),
	"natr": identity.Operator("", false), "natf": identity.Operator("", true),
}

func callerNames() []string {
	var out []string
	for n := range callers {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// fixture is a federation of real services over mTLS, in this process: coordination, the
// sending services of Guizhou (520000) and Sichuan (510000), and the receiving service of
// Guangdong (440000), which by the default pairing table is paired with Guizhou only.
type fixture struct {
	dir   string
	addrs map[string]string
	logs  *observer.ObservedLogs

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

var servers = []struct {
	name string
	cfg  daemon.Config
}{
	{"coordination", daemon.Config{Kind: daemon.Coordination, GracePeriod: 72 * time.Hour}},
	{"sending-520000", daemon.Config{Kind: daemon.Sending, Region: "520000"}},
	{"sending-510000", daemon.Config{Kind: daemon.Sending, Region: "510000"}},
	{"receiving-440000", daemon.Config{Kind: daemon.Receiving, Region: "440000"}},
}

func startFederation(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{dir: filepath.Join(t.TempDir(), "certs"), addrs: map[string]string{}, conns: map[string]*grpc.ClientConn{}}
	plan := identity.Plan{
		Regions: []identity.RegionRole{
			{Code: "520000", Role: identity.RoleSending}, {Code: "510000", Role: identity.RoleSending},
			{Code: "440000", Role: identity.RoleReceiving}, {Code: "330000", Role: identity.RoleReceiving},
		},
		Operators: []identity.Identity{
			identity.Operator("", false), identity.Operator("", true),
			identity.Operator("520000", false), identity.Operator("520000", true),
			identity.Operator("440000", false), identity.Operator("440000", true),
		},
	}
	if _, err := identity.Init(f.dir, plan); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	f.logs = logs
	for _, s := range servers {
		cfg := s.cfg
		cfg.Listen = proctest.FreeAddr(t)
		cfg.DataDir = filepath.Join(t.TempDir(), s.name)
		cfg.LogLevel = "info"
		cfg.ShutdownTimeout = 2 * time.Second
		cert, key := identity.Paths(f.dir, daemon.Self(cfg))
		cfg.TLS = daemon.TLSConfig{CAFile: filepath.Join(f.dir, identity.CAFile), CertFile: cert, KeyFile: key}
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- daemon.Run(ctx, cfg, zap.New(core).With(zap.String("server", s.name))) }()
		t.Cleanup(func() {
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("%s: %v", s.name, err)
			}
		})
		f.addrs[s.name] = cfg.Listen
	}
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, cc := range f.conns {
			cc.Close()
		}
	})
	for name := range f.addrs {
		f.waitServing(t, name)
	}
	return f
}

// creds are the client credentials of caller.
func (f *fixture) creds(t *testing.T, caller string) credentials.TransportCredentials {
	t.Helper()
	cert, key := identity.Paths(f.dir, callers[caller])
	cfg, err := identity.ClientTLS(filepath.Join(f.dir, identity.CAFile), cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return credentials.NewTLS(cfg)
}

// conn is caller's connection to server (cached). No retry policy: a refused handshake shows.
func (f *fixture) conn(t *testing.T, server, caller string) *grpc.ClientConn {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	key := server + "|" + caller
	if cc, ok := f.conns[key]; ok {
		return cc
	}
	cc, err := grpc.NewClient(f.addrs[server], grpc.WithTransportCredentials(f.creds(t, caller)))
	if err != nil {
		t.Fatal(err)
	}
	f.conns[key] = cc
	return cc
}

func (f *fixture) waitServing(t *testing.T, server string) {
	t.Helper()
	hc := healthpb.NewHealthClient(f.conn(t, server, "natr"))
	var last error
	if !wait.Until(wait.Limit, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		last = err
		return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
	}) {
		t.Fatalf("%s did not answer SERVING: %v", server, last)
	}
}

// expectation is who may call one method on the test server that serves it, written out here
// independently of the policy table.
type expectation struct {
	allowed string // space-separated caller names
	// fields are request fields (dot paths) the callers fill with their own region.
	fields []string
	// build, when set, fills the request for the caller instead.
	build func(req proto.Message, caller identity.Identity)
	// scoped are allowed callers whose right depends on the region the request names: they
	// are also tried with their request naming another province (Guangxi, 450000), and refused.
	scoped string
}

const (
	everyone     = "sys520 sys510 sys440 sys330 snd520 snd510 rcv440 rcv330 coord op520r op520f op440r op440f natr natf"
	sendingRead  = "sys520 op520r op520f natr natf"
	sendingWrite = "sys520 op520f natf"
	recvRead     = "sys440 op440r op440f natr natf"
	recvWrite    = "sys440 op440f natf"
	national     = "natr natf"
	provinces    = "natr natf sys520 sys510 sys440 sys330 op520r op520f op440r op440f"
	provincial   = "sys520 sys510 sys440 sys330 op520r op520f op440r op440f"
	regional     = "snd520 snd510 rcv440 rcv330"
)

var expectations = map[string]expectation{
	healthpb.Health_Check_FullMethodName:                                   {allowed: everyone},
	healthpb.Health_List_FullMethodName:                                    {allowed: everyone},
	healthpb.Health_Watch_FullMethodName:                                   {allowed: everyone},
	reflectionv1.ServerReflection_ServerReflectionInfo_FullMethodName:      {allowed: everyone},
	reflectionv1alpha.ServerReflection_ServerReflectionInfo_FullMethodName: {allowed: everyone},

	sendingv1.RosterService_ImportWorkers_FullMethodName:        {allowed: sendingWrite},
	sendingv1.RosterService_GetImport_FullMethodName:            {allowed: sendingRead},
	sendingv1.RosterService_ListImportRejections_FullMethodName: {allowed: sendingRead},
	sendingv1.RosterService_GetWorker_FullMethodName:            {allowed: sendingRead},
	sendingv1.RosterService_LookupWorker_FullMethodName:         {allowed: sendingRead},
	sendingv1.RosterService_ListLookupRecords_FullMethodName:    {allowed: sendingRead},
	sendingv1.RosterService_FindWorkers_FullMethodName:          {allowed: sendingRead},
	sendingv1.RosterService_ListWorkers_FullMethodName:          {allowed: sendingRead},
	sendingv1.RosterService_UpdateWorker_FullMethodName:         {allowed: sendingWrite},
	sendingv1.RosterService_ChangeWorkerStatus_FullMethodName:   {allowed: sendingWrite},
	sendingv1.RosterService_RecordReturnHome_FullMethodName:     {allowed: sendingWrite},

	sendingv1.ReturneeService_CreateLocalEmployer_FullMethodName:       {allowed: sendingWrite},
	sendingv1.ReturneeService_GetLocalEmployer_FullMethodName:          {allowed: sendingRead},
	sendingv1.ReturneeService_ListLocalEmployers_FullMethodName:        {allowed: sendingRead},
	sendingv1.ReturneeService_UpdateLocalEmployer_FullMethodName:       {allowed: sendingWrite},
	sendingv1.ReturneeService_PlaceWorkerLocally_FullMethodName:        {allowed: sendingWrite},
	sendingv1.ReturneeService_GetLocalEmploymentSummary_FullMethodName: {allowed: sendingRead},
	sendingv1.DynamicsService_GetEmploymentDynamics_FullMethodName:     {allowed: sendingRead},
	sendingv1.SubsidyService_ListEligibleWorkers_FullMethodName:        {allowed: "sys520 op520r op520f"},
	sendingv1.RosterService_DeleteWorker_FullMethodName:                {allowed: sendingWrite},
	sendingv1.MatchingService_StartMatchRun_FullMethodName:             {allowed: sendingWrite},
	sendingv1.MatchingService_CancelMatchRun_FullMethodName:            {allowed: sendingWrite},
	sendingv1.MatchingService_GetMatchRun_FullMethodName:               {allowed: sendingRead},
	sendingv1.MatchingService_ListMatchRuns_FullMethodName:             {allowed: sendingRead},
	sendingv1.MatchingService_ListDemand_FullMethodName:                {allowed: sendingRead},
	sendingv1.MatchingService_ListProposals_FullMethodName:             {allowed: sendingRead},
	sendingv1.MatchingService_GetFollowStatus_FullMethodName:           {allowed: sendingRead},
	sendingv1.TransportService_PlanBatches_FullMethodName:              {allowed: sendingWrite},
	sendingv1.TransportService_CreateBatch_FullMethodName:              {allowed: sendingWrite},
	sendingv1.TransportService_GetBatch_FullMethodName:                 {allowed: sendingRead},
	sendingv1.TransportService_ListBatches_FullMethodName:              {allowed: sendingRead},
	sendingv1.TransportService_GetBatchManifest_FullMethodName:         {allowed: sendingRead},
	sendingv1.TransportService_RecordDeparture_FullMethodName:          {allowed: sendingWrite},
	sendingv1.TransportService_CancelBatch_FullMethodName:              {allowed: sendingWrite},

	receivingv1.VacancyService_CreateVacancy_FullMethodName:                {allowed: recvWrite},
	receivingv1.VacancyService_ImportVacancies_FullMethodName:              {allowed: recvWrite},
	receivingv1.VacancyService_GetVacancyImport_FullMethodName:             {allowed: recvRead},
	receivingv1.VacancyService_ListVacancyImportRejections_FullMethodName:  {allowed: recvRead},
	receivingv1.VacancyService_GetVacancy_FullMethodName:                   {allowed: recvRead + " snd520"},
	receivingv1.VacancyService_ListVacancies_FullMethodName:                {allowed: recvRead + " snd520"},
	receivingv1.VacancyService_UpdateVacancy_FullMethodName:                {allowed: recvWrite},
	receivingv1.VacancyService_CloseVacancy_FullMethodName:                 {allowed: recvWrite},
	receivingv1.DemandFeedService_WatchDemand_FullMethodName:               {allowed: recvRead + " snd520", build: feedOf, scoped: "snd520"},
	receivingv1.DemandFeedService_ListDemandChanges_FullMethodName:         {allowed: recvRead + " snd520", build: feedOf, scoped: "snd520"},
	receivingv1.DemandFeedService_ListOpenDemand_FullMethodName:            {allowed: recvRead + " snd520", build: feedOf, scoped: "snd520"},
	receivingv1.CandidateService_SubmitCandidates_FullMethodName:           {allowed: "snd520", fields: []string{"sending_region"}, scoped: "snd520"},
	receivingv1.CandidateService_GetCandidate_FullMethodName:               {allowed: recvRead},
	receivingv1.CandidateService_ListCandidates_FullMethodName:             {allowed: recvRead + " snd520", build: feedOf, scoped: "snd520"},
	receivingv1.CandidateService_DecideCandidate_FullMethodName:            {allowed: recvWrite},
	receivingv1.CandidateService_WithdrawCandidate_FullMethodName:          {allowed: "snd520", fields: []string{"sending_region"}, scoped: "snd520"},
	receivingv1.CandidateService_WatchDecisions_FullMethodName:             {allowed: recvRead + " snd520", build: feedOf, scoped: "snd520"},
	receivingv1.CandidateService_ListDecisions_FullMethodName:              {allowed: recvRead + " snd520", build: feedOf, scoped: "snd520"},
	receivingv1.IntakeService_AnnounceBatch_FullMethodName:                 {allowed: "snd520", fields: []string{"batch.sending_region"}, scoped: "snd520"},
	receivingv1.IntakeService_ReportBatchDeparture_FullMethodName:          {allowed: "snd520", fields: []string{"sending_region"}, scoped: "snd520"},
	receivingv1.IntakeService_CancelIntakeBatch_FullMethodName:             {allowed: "snd520", fields: []string{"sending_region"}, scoped: "snd520"},
	receivingv1.IntakeService_GetIntakeBatch_FullMethodName:                {allowed: recvRead},
	receivingv1.IntakeService_ListIntakeBatches_FullMethodName:             {allowed: recvRead, fields: []string{"sending_region"}},
	receivingv1.IntakeService_ConfirmArrivals_FullMethodName:               {allowed: recvWrite},
	receivingv1.IntakeService_RecordOnboarding_FullMethodName:              {allowed: recvWrite},
	receivingv1.IntakeService_RecordCheckpoint_FullMethodName:              {allowed: recvWrite},
	receivingv1.IntakeService_RecordJobLeft_FullMethodName:                 {allowed: recvWrite},
	receivingv1.IntakeService_RecordIncident_FullMethodName:                {allowed: recvWrite},
	receivingv1.IntakeService_RecordAbsence_FullMethodName:                 {allowed: recvWrite},
	receivingv1.IntakeService_GetEmploymentRecord_FullMethodName:           {allowed: recvRead},
	receivingv1.IntakeService_ListEmploymentRecords_FullMethodName:         {allowed: recvRead + " snd520", build: feedOf, scoped: "snd520"},
	receivingv1.EmploymentFeedService_WatchEmployment_FullMethodName:       {allowed: recvRead + " snd520", build: feedOf, scoped: "snd520"},
	receivingv1.EmploymentFeedService_ListEmploymentChanges_FullMethodName: {allowed: recvRead + " snd520", build: feedOf, scoped: "snd520"},

	coordinationv1.RegistryService_RegisterRegion_FullMethodName: {allowed: "snd520 snd510 rcv440 rcv330 natf",
		build: func(req proto.Message, c identity.Identity) {
			role := commonv1.RegionRole_REGION_ROLE_RECEIVING
			if c.Role == identity.RoleSending {
				role = commonv1.RegionRole_REGION_ROLE_SENDING
			}
			req.(*coordinationv1.RegisterRegionRequest).Region = &coordinationv1.Region{Code: c.Region, Role: role, Endpoint: "127.0.0.1:1"}
		}, scoped: regional},
	coordinationv1.RegistryService_GetRegion_FullMethodName:           {allowed: everyone},
	coordinationv1.RegistryService_ListRegions_FullMethodName:         {allowed: everyone},
	coordinationv1.RegistryService_ListPairings_FullMethodName:        {allowed: everyone},
	coordinationv1.RegistryService_CreatePairing_FullMethodName:       {allowed: "natf"},
	coordinationv1.RegistryService_SetPairingAgreement_FullMethodName: {allowed: "natf"},
	coordinationv1.RegistryService_DeletePairing_FullMethodName:       {allowed: "natf"},
	coordinationv1.RegistryService_LoadDefaultPairings_FullMethodName: {allowed: "natf"},
	coordinationv1.LedgerService_ReportEvents_FullMethodName: {allowed: "snd520 snd510 rcv440 rcv330",
		build: func(req proto.Message, c identity.Identity) {
			e := &coordinationv1.LedgerEvent{ReporterRegion: c.Region, Kind: coordinationv1.EventKind_EVENT_KIND_ARRIVED, ReceivingRegion: c.Region}
			if c.Role == identity.RoleSending || c.Role == identity.RoleSystem {
				e.Kind, e.ReceivingRegion, e.SendingRegion = coordinationv1.EventKind_EVENT_KIND_DEPARTED, "", c.Region
			}
			req.(*coordinationv1.ReportEventsRequest).Events = []*coordinationv1.LedgerEvent{e}
		}, scoped: regional},
	coordinationv1.LedgerService_ListEvents_FullMethodName:                       {allowed: provinces, fields: []string{"region"}, scoped: provincial},
	coordinationv1.LedgerService_GetLedgerCheckpoint_FullMethodName:              {allowed: provinces, fields: []string{"reporter_region"}, scoped: provincial},
	coordinationv1.LedgerService_GetInclusionProof_FullMethodName:                {allowed: provinces, fields: []string{"reporter_region"}, scoped: provincial},
	coordinationv1.LedgerService_GetConsistencyProof_FullMethodName:              {allowed: provinces, fields: []string{"reporter_region"}, scoped: provincial},
	coordinationv1.LedgerService_ListLedgerLeaves_FullMethodName:                 {allowed: provinces, fields: []string{"reporter_region"}, scoped: provincial},
	coordinationv1.LedgerService_GetLedgerPublicKey_FullMethodName:               {allowed: everyone},
	coordinationv1.ReconciliationService_GetBatchReconciliation_FullMethodName:   {allowed: provinces, fields: []string{"sending_region"}, scoped: provincial},
	coordinationv1.ReconciliationService_ListBatchReconciliations_FullMethodName: {allowed: provinces, fields: []string{"receiving_region"}, scoped: provincial},
	coordinationv1.ReconciliationService_ListPairingSummaries_FullMethodName:     {allowed: provinces, fields: []string{"region"}, scoped: provincial},
	coordinationv1.ReconciliationService_ListDiscrepancies_FullMethodName:        {allowed: provinces, fields: []string{"region"}, scoped: provincial},
	coordinationv1.ReconciliationService_GetDiscrepancy_FullMethodName:           {allowed: provinces, fields: []string{"region"}, scoped: provincial},
	coordinationv1.ReconciliationService_ListDiscrepancyChanges_FullMethodName:   {allowed: national},
	coordinationv1.AssessmentService_SetBaseline_FullMethodName:                  {allowed: "natf", fields: []string{"region"}},
	coordinationv1.AssessmentService_GetAssessment_FullMethodName:                {allowed: provinces, fields: []string{"region"}, scoped: provincial},
	coordinationv1.AssessmentService_ListAssessments_FullMethodName:              {allowed: national},
	coordinationv1.DynamicsService_GetNationalEmploymentDynamics_FullMethodName:  {allowed: everyone},
	coordinationv1.DynamicsService_ReportLocalEmployers_FullMethodName:           {allowed: "snd520 snd510", fields: []string{"reporter_region"}, scoped: "snd520 snd510"},
	coordinationv1.EligibilityService_ListEligibleWorkers_FullMethodName:         {allowed: provinces + " snd520 snd510", fields: []string{"sending_region"}, scoped: provincial + " snd520 snd510"},
	coordinationv1.EligibilityService_ListSubsidyRules_FullMethodName:            {allowed: everyone},
}

// feedOf asks for the feed of the caller's region when it is a sending service, and of
// Guizhou (paired with Guangdong) otherwise: the receiving service itself refuses feeds of
// provinces it is not paired with.
func feedOf(req proto.Message, c identity.Identity) {
	region := "520000"
	if c.Role == identity.RoleSending {
		region = c.Region
	}
	setString(req.ProtoReflect(), "sending_region", region)
}

var common = []grpc.ServiceDesc{healthpb.Health_ServiceDesc, reflectionv1.ServerReflection_ServiceDesc, reflectionv1alpha.ServerReflection_ServiceDesc}

// served lists the services of each server the matrix runs on.
var served = map[string][]grpc.ServiceDesc{
	"coordination": append([]grpc.ServiceDesc{coordinationv1.RegistryService_ServiceDesc, coordinationv1.LedgerService_ServiceDesc,
		coordinationv1.ReconciliationService_ServiceDesc, coordinationv1.AssessmentService_ServiceDesc, coordinationv1.DynamicsService_ServiceDesc, coordinationv1.EligibilityService_ServiceDesc}, common...),
	"sending-520000": append([]grpc.ServiceDesc{sendingv1.RosterService_ServiceDesc, sendingv1.MatchingService_ServiceDesc,
		sendingv1.TransportService_ServiceDesc, sendingv1.ReturneeService_ServiceDesc, sendingv1.DynamicsService_ServiceDesc, sendingv1.SubsidyService_ServiceDesc}, common...),
	"receiving-440000": append([]grpc.ServiceDesc{receivingv1.VacancyService_ServiceDesc, receivingv1.DemandFeedService_ServiceDesc,
		receivingv1.CandidateService_ServiceDesc, receivingv1.IntakeService_ServiceDesc, receivingv1.EmploymentFeedService_ServiceDesc}, common...),
}

// rpc is one method of a service desc.
type rpc struct {
	method         string
	stream         bool
	client, server bool
}

func rpcsOf(d grpc.ServiceDesc) []rpc {
	var out []rpc
	for _, m := range d.Methods {
		out = append(out, rpc{method: "/" + d.ServiceName + "/" + m.MethodName})
	}
	for _, s := range d.Streams {
		out = append(out, rpc{method: "/" + d.ServiceName + "/" + s.StreamName, stream: true, client: s.ClientStreams, server: s.ServerStreams})
	}
	return out
}

// messages returns new request and response messages of method.
func messages(t *testing.T, method string) (proto.Message, proto.Message) {
	t.Helper()
	svc, name, _ := strings.Cut(strings.TrimPrefix(method, "/"), "/")
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc))
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	md := d.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(name))
	in, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
	if err != nil {
		t.Fatal(err)
	}
	out, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
	if err != nil {
		t.Fatal(err)
	}
	return in.New().Interface(), out.New().Interface()
}

// setString sets the string field at a dot path, making the messages on the way.
func setString(m protoreflect.Message, path, value string) {
	names := strings.Split(path, ".")
	for _, n := range names[:len(names)-1] {
		m = m.Mutable(m.Descriptor().Fields().ByName(protoreflect.Name(n))).Message()
	}
	m.Set(m.Descriptor().Fields().ByName(protoreflect.Name(names[len(names)-1])), protoreflect.ValueOfString(value))
}

// request is what caller sends to method: the request with the caller's own region where the
// method names one (the best a caller can do).
func request(t *testing.T, method string, e expectation, caller identity.Identity) (proto.Message, proto.Message) {
	req, resp := messages(t, method)
	for _, f := range e.fields {
		setString(req.ProtoReflect(), f, caller.Region)
	}
	if e.build != nil {
		e.build(req, caller)
	}
	if f := req.ProtoReflect().Descriptor().Fields().ByName("request_id"); f != nil && f.Kind() == protoreflect.StringKind {
		req.ProtoReflect().Set(f, protoreflect.ValueOfString(fmt.Sprintf("authz-%d", time.Now().UnixNano())))
	}
	if f := req.ProtoReflect().Descriptor().Fields().ByName("import_id"); f != nil {
		req.ProtoReflect().Set(f, protoreflect.ValueOfString(fmt.Sprintf("authz-%d", time.Now().UnixNano())))
	}
	return req, resp
}

// invoke calls r with req and returns the call's status.
func invoke(ctx context.Context, cc *grpc.ClientConn, r rpc, req, resp proto.Message) error {
	if !r.stream {
		return cc.Invoke(ctx, r.method, req, resp)
	}
	st, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: r.server, ClientStreams: r.client}, r.method)
	if err != nil {
		return err
	}
	if err := st.SendMsg(req); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := st.CloseSend(); err != nil {
		return err
	}
	return st.RecvMsg(resp)
}

// TestEveryRPCOverMTLS calls every method of every service, on real services over mTLS, with
// every party of the federation: the allowed ones get anything but PERMISSION_DENIED (their
// request may well be invalid), all others get PERMISSION_DENIED.
func TestEveryRPCOverMTLS(t *testing.T) {
	t.Parallel()
	f := startFederation(t)
	names := callerNames()
	for server, descs := range served {
		for _, d := range descs {
			for _, r := range rpcsOf(d) {
				e, ok := expectations[r.method]
				if !ok {
					t.Errorf("%s: no expectation in this test; add one", r.method)
					continue
				}
				allowed := map[string]bool{}
				for _, n := range strings.Fields(e.allowed) {
					if _, ok := callers[n]; !ok {
						t.Fatalf("%s: unknown caller %s", r.method, n)
					}
					allowed[n] = true
				}
				scoped := strings.Fields(e.scoped)
				for _, n := range scoped {
					if !allowed[n] {
						t.Fatalf("%s: scoped caller %s is not allowed", r.method, n)
					}
				}
				t.Run(server+r.method, func(t *testing.T) {
					for _, name := range scoped {
						c := callers[name]
						other := identity.Identity{Role: c.Role, Region: "450000"}
						req, resp := request(t, r.method, e, other)
						ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						err := invoke(ctx, f.conn(t, server, name), r, req, resp)
						cancel()
						if status.Code(err) != codes.PermissionDenied {
							t.Errorf("%s naming 450000 in its request got %v, want PermissionDenied", c, err)
						}
					}
					for _, name := range names {
						req, resp := request(t, r.method, e, callers[name])
						timeout := 10 * time.Second
						if r.server && allowed[name] {
							timeout = 300 * time.Millisecond // an allowed watch waits for changes
						}
						ctx, cancel := context.WithTimeout(context.Background(), timeout)
						err := invoke(ctx, f.conn(t, server, name), r, req, resp)
						cancel()
						code := status.Code(err)
						switch {
						case allowed[name] && (code == codes.PermissionDenied || code == codes.Unauthenticated):
							t.Errorf("%s (allowed) got %v", callers[name], err)
						case !allowed[name] && code != codes.PermissionDenied:
							t.Errorf("%s (not allowed) got %v, want PermissionDenied", callers[name], err)
						}
					}
				})
			}
		}
	}
}

// permissionDenied checks err is PERMISSION_DENIED with the given ErrorInfo reason.
func permissionDenied(t *testing.T, err error, reason string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.PermissionDenied {
		t.Fatalf("got %v, want PermissionDenied", err)
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			if info.GetReason() != reason {
				t.Errorf("reason %q, want %q (%s)", info.GetReason(), reason, st.Message())
			}
			return
		}
	}
	t.Errorf("no ErrorInfo in %v", err)
}

// Guizhou's certificates cannot write Sichuan's roster, nor read Guangdong's intake as if they
// were Guangdong's; Sichuan's own system can.
func TestGuizhouCannotActAsAnotherProvince(t *testing.T) {
	t.Parallel()
	f := startFederation(t)
	importInto := func(server, caller string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := sendingv1.NewRosterServiceClient(f.conn(t, server, caller)).ImportWorkers(ctx)
		if err != nil {
			return err
		}
		_ = st.Send(&sendingv1.ImportWorkersRequest{ImportId: "guizhou-into-sichuan", Rows: []*sendingv1.WorkerRow{{RowNumber: 2, FullName: "张三"}}, Final: true, TotalRows: 1})
		_, err = st.CloseAndRecv()
		return err
	}
	for _, caller := range []string{"sys520", "snd520", "op520f"} {
		t.Run(caller+" imports into Sichuan", func(t *testing.T) {
			permissionDenied(t, importInto("sending-510000", caller), "CALLER_NOT_ALLOWED")
		})
	}
	if err := importInto("sending-510000", "sys510"); status.Code(err) == codes.PermissionDenied {
		t.Errorf("Sichuan's own system refused: %v", err)
	}

	intake := receivingv1.NewIntakeServiceClient
	for _, caller := range []string{"sys520", "snd520", "op520r", "op520f"} {
		t.Run(caller+" reads Guangdong's intake", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := intake(f.conn(t, "receiving-440000", caller)).ListIntakeBatches(ctx, &receivingv1.ListIntakeBatchesRequest{SendingRegion: "520000"})
			permissionDenied(t, err, "CALLER_NOT_ALLOWED")
			_, err = intake(f.conn(t, "receiving-440000", caller)).ListEmploymentRecords(ctx, &receivingv1.ListEmploymentRecordsRequest{})
			want := "CALLER_NOT_ALLOWED"
			if caller == "snd520" {
				// It re-reads its own workers' trips only (after its employment-feed position
				// was compacted): the request must name its own region.
				want = "REGION_MISMATCH"
				if _, err := intake(f.conn(t, "receiving-440000", caller)).ListEmploymentRecords(ctx,
					&receivingv1.ListEmploymentRecordsRequest{SendingRegion: "520000"}); status.Code(err) == codes.PermissionDenied {
					t.Errorf("snd520 refused its own workers' trips: %v", err)
				}
			}
			permissionDenied(t, err, want)
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := intake(f.conn(t, "receiving-440000", "sys440")).ListIntakeBatches(ctx, &receivingv1.ListIntakeBatchesRequest{}); status.Code(err) == codes.PermissionDenied {
		t.Errorf("Guangdong's own system refused: %v", err)
	}

	// Guizhou's sending service follows Guangdong's feed for itself only; Sichuan's is not paired.
	feed := receivingv1.NewDemandFeedServiceClient
	_, err := feed(f.conn(t, "receiving-440000", "snd520")).ListDemandChanges(ctx, &receivingv1.ListDemandChangesRequest{SendingRegion: "450000"})
	permissionDenied(t, err, "REGION_MISMATCH")
	_, err = feed(f.conn(t, "receiving-440000", "snd510")).ListDemandChanges(ctx, &receivingv1.ListDemandChangesRequest{SendingRegion: "510000"})
	permissionDenied(t, err, "NOT_PAIRED")
	wd, err := feed(f.conn(t, "receiving-440000", "snd510")).WatchDemand(ctx, &receivingv1.WatchDemandRequest{SendingRegion: "510000"})
	if err == nil {
		_, err = wd.Recv()
	}
	permissionDenied(t, err, "NOT_PAIRED")

	// The full identity-number view needs full rights.
	roster := sendingv1.NewRosterServiceClient
	full := &sendingv1.GetWorkerRequest{Name: "workers/none", View: sendingv1.WorkerView_WORKER_VIEW_FULL}
	_, err = roster(f.conn(t, "sending-520000", "op520r")).GetWorker(ctx, full)
	permissionDenied(t, err, "FULL_VIEW_NOT_ALLOWED")
	_, err = roster(f.conn(t, "sending-520000", "natr")).GetWorker(ctx, full)
	permissionDenied(t, err, "FULL_VIEW_NOT_ALLOWED")
	for _, caller := range []string{"op520f", "natf", "sys520"} {
		if _, err := roster(f.conn(t, "sending-520000", caller)).GetWorker(ctx, full); status.Code(err) == codes.PermissionDenied {
			t.Errorf("%s refused the full view: %v", caller, err)
		}
	}
}

// A refused call is logged once, by the log interceptor, with the reason and no personal data.
func TestRefusalIsLoggedOnceWithoutPersonalData(t *testing.T) {
	t.Parallel()
	f := startFederation(t)
	const idNumber, phone = "52010219900307123X", "13812345678"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := sendingv1.NewRosterServiceClient(f.conn(t, "sending-520000", "sys510")).UpdateWorker(ctx, &sendingv1.UpdateWorkerRequest{
		RequestId: "refused-once",
		Worker:    &sendingv1.Worker{Name: "workers/w1", IdNumber: idNumber, Phone: phone, FullName: "李四"},
	})
	permissionDenied(t, err, "CALLER_NOT_ALLOWED")
	msg := status.Convert(err).Message()
	for _, want := range []string{"labourlink://region/510000/system", "UpdateWorker", "labourlink://region/520000/sending"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not name %s", msg, want)
		}
	}
	lines := f.logs.FilterField(zap.String("request_id", "refused-once")).All()
	if len(lines) != 1 {
		t.Fatalf("%d log lines for the refused call, want 1: %v", len(lines), lines)
	}
	l := lines[0].ContextMap()
	if l["code"] != "PermissionDenied" || l["method"] != sendingv1.RosterService_UpdateWorker_FullMethodName || !strings.Contains(fmt.Sprint(l["error"]), "510000") {
		t.Errorf("log line %v", l)
	}
	for _, e := range f.logs.All() {
		text := e.Message + fmt.Sprint(e.ContextMap())
		for _, secret := range []string{idNumber, phone, "李四"} {
			if strings.Contains(text, secret) {
				t.Errorf("log line holds personal data %q: %s", secret, text)
			}
		}
	}
}

// A client without a certificate, with a certificate of another CA, or in plaintext cannot
// connect at all.
func TestStrangersCannotConnect(t *testing.T) {
	t.Parallel()
	f := startFederation(t)
	caPEM, err := os.ReadFile(filepath.Join(f.dir, identity.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)

	otherDir := t.TempDir()
	if _, err := identity.Init(otherDir, identity.LocalFederation()); err != nil {
		t.Fatal(err)
	}
	otherCert, otherKey := identity.Paths(otherDir, identity.System("520000"))
	pair, err := tls.LoadX509KeyPair(otherCert, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, creds := range map[string]grpc.DialOption{
		"no certificate":       grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13})),
		"another CA's":         grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS13})),
		"plaintext":            grpc.WithTransportCredentials(insecure.NewCredentials()),
		"another CA's, as TLS": grpc.WithTransportCredentials(f.otherCreds(t, otherDir)),
	} {
		for server, addr := range f.addrs {
			t.Run(name+" to "+server, func(t *testing.T) {
				cc, err := grpc.NewClient(addr, creds)
				if err != nil {
					t.Fatal(err)
				}
				defer cc.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
				if status.Code(err) != codes.Unavailable {
					t.Errorf("got %v, want Unavailable", err)
				}
			})
		}
	}
}

// otherCreds are the complete client credentials of another federation (its CA and its
// certificate): the server is not trusted and the client is not either.
func (f *fixture) otherCreds(t *testing.T, dir string) credentials.TransportCredentials {
	cert, key := identity.Paths(dir, identity.Operator("", true))
	cfg, err := identity.ClientTLS(filepath.Join(dir, identity.CAFile), cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return credentials.NewTLS(cfg)
}

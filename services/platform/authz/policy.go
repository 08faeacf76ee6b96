package authz

import (
	"fmt"
	"strings"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/protobuf/proto"

	backupv1 "github.com/eastwest/labourlink/proto/labourlink/backup/v1"
	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	ledgerwatchv1 "github.com/eastwest/labourlink/proto/labourlink/ledgerwatch/v1"
	outboxv1 "github.com/eastwest/labourlink/proto/labourlink/outbox/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/platform/identity"
)

// party is a kind of caller, seen from the serving instance.
type party int

const (
	// anyone is any party with a certificate of the federation.
	anyone party = iota
	// ownSystem is the system of the serving instance's province.
	ownSystem
	// operatorRead is an operator (read or full rights) of the serving province, or a national
	// operator.
	operatorRead
	// operatorFull is an operator with full rights of the serving province, or a national one.
	operatorFull
	// pairedSending is the sending service of a province paired with the serving receiving
	// province (registry, or the default pairing table).
	pairedSending
	// regionalService is the sending or receiving service of any province (on the coordination
	// service, always with a check that it acts for its own region).
	regionalService
	// provincial is a province's system or operator (on the coordination service, always with a
	// check that the request is about that province).
	provincial
	// nationalRead is a national operator (read or full rights).
	nationalRead
	// nationalFull is a national operator with full rights.
	nationalFull
)

func (p party) String() string {
	switch p {
	case anyone:
		return "any party of the federation"
	case ownSystem:
		return "this province's own system"
	case operatorRead:
		return "an operator of this province or of the nation"
	case operatorFull:
		return "an operator with full rights of this province or of the nation"
	case pairedSending:
		return "the sending service of a paired province, for its own region"
	case regionalService:
		return "a province's service, for its own region"
	case provincial:
		return "a province's system or operator, about that province"
	case nationalRead:
		return "a national operator"
	case nationalFull:
		return "a national operator with full rights"
	}
	return fmt.Sprintf("party(%d)", int(p))
}

// grant lets one kind of caller call a method, under conditions on the request.
type grant struct {
	who party
	// fields are paths of string request fields (e.g. "sending_region", "batch.sending_region");
	// when set, one of them must equal the caller's region.
	fields []string
	// when, if set, is a further check of the request; it returns why the call is refused.
	when func(caller identity.Identity, req proto.Message) error
}

// constrained reports whether the grant looks at the request.
func (g grant) constrained() bool { return len(g.fields) > 0 || g.when != nil }

// rule is the list of grants of one method: the call is allowed when one of them allows it.
type rule []grant

// allowed describes who may call, for refusals.
func (r rule) allowed() string {
	var parts []string
	seen := map[party]bool{}
	for _, g := range r {
		if !seen[g.who] {
			seen[g.who] = true
			parts = append(parts, g.who.String())
		}
	}
	return strings.Join(parts, "; ")
}

// The usual rules of a regional service's own data.
var (
	// ownerRead: reads of the province's own data.
	ownerRead = rule{{who: ownSystem}, {who: operatorRead}}
	// ownerWrite: changes of the province's own data.
	ownerWrite = rule{{who: ownSystem}, {who: operatorFull}}
	// nationalOnly: national views across provinces.
	nationalOnly = rule{{who: nationalRead}}
)

// plus returns r with more grants.
func (r rule) plus(gs ...grant) rule { return append(append(rule(nil), r...), gs...) }

// peer is the grant of a paired sending service acting for its own region, named in field.
func peer(field string) grant { return grant{who: pairedSending, fields: []string{field}} }

// aboutProvince lets a province's system and operators read coordination data about their own
// province (one of fields names it); national operators read everything.
func aboutProvince(fields ...string) rule {
	return rule{{who: nationalRead}, {who: provincial, fields: fields}}
}

// policy is the authorisation of every method the labourlink servers serve, keyed by full
// method name. A method missing here is refused (TestPolicyCoversEveryMethod keeps it
// complete). See the package comment for the rules in words.
var policy = map[string]rule{
	// Health and reflection: anyone the federation's CA vouches for.
	healthpb.Health_Check_FullMethodName:                                   {{who: anyone}},
	healthpb.Health_List_FullMethodName:                                    {{who: anyone}},
	healthpb.Health_Watch_FullMethodName:                                   {{who: anyone}},
	reflectionv1.ServerReflection_ServerReflectionInfo_FullMethodName:      {{who: anyone}},
	reflectionv1alpha.ServerReflection_ServerReflectionInfo_FullMethodName: {{who: anyone}},

	// --- sending service: the province's roster, matching and transport ---
	sendingv1.RosterService_ImportWorkers_FullMethodName:        ownerWrite,
	sendingv1.RosterService_GetImport_FullMethodName:            ownerRead,
	sendingv1.RosterService_ListImportRejections_FullMethodName: ownerRead,
	sendingv1.RosterService_GetWorker_FullMethodName: {
		{who: ownSystem}, {who: operatorFull}, {who: operatorRead, when: basicView},
	},
	sendingv1.RosterService_ListWorkers_FullMethodName:        ownerRead,
	sendingv1.RosterService_UpdateWorker_FullMethodName:       ownerWrite,
	sendingv1.RosterService_ChangeWorkerStatus_FullMethodName: ownerWrite,
	sendingv1.RosterService_RecordReturnHome_FullMethodName:   ownerWrite,
	sendingv1.RosterService_DeleteWorker_FullMethodName:       ownerWrite,
	// A lookup by identity number shows the worker as GetWorker does, in the view asked for.
	sendingv1.RosterService_LookupWorker_FullMethodName: {
		{who: ownSystem}, {who: operatorFull}, {who: operatorRead, when: basicView},
	},
	sendingv1.RosterService_ListLookupRecords_FullMethodName: ownerRead,
	// A lookup by name shows the workers in the basic view only, as ListWorkers does.
	sendingv1.RosterService_FindWorkers_FullMethodName: ownerRead,

	sendingv1.ReturneeService_CreateLocalEmployer_FullMethodName:       ownerWrite,
	sendingv1.ReturneeService_GetLocalEmployer_FullMethodName:          ownerRead,
	sendingv1.ReturneeService_ListLocalEmployers_FullMethodName:        ownerRead,
	sendingv1.ReturneeService_UpdateLocalEmployer_FullMethodName:       ownerWrite,
	sendingv1.ReturneeService_PlaceWorkerLocally_FullMethodName:        ownerWrite,
	sendingv1.ReturneeService_GetLocalEmploymentSummary_FullMethodName: ownerRead,
	sendingv1.DynamicsService_GetEmploymentDynamics_FullMethodName:     ownerRead,
	// The subsidy lists with names: the province's own system and operators only (names stay in
	// the province; a national operator reads the coordination service's list, ids only).
	sendingv1.SubsidyService_ListEligibleWorkers_FullMethodName: {{who: ownSystem}, {who: operatorRead, when: provinceOperator}},

	// A List with a view (AIP-157) shows in its FULL view what the Get shows, so it has the
	// Get's rule (ListMatchRuns, ListQuarantinedEntries: TestFullViewsAsTheGet).
	sendingv1.MatchingService_StartMatchRun_FullMethodName:   ownerWrite,
	sendingv1.MatchingService_CancelMatchRun_FullMethodName:  ownerWrite,
	sendingv1.MatchingService_GetMatchRun_FullMethodName:     ownerRead,
	sendingv1.MatchingService_ListMatchRuns_FullMethodName:   ownerRead,
	sendingv1.MatchingService_ListDemand_FullMethodName:      ownerRead,
	sendingv1.MatchingService_ListProposals_FullMethodName:   ownerRead,
	sendingv1.MatchingService_GetFollowStatus_FullMethodName: ownerRead,

	sendingv1.TransportService_PlanBatches_FullMethodName:     ownerWrite,
	sendingv1.TransportService_CreateBatch_FullMethodName:     ownerWrite,
	sendingv1.TransportService_GetBatch_FullMethodName:        ownerRead,
	sendingv1.TransportService_ListBatches_FullMethodName:     ownerRead,
	sendingv1.TransportService_RecordDeparture_FullMethodName: ownerWrite,
	sendingv1.TransportService_CancelBatch_FullMethodName:     ownerWrite,
	// The printable manifest: names and masked phones, readable by whoever reads the batch.
	sendingv1.TransportService_GetBatchManifest_FullMethodName: ownerRead,

	// --- receiving service: the province's vacancies and intake; paired sending services
	// follow the feeds and deliver candidates and batches for their own region ---
	receivingv1.VacancyService_CreateVacancy_FullMethodName:   ownerWrite,
	receivingv1.VacancyService_ImportVacancies_FullMethodName: ownerWrite,
	// An import's summary and rejected rows are the province's own: the importers (ownerWrite)
	// and its readers, not the paired sending services.
	receivingv1.VacancyService_GetVacancyImport_FullMethodName:            ownerRead,
	receivingv1.VacancyService_ListVacancyImportRejections_FullMethodName: ownerRead,
	receivingv1.VacancyService_GetVacancy_FullMethodName:                  ownerRead.plus(grant{who: pairedSending}),
	receivingv1.VacancyService_ListVacancies_FullMethodName:               ownerRead.plus(grant{who: pairedSending}),
	receivingv1.VacancyService_UpdateVacancy_FullMethodName:               ownerWrite,
	receivingv1.VacancyService_CloseVacancy_FullMethodName:                ownerWrite,

	receivingv1.DemandFeedService_WatchDemand_FullMethodName:       ownerRead.plus(peer("sending_region")),
	receivingv1.DemandFeedService_ListDemandChanges_FullMethodName: ownerRead.plus(peer("sending_region")),
	receivingv1.DemandFeedService_ListOpenDemand_FullMethodName:    ownerRead.plus(peer("sending_region")),

	receivingv1.CandidateService_SubmitCandidates_FullMethodName: {
		{who: pairedSending, fields: []string{"sending_region"}, when: candidatesOfCaller},
	},
	receivingv1.CandidateService_GetCandidate_FullMethodName:      ownerRead,
	receivingv1.CandidateService_ListCandidates_FullMethodName:    ownerRead.plus(peer("sending_region")),
	receivingv1.CandidateService_DecideCandidate_FullMethodName:   ownerWrite,
	receivingv1.CandidateService_WithdrawCandidate_FullMethodName: {peer("sending_region")},
	receivingv1.CandidateService_WatchDecisions_FullMethodName:    ownerRead.plus(peer("sending_region")),
	receivingv1.CandidateService_ListDecisions_FullMethodName:     ownerRead.plus(peer("sending_region")),

	receivingv1.IntakeService_AnnounceBatch_FullMethodName:        {peer("batch.sending_region")},
	receivingv1.IntakeService_ReportBatchDeparture_FullMethodName: {peer("sending_region")},
	receivingv1.IntakeService_CancelIntakeBatch_FullMethodName:    {peer("sending_region")},
	receivingv1.IntakeService_GetIntakeBatch_FullMethodName:       ownerRead,
	receivingv1.IntakeService_ListIntakeBatches_FullMethodName:    ownerRead,
	receivingv1.IntakeService_ConfirmArrivals_FullMethodName:      ownerWrite,
	receivingv1.IntakeService_RecordOnboarding_FullMethodName:     ownerWrite,
	receivingv1.IntakeService_RecordCheckpoint_FullMethodName:     ownerWrite,
	receivingv1.IntakeService_RecordJobLeft_FullMethodName:        ownerWrite,
	receivingv1.IntakeService_RecordIncident_FullMethodName:       ownerWrite,
	receivingv1.IntakeService_RecordAbsence_FullMethodName:        ownerWrite,
	receivingv1.IntakeService_GetEmploymentRecord_FullMethodName:  ownerRead,
	// A paired sending service re-reads its own workers' trips after its employment-feed
	// position was compacted (EmploymentFeedService).
	receivingv1.IntakeService_ListEmploymentRecords_FullMethodName: ownerRead.plus(peer("sending_region")),

	receivingv1.EmploymentFeedService_WatchEmployment_FullMethodName:       ownerRead.plus(peer("sending_region")),
	receivingv1.EmploymentFeedService_ListEmploymentChanges_FullMethodName: ownerRead.plus(peer("sending_region")),

	// --- the outboxes of a regional service (sending and receiving): its own operators see
	// them; only operators with full rights decide on quarantined messages ---
	// A backup holds the data file whole, personal data included: the province's own system (a
	// scheduled backup) and operators with full rights; on the coordination service (no
	// province), national operators with full rights.
	backupv1.BackupService_Backup_FullMethodName: ownerWrite.plus(grant{who: nationalFull}),

	outboxv1.OutboxService_ListOutboxes_FullMethodName:            ownerRead,
	outboxv1.OutboxService_ListQuarantinedEntries_FullMethodName:  ownerRead,
	outboxv1.OutboxService_GetQuarantinedEntry_FullMethodName:     ownerRead,
	outboxv1.OutboxService_RetryQuarantinedEntry_FullMethodName:   {{who: operatorFull}},
	outboxv1.OutboxService_DiscardQuarantinedEntry_FullMethodName: {{who: operatorFull}},

	// --- the ledger checks of a regional service (sending and receiving): its own operators and
	// system read them and ask for a check of the whole history ---
	ledgerwatchv1.LedgerWatchService_GetLedgerWatch_FullMethodName: ownerRead,
	ledgerwatchv1.LedgerWatchService_VerifyLedger_FullMethodName:   ownerRead,

	// --- coordination service ---
	coordinationv1.RegistryService_RegisterRegion_FullMethodName: {
		{who: regionalService, fields: []string{"region.code"}, when: registersOwnRole},
		{who: nationalFull},
	},
	coordinationv1.RegistryService_GetRegion_FullMethodName:           {{who: anyone}},
	coordinationv1.RegistryService_ListRegions_FullMethodName:         {{who: anyone}},
	coordinationv1.RegistryService_ListPairings_FullMethodName:        {{who: anyone}},
	coordinationv1.RegistryService_CreatePairing_FullMethodName:       {{who: nationalFull}},
	coordinationv1.RegistryService_SetPairingAgreement_FullMethodName: {{who: nationalFull}},
	coordinationv1.RegistryService_DeletePairing_FullMethodName:       {{who: nationalFull}},
	coordinationv1.RegistryService_LoadDefaultPairings_FullMethodName: {{who: nationalFull}},

	coordinationv1.LedgerService_ReportEvents_FullMethodName: {{who: regionalService, when: eventsOfCaller}},
	coordinationv1.LedgerService_ListEvents_FullMethodName:   aboutProvince("region"),
	// The verifiable ledger: a province reads its own log; the public key is public.
	coordinationv1.LedgerService_GetLedgerCheckpoint_FullMethodName: aboutProvince("reporter_region"),
	coordinationv1.LedgerService_GetInclusionProof_FullMethodName:   aboutProvince("reporter_region"),
	coordinationv1.LedgerService_GetConsistencyProof_FullMethodName: aboutProvince("reporter_region"),
	coordinationv1.LedgerService_ListLedgerLeaves_FullMethodName:    aboutProvince("reporter_region"),
	coordinationv1.LedgerService_GetLedgerPublicKey_FullMethodName:  {{who: anyone}},

	// A batch is named by its sending province and its id: a province reads the batches it sent
	// (a receiving province lists its batches with ListBatchReconciliations and receiving_region).
	coordinationv1.ReconciliationService_GetBatchReconciliation_FullMethodName:   aboutProvince("sending_region"),
	coordinationv1.ReconciliationService_ListBatchReconciliations_FullMethodName: aboutProvince("sending_region", "receiving_region"),
	coordinationv1.ReconciliationService_ListPairingSummaries_FullMethodName:     aboutProvince("region"),
	coordinationv1.ReconciliationService_ListDiscrepancies_FullMethodName:        aboutProvince("region"),
	coordinationv1.ReconciliationService_GetDiscrepancy_FullMethodName:           aboutProvince("region"),
	coordinationv1.ReconciliationService_ListDiscrepancyChanges_FullMethodName:   nationalOnly,

	// The baseline is what a province is assessed against: only the nation sets it.
	coordinationv1.AssessmentService_SetBaseline_FullMethodName:     {{who: nationalFull}},
	coordinationv1.AssessmentService_GetAssessment_FullMethodName:   aboutProvince("region"),
	coordinationv1.AssessmentService_ListAssessments_FullMethodName: nationalOnly,

	// National employment dynamics are published figures (counts, no worker): anyone reads them.
	coordinationv1.DynamicsService_GetNationalEmploymentDynamics_FullMethodName: {{who: anyone}},
	// A sending province reports its own local employers only (for the national recovery rate).
	coordinationv1.DynamicsService_ReportLocalEmployers_FullMethodName: {{who: regionalService, fields: []string{"reporter_region"}, when: sendingService}},

	// A sending province lists its own eligible workers (worker ids, no names), its system and
	// operators or its sending service (which joins the names, SubsidyService); the rules are public.
	coordinationv1.EligibilityService_ListEligibleWorkers_FullMethodName: aboutProvince("sending_region").plus(
		grant{who: regionalService, fields: []string{"sending_region"}, when: sendingServiceLists}),
	coordinationv1.EligibilityService_ListSubsidyRules_FullMethodName: {{who: anyone}},
}

// basicView refuses the full identity-number view of a worker (for read-only operators).
func basicView(_ identity.Identity, req proto.Message) error {
	view := sendingv1.WorkerView_WORKER_VIEW_UNSPECIFIED
	switch r := req.(type) {
	case *sendingv1.GetWorkerRequest:
		view = r.GetView()
	case *sendingv1.LookupWorkerRequest:
		view = r.GetView()
	}
	if view == sendingv1.WorkerView_WORKER_VIEW_FULL {
		return refusal(commonv1.ErrorReason_ERROR_REASON_FULL_VIEW_NOT_ALLOWED,
			"the full view (WORKER_VIEW_FULL) needs an operator with full rights or the province's own system")
	}
	return nil
}

// sendingServiceLists refuses a regional caller that is not a sending service.
func sendingServiceLists(caller identity.Identity, _ proto.Message) error {
	if caller.Role != identity.RoleSending {
		return refusal(commonv1.ErrorReason_ERROR_REASON_ROLE_MISMATCH, "a %s service does not list subsidies: only a sending service, for its own province", caller.Role)
	}
	return nil
}

// provinceOperator refuses national operators: only the serving province's own operators.
func provinceOperator(caller identity.Identity, _ proto.Message) error {
	if caller.IsNational() {
		return refusal(commonv1.ErrorReason_ERROR_REASON_CALLER_NOT_ALLOWED, "the names stay in the province: only its own system and operators, not national operators (they read the coordination service's list of worker ids)")
	}
	return nil
}

// candidatesOfCaller refuses candidates said to come from another sending province.
func candidatesOfCaller(caller identity.Identity, req proto.Message) error {
	r, ok := req.(*receivingv1.SubmitCandidatesRequest)
	if !ok {
		return nil
	}
	for i, c := range r.GetCandidates() {
		if c.GetSendingRegion() != "" && c.GetSendingRegion() != caller.Region {
			return refusal(commonv1.ErrorReason_ERROR_REASON_REGION_MISMATCH, "candidates[%d].sending_region must be %s, the caller's region", i, caller.Region)
		}
	}
	return nil
}

// registersOwnRole refuses a service registering its region with another role.
func registersOwnRole(caller identity.Identity, req proto.Message) error {
	r, ok := req.(*coordinationv1.RegisterRegionRequest)
	if !ok {
		return nil
	}
	want := commonv1.RegionRole_REGION_ROLE_SENDING
	if caller.Role == identity.RoleReceiving {
		want = commonv1.RegionRole_REGION_ROLE_RECEIVING
	}
	if r.GetRegion().GetRole() != want {
		return refusal(commonv1.ErrorReason_ERROR_REASON_ROLE_MISMATCH, "region.role must be %s: a %s service registers only as what it is", want, caller.Role)
	}
	return nil
}

// sendingService refuses a caller that is not a sending service.
func sendingService(caller identity.Identity, _ proto.Message) error {
	if caller.Role != identity.RoleSending {
		return refusal(commonv1.ErrorReason_ERROR_REASON_ROLE_MISMATCH, "only a sending service reports its province's local employers, not a %s service", caller.Role)
	}
	return nil
}

// sendingSide reports whether events of kind k are reported by the sending side.
func sendingSide(k coordinationv1.EventKind) bool {
	return k == coordinationv1.EventKind_EVENT_KIND_DEPARTED || k == coordinationv1.EventKind_EVENT_KIND_RETURNED_HOME
}

// eventsOfCaller accepts ledger events only from the region they are about: every event's
// reporter is the caller's region, the caller is the service of that side (departures and
// returns home come from sending services, the rest from receiving services), and the event's
// own side names the caller's region when it is set.
func eventsOfCaller(caller identity.Identity, req proto.Message) error {
	r, ok := req.(*coordinationv1.ReportEventsRequest)
	if !ok {
		return nil
	}
	for i, e := range r.GetEvents() {
		if e.GetReporterRegion() != caller.Region {
			return refusal(commonv1.ErrorReason_ERROR_REASON_REGION_MISMATCH, "events[%d].reporter_region must be %s: a region reports only its own events", i, caller.Region)
		}
		if e.GetKind() != coordinationv1.EventKind_EVENT_KIND_UNSPECIFIED {
			sending := sendingSide(e.GetKind())
			if sending != (caller.Role == identity.RoleSending) {
				return refusal(commonv1.ErrorReason_ERROR_REASON_ROLE_MISMATCH, "events[%d]: %s is not reported by a %s service", i, e.GetKind(), caller.Role)
			}
		}
		own := e.GetReceivingRegion()
		field := "receiving_region"
		if caller.Role == identity.RoleSending {
			own, field = e.GetSendingRegion(), "sending_region"
		}
		if own != "" && own != caller.Region {
			return refusal(commonv1.ErrorReason_ERROR_REASON_REGION_MISMATCH, "events[%d].%s must be %s, the caller's region", i, field, caller.Region)
		}
	}
	return nil
}

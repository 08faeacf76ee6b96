// Package intake is the IntakeService of the receiving service: batches announced by the
// sending side, arrivals, onboarding and follow-up, and the ledger events they report to the
// coordination service.
//
// Batches are stored under their batch id, employment records one per trip (a worker on a
// batch) under the trip id `{worker id}~{batch id}`: a worker announced again after a no-show
// or after leaving a job starts a new record, and no record of an earlier trip is changed by a
// later one. An index by worker keeps the order of each worker's trips; the last is the
// worker's current trip, which the Record* methods act on unless a request names the record.
//
// Facts are in time order (ledgerclient.NotBefore, DayNotBefore, StartWindowDays): an arrival
// not before its batch's departure, onboarding not before arrival, a checkpoint at N months
// at least N months after onboarding, the job left not before onboarding, and no arrival or
// onboarding before the vacancy's start window opens. A fact out of order is INVALID_ARGUMENT
// on its field, and nothing is changed.
//
// Every arrival outcome, onboarding, checkpoint, job leaving and incident is committed in the
// same transaction as exactly one outbox entry for the coordination service, a
// coordinationv1.LedgerEvent whose event id is a deterministic key of the fact (eventID), and
// exactly one change of the employment feed of the worker's sending province (Employment,
// served by FeedServer, the EmploymentFeedService: employment.go). Recording the same fact
// again (same request id, or the same content) changes nothing and writes no second entry or
// change; a refused fact writes neither.
//
// A batch whose departure was not reported yet may be cancelled by its sending service
// (CancelIntakeBatch): it stays, in state CANCELLED, takes no departure report or arrival, and
// the employment records it created (still EXPECTED) are removed, so its workers are no longer
// expected here and may be announced again on another batch.
//
// Arrivals are confirmed worker by worker for workers on the batch manifest (a worker not on
// it is INVALID_ARGUMENT). A manifest worker the sending side did not report as boarded may
// still be confirmed ARRIVED: the ledger then holds an arrival without a departure, which the
// coordination service reports as "unexpected". A NO_SHOW may later become ARRIVED (a late
// arrival; both events stay in the ledger); an ARRIVED worker cannot become a NO_SHOW.
//
// Files: rules.go (the facts, their ledger events and feed changes), store.go (tables),
// intake.go (handlers), employment.go (the employment feed's handlers), migrate.go (upgrades of
// stored data).
package intake

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/paging"
	"github.com/eastwest/labourlink/services/platform/privacy"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/receiving/candidates"
	"github.com/eastwest/labourlink/services/receiving/internal/check"
	"github.com/eastwest/labourlink/services/receiving/internal/feedlog"
	"github.com/eastwest/labourlink/services/receiving/internal/province"
	"github.com/eastwest/labourlink/services/receiving/vacancies"
)

const (
	// LedgerDestination is the outbox destination of ledger events (delivered by an outbox
	// relay with services/coordination/ledgerclient).
	LedgerDestination = ledgerclient.Destination

	maxManifest      = 1000
	maxConfirmations = 1000
	maxIncidentText  = 1000
)

// Config configures the IntakeService.
type Config struct {
	DB       *feedlog.DB
	Log      *zap.Logger
	Now      func() time.Time
	Province *province.Province
	// Watching configures the watches of the employment feed (FeedServer).
	Watching feedlog.Watching
}

// Server is the IntakeService.
type Server struct {
	receivingv1.UnimplementedIntakeServiceServer
	cfg Config
}

// New returns the IntakeService.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	return &Server{cfg: cfg}
}

func (x *Server) now() time.Time { return x.cfg.Now() }

// PersonalDataFields gives the grpcserver privacy guard the intake allow-list (escorts' phones).
func (x *Server) PersonalDataFields() privacy.Allow { return check.PersonalData }

// ValidateRequest checks IntakeService requests before their handlers run.
func (x *Server) ValidateRequest(_ string, req any) error {
	var v apierror.Violations
	day := civil.Today(x.now())
	switch r := req.(type) {
	case *receivingv1.AnnounceBatchRequest:
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
		x.checkBatch(&v, r.GetBatch())
	case *receivingv1.ReportBatchDepartureRequest:
		check.OwnedID(&v, "batch_id", r.GetBatchId(), r.GetSendingRegion())
		x.cfg.Province.CheckSendingRegion(&v, "sending_region", r.GetSendingRegion())
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
		seen := map[string]bool{}
		for i, w := range r.GetBoardedWorkerIds() {
			field := fmt.Sprintf("boarded_worker_ids[%d]", i)
			check.WorkerID(&v, field, w)
			if seen[w] {
				v.Add(field, "is listed twice")
			}
			seen[w] = true
		}
	case *receivingv1.CancelIntakeBatchRequest:
		check.OwnedID(&v, "batch_id", r.GetBatchId(), r.GetSendingRegion())
		x.cfg.Province.CheckSendingRegion(&v, "sending_region", r.GetSendingRegion())
		check.Text(&v, "reason", r.GetReason(), check.MaxReason, false)
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
	case *receivingv1.GetIntakeBatchRequest:
		check.Name(&v, "name", r.GetName(), check.Batches)
	case *receivingv1.ListIntakeBatchesRequest:
		check.ListSize.Check(&v, r.GetPageSize())
		x.checkListFilters(&v, r)
	case *receivingv1.ConfirmArrivalsRequest:
		check.Name(&v, "name", r.GetName(), check.Batches)
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
		switch n := len(r.GetConfirmations()); {
		case n == 0:
			v.Add("confirmations", "must hold at least one worker's outcome")
		case n > maxConfirmations:
			v.Addf("confirmations", "has %d outcomes, at most %d are allowed", n, maxConfirmations)
		}
		seen := map[string]bool{}
		for i, c := range r.GetConfirmations() {
			p := fmt.Sprintf("confirmations[%d].", i)
			check.WorkerID(&v, p+"worker_id", c.GetWorkerId())
			if seen[c.GetWorkerId()] {
				v.Add(p+"worker_id", "is listed twice")
			}
			seen[c.GetWorkerId()] = true
			if c.GetOutcome() != outcomeArrived && c.GetOutcome() != outcomeNoShow {
				v.Add(p+"outcome", "must be ARRIVAL_OUTCOME_ARRIVED or ARRIVAL_OUTCOME_NO_SHOW")
			}
			if c.GetTime() != nil {
				if err := c.GetTime().CheckValid(); err != nil {
					v.Add(p+"time", err.Error())
				} else if c.GetTime().AsTime().After(x.now().Add(time.Hour)) {
					v.Add(p+"time", "is in the future")
				}
			}
		}
	case *receivingv1.RecordOnboardingRequest:
		check.WorkerID(&v, "worker_id", r.GetWorkerId())
		checkRecordOf(&v, r.GetRecord(), r.GetWorkerId())
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
		check.PastDate(&v, "onboard_date", r.GetOnboardDate(), day)
	case *receivingv1.RecordCheckpointRequest:
		check.WorkerID(&v, "worker_id", r.GetWorkerId())
		checkRecordOf(&v, r.GetRecord(), r.GetWorkerId())
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
		if r.GetCheckpoint() == nil {
			v.Add("checkpoint", "is required")
			break
		}
		check.PastDate(&v, "checkpoint.check_date", r.GetCheckpoint().GetCheckDate(), day)
		if m := r.GetCheckpoint().GetMonths(); m < 1 || m > 120 {
			v.Addf("checkpoint.months", "must be 1 to 120 (whole months since onboarding), got %d", m)
		}
	case *receivingv1.RecordJobLeftRequest:
		check.WorkerID(&v, "worker_id", r.GetWorkerId())
		checkRecordOf(&v, r.GetRecord(), r.GetWorkerId())
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
		check.PastDate(&v, "left_date", r.GetLeftDate(), day)
		check.Text(&v, "reason", r.GetReason(), check.MaxReason, true)
	case *receivingv1.RecordIncidentRequest:
		check.WorkerID(&v, "worker_id", r.GetWorkerId())
		checkRecordOf(&v, r.GetRecord(), r.GetWorkerId())
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
		if r.GetIncident() == nil {
			v.Add("incident", "is required")
			break
		}
		check.PastDate(&v, "incident.incident_date", r.GetIncident().GetIncidentDate(), day)
		switch k := r.GetIncident().GetIncidentKind(); {
		case k == kindUnspecified:
			v.Add("incident.incident_kind", "is required: INCIDENT_KIND_INJURY, _ILLNESS, _WAGE_DISPUTE, _LABOUR_DISPUTE or _OTHER")
		case receivingv1.IncidentKind_name[int32(k)] == "":
			v.Addf("incident.incident_kind", "%d is not an IncidentKind", k)
		}
		check.Text(&v, "incident.detail", r.GetIncident().GetDetail(), maxIncidentDetail, r.GetIncident().GetIncidentKind() == kindOther)
		check.Text(&v, "incident.description", r.GetIncident().GetDescription(), maxIncidentText, false)
	case *receivingv1.RecordAbsenceRequest:
		check.WorkerID(&v, "worker_id", r.GetWorkerId())
		checkRecordOf(&v, r.GetRecord(), r.GetWorkerId())
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
		if r.GetAbsence() == nil {
			v.Add("absence", "is required: first_day, and back_day once the worker is back")
			break
		}
		n := v.Len()
		check.PastDate(&v, "absence.first_day", r.GetAbsence().GetFirstDay(), day)
		if b := r.GetAbsence().GetBackDay(); b != nil {
			m := v.Len()
			check.PastDate(&v, "absence.back_day", b, day)
			if v.Len() == m && v.Len() == n && civil.Compare(b, r.GetAbsence().GetFirstDay()) <= 0 {
				v.Addf("absence.back_day", "%s must be after first_day (%s)", civil.Format(b), civil.Format(r.GetAbsence().GetFirstDay()))
			}
		}
	case *receivingv1.GetEmploymentRecordRequest:
		checkRecordName(&v, "name", r.GetName())
	case *receivingv1.ListEmploymentRecordsRequest:
		check.ListSize.Check(&v, r.GetPageSize())
		x.checkListFilters(&v, r)
	default:
		return apierror.NotValidated(req)
	}
	return v.Err()
}

// checkBatch checks an announced batch.
func (x *Server) checkBatch(v *apierror.Violations, b *receivingv1.IntakeBatch) {
	if b == nil {
		v.Add("batch", "is required")
		return
	}
	n := v.Len()
	check.OwnedID(v, "batch.batch_id", b.GetBatchId(), b.GetSendingRegion())
	if v.Len() == n {
		checkNoTripSep(v, "batch.batch_id", b.GetBatchId())
	}
	x.cfg.Province.CheckSendingRegion(v, "batch.sending_region", b.GetSendingRegion())
	if b.GetMode() == commonv1.TransportMode_TRANSPORT_MODE_UNSPECIFIED {
		v.Add("batch.mode", "is required: TRANSPORT_MODE_BUS, TRANSPORT_MODE_TRAIN or TRANSPORT_MODE_FLIGHT")
	} else if _, ok := commonv1.TransportMode_name[int32(b.GetMode())]; !ok {
		v.Addf("batch.mode", "%d is not a transport mode", b.GetMode())
	}
	check.Text(v, "batch.origin", b.GetOrigin(), 100, false)
	if c := b.GetDestinationCounty(); c == "" {
		v.Add("batch.destination_county", "is required: a county-level code of "+x.cfg.Province.Code)
	} else if err := x.cfg.Province.Regions.CheckCountyIn(c, x.cfg.Province.Code); err != nil {
		v.Add("batch.destination_county", err.Error())
	}
	if b.GetExpectedArrivalTime() == nil {
		v.Add("batch.expected_arrival_time", "is required")
	} else if err := b.GetExpectedArrivalTime().CheckValid(); err != nil {
		v.Add("batch.expected_arrival_time", err.Error())
	} else if b.GetDepartureTime() != nil && b.GetExpectedArrivalTime().AsTime().Before(b.GetDepartureTime().AsTime()) {
		v.Add("batch.expected_arrival_time", "is before the departure time")
	}
	if b.GetDepartureTime() != nil {
		if err := b.GetDepartureTime().CheckValid(); err != nil {
			v.Add("batch.departure_time", err.Error())
		}
	}
	if b.GetEscortName() != "" {
		if p := check.PersonNameProblem(b.GetEscortName()); p != "" {
			v.Add("batch.escort_name", p)
		}
	}
	check.Text(v, "batch.escort_contact", b.GetEscortContact(), 100, false)
	switch n := len(b.GetEntries()); {
	case n == 0:
		v.Add("batch.entries", "must list at least one worker")
	case n > maxManifest:
		v.Addf("batch.entries", "has %d workers, at most %d are allowed", n, maxManifest)
	}
	seen := map[string]bool{}
	for i, e := range b.GetEntries() {
		p := fmt.Sprintf("batch.entries[%d].", i)
		check.WorkerID(v, p+"worker_id", e.GetWorkerId())
		checkNoTripSep(v, p+"worker_id", e.GetWorkerId())
		if seen[e.GetWorkerId()] {
			v.Add(p+"worker_id", "is listed twice on the manifest")
		}
		seen[e.GetWorkerId()] = true
		check.Name(v, p+"vacancy", e.GetVacancy(), check.Vacancies)
	}
}

// checkListFilters adds a violation for every filter of ListIntakeBatches and
// ListEmploymentRecords that names nothing that can exist here.
func (x *Server) checkListFilters(v *apierror.Violations, req any) {
	switch r := req.(type) {
	case *receivingv1.ListIntakeBatchesRequest:
		x.cfg.Province.CheckSendingRegionFilter(v, r.GetSendingRegion())
		if _, ok := receivingv1.IntakeBatchState_name[int32(r.GetState())]; !ok {
			v.Addf("state", "%d is not an IntakeBatchState", r.GetState())
		}
		from, to := r.GetExpectedArrivalFrom(), r.GetExpectedArrivalTo()
		fromOK, toOK := from != nil, to != nil
		if from != nil {
			if p := civil.Problem(from); p != "" {
				v.Add("expected_arrival_from", p)
				fromOK = false
			}
		}
		if to != nil {
			if p := civil.Problem(to); p != "" {
				v.Add("expected_arrival_to", p)
				toOK = false
			}
		}
		if fromOK && toOK && civil.Compare(from, to) > 0 {
			v.Addf("expected_arrival_to", "%s is before expected_arrival_from (%s)", civil.Format(to), civil.Format(from))
		}
	case *receivingv1.ListEmploymentRecordsRequest:
		if _, ok := receivingv1.EmploymentStatus_name[int32(r.GetStatus())]; !ok {
			v.Addf("status", "%d is not an EmploymentStatus", r.GetStatus())
		}
		x.cfg.Province.CheckSendingRegionFilter(v, r.GetSendingRegion())
		if r.GetWorkerId() != "" {
			check.WorkerID(v, "worker_id", r.GetWorkerId())
		}
	}
}

// checkRecordName adds a violation unless name is `employmentRecords/{worker_id}~{batch_id}`
// (a trip) or `employmentRecords/{worker_id}` (the worker's current trip), and returns the
// worker id it names ("" when it is not a record name).
func checkRecordName(v *apierror.Violations, field, name string) string {
	check.Name(v, field, name, check.Records)
	id := check.ResourceID(name, check.Records)
	if id == "" {
		return ""
	}
	workerID, batchID := splitTrip(id)
	if workerID == "" || (batchID == "" && strings.Contains(id, tripSep)) || strings.Contains(batchID, tripSep) {
		v.Addf(field, "must be %s/{worker_id}~{batch_id} or %s/{worker_id}", check.Records, check.Records)
		return ""
	}
	return workerID
}

// checkRecordOf adds a violation unless record is empty or the name of a trip of workerID.
func checkRecordOf(v *apierror.Violations, record, workerID string) {
	if record == "" {
		return
	}
	if w := checkRecordName(v, "record", record); w != "" && w != workerID {
		v.Addf("record", "is a record of worker %s, not of worker_id %s", w, workerID)
	}
}

// checkNoTripSep adds a violation if id holds tripSep, which joins the ids of a trip.
func checkNoTripSep(v *apierror.Violations, field, id string) {
	if strings.Contains(id, tripSep) {
		v.Addf(field, "must not contain %q (employment record names join worker and batch ids with it)", tripSep)
	}
}

// putFact stores the fact whose ledger event is ev, about trip r of vacancy vac, in tx: the
// event in the outbox for the coordination service and its change in the employment feed of
// the worker's sending province (Employment), so that the fact, its ledger entry and its feed
// change commit together or not at all. in is the incident of an incident (nil otherwise).
func (x *Server) putFact(ctx context.Context, tx *bbolt.Tx, r *receivingv1.EmploymentRecord, vac *receivingv1.Vacancy, ev *coordinationv1.LedgerEvent, in *receivingv1.Incident, now time.Time) error {
	if _, err := outbox.Put(ctx, tx, now, LedgerDestination, "", ledgerEvent(x.cfg.Province.Code, r, ev)); err != nil {
		return err
	}
	if _, ok := changeKinds[ev.GetKind()]; !ok {
		return nil // an absence: for the ledger's deadlines, not a change of the employment feed
	}
	c := factChange(ev, r, vac, in, now)
	_, err := Employment.Of(r.GetSendingRegion()).Append(tx, func(rev int64) *receivingv1.EmploymentChange {
		c.Revision = rev
		return c
	})
	return err
}

// AnnounceBatch records a batch announced by its sending service. Every manifest worker must
// be an accepted candidate of the batch's sending province for the entry's vacancy (the rule:
// admit); an entry that cannot be taken is refused on its own, the batch goes on with the others
// (the sending side takes refused workers off its manifest). Announcing a recorded batch again
// returns it as recorded.
func (x *Server) AnnounceBatch(ctx context.Context, req *receivingv1.AnnounceBatchRequest) (*receivingv1.AnnounceBatchResponse, error) {
	in := req.GetBatch()
	if err := x.cfg.Province.RequirePaired(ctx, in.GetSendingRegion()); err != nil {
		return nil, err
	}
	resp := &receivingv1.AnnounceBatchResponse{}
	err := x.cfg.DB.UpdateOnce(x.now(), receivingv1.IntakeService_AnnounceBatch_FullMethodName, req, resp, func(tx *bbolt.Tx) error {
		if old, ok, err := batchTable.Get(tx, []byte(in.GetBatchId())); err != nil {
			return err
		} else if ok {
			if old.GetSendingRegion() != in.GetSendingRegion() {
				return apierror.AlreadyExists("batch id %s is already used by a batch from %s", in.GetBatchId(), old.GetSendingRegion())
			}
			resp.Batch = old
			return nil
		}
		b := newBatch(in)
		resp.Refusals = nil
		for i, e := range in.GetEntries() {
			vid := check.ResourceID(e.GetVacancy(), check.Vacancies)
			c, _, err := candidates.Find(tx, b.GetSendingRegion(), e.GetWorkerId(), vid)
			if err != nil {
				return err
			}
			rec, _, err := findRecord(tx, e.GetWorkerId(), "")
			if err != nil {
				return err
			}
			if err := admit(i, b, e, c, rec); err != nil {
				r, ok := apierror.Refusal(i, e.GetWorkerId(), fmt.Sprintf("batch.entries[%d]: ", i), err)
				if !ok {
					return err
				}
				resp.Refusals = append(resp.Refusals, r)
				continue
			}
			b.Entries = append(b.Entries, &receivingv1.IntakeEntry{
				WorkerId: e.GetWorkerId(), Vacancy: vacancies.Name(vid), RegisteredPoor: c.GetRegisteredPoor(),
			})
			if err := putRecord(tx, expectedRecord(b, e.GetWorkerId(), vacancies.Name(vid), c.GetRegisteredPoor())); err != nil {
				return err
			}
			if err := addTrip(tx, e.GetWorkerId(), b.GetBatchId()); err != nil {
				return err
			}
		}
		resp.Batch = b
		return putBatch(tx, b)
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// ownBatch reads batch id for its sending region: another region's batch is PERMISSION_DENIED.
func ownBatch(tx *bbolt.Tx, id, sendingRegion string) (*receivingv1.IntakeBatch, error) {
	b, err := getBatch(tx, id)
	if err != nil {
		return nil, err
	}
	if b.GetSendingRegion() != sendingRegion {
		return nil, apierror.PermissionDenied(commonv1.ErrorReason_ERROR_REASON_NOT_OWNER, "batch %s belongs to %s, not %s", b.GetBatchId(), b.GetSendingRegion(), sendingRegion)
	}
	return b, nil
}

// ReportBatchDeparture records who boarded (the rule: depart). The first report counts; a later
// one returns the batch unchanged.
func (x *Server) ReportBatchDeparture(ctx context.Context, req *receivingv1.ReportBatchDepartureRequest) (*receivingv1.ReportBatchDepartureResponse, error) {
	if err := x.cfg.Province.RequirePaired(ctx, req.GetSendingRegion()); err != nil {
		return nil, err
	}
	resp := &receivingv1.ReportBatchDepartureResponse{}
	err := x.cfg.DB.UpdateOnce(x.now(), receivingv1.IntakeService_ReportBatchDeparture_FullMethodName, req, resp, func(tx *bbolt.Tx) error {
		b, err := ownBatch(tx, req.GetBatchId(), req.GetSendingRegion())
		if err != nil {
			return err
		}
		changed, err := depart(b, req.GetBoardedWorkerIds(), req.GetDepartureTime())
		if err != nil || !changed {
			resp.Batch = b
			return err
		}
		resp.Batch = b
		return putBatch(tx, b)
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// CancelIntakeBatch cancels a batch its sending service cancelled before departure (the rule:
// cancels): the batch goes to state CANCELLED and the EXPECTED employment records it created are
// removed. Cancelling a cancelled batch returns it unchanged; a batch whose departure was
// reported is FAILED_PRECONDITION.
func (x *Server) CancelIntakeBatch(ctx context.Context, req *receivingv1.CancelIntakeBatchRequest) (*receivingv1.CancelIntakeBatchResponse, error) {
	if err := x.cfg.Province.RequirePaired(ctx, req.GetSendingRegion()); err != nil {
		return nil, err
	}
	resp := &receivingv1.CancelIntakeBatchResponse{}
	err := x.cfg.DB.UpdateOnce(x.now(), receivingv1.IntakeService_CancelIntakeBatch_FullMethodName, req, resp, func(tx *bbolt.Tx) error {
		b, err := ownBatch(tx, req.GetBatchId(), req.GetSendingRegion())
		if err != nil {
			return err
		}
		resp.Batch = b
		if ok, err := cancels(b); err != nil || !ok {
			return err
		}
		for _, e := range b.GetEntries() {
			rec, found, err := findRecord(tx, e.GetWorkerId(), b.GetBatchId())
			if err != nil {
				return err
			}
			if found && rec.GetStatus() == expected {
				if err := dropTrip(tx, e.GetWorkerId(), b.GetBatchId()); err != nil {
					return err
				}
			}
		}
		b.State = batchCancelled
		b.CancelReason = req.GetReason()
		return putBatch(tx, b)
	})
	if err != nil {
		return nil, err
	}
	x.cfg.Log.Info("intake batch cancelled by its sending service", zap.String("batch_id", req.GetBatchId()),
		zap.String("sending_region", req.GetSendingRegion()))
	return resp, nil
}

// GetIntakeBatch reads a batch.
func (x *Server) GetIntakeBatch(_ context.Context, req *receivingv1.GetIntakeBatchRequest) (*receivingv1.GetIntakeBatchResponse, error) {
	b, err := feedlog.Load(x.cfg.DB, getBatch, check.ResourceID(req.GetName(), check.Batches))
	if err != nil {
		return nil, err
	}
	return &receivingv1.GetIntakeBatchResponse{Batch: b}, nil
}

// ListIntakeBatches lists batches in batch-id order.
func (x *Server) ListIntakeBatches(_ context.Context, req *receivingv1.ListIntakeBatchesRequest) (*receivingv1.ListIntakeBatchesResponse, error) {
	from, to := req.GetExpectedArrivalFrom(), req.GetExpectedArrivalTo()
	bound := func(d *commonv1.Date) string {
		if d == nil {
			return ""
		}
		return civil.Format(d)
	}
	listing := paging.For("batches", req.GetSendingRegion(), req.GetState().String(), bound(from), bound(to))
	items, next, err := feedlog.List(x.cfg.DB, batchTable, listing, req.GetPageToken(), check.ListSize.Of(req.GetPageSize()),
		func(b *receivingv1.IntakeBatch) bool {
			if req.GetSendingRegion() != "" && b.GetSendingRegion() != req.GetSendingRegion() {
				return false
			}
			if req.GetState() != 0 && b.GetState() != req.GetState() {
				return false
			}
			if from == nil && to == nil {
				return true
			}
			if b.GetExpectedArrivalTime() == nil {
				return false
			}
			day := civil.Today(b.GetExpectedArrivalTime().AsTime())
			return (from == nil || civil.Compare(day, from) >= 0) && (to == nil || civil.Compare(day, to) <= 0)
		})
	if err != nil {
		return nil, err
	}
	return &receivingv1.ListIntakeBatchesResponse{Batches: items, NextPageToken: next}, nil
}

// ConfirmArrivals records, worker by worker, who arrived and who did not (the rules: manifest,
// arrive).
func (x *Server) ConfirmArrivals(ctx context.Context, req *receivingv1.ConfirmArrivalsRequest) (*receivingv1.ConfirmArrivalsResponse, error) {
	resp := &receivingv1.ConfirmArrivalsResponse{}
	now := x.now()
	err := x.cfg.DB.UpdateOnce(now, receivingv1.IntakeService_ConfirmArrivals_FullMethodName, req, resp, func(tx *bbolt.Tx) error {
		b, err := getBatch(tx, check.ResourceID(req.GetName(), check.Batches))
		if err != nil {
			return err
		}
		entries, err := manifest(b, req.GetConfirmations())
		if err != nil {
			return err
		}
		for i, c := range req.GetConfirmations() {
			stored, _, err := findRecord(tx, c.GetWorkerId(), b.GetBatchId())
			if err != nil {
				return err
			}
			e := entries[c.GetWorkerId()]
			vac, err := vacancies.Get(tx, check.ResourceID(e.GetVacancy(), check.Vacancies))
			if err != nil {
				return err
			}
			rec, ev, err := arrive(x.cfg.Province.Code, i, b, e, c, stored, vac, now)
			if err != nil {
				return err
			}
			if ev == nil {
				continue
			}
			if err := putRecord(tx, rec); err != nil {
				return err
			}
			if err := x.putFact(ctx, tx, rec, vac, ev, nil, now); err != nil {
				return err
			}
		}
		resp.Batch = b
		return putBatch(tx, b)
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// workerRequest is a request about one trip's record, with a request id: the trip of
// GetRecord, or the worker's current trip when it is empty.
type workerRequest interface {
	proto.Message
	GetRequestId() string
	GetWorkerId() string
	GetRecord() string
}

// recordID is the id of the record req is about: its record's trip id, or the worker id (the
// current trip).
func recordID(req workerRequest) string {
	if req.GetRecord() != "" {
		return check.ResourceID(req.GetRecord(), check.Records)
	}
	return req.GetWorkerId()
}

// recordChange runs change on the record req is about (recordID) in one transaction with
// request-id idempotency, and returns resp after set put the record in it; change returns the
// ledger event to write (with the fact's employment-feed change, putFact), or nil when the fact
// was recorded before (then nothing is written).
func recordChange[Resp proto.Message](ctx context.Context, x *Server, method string, req workerRequest, resp Resp, set func(*receivingv1.EmploymentRecord),
	change func(tx *bbolt.Tx, r *receivingv1.EmploymentRecord, now time.Time) (*coordinationv1.LedgerEvent, error)) (Resp, error) {
	now := x.now()
	err := x.cfg.DB.UpdateOnce(now, method, req, resp, func(tx *bbolt.Tx) error {
		r, err := getRecord(tx, recordID(req))
		if err != nil {
			return err
		}
		ev, err := change(tx, r, now)
		if err != nil {
			return err
		}
		if ev != nil {
			if err := putRecord(tx, r); err != nil {
				return err
			}
			vac, err := tripVacancy(tx, r)
			if err != nil {
				return err
			}
			var in *receivingv1.Incident
			if ir, ok := req.(interface{ GetIncident() *receivingv1.Incident }); ok {
				in = ir.GetIncident()
			}
			if err := x.putFact(ctx, tx, r, vac, ev, in, now); err != nil {
				return err
			}
		}
		set(r)
		return nil
	})
	if err != nil {
		var none Resp
		return none, err
	}
	return resp, nil
}

// ruleOnly adapts a rule that needs nothing but the record to recordChange.
func ruleOnly(rule func(r *receivingv1.EmploymentRecord) (*coordinationv1.LedgerEvent, error)) func(*bbolt.Tx, *receivingv1.EmploymentRecord, time.Time) (*coordinationv1.LedgerEvent, error) {
	return func(_ *bbolt.Tx, r *receivingv1.EmploymentRecord, _ time.Time) (*coordinationv1.LedgerEvent, error) {
		return rule(r)
	}
}

// RecordOnboarding records that an arrived worker started work (the rules: onboards, onboard);
// the vacancy's filled count goes up by one (a change in the demand feed).
func (x *Server) RecordOnboarding(ctx context.Context, req *receivingv1.RecordOnboardingRequest) (*receivingv1.RecordOnboardingResponse, error) {
	resp := &receivingv1.RecordOnboardingResponse{}
	d := req.GetOnboardDate()
	return recordChange(ctx, x, receivingv1.IntakeService_RecordOnboarding_FullMethodName, req, resp,
		func(r *receivingv1.EmploymentRecord) { resp.Record = r },
		func(tx *bbolt.Tx, r *receivingv1.EmploymentRecord, now time.Time) (*coordinationv1.LedgerEvent, error) {
			vac, err := vacancies.Get(tx, check.ResourceID(r.GetVacancy(), check.Vacancies))
			if err != nil {
				return nil, err
			}
			if ok, err := onboards(r, d, vac); err != nil || !ok {
				return nil, err
			}
			vac.Filled++
			if err := vacancies.Save(tx, vac, now); err != nil {
				return nil, err
			}
			return onboard(x.cfg.Province.Code, r, d, vac.GetEmployerName()), nil
		})
}

// RecordCheckpoint records whether an onboarded worker was still employed at a date (the rule:
// checkpoint).
func (x *Server) RecordCheckpoint(ctx context.Context, req *receivingv1.RecordCheckpointRequest) (*receivingv1.RecordCheckpointResponse, error) {
	resp := &receivingv1.RecordCheckpointResponse{}
	return recordChange(ctx, x, receivingv1.IntakeService_RecordCheckpoint_FullMethodName, req, resp,
		func(r *receivingv1.EmploymentRecord) { resp.Record = r },
		ruleOnly(func(r *receivingv1.EmploymentRecord) (*coordinationv1.LedgerEvent, error) {
			return checkpoint(x.cfg.Province.Code, r, req.GetCheckpoint())
		}))
}

// RecordJobLeft records that an employed worker left the job (the rule: leave).
func (x *Server) RecordJobLeft(ctx context.Context, req *receivingv1.RecordJobLeftRequest) (*receivingv1.RecordJobLeftResponse, error) {
	resp := &receivingv1.RecordJobLeftResponse{}
	return recordChange(ctx, x, receivingv1.IntakeService_RecordJobLeft_FullMethodName, req, resp,
		func(r *receivingv1.EmploymentRecord) { resp.Record = r },
		ruleOnly(func(r *receivingv1.EmploymentRecord) (*coordinationv1.LedgerEvent, error) {
			return leave(x.cfg.Province.Code, r, req.GetLeftDate(), req.GetReason())
		}))
}

// RecordIncident records an incident concerning a worker with a record here (the rule:
// incident).
func (x *Server) RecordIncident(ctx context.Context, req *receivingv1.RecordIncidentRequest) (*receivingv1.RecordIncidentResponse, error) {
	resp := &receivingv1.RecordIncidentResponse{}
	return recordChange(ctx, x, receivingv1.IntakeService_RecordIncident_FullMethodName, req, resp,
		func(r *receivingv1.EmploymentRecord) { resp.Record = r },
		ruleOnly(func(r *receivingv1.EmploymentRecord) (*coordinationv1.LedgerEvent, error) {
			return incident(x.cfg.Province.Code, r, req.GetIncident()), nil
		}))
}

// RecordAbsence records a spell of absence from work of an onboarded worker, or the worker
// back at work (the rule: absence).
func (x *Server) RecordAbsence(ctx context.Context, req *receivingv1.RecordAbsenceRequest) (*receivingv1.RecordAbsenceResponse, error) {
	resp := &receivingv1.RecordAbsenceResponse{}
	return recordChange(ctx, x, receivingv1.IntakeService_RecordAbsence_FullMethodName, req, resp,
		func(r *receivingv1.EmploymentRecord) { resp.Record = r },
		ruleOnly(func(r *receivingv1.EmploymentRecord) (*coordinationv1.LedgerEvent, error) {
			return absence(x.cfg.Province.Code, r, req.GetAbsence())
		}))
}

// GetEmploymentRecord reads the record of a trip, or of the worker's current trip.
func (x *Server) GetEmploymentRecord(_ context.Context, req *receivingv1.GetEmploymentRecordRequest) (*receivingv1.GetEmploymentRecordResponse, error) {
	r, err := feedlog.Load(x.cfg.DB, getRecord, check.ResourceID(req.GetName(), check.Records))
	if err != nil {
		return nil, err
	}
	return &receivingv1.GetEmploymentRecordResponse{Record: r}, nil
}

// ListEmploymentRecords lists records, one per trip, in trip-id order (worker id, then batch
// id); with worker_id, that worker's trips only (one prefix of the table).
func (x *Server) ListEmploymentRecords(_ context.Context, req *receivingv1.ListEmploymentRecordsRequest) (*receivingv1.ListEmploymentRecordsResponse, error) {
	var prefix []byte
	if w := req.GetWorkerId(); w != "" {
		prefix = tripPrefix(w)
	}
	listing := paging.For("records", req.GetStatus().String(), req.GetSendingRegion(), req.GetWorkerId())
	items, next, err := feedlog.ListIn(x.cfg.DB, recordTable, prefix, listing, req.GetPageToken(), check.ListSize.Of(req.GetPageSize()),
		func(r *receivingv1.EmploymentRecord) bool {
			return (req.GetStatus() == 0 || r.GetStatus() == req.GetStatus()) &&
				(req.GetSendingRegion() == "" || r.GetSendingRegion() == req.GetSendingRegion())
		})
	if err != nil {
		return nil, err
	}
	return &receivingv1.ListEmploymentRecordsResponse{Records: items, NextPageToken: next}, nil
}

package receiving

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labour/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labour/coordination/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labour/receiving/v1"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/paging"
	"github.com/eastwest/labourlink/services/platform/store"
)

// Intake: batches announced by the sending side, arrivals, onboarding and follow-up.
//
// Batches are stored under their batch id in BucketIntakeBatches, employment records under the
// worker id in BucketEmployment (one record per worker: the latest stay in this province; a
// worker announced again after a no-show or after leaving a job starts a new record).
//
// Every arrival outcome, onboarding, checkpoint, job leaving and incident is committed in the
// same transaction as exactly one outbox entry for the coordination service, a
// coordinationv1.LedgerEvent whose event id is a deterministic key of the fact (see eventID).
// Recording the same fact again (same request id, or the same content) changes nothing and
// writes no second entry.
//
// A batch whose departure was not reported yet may be cancelled by its sending service
// (CancelIntakeBatch): it stays, marked cancelled, takes no departure report or arrival, and
// the employment records it created (still EXPECTED) are removed, so its workers are no longer
// expected here and may be announced again on another batch.
//
// Arrivals are confirmed worker by worker for workers on the batch manifest (a worker not on
// it is INVALID_ARGUMENT). A manifest worker the sending side did not report as boarded may
// still be confirmed ARRIVED: the ledger then holds an arrival without a departure, which the
// coordination service reports as "unexpected". A NO_SHOW may later become ARRIVED (a late
// arrival; both events stay in the ledger); an ARRIVED worker cannot become a NO_SHOW.

const (
	// LedgerDestination is the outbox destination of ledger events (delivered by an outbox
	// relay with services/coordination/ledgerclient).
	LedgerDestination = ledgerclient.Destination

	maxManifest      = 1000
	maxConfirmations = 1000
	maxIncidentText  = 1000
)

const (
	expected = receivingv1.EmploymentStatus_EMPLOYMENT_STATUS_EXPECTED
	arrived  = receivingv1.EmploymentStatus_EMPLOYMENT_STATUS_ARRIVED
	noShow   = receivingv1.EmploymentStatus_EMPLOYMENT_STATUS_NO_SHOW
	employed = receivingv1.EmploymentStatus_EMPLOYMENT_STATUS_EMPLOYED
	leftJob  = receivingv1.EmploymentStatus_EMPLOYMENT_STATUS_LEFT_JOB

	outcomeArrived = receivingv1.ArrivalOutcome_ARRIVAL_OUTCOME_ARRIVED
	outcomeNoShow  = receivingv1.ArrivalOutcome_ARRIVAL_OUTCOME_NO_SHOW
)

// ValidateRequest checks IntakeService requests before their handlers run.
func (x *intakeServer) ValidateRequest(_ string, req any) error {
	s := x.s
	var v apierror.Violations
	day := today(s.now())
	switch r := req.(type) {
	case *receivingv1.AnnounceBatchRequest:
		checkRequestID(&v, "request_id", r.GetRequestId())
		s.checkBatch(&v, r.GetBatch())
	case *receivingv1.ReportBatchDepartureRequest:
		if p := idProblem(r.GetBatchId()); p != "" {
			v.Add("batch_id", p)
		}
		s.checkSendingRegion(&v, "sending_region", r.GetSendingRegion())
		checkRequestID(&v, "request_id", r.GetRequestId())
		seen := map[string]bool{}
		for i, w := range r.GetBoardedWorkerIds() {
			field := fmt.Sprintf("boarded_worker_ids[%d]", i)
			checkWorkerID(&v, field, w)
			if seen[w] {
				v.Add(field, "is listed twice")
			}
			seen[w] = true
		}
	case *receivingv1.CancelIntakeBatchRequest:
		if p := idProblem(r.GetBatchId()); p != "" {
			v.Add("batch_id", p)
		}
		s.checkSendingRegion(&v, "sending_region", r.GetSendingRegion())
		checkText(&v, "reason", r.GetReason(), maxReason, false)
		checkRequestID(&v, "request_id", r.GetRequestId())
	case *receivingv1.GetIntakeBatchRequest:
		checkName(&v, "name", r.GetName(), batchesCollection)
	case *receivingv1.ListIntakeBatchesRequest:
		listSize.Check(&v, r.GetPageSize())
		s.checkListFilters(&v, r)
	case *receivingv1.ConfirmArrivalsRequest:
		checkName(&v, "name", r.GetName(), batchesCollection)
		checkRequestID(&v, "request_id", r.GetRequestId())
		switch n := len(r.GetConfirmations()); {
		case n == 0:
			v.Add("confirmations", "must hold at least one worker's outcome")
		case n > maxConfirmations:
			v.Add("confirmations", fmt.Sprintf("has %d outcomes, at most %d are allowed", n, maxConfirmations))
		}
		seen := map[string]bool{}
		for i, c := range r.GetConfirmations() {
			p := fmt.Sprintf("confirmations[%d].", i)
			checkWorkerID(&v, p+"worker_id", c.GetWorkerId())
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
				} else if c.GetTime().AsTime().After(s.now().Add(time.Hour)) {
					v.Add(p+"time", "is in the future")
				}
			}
		}
	case *receivingv1.RecordOnboardingRequest:
		checkWorkerID(&v, "worker_id", r.GetWorkerId())
		checkRequestID(&v, "request_id", r.GetRequestId())
		checkPastDate(&v, "onboard_date", r.GetOnboardDate(), day)
	case *receivingv1.RecordCheckpointRequest:
		checkWorkerID(&v, "worker_id", r.GetWorkerId())
		checkRequestID(&v, "request_id", r.GetRequestId())
		if r.GetCheckpoint() == nil {
			v.Add("checkpoint", "is required")
			break
		}
		checkPastDate(&v, "checkpoint.check_date", r.GetCheckpoint().GetCheckDate(), day)
		if m := r.GetCheckpoint().GetMonths(); m < 1 || m > 120 {
			v.Add("checkpoint.months", fmt.Sprintf("must be 1 to 120 (whole months since onboarding), got %d", m))
		}
	case *receivingv1.RecordJobLeftRequest:
		checkWorkerID(&v, "worker_id", r.GetWorkerId())
		checkRequestID(&v, "request_id", r.GetRequestId())
		checkPastDate(&v, "left_date", r.GetLeftDate(), day)
		checkText(&v, "reason", r.GetReason(), maxReason, true)
	case *receivingv1.RecordIncidentRequest:
		checkWorkerID(&v, "worker_id", r.GetWorkerId())
		checkRequestID(&v, "request_id", r.GetRequestId())
		if r.GetIncident() == nil {
			v.Add("incident", "is required")
			break
		}
		checkPastDate(&v, "incident.incident_date", r.GetIncident().GetIncidentDate(), day)
		checkText(&v, "incident.kind", r.GetIncident().GetKind(), 50, true)
		checkText(&v, "incident.description", r.GetIncident().GetDescription(), maxIncidentText, false)
	case *receivingv1.GetEmploymentRecordRequest:
		checkName(&v, "name", r.GetName(), recordsCollection)
	case *receivingv1.ListEmploymentRecordsRequest:
		listSize.Check(&v, r.GetPageSize())
		s.checkListFilters(&v, r)
	default:
		return apierror.NotValidated(req)
	}
	return v.Err()
}

// checkPastDate adds a violation unless d is a valid date no later than day.
func checkPastDate(v *apierror.Violations, field string, d, day *commonv1.Date) {
	if p := dateProblem(d); p != "" {
		v.Add(field, p)
	} else if dateCmp(d, day) > 0 {
		v.Add(field, fmt.Sprintf("%s is in the future", formatDate(d)))
	}
}

// checkBatch checks an announced batch.
func (s *Service) checkBatch(v *apierror.Violations, b *receivingv1.IntakeBatch) {
	if b == nil {
		v.Add("batch", "is required")
		return
	}
	if p := idProblem(b.GetBatchId()); p != "" {
		v.Add("batch.batch_id", p)
	}
	s.checkSendingRegion(v, "batch.sending_region", b.GetSendingRegion())
	if b.GetMode() == commonv1.TransportMode_TRANSPORT_MODE_UNSPECIFIED {
		v.Add("batch.mode", "is required: TRANSPORT_MODE_BUS, TRANSPORT_MODE_TRAIN or TRANSPORT_MODE_FLIGHT")
	} else if _, ok := commonv1.TransportMode_name[int32(b.GetMode())]; !ok {
		v.Add("batch.mode", fmt.Sprintf("%d is not a transport mode", b.GetMode()))
	}
	checkText(v, "batch.origin", b.GetOrigin(), 100, false)
	if c := b.GetDestinationCounty(); c == "" {
		v.Add("batch.destination_county", "is required: a county-level code of "+s.cfg.Region)
	} else if err := s.regions.CheckCountyIn(c, s.cfg.Region); err != nil {
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
		if p := personNameProblem(b.GetEscortName()); p != "" {
			v.Add("batch.escort_name", p)
		}
	}
	checkText(v, "batch.escort_contact", b.GetEscortContact(), 100, false)
	switch n := len(b.GetEntries()); {
	case n == 0:
		v.Add("batch.entries", "must list at least one worker")
	case n > maxManifest:
		v.Add("batch.entries", fmt.Sprintf("has %d workers, at most %d are allowed", n, maxManifest))
	}
	seen := map[string]bool{}
	for i, e := range b.GetEntries() {
		p := fmt.Sprintf("batch.entries[%d].", i)
		checkWorkerID(v, p+"worker_id", e.GetWorkerId())
		if seen[e.GetWorkerId()] {
			v.Add(p+"worker_id", "is listed twice on the manifest")
		}
		seen[e.GetWorkerId()] = true
		checkName(v, p+"vacancy", e.GetVacancy(), vacanciesCollection)
	}
}

func getBatch(tx *bbolt.Tx, id string) (*receivingv1.IntakeBatch, bool, error) {
	b := &receivingv1.IntakeBatch{}
	ok, err := store.GetProto(tx.Bucket(store.BucketIntakeBatches), []byte(id), b)
	if err != nil || !ok {
		return nil, false, err
	}
	return b, true, nil
}

func mustGetBatch(tx *bbolt.Tx, id string) (*receivingv1.IntakeBatch, error) {
	b, ok, err := getBatch(tx, id)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, apierror.NotFound("intake batch %s/%s not found", batchesCollection, id)
	}
	return b, nil
}

func putBatch(tx *bbolt.Tx, b *receivingv1.IntakeBatch) error {
	return store.PutProto(tx.Bucket(store.BucketIntakeBatches), []byte(b.GetBatchId()), b)
}

func getRecord(tx *bbolt.Tx, workerID string) (*receivingv1.EmploymentRecord, bool, error) {
	r := &receivingv1.EmploymentRecord{}
	ok, err := store.GetProto(tx.Bucket(store.BucketEmployment), []byte(workerID), r)
	if err != nil || !ok {
		return nil, false, err
	}
	return r, true, nil
}

func mustGetRecord(tx *bbolt.Tx, workerID string) (*receivingv1.EmploymentRecord, error) {
	r, ok, err := getRecord(tx, workerID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, apierror.NotFound("no employment record for worker %s in this province", workerID)
	}
	return r, nil
}

func putRecord(tx *bbolt.Tx, r *receivingv1.EmploymentRecord) error {
	return store.PutProto(tx.Bucket(store.BucketEmployment), []byte(r.GetWorkerId()), r)
}

// eventID is the deterministic id of a ledger fact: the same fact always gets the same id, so
// the ledger counts it once however often it is reported.
func (s *Service) eventID(kind, batchID, workerID string, extra ...string) string {
	id := s.cfg.Region + ":" + kind + ":" + batchID + ":" + workerID
	for _, e := range extra {
		id += ":" + e
	}
	return id
}

// putLedgerEvent fills the common fields of ev from the worker's record and stores it in the
// outbox, in tx.
func (s *Service) putLedgerEvent(tx *bbolt.Tx, r *receivingv1.EmploymentRecord, ev *coordinationv1.LedgerEvent) error {
	ev.ReporterRegion = s.cfg.Region
	ev.ReceivingRegion = s.cfg.Region
	ev.SendingRegion = r.GetSendingRegion()
	ev.WorkerId = r.GetWorkerId()
	ev.BatchId = r.GetBatchId()
	ev.Vacancy = r.GetVacancy()
	ev.RegisteredPoor = r.GetRegisteredPoor()
	_, err := outbox.Put(tx, s.now(), LedgerDestination, "", ev)
	return err
}

// AnnounceBatch records a batch announced by its sending service. Every manifest worker must
// be an accepted candidate of the batch's sending province for the entry's vacancy. Announcing
// a recorded batch again returns it as recorded.
func (x *intakeServer) AnnounceBatch(ctx context.Context, req *receivingv1.AnnounceBatchRequest) (*receivingv1.AnnounceBatchResponse, error) {
	s := x.s
	in := req.GetBatch()
	if err := s.requirePaired(ctx, in.GetSendingRegion()); err != nil {
		return nil, err
	}
	resp := &receivingv1.AnnounceBatchResponse{}
	err := s.updateOnce("/labour.receiving.v1.IntakeService/AnnounceBatch", req, resp, func(tx *bbolt.Tx) error {
		if old, ok, err := getBatch(tx, in.GetBatchId()); err != nil {
			return err
		} else if ok {
			if old.GetSendingRegion() != in.GetSendingRegion() {
				return apierror.AlreadyExists("batch id %s is already used by a batch from %s", in.GetBatchId(), old.GetSendingRegion())
			}
			resp.Batch = old
			return nil
		}
		b := &receivingv1.IntakeBatch{
			Name:                batchesCollection + "/" + in.GetBatchId(),
			BatchId:             in.GetBatchId(),
			SendingRegion:       in.GetSendingRegion(),
			Mode:                in.GetMode(),
			Origin:              in.GetOrigin(),
			DestinationCounty:   in.GetDestinationCounty(),
			DepartureTime:       in.GetDepartureTime(),
			ExpectedArrivalTime: in.GetExpectedArrivalTime(),
			EscortName:          in.GetEscortName(),
			EscortContact:       in.GetEscortContact(),
		}
		index := tx.Bucket(store.BucketCandidateIndex)
		resp.Refusals = nil
		for i, e := range in.GetEntries() {
			// An entry that cannot be taken is refused on its own; the batch goes on with the
			// others (the sending side takes refused workers off its manifest).
			refuse := func(err error) error {
				r, ok := apierror.Refusal(i, e.GetWorkerId(), fmt.Sprintf("batch.entries[%d]: ", i), err)
				if !ok {
					return err
				}
				resp.Refusals = append(resp.Refusals, r)
				return nil
			}
			vid := resourceID(e.GetVacancy(), vacanciesCollection)
			cid := index.Get(candidateIndexKey(b.GetSendingRegion(), e.GetWorkerId(), vid))
			if cid == nil {
				if err := refuse(apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_CANDIDATE_NOT_ACCEPTED, "batch.entries[%d]: worker %s is not a candidate of %s for %s",
					i, e.GetWorkerId(), b.GetSendingRegion(), e.GetVacancy())); err != nil {
					return err
				}
				continue
			}
			c, err := getCandidate(tx, string(cid))
			if err != nil {
				return err
			}
			if c.GetState() != stateAccepted {
				if err := refuse(apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_CANDIDATE_NOT_ACCEPTED, "batch.entries[%d]: candidate %s (worker %s) is %s, not accepted",
					i, c.GetName(), e.GetWorkerId(), stateWord(c.GetState()))); err != nil {
					return err
				}
				continue
			}
			rec, found, err := getRecord(tx, e.GetWorkerId())
			if err != nil {
				return err
			}
			if found && (rec.GetStatus() == arrived || rec.GetStatus() == employed) {
				if err := refuse(apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_WORKER_ALREADY_HERE, "batch.entries[%d]: worker %s is already in this province (batch %s)",
					i, e.GetWorkerId(), rec.GetBatchId())); err != nil {
					return err
				}
				continue
			}
			b.Entries = append(b.Entries, &receivingv1.IntakeEntry{
				WorkerId: e.GetWorkerId(), Vacancy: vacancyName(vid), RegisteredPoor: c.GetRegisteredPoor(),
			})
			if err := putRecord(tx, &receivingv1.EmploymentRecord{
				Name:           recordsCollection + "/" + e.GetWorkerId(),
				WorkerId:       e.GetWorkerId(),
				SendingRegion:  b.GetSendingRegion(),
				Vacancy:        vacancyName(vid),
				BatchId:        b.GetBatchId(),
				RegisteredPoor: c.GetRegisteredPoor(),
				Status:         expected,
			}); err != nil {
				return err
			}
		}
		if err := putBatch(tx, b); err != nil {
			return err
		}
		resp.Batch = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// ownBatch reads batch id for its sending region: another region's batch is PERMISSION_DENIED.
func ownBatch(tx *bbolt.Tx, id, sendingRegion string) (*receivingv1.IntakeBatch, error) {
	b, err := mustGetBatch(tx, id)
	if err != nil {
		return nil, err
	}
	if b.GetSendingRegion() != sendingRegion {
		return nil, apierror.PermissionDenied(commonv1.ErrorReason_ERROR_REASON_NOT_OWNER, "batch %s belongs to %s, not %s", b.GetBatchId(), b.GetSendingRegion(), sendingRegion)
	}
	return b, nil
}

// ReportBatchDeparture records who boarded. The first report counts; a later one returns the
// batch unchanged.
func (x *intakeServer) ReportBatchDeparture(ctx context.Context, req *receivingv1.ReportBatchDepartureRequest) (*receivingv1.ReportBatchDepartureResponse, error) {
	s := x.s
	if err := s.requirePaired(ctx, req.GetSendingRegion()); err != nil {
		return nil, err
	}
	resp := &receivingv1.ReportBatchDepartureResponse{}
	err := s.updateOnce("/labour.receiving.v1.IntakeService/ReportBatchDeparture", req, resp, func(tx *bbolt.Tx) error {
		b, err := ownBatch(tx, req.GetBatchId(), req.GetSendingRegion())
		if err != nil {
			return err
		}
		if b.GetCancelled() {
			return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_BATCH_CANCELLED, "batch %s was cancelled; its departure cannot be reported", b.GetBatchId())
		}
		if !b.GetDeparted() {
			onManifest := map[string]*receivingv1.IntakeEntry{}
			for _, e := range b.GetEntries() {
				onManifest[e.GetWorkerId()] = e
			}
			var vs apierror.Violations
			for i, w := range req.GetBoardedWorkerIds() {
				if e, ok := onManifest[w]; ok {
					e.Departed = true
				} else {
					vs.Add(fmt.Sprintf("boarded_worker_ids[%d]", i), fmt.Sprintf("worker %s is not on the manifest of batch %s", w, b.GetBatchId()))
				}
			}
			if err := vs.Err(); err != nil {
				return err
			}
			b.Departed = true
			if req.GetDepartureTime() != nil {
				b.DepartureTime = req.GetDepartureTime()
			}
			if err := putBatch(tx, b); err != nil {
				return err
			}
		}
		resp.Batch = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// CancelIntakeBatch cancels a batch its sending service cancelled before departure: the batch
// is marked cancelled and the EXPECTED employment records it created are removed. Cancelling a
// cancelled batch returns it unchanged; a batch whose departure was reported is
// FAILED_PRECONDITION.
func (x *intakeServer) CancelIntakeBatch(ctx context.Context, req *receivingv1.CancelIntakeBatchRequest) (*receivingv1.CancelIntakeBatchResponse, error) {
	s := x.s
	if err := s.requirePaired(ctx, req.GetSendingRegion()); err != nil {
		return nil, err
	}
	resp := &receivingv1.CancelIntakeBatchResponse{}
	err := s.updateOnce("/labour.receiving.v1.IntakeService/CancelIntakeBatch", req, resp, func(tx *bbolt.Tx) error {
		b, err := ownBatch(tx, req.GetBatchId(), req.GetSendingRegion())
		if err != nil {
			return err
		}
		resp.Batch = b
		switch {
		case b.GetCancelled():
			return nil
		case b.GetDeparted():
			return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_BATCH_DEPARTED, "batch %s has departed and cannot be cancelled", b.GetBatchId())
		}
		employment := tx.Bucket(store.BucketEmployment)
		for _, e := range b.GetEntries() {
			rec, found, err := getRecord(tx, e.GetWorkerId())
			if err != nil {
				return err
			}
			// A worker announced again on a later batch has that batch's record: left alone.
			if found && rec.GetBatchId() == b.GetBatchId() && rec.GetStatus() == expected {
				if err := employment.Delete([]byte(e.GetWorkerId())); err != nil {
					return err
				}
			}
		}
		b.Cancelled = true
		b.CancelReason = req.GetReason()
		return putBatch(tx, b)
	})
	if err != nil {
		return nil, err
	}
	s.lg.Info("intake batch cancelled by its sending service", zap.String("batch_id", req.GetBatchId()),
		zap.String("sending_region", req.GetSendingRegion()))
	return resp, nil
}

// GetIntakeBatch reads a batch.
func (x *intakeServer) GetIntakeBatch(_ context.Context, req *receivingv1.GetIntakeBatchRequest) (*receivingv1.GetIntakeBatchResponse, error) {
	b, err := viewOne(x.s.db, func(tx *bbolt.Tx) (*receivingv1.IntakeBatch, error) {
		return mustGetBatch(tx, resourceID(req.GetName(), batchesCollection))
	})
	if err != nil {
		return nil, err
	}
	return &receivingv1.GetIntakeBatchResponse{Batch: b}, nil
}

// ListIntakeBatches lists batches in batch-id order.
func (x *intakeServer) ListIntakeBatches(_ context.Context, req *receivingv1.ListIntakeBatchesRequest) (*receivingv1.ListIntakeBatchesResponse, error) {
	resp := &receivingv1.ListIntakeBatchesResponse{}
	var err error
	resp.Batches, resp.NextPageToken, err = listProtos(x.s.db, store.BucketIntakeBatches, req.GetPageToken(), listSize.Of(req.GetPageSize()),
		paging.For("batches", req.GetSendingRegion()), "batch",
		func(b *receivingv1.IntakeBatch) bool {
			return req.GetSendingRegion() == "" || b.GetSendingRegion() == req.GetSendingRegion()
		})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// viewOne reads one value in a read-only transaction (the Get handlers).
func viewOne[T any](db *store.DB, get func(tx *bbolt.Tx) (T, error)) (T, error) {
	var v T
	err := db.View(func(tx *bbolt.Tx) error {
		var err error
		v, err = get(tx)
		return err
	})
	return v, err
}

// listProtos is listPage for values of type *T: it returns the values keep accepts, what names
// the type in decoding errors.
func listProtos[T any, P interface {
	*T
	proto.Message
}](db *store.DB, bucket []byte, token string, size int, listing paging.Listing, what string, keep func(P) bool) ([]P, string, error) {
	var page []P
	next, err := listPage(db, bucket, token, size, listing, func(data []byte) (bool, error) {
		v := P(new(T))
		if err := proto.Unmarshal(data, v); err != nil {
			return false, fmt.Errorf("decode %s: %w", what, err)
		}
		if !keep(v) {
			return false, nil
		}
		page = append(page, v)
		return true, nil
	})
	return page, next, err
}

// listPage walks bucket from the page token, calling add for each value until size values were
// added; it returns the next page token.
func listPage(db *store.DB, bucket []byte, token string, size int, listing paging.Listing, add func([]byte) (bool, error)) (string, error) {
	after, err := listing.Decode(token)
	if err != nil {
		return "", err
	}
	next := ""
	err = db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		var last []byte
		n := 0
		for k, data := c.Seek(startAfter(after)); k != nil; k, data = c.Next() {
			if n == size {
				next = listing.Token(last)
				return nil
			}
			ok, err := add(data)
			if err != nil {
				return err
			}
			if ok {
				n++
				last = append(last[:0], k...)
			}
		}
		return nil
	})
	return next, err
}

// ConfirmArrivals records, worker by worker, who arrived and who did not.
func (x *intakeServer) ConfirmArrivals(_ context.Context, req *receivingv1.ConfirmArrivalsRequest) (*receivingv1.ConfirmArrivalsResponse, error) {
	s := x.s
	resp := &receivingv1.ConfirmArrivalsResponse{}
	err := s.updateOnce("/labour.receiving.v1.IntakeService/ConfirmArrivals", req, resp, func(tx *bbolt.Tx) error {
		b, err := mustGetBatch(tx, resourceID(req.GetName(), batchesCollection))
		if err != nil {
			return err
		}
		if b.GetCancelled() {
			return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_BATCH_CANCELLED, "batch %s was cancelled by its sending province; nobody arrives on it", b.GetBatchId())
		}
		entries := map[string]*receivingv1.IntakeEntry{}
		for _, e := range b.GetEntries() {
			entries[e.GetWorkerId()] = e
		}
		var vs apierror.Violations
		for i, c := range req.GetConfirmations() {
			if entries[c.GetWorkerId()] == nil {
				vs.Add(fmt.Sprintf("confirmations[%d].worker_id", i), fmt.Sprintf("worker %s is not on the manifest of batch %s", c.GetWorkerId(), b.GetBatchId()))
			}
		}
		if err := vs.Err(); err != nil {
			return err
		}
		now := s.now()
		for i, c := range req.GetConfirmations() {
			e := entries[c.GetWorkerId()]
			switch {
			case e.GetOutcome() == c.GetOutcome():
				continue // confirmed before: nothing new
			case e.GetOutcome() == outcomeArrived:
				return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_ARRIVAL_ALREADY_CONFIRMED, "confirmations[%d]: worker %s is already confirmed arrived on batch %s",
					i, c.GetWorkerId(), b.GetBatchId())
			}
			e.Outcome = c.GetOutcome()
			at := now
			if c.GetTime() != nil {
				at = c.GetTime().AsTime()
			}
			rec, found, err := getRecord(tx, c.GetWorkerId())
			if err != nil {
				return err
			}
			// The record is this batch's unless the worker was announced again on a later
			// batch: then the fact is still reported, about this batch, and the newer record
			// is left alone.
			keep := !found || rec.GetBatchId() == b.GetBatchId()
			if !keep || !found {
				rec = &receivingv1.EmploymentRecord{
					Name: recordsCollection + "/" + c.GetWorkerId(), WorkerId: c.GetWorkerId(),
					SendingRegion: b.GetSendingRegion(), Vacancy: e.GetVacancy(), BatchId: b.GetBatchId(),
					RegisteredPoor: e.GetRegisteredPoor(), Status: expected,
				}
			}
			ev := &coordinationv1.LedgerEvent{OccurTime: timestamppb.New(at)}
			if c.GetOutcome() == outcomeArrived {
				ev.EventId = s.eventID("arrived", b.GetBatchId(), c.GetWorkerId())
				ev.Kind = coordinationv1.EventKind_EVENT_KIND_ARRIVED
				rec.Status, rec.ArrivalTime = arrived, timestamppb.New(at)
			} else {
				ev.EventId = s.eventID("no_show", b.GetBatchId(), c.GetWorkerId())
				ev.Kind = coordinationv1.EventKind_EVENT_KIND_NO_SHOW
				rec.Status = noShow
			}
			if keep {
				if err := putRecord(tx, rec); err != nil {
					return err
				}
			}
			if err := s.putLedgerEvent(tx, rec, ev); err != nil {
				return err
			}
		}
		if err := putBatch(tx, b); err != nil {
			return err
		}
		resp.Batch = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// workerRequest is a request about one worker's record, with a request id.
type workerRequest interface {
	proto.Message
	GetRequestId() string
	GetWorkerId() string
}

// recordChange runs change on the record of req's worker in one transaction with request-id
// idempotency, and returns resp after set put the record in it; change returns the ledger event
// to write, or nil when the fact was recorded before (then nothing is written).
func recordChange[Resp proto.Message](s *Service, method string, req workerRequest, resp Resp, set func(*receivingv1.EmploymentRecord), change func(tx *bbolt.Tx, r *receivingv1.EmploymentRecord, now time.Time) (*coordinationv1.LedgerEvent, error)) (Resp, error) {
	err := s.updateOnce(method, req, resp, func(tx *bbolt.Tx) error {
		r, err := mustGetRecord(tx, req.GetWorkerId())
		if err != nil {
			return err
		}
		ev, err := change(tx, r, s.now())
		if err != nil {
			return err
		}
		if ev != nil {
			if err := putRecord(tx, r); err != nil {
				return err
			}
			if err := s.putLedgerEvent(tx, r, ev); err != nil {
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

// RecordOnboarding records that an arrived worker started work; the vacancy's filled count goes
// up by one (a change in the demand feed).
func (x *intakeServer) RecordOnboarding(_ context.Context, req *receivingv1.RecordOnboardingRequest) (*receivingv1.RecordOnboardingResponse, error) {
	s := x.s
	resp := &receivingv1.RecordOnboardingResponse{}
	d := req.GetOnboardDate()
	return recordChange(s, "/labour.receiving.v1.IntakeService/RecordOnboarding", req, resp,
		func(r *receivingv1.EmploymentRecord) { resp.Record = r },
		func(tx *bbolt.Tx, r *receivingv1.EmploymentRecord, now time.Time) (*coordinationv1.LedgerEvent, error) {
			switch r.GetStatus() {
			case arrived:
			case employed, leftJob:
				if dateCmp(r.GetOnboardDate(), d) == 0 {
					return nil, nil
				}
				return nil, apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_ALREADY_ONBOARDED, "worker %s was onboarded on %s", r.GetWorkerId(), formatDate(r.GetOnboardDate()))
			default:
				return nil, apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_NOT_ARRIVED, "worker %s is not confirmed arrived (status %s)", r.GetWorkerId(), r.GetStatus())
			}
			if r.GetArrivalTime() != nil && dateCmp(d, today(r.GetArrivalTime().AsTime())) < 0 {
				var vs apierror.Violations
				vs.Add("onboard_date", fmt.Sprintf("%s is before the worker arrived (%s)", formatDate(d), formatDate(today(r.GetArrivalTime().AsTime()))))
				return nil, vs.Err()
			}
			vac, err := getVacancy(tx, resourceID(r.GetVacancy(), vacanciesCollection))
			if err != nil {
				return nil, err
			}
			vac.Filled++
			if err := s.saveVacancy(tx, vac, now); err != nil {
				return nil, err
			}
			r.Status, r.OnboardDate, r.EmployerName = employed, d, vac.GetEmployerName()
			return &coordinationv1.LedgerEvent{
				EventId:   s.eventID("onboarded", r.GetBatchId(), r.GetWorkerId()),
				Kind:      coordinationv1.EventKind_EVENT_KIND_ONBOARDED,
				OccurTime: timestamppb.New(dateStart(d)),
			}, nil
		})
}

// wholeMonths returns the whole months from a to b (dates, b not before a).
func wholeMonths(a, b *commonv1.Date) int32 {
	m := (b.GetYear()-a.GetYear())*12 + b.GetMonth() - a.GetMonth()
	if b.GetDay() < a.GetDay() {
		m--
	}
	return m
}

// RecordCheckpoint records whether an onboarded worker was still employed at a date. A
// checkpoint for the same number of months is recorded once: the same one again changes
// nothing, a different one is FAILED_PRECONDITION.
func (x *intakeServer) RecordCheckpoint(_ context.Context, req *receivingv1.RecordCheckpointRequest) (*receivingv1.RecordCheckpointResponse, error) {
	s := x.s
	resp := &receivingv1.RecordCheckpointResponse{}
	cp := req.GetCheckpoint()
	return recordChange(s, "/labour.receiving.v1.IntakeService/RecordCheckpoint", req, resp,
		func(r *receivingv1.EmploymentRecord) { resp.Record = r },
		func(_ *bbolt.Tx, r *receivingv1.EmploymentRecord, _ time.Time) (*coordinationv1.LedgerEvent, error) {
			if r.GetStatus() != employed && r.GetStatus() != leftJob {
				return nil, apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_NOT_ONBOARDED, "worker %s is not onboarded (status %s)", r.GetWorkerId(), r.GetStatus())
			}
			for _, old := range r.GetCheckpoints() {
				if old.GetMonths() == cp.GetMonths() {
					if proto.Equal(old, cp) {
						return nil, nil
					}
					return nil, apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_CHECKPOINT_ALREADY_RECORDED, "the %d-month checkpoint of worker %s is already recorded (%s, still employed %t)",
						cp.GetMonths(), r.GetWorkerId(), formatDate(old.GetCheckDate()), old.GetStillEmployed())
				}
			}
			var vs apierror.Violations
			if dateCmp(cp.GetCheckDate(), r.GetOnboardDate()) < 0 {
				vs.Add("checkpoint.check_date", fmt.Sprintf("%s is before onboarding (%s)", formatDate(cp.GetCheckDate()), formatDate(r.GetOnboardDate())))
			} else if m := wholeMonths(r.GetOnboardDate(), cp.GetCheckDate()); cp.GetMonths() > m {
				vs.Add("checkpoint.months", fmt.Sprintf("is %d, but only %d whole months passed from onboarding (%s) to the check", cp.GetMonths(), m, formatDate(r.GetOnboardDate())))
			}
			if err := vs.Err(); err != nil {
				return nil, err
			}
			r.Checkpoints = append(r.Checkpoints, proto.Clone(cp).(*receivingv1.Checkpoint))
			slices.SortStableFunc(r.Checkpoints, func(a, b *receivingv1.Checkpoint) int { return dateCmp(a.GetCheckDate(), b.GetCheckDate()) })
			return &coordinationv1.LedgerEvent{
				EventId:       s.eventID("checkpoint", r.GetBatchId(), r.GetWorkerId(), fmt.Sprint(cp.GetMonths())),
				Kind:          coordinationv1.EventKind_EVENT_KIND_EMPLOYMENT_CHECKPOINT,
				OccurTime:     timestamppb.New(dateStart(cp.GetCheckDate())),
				Months:        cp.GetMonths(),
				StillEmployed: cp.GetStillEmployed(),
			}, nil
		})
}

// RecordJobLeft records that an employed worker left the job.
func (x *intakeServer) RecordJobLeft(_ context.Context, req *receivingv1.RecordJobLeftRequest) (*receivingv1.RecordJobLeftResponse, error) {
	s := x.s
	resp := &receivingv1.RecordJobLeftResponse{}
	d := req.GetLeftDate()
	return recordChange(s, "/labour.receiving.v1.IntakeService/RecordJobLeft", req, resp,
		func(r *receivingv1.EmploymentRecord) { resp.Record = r },
		func(_ *bbolt.Tx, r *receivingv1.EmploymentRecord, _ time.Time) (*coordinationv1.LedgerEvent, error) {
			switch r.GetStatus() {
			case employed:
			case leftJob:
				if dateCmp(r.GetLeftDate(), d) == 0 && r.GetLeftReason() == req.GetReason() {
					return nil, nil
				}
				return nil, apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_ALREADY_LEFT, "worker %s left the job on %s", r.GetWorkerId(), formatDate(r.GetLeftDate()))
			default:
				return nil, apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_NOT_ONBOARDED, "worker %s is not onboarded (status %s)", r.GetWorkerId(), r.GetStatus())
			}
			if dateCmp(d, r.GetOnboardDate()) < 0 {
				var vs apierror.Violations
				vs.Add("left_date", fmt.Sprintf("%s is before onboarding (%s)", formatDate(d), formatDate(r.GetOnboardDate())))
				return nil, vs.Err()
			}
			r.Status, r.LeftDate, r.LeftReason = leftJob, d, req.GetReason()
			return &coordinationv1.LedgerEvent{
				EventId:   s.eventID("left_job", r.GetBatchId(), r.GetWorkerId()),
				Kind:      coordinationv1.EventKind_EVENT_KIND_LEFT_JOB,
				OccurTime: timestamppb.New(dateStart(d)),
				Detail:    req.GetReason(),
			}, nil
		})
}

// RecordIncident records an incident concerning a worker with a record here. The same incident
// (date, kind and description) recorded again changes nothing.
func (x *intakeServer) RecordIncident(_ context.Context, req *receivingv1.RecordIncidentRequest) (*receivingv1.RecordIncidentResponse, error) {
	s := x.s
	resp := &receivingv1.RecordIncidentResponse{}
	in := req.GetIncident()
	return recordChange(s, "/labour.receiving.v1.IntakeService/RecordIncident", req, resp,
		func(r *receivingv1.EmploymentRecord) { resp.Record = r },
		func(_ *bbolt.Tx, r *receivingv1.EmploymentRecord, _ time.Time) (*coordinationv1.LedgerEvent, error) {
			for _, old := range r.GetIncidents() {
				if proto.Equal(old, in) {
					return nil, nil
				}
			}
			r.Incidents = append(r.Incidents, proto.Clone(in).(*receivingv1.Incident))
			slices.SortStableFunc(r.Incidents, func(a, b *receivingv1.Incident) int { return dateCmp(a.GetIncidentDate(), b.GetIncidentDate()) })
			h := sha256.Sum256([]byte(in.GetKind() + "\x00" + in.GetDescription()))
			return &coordinationv1.LedgerEvent{
				EventId:   s.eventID("incident", r.GetBatchId(), r.GetWorkerId(), formatDate(in.GetIncidentDate()), hex.EncodeToString(h[:6])),
				Kind:      coordinationv1.EventKind_EVENT_KIND_INCIDENT,
				OccurTime: timestamppb.New(dateStart(in.GetIncidentDate())),
				Detail:    in.GetKind(),
			}, nil
		})
}

// GetEmploymentRecord reads a worker's record.
func (x *intakeServer) GetEmploymentRecord(_ context.Context, req *receivingv1.GetEmploymentRecordRequest) (*receivingv1.GetEmploymentRecordResponse, error) {
	r, err := viewOne(x.s.db, func(tx *bbolt.Tx) (*receivingv1.EmploymentRecord, error) {
		return mustGetRecord(tx, resourceID(req.GetName(), recordsCollection))
	})
	if err != nil {
		return nil, err
	}
	return &receivingv1.GetEmploymentRecordResponse{Record: r}, nil
}

// ListEmploymentRecords lists records in worker-id order.
func (x *intakeServer) ListEmploymentRecords(_ context.Context, req *receivingv1.ListEmploymentRecordsRequest) (*receivingv1.ListEmploymentRecordsResponse, error) {
	resp := &receivingv1.ListEmploymentRecordsResponse{}
	var err error
	resp.Records, resp.NextPageToken, err = listProtos(x.s.db, store.BucketEmployment, req.GetPageToken(), listSize.Of(req.GetPageSize()),
		paging.For("records", req.GetStatus().String(), req.GetSendingRegion()), "employment record",
		func(r *receivingv1.EmploymentRecord) bool {
			return (req.GetStatus() == 0 || r.GetStatus() == req.GetStatus()) &&
				(req.GetSendingRegion() == "" || r.GetSendingRegion() == req.GetSendingRegion())
		})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

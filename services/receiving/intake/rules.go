package intake

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/receiving/candidates"
	"github.com/eastwest/labourlink/services/receiving/internal/check"
)

// The rules of intake: plain functions over messages, without gRPC or bbolt. A rule that
// records a fact returns the ledger event of the fact (without the fields the worker's record
// gives, see ledgerEvent), or nil when the fact was recorded before.

const (
	expected = receivingv1.EmploymentStatus_EMPLOYMENT_STATUS_EXPECTED
	arrived  = receivingv1.EmploymentStatus_EMPLOYMENT_STATUS_ARRIVED
	noShow   = receivingv1.EmploymentStatus_EMPLOYMENT_STATUS_NO_SHOW
	employed = receivingv1.EmploymentStatus_EMPLOYMENT_STATUS_EMPLOYED
	leftJob  = receivingv1.EmploymentStatus_EMPLOYMENT_STATUS_LEFT_JOB

	batchAnnounced = receivingv1.IntakeBatchState_INTAKE_BATCH_STATE_ANNOUNCED
	batchDeparted  = receivingv1.IntakeBatchState_INTAKE_BATCH_STATE_DEPARTED
	batchCancelled = receivingv1.IntakeBatchState_INTAKE_BATCH_STATE_CANCELLED

	outcomeArrived = receivingv1.ArrivalOutcome_ARRIVAL_OUTCOME_ARRIVED
	outcomeNoShow  = receivingv1.ArrivalOutcome_ARRIVAL_OUTCOME_NO_SHOW
)

// StartWindowDays is the start-window tolerance (ledgerclient.StartWindowDays, the one rule for
// both services).
const StartWindowDays = ledgerclient.StartWindowDays

// startWindowProblem says why a fact of day about vacancy vac is too early, or "".
func startWindowProblem(what string, day *commonv1.Date, vac *receivingv1.Vacancy) string {
	return ledgerclient.StartWindowProblem(what, day, vac.GetName(), vac.GetStartDate())
}

// eventID is the deterministic id of a ledger fact of province region: the same fact always
// gets the same id, so the ledger counts it once however often it is reported.
func eventID(region, kind, batchID, workerID string, extra ...string) string {
	id := region + ":" + kind + ":" + batchID + ":" + workerID
	for _, e := range extra {
		id += ":" + e
	}
	return id
}

// ledgerEvent fills the common fields of ev from the worker's record r, for province region.
func ledgerEvent(region string, r *receivingv1.EmploymentRecord, ev *coordinationv1.LedgerEvent) *coordinationv1.LedgerEvent {
	ev.ReporterRegion = region
	ev.ReceivingRegion = region
	ev.SendingRegion = r.GetSendingRegion()
	ev.WorkerId = r.GetWorkerId()
	ev.BatchId = r.GetBatchId()
	ev.Vacancy = r.GetVacancy()
	ev.RegisteredPoor = r.GetRegisteredPoor()
	return ev
}

// changeKinds are the employment-feed kinds of the ledger events of facts.
var changeKinds = map[coordinationv1.EventKind]receivingv1.EmploymentChangeKind{
	coordinationv1.EventKind_EVENT_KIND_ARRIVED:               receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_ARRIVED,
	coordinationv1.EventKind_EVENT_KIND_NO_SHOW:               receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_NO_SHOW,
	coordinationv1.EventKind_EVENT_KIND_ONBOARDED:             receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_ONBOARDED,
	coordinationv1.EventKind_EVENT_KIND_EMPLOYMENT_CHECKPOINT: receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_CHECKPOINT,
	coordinationv1.EventKind_EVENT_KIND_LEFT_JOB:              receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_LEFT_JOB,
	coordinationv1.EventKind_EVENT_KIND_INCIDENT:              receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_INCIDENT,
}

// tripChange is the employment-feed change of kind about trip r, for vacancy vac (nil: not on
// file, the employer then as the record has it), that
// happened at occur, committed at now (without revision and details). It holds worker and
// batch ids and the employer, no personal data.
func tripChange(kind receivingv1.EmploymentChangeKind, r *receivingv1.EmploymentRecord, vac *receivingv1.Vacancy, occur *timestamppb.Timestamp, now time.Time) *receivingv1.EmploymentChange {
	return &receivingv1.EmploymentChange{
		Kind:         kind,
		WorkerId:     r.GetWorkerId(),
		BatchId:      r.GetBatchId(),
		Record:       RecordName(r.GetWorkerId(), r.GetBatchId()),
		Vacancy:      r.GetVacancy(),
		EmployerName: cmp.Or(vac.GetEmployerName(), r.GetEmployerName()),
		WorkCounty:   vac.GetWorkCounty(),
		OccurTime:    occur,
		ChangeTime:   timestamppb.New(now),
	}
}

// incidentDetail is the detail of an INCIDENT change: the kind and its short detail (not the
// description, which stays with the record here).
func incidentDetail(in *receivingv1.Incident) *receivingv1.EmploymentChange_Incident {
	return &receivingv1.EmploymentChange_Incident{Incident: &receivingv1.IncidentDetail{IncidentKind: in.GetIncidentKind(), Detail: in.GetDetail()}}
}

// factChange is the employment-feed change of the fact whose ledger event is ev (a rule's
// event) about trip r of vacancy vac, committed at now; in is the incident of an INCIDENT
// event (nil otherwise).
func factChange(ev *coordinationv1.LedgerEvent, r *receivingv1.EmploymentRecord, vac *receivingv1.Vacancy, in *receivingv1.Incident, now time.Time) *receivingv1.EmploymentChange {
	c := tripChange(changeKinds[ev.GetKind()], r, vac, ev.GetOccurTime(), now)
	switch d := ev.GetDetails().(type) {
	case *coordinationv1.LedgerEvent_EmploymentCheckpoint:
		c.Detail = &receivingv1.EmploymentChange_Checkpoint{Checkpoint: &receivingv1.EmploymentCheckpointDetail{
			Months: d.EmploymentCheckpoint.GetMonths(), StillEmployed: d.EmploymentCheckpoint.GetStillEmployed(),
		}}
	case *coordinationv1.LedgerEvent_LeftJob:
		c.Detail = &receivingv1.EmploymentChange_LeftJob{LeftJob: &receivingv1.LeftJobDetail{Reason: d.LeftJob.GetReason()}}
	}
	if in != nil && ev.GetKind() == coordinationv1.EventKind_EVENT_KIND_INCIDENT {
		c.Detail = incidentDetail(in)
	}
	return c
}

// newBatch is the batch recorded from an announced one, without its entries.
func newBatch(in *receivingv1.IntakeBatch) *receivingv1.IntakeBatch {
	return &receivingv1.IntakeBatch{
		Name:                check.Batches + "/" + in.GetBatchId(),
		BatchId:             in.GetBatchId(),
		SendingRegion:       in.GetSendingRegion(),
		Mode:                in.GetMode(),
		Origin:              in.GetOrigin(),
		DestinationCounty:   in.GetDestinationCounty(),
		DepartureTime:       in.GetDepartureTime(),
		ExpectedArrivalTime: in.GetExpectedArrivalTime(),
		EscortName:          in.GetEscortName(),
		EscortContact:       in.GetEscortContact(),
		State:               batchAnnounced,
	}
}

// admit says why manifest entry i, e, cannot go on batch b, or nil: its worker must be an
// accepted candidate c of the batch's sending province for the entry's vacancy (c is nil when
// there is none) and not already in this province (rec is its record, nil when none).
func admit(i int, b *receivingv1.IntakeBatch, e *receivingv1.IntakeEntry, c *receivingv1.Candidate, rec *receivingv1.EmploymentRecord) error {
	switch {
	case c == nil:
		return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_CANDIDATE_NOT_ACCEPTED, "batch.entries[%d]: worker %s is not a candidate of %s for %s",
			i, e.GetWorkerId(), b.GetSendingRegion(), e.GetVacancy())
	case c.GetState() != candidates.Accepted:
		return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_CANDIDATE_NOT_ACCEPTED, "batch.entries[%d]: candidate %s (worker %s) is %s, not accepted",
			i, c.GetName(), e.GetWorkerId(), candidates.StateWord(c.GetState()))
	case rec != nil && (rec.GetStatus() == arrived || rec.GetStatus() == employed):
		return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_WORKER_ALREADY_HERE, "batch.entries[%d]: worker %s is already in this province (batch %s)",
			i, e.GetWorkerId(), rec.GetBatchId())
	}
	return nil
}

// expectedRecord is the record of a worker expected on batch b for vacancy (a resource name).
func expectedRecord(b *receivingv1.IntakeBatch, workerID, vacancy string, registeredPoor bool) *receivingv1.EmploymentRecord {
	return &receivingv1.EmploymentRecord{
		Name:           RecordName(workerID, b.GetBatchId()),
		WorkerId:       workerID,
		SendingRegion:  b.GetSendingRegion(),
		Vacancy:        vacancy,
		BatchId:        b.GetBatchId(),
		RegisteredPoor: registeredPoor,
		Status:         expected,
	}
}

// depart records the departure report of b: the first report counts (the workers boarded are
// marked departed, each must be on the manifest), a later one changes nothing (false). A
// cancelled batch takes no report.
func depart(b *receivingv1.IntakeBatch, boarded []string, at *timestamppb.Timestamp) (bool, error) {
	switch b.GetState() {
	case batchCancelled:
		return false, apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_BATCH_CANCELLED, "batch %s was cancelled; its departure cannot be reported", b.GetBatchId())
	case batchDeparted:
		return false, nil
	}
	onManifest := map[string]*receivingv1.IntakeEntry{}
	for _, e := range b.GetEntries() {
		onManifest[e.GetWorkerId()] = e
	}
	var vs apierror.Violations
	for i, w := range boarded {
		if e, ok := onManifest[w]; ok {
			e.Departed = true
		} else {
			vs.Addf(fmt.Sprintf("boarded_worker_ids[%d]", i), "worker %s is not on the manifest of batch %s", w, b.GetBatchId())
		}
	}
	if err := vs.Err(); err != nil {
		return false, err
	}
	b.State = batchDeparted
	if at != nil {
		b.DepartureTime = at
	}
	return true, nil
}

// cancels says whether b can be cancelled and it changes anything: a cancelled batch stays as
// it is (false, nil); a batch whose departure was reported is FAILED_PRECONDITION.
func cancels(b *receivingv1.IntakeBatch) (bool, error) {
	switch b.GetState() {
	case batchCancelled:
		return false, nil
	case batchDeparted:
		return false, apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_BATCH_DEPARTED, "batch %s has departed and cannot be cancelled", b.GetBatchId())
	}
	return true, nil
}

// manifest returns the entries of b by worker id, after checking that b takes arrivals and that
// every confirmed worker is on it.
func manifest(b *receivingv1.IntakeBatch, confs []*receivingv1.ArrivalConfirmation) (map[string]*receivingv1.IntakeEntry, error) {
	if b.GetState() == batchCancelled {
		return nil, apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_BATCH_CANCELLED, "batch %s was cancelled by its sending province; nobody arrives on it", b.GetBatchId())
	}
	entries := map[string]*receivingv1.IntakeEntry{}
	for _, e := range b.GetEntries() {
		entries[e.GetWorkerId()] = e
	}
	var vs apierror.Violations
	for i, c := range confs {
		if entries[c.GetWorkerId()] == nil {
			vs.Addf(fmt.Sprintf("confirmations[%d].worker_id", i), "worker %s is not on the manifest of batch %s", c.GetWorkerId(), b.GetBatchId())
		}
	}
	return entries, vs.Err()
}

// arrive records confirmation i, c, of manifest entry e of batch b at now: it returns the
// record of the worker's trip on b after it and the ledger event (nil when the outcome was
// confirmed before). rec is the trip's stored record (nil when none: a trip whose record a file
// older than schema version 4 lost to a later one). vac is the entry's vacancy. A NO_SHOW may
// become ARRIVED (a late arrival); an ARRIVED worker cannot become a NO_SHOW. An arrival is in
// time order: not before the batch's reported departure (less ledgerclient.ClockSkew), nor
// before the vacancy's start window opens (StartWindowDays).
func arrive(region string, i int, b *receivingv1.IntakeBatch, e *receivingv1.IntakeEntry, c *receivingv1.ArrivalConfirmation,
	rec *receivingv1.EmploymentRecord, vac *receivingv1.Vacancy, now time.Time) (*receivingv1.EmploymentRecord, *coordinationv1.LedgerEvent, error) {
	switch {
	case e.GetOutcome() == c.GetOutcome():
		return nil, nil, nil // confirmed before: nothing new
	case e.GetOutcome() == outcomeArrived:
		return nil, nil, apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_ARRIVAL_ALREADY_CONFIRMED, "confirmations[%d]: worker %s is already confirmed arrived on batch %s",
			i, c.GetWorkerId(), b.GetBatchId())
	}
	at := now
	if c.GetTime() != nil {
		at = c.GetTime().AsTime()
	}
	if c.GetOutcome() == outcomeArrived {
		var vs apierror.Violations
		field := fmt.Sprintf("confirmations[%d].time", i)
		if dep := b.GetDepartureTime(); b.GetState() == batchDeparted && dep != nil && !ledgerclient.NotBefore(at, dep.AsTime()) {
			vs.Addf(field, "the arrival (%s) is before the departure of batch %s (%s), more than the clock-skew tolerance (%s)",
				civil.FormatTime(at), b.GetBatchId(), civil.FormatTime(dep.AsTime()), ledgerclient.ClockSkew)
		} else if p := startWindowProblem("the arrival on", civil.Today(at), vac); p != "" {
			vs.Add(field, p)
		}
		if err := vs.Err(); err != nil {
			return nil, nil, err
		}
	}
	e.Outcome = c.GetOutcome()
	if rec == nil {
		rec = expectedRecord(b, c.GetWorkerId(), e.GetVacancy(), e.GetRegisteredPoor())
	}
	ev := &coordinationv1.LedgerEvent{OccurTime: timestamppb.New(at)}
	if c.GetOutcome() == outcomeArrived {
		ev.EventId = eventID(region, "arrived", b.GetBatchId(), c.GetWorkerId())
		ev.Kind = coordinationv1.EventKind_EVENT_KIND_ARRIVED
		rec.Status, rec.ArrivalTime = arrived, timestamppb.New(at)
	} else {
		ev.EventId = eventID(region, "no_show", b.GetBatchId(), c.GetWorkerId())
		ev.Kind = coordinationv1.EventKind_EVENT_KIND_NO_SHOW
		rec.Status = noShow
	}
	return rec, ledgerEvent(region, rec, ev), nil
}

// onboards says whether r can be onboarded on day d for vacancy vac: an arrived worker can, on
// or after the day of arrival (ledgerclient.DayNotBefore) and not before the vacancy's start
// window opens; onboarding again on the same day changes nothing (false, nil).
func onboards(r *receivingv1.EmploymentRecord, d *commonv1.Date, vac *receivingv1.Vacancy) (bool, error) {
	switch r.GetStatus() {
	case arrived:
	case employed, leftJob:
		if civil.Compare(r.GetOnboardDate(), d) == 0 {
			return false, nil
		}
		return false, apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_ALREADY_ONBOARDED, "worker %s was onboarded on %s", r.GetWorkerId(), civil.Format(r.GetOnboardDate()))
	default:
		return false, apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_NOT_ARRIVED, "worker %s is not confirmed arrived (status %s)", r.GetWorkerId(), r.GetStatus())
	}
	var vs apierror.Violations
	if r.GetArrivalTime() != nil && !ledgerclient.DayNotBefore(d, r.GetArrivalTime().AsTime()) {
		vs.Addf("onboard_date", "%s is before the worker arrived (%s)", civil.Format(d), civil.FormatTime(r.GetArrivalTime().AsTime()))
	} else if p := startWindowProblem("onboarding on", d, vac); p != "" {
		vs.Add("onboard_date", p)
	}
	return vs.Len() == 0, vs.Err()
}

// onboard records that r started work on day d for employer.
func onboard(region string, r *receivingv1.EmploymentRecord, d *commonv1.Date, employer string) *coordinationv1.LedgerEvent {
	r.Status, r.OnboardDate, r.EmployerName = employed, d, employer
	return &coordinationv1.LedgerEvent{
		EventId:   eventID(region, "onboarded", r.GetBatchId(), r.GetWorkerId()),
		Kind:      coordinationv1.EventKind_EVENT_KIND_ONBOARDED,
		OccurTime: timestamppb.New(civil.Start(d)),
	}
}

// checkpoint records whether onboarded worker r was still employed at a date. A checkpoint for
// the same number of months is recorded once: the same one again changes nothing, a different
// one is FAILED_PRECONDITION.
func checkpoint(region string, r *receivingv1.EmploymentRecord, cp *receivingv1.Checkpoint) (*coordinationv1.LedgerEvent, error) {
	if r.GetStatus() != employed && r.GetStatus() != leftJob {
		return nil, apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_NOT_ONBOARDED, "worker %s is not onboarded (status %s)", r.GetWorkerId(), r.GetStatus())
	}
	for _, old := range r.GetCheckpoints() {
		if old.GetMonths() == cp.GetMonths() {
			if proto.Equal(old, cp) {
				return nil, nil
			}
			return nil, apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_CHECKPOINT_ALREADY_RECORDED, "the %d-month checkpoint of worker %s is already recorded (%s, still employed %t)",
				cp.GetMonths(), r.GetWorkerId(), civil.Format(old.GetCheckDate()), old.GetStillEmployed())
		}
	}
	var vs apierror.Violations
	if civil.Compare(cp.GetCheckDate(), r.GetOnboardDate()) < 0 {
		vs.Addf("checkpoint.check_date", "%s is before onboarding (%s)", civil.Format(cp.GetCheckDate()), civil.Format(r.GetOnboardDate()))
	} else if m := civil.WholeMonths(r.GetOnboardDate(), cp.GetCheckDate()); cp.GetMonths() > m {
		vs.Addf("checkpoint.months", "is %d, but only %d whole months passed from onboarding (%s) to the check", cp.GetMonths(), m, civil.Format(r.GetOnboardDate()))
	}
	if err := vs.Err(); err != nil {
		return nil, err
	}
	r.Checkpoints = append(r.Checkpoints, proto.Clone(cp).(*receivingv1.Checkpoint))
	slices.SortStableFunc(r.Checkpoints, func(a, b *receivingv1.Checkpoint) int { return civil.Compare(a.GetCheckDate(), b.GetCheckDate()) })
	return &coordinationv1.LedgerEvent{
		EventId:   eventID(region, "checkpoint", r.GetBatchId(), r.GetWorkerId(), fmt.Sprint(cp.GetMonths())),
		Kind:      coordinationv1.EventKind_EVENT_KIND_EMPLOYMENT_CHECKPOINT,
		OccurTime: timestamppb.New(civil.Start(cp.GetCheckDate())),
		Details: &coordinationv1.LedgerEvent_EmploymentCheckpoint{EmploymentCheckpoint: &coordinationv1.EmploymentCheckpointDetails{
			Months: cp.GetMonths(), StillEmployed: cp.GetStillEmployed(),
		}},
	}, nil
}

// leave records that employed worker r left the job on day d for reason; the same again
// changes nothing.
func leave(region string, r *receivingv1.EmploymentRecord, d *commonv1.Date, reason string) (*coordinationv1.LedgerEvent, error) {
	switch r.GetStatus() {
	case employed:
	case leftJob:
		if civil.Compare(r.GetLeftDate(), d) == 0 && r.GetLeftReason() == reason {
			return nil, nil
		}
		return nil, apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_ALREADY_LEFT, "worker %s left the job on %s", r.GetWorkerId(), civil.Format(r.GetLeftDate()))
	default:
		return nil, apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_NOT_ONBOARDED, "worker %s is not onboarded (status %s)", r.GetWorkerId(), r.GetStatus())
	}
	if civil.Compare(d, r.GetOnboardDate()) < 0 {
		var vs apierror.Violations
		vs.Addf("left_date", "%s is before onboarding (%s)", civil.Format(d), civil.Format(r.GetOnboardDate()))
		return nil, vs.Err()
	}
	r.Status, r.LeftDate, r.LeftReason = leftJob, d, reason
	return &coordinationv1.LedgerEvent{
		EventId:   eventID(region, "left_job", r.GetBatchId(), r.GetWorkerId()),
		Kind:      coordinationv1.EventKind_EVENT_KIND_LEFT_JOB,
		OccurTime: timestamppb.New(civil.Start(d)),
		Details:   &coordinationv1.LedgerEvent_LeftJob{LeftJob: &coordinationv1.LeftJobDetails{Reason: reason}},
	}, nil
}

// incident records an incident concerning r. The same incident (date, kind, detail and
// description) recorded again changes nothing.
func incident(region string, r *receivingv1.EmploymentRecord, in *receivingv1.Incident) *coordinationv1.LedgerEvent {
	for _, old := range r.GetIncidents() {
		if proto.Equal(old, in) {
			return nil
		}
	}
	r.Incidents = append(r.Incidents, proto.Clone(in).(*receivingv1.Incident))
	slices.SortStableFunc(r.Incidents, func(a, b *receivingv1.Incident) int { return civil.Compare(a.GetIncidentDate(), b.GetIncidentDate()) })
	h := sha256.Sum256([]byte(incidentText(in) + "\x00" + in.GetDescription()))
	return &coordinationv1.LedgerEvent{
		EventId:   eventID(region, "incident", r.GetBatchId(), r.GetWorkerId(), civil.Format(in.GetIncidentDate()), hex.EncodeToString(h[:6])),
		Kind:      coordinationv1.EventKind_EVENT_KIND_INCIDENT,
		OccurTime: timestamppb.New(civil.Start(in.GetIncidentDate())),
		Details:   &coordinationv1.LedgerEvent_Incident{Incident: &coordinationv1.IncidentDetails{Kind: incidentText(in)}},
	}
}

// absence records spell a of absence from work of onboarded worker r: a new spell, or the
// worker back at work from a recorded one. The same report again changes nothing. Its ledger
// event (ABSENCE) says the spell's first day and, once back, the back day; its event id is the
// spell and its state ("absent" or the back day), so a retry is the same event.
func absence(region string, r *receivingv1.EmploymentRecord, a *receivingv1.Absence) (*coordinationv1.LedgerEvent, error) {
	if r.GetStatus() != employed && r.GetStatus() != leftJob {
		return nil, apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_NOT_ONBOARDED, "worker %s is not onboarded (status %s)", r.GetWorkerId(), r.GetStatus())
	}
	first, back := a.GetFirstDay(), a.GetBackDay()
	var vs apierror.Violations
	if civil.Compare(first, r.GetOnboardDate()) < 0 {
		vs.Addf("absence.first_day", "%s is before onboarding (%s)", civil.Format(first), civil.Format(r.GetOnboardDate()))
	} else if r.GetStatus() == leftJob && civil.Compare(first, r.GetLeftDate()) > 0 {
		vs.Addf("absence.first_day", "%s is after the worker left the job (%s)", civil.Format(first), civil.Format(r.GetLeftDate()))
	}
	if err := vs.Err(); err != nil {
		return nil, err
	}
	var same *receivingv1.Absence
	for _, old := range r.GetAbsences() {
		if civil.Compare(old.GetFirstDay(), first) == 0 {
			same = old
			continue
		}
		// Spells do not overlap: first inside old, or old inside this one.
		inOld := civil.Compare(first, old.GetFirstDay()) > 0 && (old.GetBackDay() == nil || civil.Compare(first, old.GetBackDay()) < 0)
		oldIn := civil.Compare(old.GetFirstDay(), first) > 0 && (back == nil || civil.Compare(old.GetFirstDay(), back) < 0)
		if inOld || oldIn {
			until := "still absent"
			if old.GetBackDay() != nil {
				until = "back on " + civil.Format(old.GetBackDay())
			}
			vs.Addf("absence.first_day", "the spell from %s overlaps the spell recorded from %s (%s)", civil.Format(first), civil.Format(old.GetFirstDay()), until)
			return nil, vs.Err()
		}
	}
	switch {
	case same == nil:
		same = proto.Clone(a).(*receivingv1.Absence)
		r.Absences = append(r.Absences, same)
		slices.SortStableFunc(r.Absences, func(x, y *receivingv1.Absence) int { return civil.Compare(x.GetFirstDay(), y.GetFirstDay()) })
	case back == nil || proto.Equal(same.GetBackDay(), back):
		return nil, nil // reported before (a spell back is not absent again)
	case same.GetBackDay() != nil:
		vs.Addf("absence.back_day", "the spell from %s is recorded back on %s", civil.Format(first), civil.Format(same.GetBackDay()))
		return nil, vs.Err()
	default:
		same.BackDay = back
	}
	state, occur := "absent", first
	if back != nil {
		state, occur = civil.Format(back), back
	}
	d := &coordinationv1.AbsenceDetails{FirstDay: first, BackDay: back}
	return &coordinationv1.LedgerEvent{
		EventId:   eventID(region, "absence", r.GetBatchId(), r.GetWorkerId(), civil.Format(first), state),
		Kind:      coordinationv1.EventKind_EVENT_KIND_ABSENCE,
		OccurTime: timestamppb.New(civil.Start(occur)),
		Details:   &coordinationv1.LedgerEvent_Absence{Absence: d},
	}, nil
}

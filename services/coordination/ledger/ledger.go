// Package ledger is the coordination service's ledger: the events both sides report
// (LedgerService) and the reconciliation of each transport batch from them, with the
// discrepancies it opens and closes and the pairing summaries (ReconciliationService).
//
// A report is one transaction: the events, their indexes, the reconciliation of every batch they
// touch and the discrepancies that open or close. Because every derived figure is a function of
// the set of distinct events (never of their order), reporting the same events in any order, any
// number of times, gives the same figures.
package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/occupation"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/coordination/check"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/coordination/registry"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/metrics"
	"github.com/eastwest/labourlink/services/platform/paging"
	"github.com/eastwest/labourlink/services/platform/privacy"
	"github.com/eastwest/labourlink/services/platform/store"
)

// MaxEventsPerReport is the most events one ReportEvents call may carry.
const MaxEventsPerReport = 1000

// vacancyNamePrefix starts a vacancy's resource name, `vacancies/{vacancy_id}`.
const vacancyNamePrefix = "vacancies/"

// Limits of ids and texts in ledger events. The event id is the reporter's choice: its length
// limit is the one of every client-chosen id, store.MaxClientIDLen.
const (
	maxIDLen   = 128 // worker and batch ids, made by the regional services
	maxTextLen = 2000
)

// EarliestOccur is the earliest occur_time the ledger accepts, LatestOccur the first it refuses
// after it; maxFutureSkew is how far in the future (reporter clock ahead of ours) it still
// accepts.
var (
	EarliestOccur = time.Date(2000, 1, 1, 0, 0, 0, 0, civil.Zone)
	LatestOccur   = time.Date(2200, 1, 1, 0, 0, 0, 0, civil.Zone)
)

const maxFutureSkew = 24 * time.Hour

// Config configures the ledger.
type Config struct {
	// Regions is the region table.
	Regions *regions.Table
	// Now is the clock.
	Now func() time.Time
	// GracePeriod after departure before a missing arrival is unaccounted.
	GracePeriod time.Duration
	// CheckInterval is the longest the deadline timer in Run sleeps between looks at the clock.
	CheckInterval time.Duration
	// Metrics, when set, counts the events recorded and exports the open discrepancies by kind
	// (metrics.go).
	Metrics *metrics.Registry
	// Key signs the checkpoints of the verifiable ledger (checkpoint.go); nil: a key made for
	// this process (tests).
	Key *Key
}

// Ledger is the ledger and its reconciliation, over the service's store.
type Ledger struct {
	db  *store.DB
	lg  *zap.Logger
	cfg Config
	// wake nudges the deadline timer after a report (a new deadline may be sooner).
	wake chan struct{}
	// open counts the open discrepancies for the metrics (nil without Config.Metrics).
	open *openCounts
	// keyOnce sets signKey, the checkpoints' key (checkpoint.go).
	keyOnce sync.Once
	signKey *Key

	w                       store.Writer
	reportEvents, expireDue *store.Mutation
}

// ExpireDueMethod names the deadline timer's write (ExpireDue): not an RPC, but a write like the
// others, with the time it runs at (a replicated coordination service applies it from its log).
const ExpireDueMethod = "/labourlink.coordination.internal/ExpireDue"

// New returns the ledger over db. Its writes go to db in this process until SetWriter.
func New(db *store.DB, lg *zap.Logger, cfg Config) *Ledger {
	l := &Ledger{db: db, lg: lg, cfg: cfg, wake: make(chan struct{}, 1), w: store.Local{DB: db}}
	l.initMetrics(cfg.Metrics)
	l.reportEvents = store.NewMutation(coordinationv1.LedgerService_ReportEvents_FullMethodName, l.applyReportEvents).
		Then(func(resp proto.Message) {
			if resp.(*coordinationv1.ReportEventsResponse).GetRecorded() > 0 {
				l.wakeTimer()
			}
		})
	// The step of a deadline is one write whichever node's timer makes it.
	l.expireDue = store.NewMutation(ExpireDueMethod, l.applyExpireDue).
		WithID(func(req proto.Message) string {
			return "due " + req.(*timestamppb.Timestamp).AsTime().UTC().Format(time.RFC3339Nano)
		})
	return l
}

// SetWriter sends the ledger's writes to w.
func (l *Ledger) SetWriter(w store.Writer) { l.w = w }

// Mutations are the ledger's writes.
func (l *Ledger) Mutations() []*store.Mutation { return []*store.Mutation{l.reportEvents, l.expireDue} }

// LedgerServer is the LedgerService.
type LedgerServer struct {
	coordinationv1.UnimplementedLedgerServiceServer
	l *Ledger
}

// ReconciliationServer is the ReconciliationService.
type ReconciliationServer struct {
	coordinationv1.UnimplementedReconciliationServiceServer
	l *Ledger
}

// LedgerServer returns the LedgerService of l.
func (l *Ledger) LedgerServer() *LedgerServer { return &LedgerServer{l: l} }

// ReconciliationServer returns the ReconciliationService of l.
func (l *Ledger) ReconciliationServer() *ReconciliationServer { return &ReconciliationServer{l: l} }

// Run does the ledger's background work until ctx is done: when a batch's grace deadline
// passes, it reconciles the batch again, which opens the discrepancies of its workers still not
// confirmed (UNACCOUNTED). It looks at once at start (deadlines that passed while the service was
// down), then at each next deadline, after each report, and at least every CheckInterval.
func (l *Ledger) Run(ctx context.Context) error {
	for {
		next, err := l.ExpireDue()
		wait := l.cfg.CheckInterval
		if err != nil {
			l.lg.Error("reconcile batches past their grace deadline", zap.Error(err))
		} else if !next.IsZero() {
			wait = min(wait, max(next.Sub(l.cfg.Now()), time.Millisecond))
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		case <-l.wake:
			timer.Stop()
		}
	}
}

// wakeTimer nudges Run's timer without blocking.
func (l *Ledger) wakeTimer() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func eventsListing(r *coordinationv1.ListEventsRequest) paging.Listing {
	filters := []string{r.GetWorkerId(), r.GetBatchId(), r.GetKind().String(), r.GetRegion()}
	if r.GetOccurTimeFrom() != nil || r.GetOccurTimeBefore() != nil {
		// Only then, so that the tokens of listings without a time range stay those of before.
		filters = append(filters, timeFilter(r.GetOccurTimeFrom()), timeFilter(r.GetOccurTimeBefore()))
	}
	return paging.For("events", filters...).Keys(isSeqKey)
}

// timeFilter is a time filter as a listing's filter value ("" when unset).
func timeFilter(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return fmt.Sprintf("%d.%09d", ts.GetSeconds(), ts.GetNanos())
}

// isSeqKey: ListEvents, a sequence number.
func isSeqKey(k []byte) bool { return len(k) == 8 }

// ValidateRequest checks ledger requests before the handlers run (grpcserver.Validator).
func (x *LedgerServer) ValidateRequest(method string, req any) error {
	var v apierror.Violations
	switch r := req.(type) {
	case *coordinationv1.ReportEventsRequest:
		n := len(r.GetEvents())
		if n == 0 {
			v.Add("events", "at least one event is required")
		}
		if n > MaxEventsPerReport {
			v.Addf("events", "at most %d events per call, got %d: split the report", MaxEventsPerReport, n)
			break
		}
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
		if _, ok := coordinationv1.ProofForm_name[int32(r.GetProofForm())]; !ok {
			v.Add("proof_form", "unknown proof form")
		}
		// Each event is checked by the handler and refused on its own (report).
	case *coordinationv1.ListEventsRequest:
		if r.GetWorkerId() != "" {
			checkID(&v, "worker_id", r.GetWorkerId(), maxIDLen)
		}
		if r.GetBatchId() != "" {
			checkID(&v, "batch_id", r.GetBatchId(), maxIDLen)
		}
		if _, ok := coordinationv1.EventKind_name[int32(r.GetKind())]; !ok {
			v.Add("kind", "unknown event kind")
		}
		check.Province(&v, x.l.cfg.Regions, "region", r.GetRegion(), false)
		from, before := r.GetOccurTimeFrom(), r.GetOccurTimeBefore()
		if from != nil && from.CheckValid() != nil {
			v.Add("occur_time_from", "is not a valid timestamp")
		}
		if before != nil && before.CheckValid() != nil {
			v.Add("occur_time_before", "is not a valid timestamp")
		}
		if v.Len() == 0 && from != nil && before != nil && !before.AsTime().After(from.AsTime()) {
			v.Add("occur_time_before", "must be later than occur_time_from")
		}
		check.PageSize.Check(&v, r.GetPageSize())
		eventsListing(r).Check(&v, r.GetPageToken())
	default:
		if !x.validateTreeRequest(&v, req) {
			return apierror.NotValidated(req)
		}
	}
	return v.Err()
}

// eventPrefix is the field path of the i-th event of a report, "events[3]".
func eventPrefix(i int) string { return "events[" + strconv.Itoa(i) + "]" }

// validateEvent checks one event; field paths are the event's own ("worker_id"; "" for the
// event as a whole), for the caller to place (Violations.AddUnder).
func validateEvent(v *apierror.Violations, t *regions.Table, ev *coordinationv1.LedgerEvent, now time.Time) {
	if ev == nil {
		v.Add("", "is empty")
		return
	}
	checkID(v, "event_id", ev.GetEventId(), store.MaxClientIDLen)
	kind := ev.GetKind()
	if _, ok := coordinationv1.EventKind_name[int32(kind)]; !ok || kind == coordinationv1.EventKind_EVENT_KIND_UNSPECIFIED {
		v.Add("kind", "must be one of the EVENT_KIND values (not UNSPECIFIED)")
	}
	check.Province(v, t, "sending_region", ev.GetSendingRegion(), true)
	check.Province(v, t, "receiving_region", ev.GetReceivingRegion(), true)
	if ev.GetSendingRegion() != "" && ev.GetSendingRegion() == ev.GetReceivingRegion() {
		v.Add("receiving_region", "must differ from the sending region")
	}
	check.Province(v, t, "reporter_region", ev.GetReporterRegion(), true)
	if kind != coordinationv1.EventKind_EVENT_KIND_UNSPECIFIED && ev.GetReporterRegion() != "" {
		want, side := ev.GetReceivingRegion(), "receiving"
		if SendingSide(kind) {
			want, side = ev.GetSendingRegion(), "sending"
		}
		if ev.GetReporterRegion() != want {
			v.Addf("reporter_region", "%s is reported by the %s province (%s), not %s",
				kindWord(kind), side, want, ev.GetReporterRegion())
		}
	}
	if checkID(v, "worker_id", ev.GetWorkerId(), maxIDLen) {
		if privacy.LooksLikeIDNumber(ev.GetWorkerId()) {
			// The value itself is never repeated: it may be personal data.
			v.Add("worker_id", "must be the opaque worker id, not a resident identity number")
		}
	}
	switch {
	case ev.GetBatchId() != "":
		checkID(v, "batch_id", ev.GetBatchId(), maxIDLen)
	case NeedsBatch(kind):
		v.Addf("batch_id", "is required for %s: reconciliation is per transport batch", kindWord(kind))
	}
	if vac := ev.GetVacancy(); vac != "" {
		// A vacancy is referred to by its resource name in its receiving service.
		if id, ok := strings.CutPrefix(vac, vacancyNamePrefix); !ok || !isID([]byte(id), maxIDLen) {
			v.Addf("vacancy", "must be the vacancy's resource name vacancies/{vacancy_id} (the id at most %d printable ASCII characters without spaces or '/'), such as vacancies/440000-V0000000001", maxIDLen)
		}
	}
	switch ts := ev.GetOccurTime(); {
	case ts == nil:
		v.Add("occur_time", "is required")
	case ts.CheckValid() != nil:
		v.Add("occur_time", "is not a valid timestamp")
	default:
		t := ts.AsTime()
		if t.Before(EarliestOccur) || !t.Before(LatestOccur) {
			v.Add("occur_time", "must be between 2000 and 2200")
		} else if t.After(now.Add(maxFutureSkew)) {
			v.Add("occur_time", "is more than a day in the future")
		}
	}
	validateDetails(v, kind, ev)
	validateDeparted(v, t, ev)
}

// validateDeparted checks a DEPARTED event's details: the home county a county of the sending
// province, the occupation a known ISCO-08 unit group.
func validateDeparted(v *apierror.Violations, t *regions.Table, ev *coordinationv1.LedgerEvent) {
	d := ev.GetDeparted()
	if d == nil {
		return
	}
	if c := d.GetHomeCounty(); c != "" {
		switch {
		case !t.IsCounty(c):
			v.Add("departed.home_county", "must be a 6-digit GB/T 2260 county code, such as 522601")
		case ev.GetSendingRegion() != "" && t.ProvinceOf(c) != ev.GetSendingRegion():
			v.Addf("departed.home_county", "must be a county of the sending province %s, not of %s", ev.GetSendingRegion(), t.ProvinceOf(c))
		}
	}
	if o := d.GetOccupation(); o != "" && !occupation.Known(o) {
		v.Add("departed.occupation", "must be a known 4-digit ISCO-08 unit group code, such as 7112")
	}
}

// validateDetails checks that ev's details are those of its kind: employment_checkpoint required
// for EMPLOYMENT_CHECKPOINT, left_job only for LEFT_JOB, incident only for INCIDENT.
func validateDetails(v *apierror.Violations, kind coordinationv1.EventKind, ev *coordinationv1.LedgerEvent) {
	only := func(field string, want coordinationv1.EventKind) bool {
		if kind != want {
			v.Addf(field, "is only for %s events, not %s", want, kindWord(kind))
			return false
		}
		return true
	}
	text := func(field, s string) {
		if len(s) > maxTextLen {
			v.Addf(field, "at most %d bytes", maxTextLen)
		}
	}
	switch d := ev.GetDetails().(type) {
	case *coordinationv1.LedgerEvent_EmploymentCheckpoint:
		if only("employment_checkpoint", coordinationv1.EventKind_EVENT_KIND_EMPLOYMENT_CHECKPOINT) {
			if m := d.EmploymentCheckpoint.GetMonths(); m < 1 || m > 120 {
				v.Add("employment_checkpoint.months", "must be 1 to 120 whole months since onboarding")
			}
		}
	case *coordinationv1.LedgerEvent_LeftJob:
		if only("left_job", coordinationv1.EventKind_EVENT_KIND_LEFT_JOB) {
			text("left_job.reason", d.LeftJob.GetReason())
		}
	case *coordinationv1.LedgerEvent_Departed:
		only("departed", coordinationv1.EventKind_EVENT_KIND_DEPARTED)
	case *coordinationv1.LedgerEvent_Incident:
		if only("incident", coordinationv1.EventKind_EVENT_KIND_INCIDENT) {
			text("incident.kind", d.Incident.GetKind())
		}
	case *coordinationv1.LedgerEvent_Absence:
		if only("absence", coordinationv1.EventKind_EVENT_KIND_ABSENCE) {
			first, back := d.Absence.GetFirstDay(), d.Absence.GetBackDay()
			if first == nil {
				v.Add("absence.first_day", "is required: the first day of absence")
			} else if p := civil.Problem(first); p != "" {
				v.Add("absence.first_day", p)
			}
			if back != nil {
				if p := civil.Problem(back); p != "" {
					v.Add("absence.back_day", p)
				} else if first != nil && civil.Problem(first) == "" && civil.Compare(back, first) <= 0 {
					v.Add("absence.back_day", "must be after first_day")
				}
			}
		}
	case nil:
		if kind == coordinationv1.EventKind_EVENT_KIND_ABSENCE {
			v.Add("absence", "is required for ABSENCE events (first day of absence, back day once back)")
		}
		if kind == coordinationv1.EventKind_EVENT_KIND_EMPLOYMENT_CHECKPOINT {
			v.Add("employment_checkpoint", "is required for EMPLOYMENT_CHECKPOINT events (months since onboarding, still employed)")
		}
	}
}

// checkID adds a violation unless id is 1..max printable ASCII characters without spaces or '/'
// (ids appear in resource names and index keys). It reports whether id is well-formed.
func checkID(v *apierror.Violations, field, id string, max int) bool {
	switch {
	case id == "":
		v.Add(field, "is required")
		return false
	case len(id) > max:
		v.Addf(field, "at most %d characters", max)
		return false
	}
	if !isID([]byte(id), max) {
		v.Add(field, "only printable ASCII characters without spaces or '/'")
		return false
	}
	return true
}

// isID reports whether k is an id as checkID accepts them.
func isID(k []byte, max int) bool {
	if len(k) == 0 || len(k) > max {
		return false
	}
	for _, c := range k {
		if c <= ' ' || c > '~' || c == '/' {
			return false
		}
	}
	return true
}

// conflictError is a refused report: INVALID_ARGUMENT with the field violations and an ErrorInfo
// reason (EVENT_ID_REUSED or BATCH_REGIONS_DIFFER) naming the first id concerned.
type conflictError struct {
	info       *apierror.Error
	violations error
}

func (e *conflictError) Error() string   { return e.violations.Error() }
func (e *conflictError) Unwrap() []error { return []error{e.info, e.violations} }

// ReportEvents records a batch of events, answering each on its own.
//
// Idempotency: an event whose event_id is recorded already, with the same content, is a
// duplicate (counted in `duplicates`, changes nothing). An event refused (see check) is listed
// in the response's refusals with its index and reason, and the others are recorded: one bad
// event never holds back the facts reported with it. An event_id recorded with different
// content is refused with reason EVENT_ID_REUSED (INVALID_ARGUMENT, not ALREADY_EXISTS: a retry
// never gets it, since a retry is a duplicate, so it always means a reporter bug, and clients
// tend to read ALREADY_EXISTS as "done", which would drop the second fact silently).
func (x *LedgerServer) ReportEvents(ctx context.Context, req *coordinationv1.ReportEventsRequest) (*coordinationv1.ReportEventsResponse, error) {
	l := x.l
	resp := &coordinationv1.ReportEventsResponse{}
	if err := l.w.Write(ctx, l.reportEvents, l.cfg.Now(), req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

func (l *Ledger) applyReportEvents(tx *bbolt.Tx, now time.Time, req *coordinationv1.ReportEventsRequest, resp *coordinationv1.ReportEventsResponse) error {
	resp.Recorded, resp.Duplicates, resp.Refusals = 0, 0, nil
	ing := l.newIngest(tx, now)
	recorded := eventCounts{}
	for i, ev := range req.GetEvents() {
		// A reporter not yet upgraded sends the old flat fields: taken as the details. The
		// privacy guard did not see them (unknown fields), so the converted event is scanned.
		var err error
		if up := ledgerclient.Upgraded(ev); up != ev {
			ev = up
			var pv apierror.Violations
			privacy.Scan(&pv, eventPrefix(i)+".", ev, nil)
			err = pv.Err()
		}
		var dup bool
		if err == nil {
			dup, err = ing.check(i, ev)
		}
		if err == nil && !dup {
			dup, err = ing.add(i, ev)
		}
		if err != nil {
			r, ok := apierror.Refusal(i, ev.GetEventId(), eventPrefix(i)+".", err)
			if !ok {
				return err
			}
			resp.Refusals = append(resp.Refusals, r)
			continue
		}
		if dup {
			resp.Duplicates++
		} else {
			resp.Recorded++
			recorded.add(ev)
		}
	}
	recorded.report(tx, l.cfg.Metrics)
	if err := ing.flush(); err != nil {
		return err
	}
	return l.proveReport(ing.logs, req, resp, ing.added, now)
}

// ingest is one report's write transaction.
type ingest struct {
	l       *Ledger
	tx      *bbolt.Tx
	now     time.Time
	logs    *logs
	counts  *counts
	touched map[string]bool
	// batches are the regions of batches seen in this report.
	batches map[string]regions.Pairing
	// added are the leaves of the events this report recorded, by index in the report; ids
	// their event ids.
	added map[int]leafAt
	ids   map[string]bool
	// workers are the recorded events of each worker the report read (in the order recorded,
	// with the report's own): a recorded event never changes.
	workers map[string][]*coordinationv1.LedgerEvent
	// recorded are the events this report recorded, by sequence number, as stored: reconciling
	// a touched batch reads its other events from the file only.
	recorded map[uint64]*coordinationv1.LedgerEvent
}

// workerEvents returns the recorded events of worker.
func (g *ingest) workerEvents(worker string) ([]*coordinationv1.LedgerEvent, error) {
	if evs, ok := g.workers[worker]; ok {
		return evs, nil
	}
	evs, err := workerEvents(g.tx, worker)
	if err == nil {
		g.workers[worker] = evs
	}
	return evs, err
}

// newIngest starts a report's ingest in tx.
func (l *Ledger) newIngest(tx *bbolt.Tx, now time.Time) *ingest {
	return &ingest{l: l, tx: tx, now: now, logs: newLogs(tx), counts: newCounts(tx), touched: map[string]bool{}, batches: map[string]regions.Pairing{},
		added: map[int]leafAt{}, ids: map[string]bool{}, workers: map[string][]*coordinationv1.LedgerEvent{},
		recorded: map[uint64]*coordinationv1.LedgerEvent{}}
}

// check validates ev on its own (field by field, then against the ledger) and reports whether
// it is a duplicate of a recorded event. The error is the event's refusal:
//   - INVALID_ARGUMENT with the field violations (paths start with prefix, "events[3]");
//   - EVENT_ID_REUSED: the event id was recorded with other content;
//   - BATCH_REGIONS_DIFFER: the batch goes between other provinces in the ledger;
//   - NOT_PAIRED: the two provinces are not paired in the registry, and the batch is not one the
//     ledger already has from them (facts about a trip that began while they were paired are
//     still taken after the pairing ends).
//   - INVALID_ARGUMENT on occur_time (or employment_checkpoint.months): the event contradicts in
//     time an event of the same worker on the same batch the ledger has (timeorder.go).
func (g *ingest) check(i int, ev *coordinationv1.LedgerEvent) (dup bool, err error) {
	var item apierror.Violations
	validateEvent(&item, g.l.cfg.Regions, ev, g.now)
	if item.Len() > 0 {
		var v apierror.Violations
		v.AddUnder(eventPrefix(i), &item)
		return false, v.Err()
	}
	ids, err := g.counts.lookup(eventIDs)
	if err != nil {
		return false, err
	}
	if seq, ok := eventSeqIn(ids, ev.GetEventId()); ok {
		old, err := event(g.tx, seq)
		if err != nil {
			return false, err
		}
		if sameFact(old, ev) {
			return true, nil
		}
		var v apierror.Violations
		v.Addf(eventPrefix(i)+".event_id", "event %s was recorded with different content; a new fact needs a new event id", ev.GetEventId())
		return false, &conflictError{
			info:       apierror.New(apierror.ErrInvalidArgument, commonv1.ErrorReason_ERROR_REASON_EVENT_ID_REUSED, "event id reused with different content").WithMetadata("event_id", ev.GetEventId()),
			violations: v.Err(),
		}
	}
	pair := pairingOf(ev)
	known := false // the batch is in the ledger already, between these provinces
	if batch := ev.GetBatchId(); batch != "" {
		have, ok := g.batches[batch]
		if !ok {
			rec, found, err := batches.Get(g.tx, []byte(batch))
			if err != nil {
				return false, err
			} else if found {
				have, ok = regions.Pairing{Receiving: rec.GetReceivingRegion(), Sending: rec.GetSendingRegion()}, true
			}
		}
		if ok && have != pair {
			var v apierror.Violations
			v.Addf(eventPrefix(i)+".batch_id", "batch %s goes from %s to %s in the ledger; this event says from %s to %s",
				batch, have.Sending, have.Receiving, pair.Sending, pair.Receiving)
			return false, &conflictError{
				info:       apierror.New(apierror.ErrInvalidArgument, commonv1.ErrorReason_ERROR_REASON_BATCH_REGIONS_DIFFER, "batch has other regions").WithMetadata("batch_id", batch),
				violations: v.Err(),
			}
		}
		known = ok
	}
	if !known {
		paired, err := registry.Paired(g.tx, pair)
		if err != nil {
			return false, err
		}
		if !paired {
			return false, apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_NOT_PAIRED, "%s and %s are not paired in the registry: the ledger takes events of registered pairings only",
				pair.Receiving, pair.Sending)
		}
	}
	if ev.GetBatchId() == "" || tripStage(ev.GetKind()) == 0 {
		return false, nil // no order in time to keep (checkTimeOrder)
	}
	recorded, err := g.workerEvents(ev.GetWorkerId())
	if err != nil {
		return false, err
	}
	return false, checkTimeOrder(recorded, i, ev)
}

// add records ev, the i-th event of the report, which check found new and acceptable.
func (g *ingest) add(i int, ev *coordinationv1.LedgerEvent) (dup bool, err error) {
	if g.ids[ev.GetEventId()] {
		// The same id earlier in this report: check again against the recorded one.
		return g.check(i, ev)
	}
	g.ids[ev.GetEventId()] = true
	if batch := ev.GetBatchId(); batch != "" {
		g.batches[batch] = pairingOf(ev)
		g.touched[batch] = true
	}
	rec := record(ev, g.now)
	seq, err := putEvent(g.tx, g.counts, rec)
	if err != nil {
		return false, err
	}
	g.recorded[seq] = rec
	if evs, ok := g.workers[ev.GetWorkerId()]; ok {
		g.workers[ev.GetWorkerId()] = append(evs, rec)
	}
	if workerKind(ev.GetKind()) {
		// The deadlines of the worker's trips (deadlines.go) follow these events.
		evs, err := g.workerEvents(ev.GetWorkerId())
		if err != nil {
			return false, err
		}
		for _, b := range workerBatches(evs) {
			g.touched[b] = true
		}
	}
	// The leaf is the event as reported (the same leaf as rec's, without the output fields rec
	// adds: ledgerclient.LeafData encodes it as it is).
	index, err := g.logs.append(seq, ev)
	g.added[i] = leafAt{rec.GetReporterRegion(), index}
	return false, err
}

// flush writes what the report's events changed in memory (the logs' sizes, the counts), then
// reconciles the batches they touched.
func (g *ingest) flush() error {
	if err := g.logs.flush(); err != nil {
		return err
	}
	if err := g.counts.flush(); err != nil {
		return err
	}
	return g.reconcileTouched()
}

// reconcileTouched reconciles every batch the report added events to, in batch order.
func (g *ingest) reconcileTouched() error {
	touched := make([]string, 0, len(g.touched))
	for b := range g.touched {
		touched = append(touched, b)
	}
	sort.Strings(touched)
	for _, b := range touched {
		if err := g.l.reconcileBatch(g.tx, b, g.now, g.recorded); err != nil {
			return err
		}
	}
	return nil
}

// ListEvents lists recorded events in the order recorded, with filters.
func (x *LedgerServer) ListEvents(ctx context.Context, req *coordinationv1.ListEventsRequest) (*coordinationv1.ListEventsResponse, error) {
	listing := eventsListing(req)
	tok, err := listing.Decode(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	var after uint64
	if tok != nil {
		after = store.KeyUint64(tok)
	}
	var page []*coordinationv1.LedgerEvent
	var last uint64
	err = x.l.db.View(func(tx *bbolt.Tx) (err error) {
		page, last, err = listEvents(tx, req, after, check.PageSize.Of(req.GetPageSize()))
		return err
	})
	if err != nil {
		return nil, err
	}
	resp := &coordinationv1.ListEventsResponse{Events: page}
	for _, ev := range resp.Events {
		// A detail recorded before the privacy guard refused personal data is masked.
		maskDetails(ev)
	}
	if last != 0 {
		resp.NextPageToken = listing.Token(store.Uint64Key(last))
	}
	return resp, nil
}

// maskDetails masks personal data in the free texts of ev's details.
func maskDetails(ev *coordinationv1.LedgerEvent) {
	switch d := ev.GetDetails().(type) {
	case *coordinationv1.LedgerEvent_LeftJob:
		d.LeftJob.Reason = privacy.Mask(d.LeftJob.GetReason())
	case *coordinationv1.LedgerEvent_Incident:
		d.Incident.Kind = privacy.Mask(d.Incident.GetKind())
	}
}

// listScanBudget bounds the events one ListEvents call looks at beyond its page when its
// filters are not all answered by an index (a time range, or kind and region together): a page
// may then hold fewer events than asked, even none, with a next_page_token to go on from.
const listScanBudget = 10_000

// eventIndex returns the index of ListEvents filters that answers req (worker, batch, kind,
// region, in that order of preference) and the prefix of its keys, each prefix + seq(8); ok is
// false when no filter has an index (the events are scanned in the order recorded).
func eventIndex(req *coordinationv1.ListEventsRequest) (index keyIndex, prefix []byte, ok bool) {
	switch {
	case req.GetWorkerId() != "":
		return byWorker, idPrefix(req.GetWorkerId()), true
	case req.GetBatchId() != "":
		return byBatch, idPrefix(req.GetBatchId()), true
	case req.GetKind() != coordinationv1.EventKind_EVENT_KIND_UNSPECIFIED:
		return byKind, kindPrefix(req.GetKind()), true
	case req.GetRegion() != "":
		return byRegion, []byte(req.GetRegion()), true
	}
	return keyIndex{}, nil, false
}

// listEvents returns up to n events after the sequence number after that match req's filters,
// through the index of one of its filters when it has one, looking at no more than n +
// listScanBudget events; last is the sequence number to go on after when more may follow (the
// last event returned, or the last looked at when the budget ran out), else 0.
func listEvents(tx *bbolt.Tx, req *coordinationv1.ListEventsRequest, after uint64, n int) (page []*coordinationv1.LedgerEvent, last uint64, err error) {
	more, looked := false, 0
	// take looks at ev (recorded under seq) and says whether to go on.
	take := func(seq uint64, ev *coordinationv1.LedgerEvent) bool {
		if eventMatches(req, ev) {
			if len(page) == n {
				more = true
				return false
			}
			page, last = append(page, ev), seq
		}
		if looked++; looked >= n+listScanBudget {
			more, last = true, seq
			return false
		}
		return true
	}
	index, prefix, indexed := eventIndex(req)
	if !indexed {
		r := store.Range{}
		if after > 0 {
			r.After = store.Uint64Key(after)
		}
		err = events.Scan(tx, r, func(k []byte, ev *coordinationv1.LedgerEvent) (bool, error) {
			return take(store.KeyUint64(k), ev), nil
		})
	} else {
		r := store.Range{Prefix: prefix}
		if after > 0 {
			r.After = binary.BigEndian.AppendUint64(bytes.Clone(prefix), after)
		}
		err = index.scan(tx, r, func(k []byte) (bool, error) {
			if len(k) != len(prefix)+8 {
				return true, nil
			}
			seq := store.KeyUint64(k[len(prefix):])
			ev, err := event(tx, seq)
			if err != nil {
				return false, err
			}
			return take(seq, ev), nil
		})
	}
	if !more {
		last = 0
	}
	return page, last, err
}

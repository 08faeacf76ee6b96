package coordination

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labour/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labour/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/privacy"
	"github.com/eastwest/labourlink/services/platform/store"
)

// The ledger. Every event is stored once under a sequence number (BucketLedgerEvents, seq ->
// LedgerEvent, the order recorded) and indexed:
//
//	BucketLedgerEventIDs    event_id -> seq                       (idempotency by event id)
//	BucketLedgerByWorker    worker NUL seq                        (ListEvents by worker)
//	BucketLedgerByBatch     batch NUL seq                         (reconciling one batch)
//	BucketLedgerByPairing   receiving sending category time worker (pairing summaries)
//	BucketLedgerAssessment  province year category worker          (registered-poor, assessment)
//
// A report is one transaction: the events, their indexes, the reconciliation of every batch they
// touch and the discrepancies that open or close. Because every derived figure is a function of
// the set of distinct events (never of their order), reporting the same events in any order, any
// number of times, gives the same figures.

// MaxEventsPerReport is the most events one ReportEvents call may carry.
const MaxEventsPerReport = 1000

// Limits of ids and texts in ledger events.
const (
	maxEventIDLen = 256
	maxIDLen      = 128
	maxTextLen    = 2000
)

// earliestOccur is the earliest occur_time the ledger accepts; maxFutureSkew is how far in the
// future (reporter clock ahead of ours) it still accepts.
var (
	earliestOccur = time.Date(2000, 1, 1, 0, 0, 0, 0, chinaTime)
	latestOccur   = time.Date(2200, 1, 1, 0, 0, 0, 0, chinaTime)
)

const maxFutureSkew = 24 * time.Hour

// sendingSide reports whether events of kind k are reported by the sending province.
func sendingSide(k coordinationv1.EventKind) bool {
	return k == coordinationv1.EventKind_EVENT_KIND_DEPARTED || k == coordinationv1.EventKind_EVENT_KIND_RETURNED_HOME
}

// needsBatch reports whether events of kind k must name their batch: reconciliation is per batch.
func needsBatch(k coordinationv1.EventKind) bool {
	switch k {
	case coordinationv1.EventKind_EVENT_KIND_DEPARTED, coordinationv1.EventKind_EVENT_KIND_ARRIVED,
		coordinationv1.EventKind_EVENT_KIND_NO_SHOW, coordinationv1.EventKind_EVENT_KIND_ONBOARDED:
		return true
	}
	return false
}

func reporterRole(k coordinationv1.EventKind) commonv1.RegionRole {
	if sendingSide(k) {
		return commonv1.RegionRole_REGION_ROLE_SENDING
	}
	return commonv1.RegionRole_REGION_ROLE_RECEIVING
}

// ValidateRequest checks ledger requests before the handlers run (grpcserver.Validator).
func (x *ledgerServer) ValidateRequest(method string, req any) error {
	var v apierror.Violations
	switch r := req.(type) {
	case *coordinationv1.ReportEventsRequest:
		n := len(r.GetEvents())
		if n == 0 {
			v.Add("events", "at least one event is required")
		}
		if n > MaxEventsPerReport {
			v.Add("events", fmt.Sprintf("at most %d events per call, got %d: split the report", MaxEventsPerReport, n))
			break
		}
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
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
		checkProvince(&v, x.s.regions, "region", r.GetRegion(), false)
		pageSize.CheckBounded(&v, r.GetPageSize())
		eventsListing(r).Check(&v, r.GetPageToken())
	default:
		return apierror.NotValidated(req)
	}
	return v.Err()
}

// validateEvent checks one event; field paths start with prefix ("events[3]").
func (s *Service) validateEvent(v *apierror.Violations, prefix string, ev *coordinationv1.LedgerEvent, now time.Time) {
	f := func(name string) string { return prefix + "." + name }
	if ev == nil {
		v.Add(prefix, "is empty")
		return
	}
	checkID(v, f("event_id"), ev.GetEventId(), maxEventIDLen)
	kind := ev.GetKind()
	if _, ok := coordinationv1.EventKind_name[int32(kind)]; !ok || kind == coordinationv1.EventKind_EVENT_KIND_UNSPECIFIED {
		v.Add(f("kind"), "must be one of the EVENT_KIND values (not UNSPECIFIED)")
	}
	checkProvince(v, s.regions, f("sending_region"), ev.GetSendingRegion(), true)
	checkProvince(v, s.regions, f("receiving_region"), ev.GetReceivingRegion(), true)
	if ev.GetSendingRegion() != "" && ev.GetSendingRegion() == ev.GetReceivingRegion() {
		v.Add(f("receiving_region"), "must differ from the sending region")
	}
	checkProvince(v, s.regions, f("reporter_region"), ev.GetReporterRegion(), true)
	if kind != coordinationv1.EventKind_EVENT_KIND_UNSPECIFIED && ev.GetReporterRegion() != "" {
		want, side := ev.GetReceivingRegion(), "receiving"
		if sendingSide(kind) {
			want, side = ev.GetSendingRegion(), "sending"
		}
		if ev.GetReporterRegion() != want {
			v.Add(f("reporter_region"), fmt.Sprintf("%s is reported by the %s province (%s), not %s",
				kindWord(kind), side, want, ev.GetReporterRegion()))
		}
	}
	if checkID(v, f("worker_id"), ev.GetWorkerId(), maxIDLen) {
		if privacy.LooksLikeIDNumber(ev.GetWorkerId()) {
			// The value itself is never repeated: it may be personal data.
			v.Add(f("worker_id"), "must be the opaque worker id, not a resident identity number")
		}
	}
	switch {
	case ev.GetBatchId() != "":
		checkID(v, f("batch_id"), ev.GetBatchId(), maxIDLen)
	case needsBatch(kind):
		v.Add(f("batch_id"), fmt.Sprintf("is required for %s: reconciliation is per transport batch", kindWord(kind)))
	}
	if len(ev.GetVacancy()) > maxEventIDLen {
		v.Add(f("vacancy"), fmt.Sprintf("at most %d characters", maxEventIDLen))
	}
	if len(ev.GetDetail()) > maxTextLen {
		v.Add(f("detail"), fmt.Sprintf("at most %d bytes", maxTextLen))
	}
	switch ts := ev.GetOccurTime(); {
	case ts == nil:
		v.Add(f("occur_time"), "is required")
	case ts.CheckValid() != nil:
		v.Add(f("occur_time"), "is not a valid timestamp")
	default:
		t := ts.AsTime()
		if t.Before(earliestOccur) || !t.Before(latestOccur) {
			v.Add(f("occur_time"), "must be between 2000 and 2200")
		} else if t.After(now.Add(maxFutureSkew)) {
			v.Add(f("occur_time"), "is more than a day in the future")
		}
	}
	if kind == coordinationv1.EventKind_EVENT_KIND_EMPLOYMENT_CHECKPOINT {
		if ev.GetMonths() < 1 || ev.GetMonths() > 120 {
			v.Add(f("months"), "must be 1 to 120 whole months since onboarding")
		}
	} else if ev.GetMonths() != 0 || ev.GetStillEmployed() {
		v.Add(f("months"), "months and still_employed are only for EMPLOYMENT_CHECKPOINT events")
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
		v.Add(field, fmt.Sprintf("at most %d characters", max))
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' || c == '/' {
			v.Add(field, "only printable ASCII characters without spaces or '/'")
			return false
		}
	}
	return true
}

func kindWord(k coordinationv1.EventKind) string {
	return strings.ToLower(strings.TrimPrefix(k.String(), "EVENT_KIND_"))
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
// duplicate (counted in `duplicates`, changes nothing). An event refused (see refuseEvent) is
// listed in the response's refusals with its index and reason, and the others are recorded: one
// bad event never holds back the facts reported with it. An event_id recorded with different
// content is refused with reason EVENT_ID_REUSED (INVALID_ARGUMENT, not ALREADY_EXISTS: a retry
// never gets it, since a retry is a duplicate, so it always means a reporter bug, and clients
// tend to read ALREADY_EXISTS as "done", which would drop the second fact silently).
func (x *ledgerServer) ReportEvents(ctx context.Context, req *coordinationv1.ReportEventsRequest) (*coordinationv1.ReportEventsResponse, error) {
	return x.s.report(req)
}

func (s *Service) report(req *coordinationv1.ReportEventsRequest) (*coordinationv1.ReportEventsResponse, error) {
	const method = coordinationv1.LedgerService_ReportEvents_FullMethodName
	resp := &coordinationv1.ReportEventsResponse{}
	now := s.cfg.Now()
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if ok, err := store.Recall(tx, method, req, resp); err != nil || ok {
			return err
		}
		resp.Recorded, resp.Duplicates, resp.Refusals = 0, 0, nil
		ing := &ingest{s: s, tx: tx, now: now, touched: map[string]bool{}, batches: map[string]regions.Pairing{}}
		for i, ev := range req.GetEvents() {
			prefix := fmt.Sprintf("events[%d]", i)
			dup, err := ing.check(prefix, ev)
			if err == nil && !dup {
				dup, err = ing.add(prefix, ev)
			}
			if err != nil {
				r, ok := apierror.Refusal(i, ev.GetEventId(), prefix+".", err)
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
			}
		}
		if err := ing.reconcileTouched(); err != nil {
			return err
		}
		return store.Remember(tx, s.cfg.Now(), method, req, resp)
	})
	if err != nil {
		return nil, err
	}
	if resp.GetRecorded() > 0 {
		s.wakeTimer()
	}
	return resp, nil
}

// ingest is one report's write transaction.
type ingest struct {
	s       *Service
	tx      *bbolt.Tx
	now     time.Time
	touched map[string]bool
	// batches are the regions of batches seen in this report.
	batches map[string]regions.Pairing
}

// withoutOutputFields returns ev without its output-only fields, for comparing content.
func withoutOutputFields(ev *coordinationv1.LedgerEvent) *coordinationv1.LedgerEvent {
	c := proto.Clone(ev).(*coordinationv1.LedgerEvent)
	c.RecordTime = nil
	c.ReporterRole = commonv1.RegionRole_REGION_ROLE_UNSPECIFIED
	return c
}

// check validates ev on its own (field by field, then against the ledger) and reports whether
// it is a duplicate of a recorded event. The error is the event's refusal:
//   - INVALID_ARGUMENT with the field violations (paths start with prefix, "events[3]");
//   - EVENT_ID_REUSED: the event id was recorded with other content;
//   - BATCH_REGIONS_DIFFER: the batch goes between other provinces in the ledger;
//   - NOT_PAIRED: the two provinces are not paired in the registry, and the batch is not one the
//     ledger already has from them (facts about a trip that began while they were paired are
//     still taken after the pairing ends).
func (g *ingest) check(prefix string, ev *coordinationv1.LedgerEvent) (dup bool, err error) {
	var v apierror.Violations
	g.s.validateEvent(&v, prefix, ev, g.now)
	if err := v.Err(); err != nil {
		return false, err
	}
	ids := g.tx.Bucket(store.BucketLedgerEventIDs)
	if seqKey := ids.Get([]byte(ev.GetEventId())); seqKey != nil {
		old := &coordinationv1.LedgerEvent{}
		if ok, err := store.GetProto(g.tx.Bucket(store.BucketLedgerEvents), seqKey, old); err != nil {
			return false, err
		} else if !ok {
			return false, fmt.Errorf("ledger index names event %d, which is missing", store.KeyUint64(seqKey))
		}
		if proto.Equal(withoutOutputFields(old), withoutOutputFields(ev)) {
			return true, nil
		}
		var v apierror.Violations
		v.Add(prefix+".event_id", fmt.Sprintf("event %s was recorded with different content; a new fact needs a new event id", ev.GetEventId()))
		return false, &conflictError{
			info:       apierror.New(apierror.ErrInvalidArgument, commonv1.ErrorReason_ERROR_REASON_EVENT_ID_REUSED, "event id reused with different content").WithMetadata("event_id", ev.GetEventId()),
			violations: v.Err(),
		}
	}
	pair := regions.Pairing{Receiving: ev.GetReceivingRegion(), Sending: ev.GetSendingRegion()}
	known := false // the batch is in the ledger already, between these provinces
	if batch := ev.GetBatchId(); batch != "" {
		have, ok := g.batches[batch]
		if !ok {
			rec := &coordinationv1.BatchReconciliation{}
			if found, err := store.GetProto(g.tx.Bucket(store.BucketLedgerBatches), []byte(batch), rec); err != nil {
				return false, err
			} else if found {
				have, ok = regions.Pairing{Receiving: rec.GetReceivingRegion(), Sending: rec.GetSendingRegion()}, true
			}
		}
		if ok && have != pair {
			var v apierror.Violations
			v.Add(prefix+".batch_id", fmt.Sprintf("batch %s goes from %s to %s in the ledger; this event says from %s to %s",
				batch, have.Sending, have.Receiving, pair.Sending, pair.Receiving))
			return false, &conflictError{
				info:       apierror.New(apierror.ErrInvalidArgument, commonv1.ErrorReason_ERROR_REASON_BATCH_REGIONS_DIFFER, "batch has other regions").WithMetadata("batch_id", batch),
				violations: v.Err(),
			}
		}
		known = ok
	}
	if !known && g.tx.Bucket(store.BucketPairings).Get(pairingKeyOf(pair)) == nil {
		return false, apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_NOT_PAIRED, "%s and %s are not paired in the registry: the ledger takes events of registered pairings only",
			pair.Receiving, pair.Sending)
	}
	return false, nil
}

// add records ev, which check found new and acceptable.
func (g *ingest) add(prefix string, ev *coordinationv1.LedgerEvent) (dup bool, err error) {
	ids := g.tx.Bucket(store.BucketLedgerEventIDs)
	events := g.tx.Bucket(store.BucketLedgerEvents)
	if ids.Get([]byte(ev.GetEventId())) != nil {
		// The same id earlier in this report: check again against the recorded one.
		return g.check(prefix, ev)
	}
	pair := regions.Pairing{Receiving: ev.GetReceivingRegion(), Sending: ev.GetSendingRegion()}
	if batch := ev.GetBatchId(); batch != "" {
		g.batches[batch] = pair
	}

	rec := withoutOutputFields(ev)
	rec.RecordTime = timestamppb.New(g.now)
	rec.ReporterRole = reporterRole(ev.GetKind())
	seq, err := store.NextSeq(events)
	if err != nil {
		return false, err
	}
	if err := store.PutProto(events, store.Uint64Key(seq), rec); err != nil {
		return false, err
	}
	if err := ids.Put([]byte(ev.GetEventId()), store.Uint64Key(seq)); err != nil {
		return false, err
	}
	if err := putEmpty(g.tx.Bucket(store.BucketLedgerByWorker), idKey(ev.GetWorkerId(), seq)); err != nil {
		return false, err
	}
	if batch := ev.GetBatchId(); batch != "" {
		if err := putEmpty(g.tx.Bucket(store.BucketLedgerByBatch), idKey(batch, seq)); err != nil {
			return false, err
		}
		g.touched[batch] = true
	}
	occur := ev.GetOccurTime().AsTime()
	if cat := category(ev); cat != 0 {
		if err := putEmpty(g.tx.Bucket(store.BucketLedgerByPairing), pairingKey(pair.Receiving, pair.Sending, cat, occur, ev.GetWorkerId())); err != nil {
			return false, err
		}
	}
	if ev.GetRegisteredPoor() {
		var k []byte
		switch ev.GetKind() {
		case coordinationv1.EventKind_EVENT_KIND_DEPARTED:
			k = assessmentPrefix(pair.Sending, cstYear(occur), catDeparted)
		case coordinationv1.EventKind_EVENT_KIND_ONBOARDED:
			k = assessmentPrefix(pair.Receiving, cstYear(occur), catOnboarded)
		}
		if k != nil {
			if err := putEmpty(g.tx.Bucket(store.BucketLedgerAssessment), append(k, ev.GetWorkerId()...)); err != nil {
				return false, err
			}
		}
	}
	return false, nil
}

// reconcileTouched reconciles every batch the report added events to, in batch order.
func (g *ingest) reconcileTouched() error {
	batches := make([]string, 0, len(g.touched))
	for b := range g.touched {
		batches = append(batches, b)
	}
	sort.Strings(batches)
	for _, b := range batches {
		if err := g.s.reconcileBatch(g.tx, b, g.now); err != nil {
			return err
		}
	}
	return nil
}

// category is the pairing-summary category an event counts in, or 0.
func category(ev *coordinationv1.LedgerEvent) byte {
	switch ev.GetKind() {
	case coordinationv1.EventKind_EVENT_KIND_DEPARTED:
		return catDeparted
	case coordinationv1.EventKind_EVENT_KIND_ARRIVED:
		return catArrived
	case coordinationv1.EventKind_EVENT_KIND_NO_SHOW:
		return catNoShow
	case coordinationv1.EventKind_EVENT_KIND_ONBOARDED:
		return catOnboarded
	case coordinationv1.EventKind_EVENT_KIND_EMPLOYMENT_CHECKPOINT:
		if !ev.GetStillEmployed() {
			return 0
		}
		switch ev.GetMonths() {
		case 3:
			return catEmployed3
		case 6:
			return catEmployed6
		}
	case coordinationv1.EventKind_EVENT_KIND_LEFT_JOB:
		return catLeftJob
	case coordinationv1.EventKind_EVENT_KIND_RETURNED_HOME:
		return catReturnedHome
	}
	return 0
}

// ListEvents lists recorded events in the order recorded, with filters.
func (x *ledgerServer) ListEvents(ctx context.Context, req *coordinationv1.ListEventsRequest) (*coordinationv1.ListEventsResponse, error) {
	listing := eventsListing(req)
	tok, err := listing.Decode(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	var after uint64
	if tok != nil {
		after = store.KeyUint64(tok)
	}
	n := pageSize.Of(req.GetPageSize())
	resp := &coordinationv1.ListEventsResponse{}
	match := func(ev *coordinationv1.LedgerEvent) bool {
		if req.GetWorkerId() != "" && ev.GetWorkerId() != req.GetWorkerId() {
			return false
		}
		if req.GetBatchId() != "" && ev.GetBatchId() != req.GetBatchId() {
			return false
		}
		if req.GetKind() != coordinationv1.EventKind_EVENT_KIND_UNSPECIFIED && ev.GetKind() != req.GetKind() {
			return false
		}
		if r := req.GetRegion(); r != "" && ev.GetSendingRegion() != r && ev.GetReceivingRegion() != r {
			return false
		}
		return true
	}
	err = x.s.db.View(func(tx *bbolt.Tx) error {
		events := tx.Bucket(store.BucketLedgerEvents)
		// next returns the next candidate sequence number after `after`, or false at the end.
		var next func() (uint64, bool)
		var index *bbolt.Bucket
		var prefix []byte
		switch {
		case req.GetWorkerId() != "":
			index, prefix = tx.Bucket(store.BucketLedgerByWorker), idPrefix(req.GetWorkerId())
		case req.GetBatchId() != "":
			index, prefix = tx.Bucket(store.BucketLedgerByBatch), idPrefix(req.GetBatchId())
		}
		if index != nil {
			c := index.Cursor()
			k, _ := c.Seek(idKey(string(prefix[:len(prefix)-1]), after+1))
			next = func() (uint64, bool) {
				if k == nil || len(k) != len(prefix)+8 || string(k[:len(prefix)]) != string(prefix) {
					return 0, false
				}
				seq := store.KeyUint64(k[len(prefix):])
				k, _ = c.Next()
				return seq, true
			}
		} else {
			c := events.Cursor()
			k, _ := c.Seek(store.Uint64Key(after + 1))
			next = func() (uint64, bool) {
				if k == nil {
					return 0, false
				}
				seq := store.KeyUint64(k)
				k, _ = c.Next()
				return seq, true
			}
		}
		for {
			seq, ok := next()
			if !ok {
				return nil
			}
			if len(resp.Events) == n {
				resp.NextPageToken = listing.Token(store.Uint64Key(after))
				return nil
			}
			ev := &coordinationv1.LedgerEvent{}
			if found, err := store.GetProto(events, store.Uint64Key(seq), ev); err != nil {
				return err
			} else if !found {
				return fmt.Errorf("ledger index names event %d, which is missing", seq)
			}
			after = seq
			if match(ev) {
				// A detail recorded before the privacy guard refused personal data is masked.
				ev.Detail = privacy.Mask(ev.GetDetail())
				resp.Events = append(resp.Events, ev)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

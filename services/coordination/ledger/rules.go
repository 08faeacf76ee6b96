package ledger

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/regions"
)

// The ledger's rules: plain functions of messages, without storage.

// SendingSide reports whether events of kind k are reported by the sending province.
func SendingSide(k coordinationv1.EventKind) bool {
	return k == coordinationv1.EventKind_EVENT_KIND_DEPARTED || k == coordinationv1.EventKind_EVENT_KIND_RETURNED_HOME
}

// NeedsBatch reports whether events of kind k must name their batch: reconciliation is per batch.
func NeedsBatch(k coordinationv1.EventKind) bool {
	switch k {
	case coordinationv1.EventKind_EVENT_KIND_DEPARTED, coordinationv1.EventKind_EVENT_KIND_ARRIVED,
		coordinationv1.EventKind_EVENT_KIND_NO_SHOW, coordinationv1.EventKind_EVENT_KIND_ONBOARDED:
		return true
	}
	return false
}

func reporterRole(k coordinationv1.EventKind) commonv1.RegionRole {
	if SendingSide(k) {
		return commonv1.RegionRole_REGION_ROLE_SENDING
	}
	return commonv1.RegionRole_REGION_ROLE_RECEIVING
}

func kindWord(k coordinationv1.EventKind) string {
	return strings.ToLower(strings.TrimPrefix(k.String(), "EVENT_KIND_"))
}

func pairingOf(ev *coordinationv1.LedgerEvent) regions.Pairing {
	return regions.Pairing{Receiving: ev.GetReceivingRegion(), Sending: ev.GetSendingRegion()}
}

// withoutOutputFields returns ev without its output-only fields, for comparing content.
func withoutOutputFields(ev *coordinationv1.LedgerEvent) *coordinationv1.LedgerEvent {
	c := proto.Clone(ev).(*coordinationv1.LedgerEvent)
	c.RecordTime = nil
	c.ReporterRole = commonv1.RegionRole_REGION_ROLE_UNSPECIFIED
	return c
}

// sameFact reports whether a reported event is the recorded one again (a duplicate).
func sameFact(recorded, reported *coordinationv1.LedgerEvent) bool {
	return proto.Equal(withoutOutputFields(recorded), withoutOutputFields(reported))
}

// record is the event as the ledger keeps it when it is recorded at now.
func record(ev *coordinationv1.LedgerEvent, now time.Time) *coordinationv1.LedgerEvent {
	rec := withoutOutputFields(ev)
	rec.RecordTime = timestamppb.New(now)
	rec.ReporterRole = reporterRole(ev.GetKind())
	return rec
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
		cp := ev.GetEmploymentCheckpoint()
		if !cp.GetStillEmployed() {
			return 0
		}
		switch cp.GetMonths() {
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

// assessmentKeyOf is the assessment index key of ev, or nil: a registered-poor worker departing
// counts for the sending province, onboarded for the receiving one, in the year (China time) of
// the event.
func assessmentKeyOf(ev *coordinationv1.LedgerEvent) []byte {
	if !ev.GetRegisteredPoor() {
		return nil
	}
	year := civil.Year(ev.GetOccurTime().AsTime())
	switch ev.GetKind() {
	case coordinationv1.EventKind_EVENT_KIND_DEPARTED:
		return assessmentKey(ev.GetSendingRegion(), year, catDeparted, ev.GetWorkerId())
	case coordinationv1.EventKind_EVENT_KIND_ONBOARDED:
		return assessmentKey(ev.GetReceivingRegion(), year, catOnboarded, ev.GetWorkerId())
	}
	return nil
}

// eventMatches reports whether ev passes the filters of a ListEvents request.
func eventMatches(req *coordinationv1.ListEventsRequest, ev *coordinationv1.LedgerEvent) bool {
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
	at := ev.GetOccurTime().AsTime()
	if from := req.GetOccurTimeFrom(); from != nil && at.Before(from.AsTime()) {
		return false
	}
	if before := req.GetOccurTimeBefore(); before != nil && !at.Before(before.AsTime()) {
		return false
	}
	return true
}

// Reconciliation per batch. For the sets of distinct workers of one batch in the ledger —
// D departed, A arrived, N no-show, O onboarded — and its grace deadline (earliest departure +
// grace period):
//
//	departed    = |D|
//	arrived     = |A|
//	no_show     = |N \ A|            (a later arrival overrides a no-show)
//	awaiting    = |D \ A \ N|        before the deadline, else 0
//	unaccounted = |D \ A \ N|        from the deadline on, else 0
//	unexpected  = |A \ D|
//	unverified  = |O \ A|
//
// and one discrepancy per worker: UNACCOUNTED (D \ A \ N, from the deadline on), NO_SHOW
// (D ∩ N \ A), UNEXPECTED (A \ D), UNVERIFIED (O \ A). The sets only grow and the deadline only
// moves earlier (an earlier departure reported late), so each discrepancy opens at most once
// and closes at most once: when the missing event arrives.

// batchFacts are the distinct workers of one batch by kind, each with its earliest time.
type batchFacts struct {
	pairing                              regions.Pairing
	departed, arrived, noShow, onboarded map[string]time.Time
}

func newBatchFacts() *batchFacts {
	return &batchFacts{
		departed: map[string]time.Time{}, arrived: map[string]time.Time{},
		noShow: map[string]time.Time{}, onboarded: map[string]time.Time{},
	}
}

// add counts ev among the facts.
func (f *batchFacts) add(ev *coordinationv1.LedgerEvent) {
	f.pairing = pairingOf(ev)
	var m map[string]time.Time
	switch ev.GetKind() {
	case coordinationv1.EventKind_EVENT_KIND_DEPARTED:
		m = f.departed
	case coordinationv1.EventKind_EVENT_KIND_ARRIVED:
		m = f.arrived
	case coordinationv1.EventKind_EVENT_KIND_NO_SHOW:
		m = f.noShow
	case coordinationv1.EventKind_EVENT_KIND_ONBOARDED:
		m = f.onboarded
	default:
		return
	}
	t := ev.GetOccurTime().AsTime()
	if old, ok := m[ev.GetWorkerId()]; !ok || t.Before(old) {
		m[ev.GetWorkerId()] = t
	}
}

// wantedDiscrepancy is a discrepancy the batch's facts call for.
type wantedDiscrepancy struct {
	kind   coordinationv1.DiscrepancyKind
	worker string
	detail string
}

// reconcile is the reconciliation of batch from its facts at time now, with the grace period
// grace, and the discrepancies it calls for (in no particular order). The grace deadline is zero
// when no departure is known.
func reconcile(batch string, f *batchFacts, grace time.Duration, now time.Time) (*coordinationv1.BatchReconciliation, time.Time, []wantedDiscrepancy) {
	p := f.pairing
	rec := &coordinationv1.BatchReconciliation{
		BatchId: batch, SendingRegion: p.Sending, ReceivingRegion: p.Receiving,
		Departed: int64(len(f.departed)), Arrived: int64(len(f.arrived)),
	}
	var deadline time.Time
	if len(f.departed) > 0 {
		var first time.Time
		for _, t := range f.departed {
			if first.IsZero() || t.Before(first) {
				first = t
			}
		}
		deadline = first.Add(grace)
		rec.DepartureTime, rec.GraceDeadline = timestamppb.New(first), timestamppb.New(deadline)
	}
	past := !deadline.IsZero() && !now.Before(deadline)

	var want []wantedDiscrepancy
	for w, t := range f.departed {
		_, arrived := f.arrived[w]
		_, noShow := f.noShow[w]
		switch {
		case arrived:
		case noShow:
			want = append(want, wantedDiscrepancy{coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_NO_SHOW, w,
				fmt.Sprintf("departed %s according to %s; reported as a no-show by %s", civil.FormatTime(t), p.Sending, p.Receiving)})
		case past:
			rec.Unaccounted++
			want = append(want, wantedDiscrepancy{coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_UNACCOUNTED, w,
				fmt.Sprintf("departed %s according to %s; not confirmed arrived nor no-show by %s by the grace deadline %s",
					civil.FormatTime(t), p.Sending, p.Receiving, civil.FormatTime(deadline))})
		default:
			rec.Awaiting++
		}
	}
	for w := range f.noShow {
		if _, arrived := f.arrived[w]; !arrived {
			rec.NoShow++
		}
	}
	for w, t := range f.arrived {
		if _, departed := f.departed[w]; !departed {
			rec.Unexpected++
			want = append(want, wantedDiscrepancy{coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_UNEXPECTED, w,
				fmt.Sprintf("confirmed arrived %s by %s; no departure reported by %s", civil.FormatTime(t), p.Receiving, p.Sending)})
		}
	}
	for w, t := range f.onboarded {
		if _, arrived := f.arrived[w]; !arrived {
			rec.Unverified++
			want = append(want, wantedDiscrepancy{coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_UNVERIFIED, w,
				fmt.Sprintf("onboarded %s in %s; no arrival confirmed", civil.FormatTime(t), p.Receiving)})
		}
	}
	return rec, deadline, want
}

// discrepancyChange is a discrepancy to store under key, with a new revision. A discrepancy that
// opens for the first time has no name yet.
type discrepancyChange struct {
	key string
	d   *coordinationv1.Discrepancy
}

// planDiscrepancies returns the changes that make the stored discrepancies of rec's batch (by
// key) match want, in key order ((worker, kind) order): the new ones open, the open ones no
// longer wanted close, at time now.
func planDiscrepancies(rec *coordinationv1.BatchReconciliation, stored map[string]*coordinationv1.Discrepancy, want []wantedDiscrepancy, now time.Time) []discrepancyChange {
	wanted := map[string]*wantedDiscrepancy{}
	keys := make([]string, 0, len(stored)+len(want))
	for k := range stored {
		keys = append(keys, k)
	}
	for i := range want {
		w := &want[i]
		k := string(discrepancyKey(rec.GetBatchId(), w.worker, byte(w.kind)))
		wanted[k] = w
		if _, ok := stored[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	ts := timestamppb.New(now)
	var out []discrepancyChange
	for _, k := range keys {
		old, w := stored[k], wanted[k]
		var d *coordinationv1.Discrepancy
		switch {
		case old == nil:
			d = &coordinationv1.Discrepancy{
				Kind:            w.kind,
				State:           coordinationv1.DiscrepancyState_DISCREPANCY_STATE_OPEN,
				WorkerId:        w.worker,
				BatchId:         rec.GetBatchId(),
				SendingRegion:   rec.GetSendingRegion(),
				ReceivingRegion: rec.GetReceivingRegion(),
				Detail:          w.detail,
				OpenTime:        ts,
			}
		case w == nil && old.GetState() == coordinationv1.DiscrepancyState_DISCREPANCY_STATE_OPEN:
			d = proto.Clone(old).(*coordinationv1.Discrepancy)
			d.State = coordinationv1.DiscrepancyState_DISCREPANCY_STATE_CLOSED
			d.CloseTime = ts
		case w != nil && old.GetState() != coordinationv1.DiscrepancyState_DISCREPANCY_STATE_OPEN:
			// Not reachable while the ledger only grows; kept so that the stored state always
			// follows the facts.
			d = proto.Clone(old).(*coordinationv1.Discrepancy)
			d.State = coordinationv1.DiscrepancyState_DISCREPANCY_STATE_OPEN
			d.Detail, d.OpenTime, d.CloseTime = w.detail, ts, nil
		default:
			continue
		}
		out = append(out, discrepancyChange{key: k, d: d})
	}
	return out
}

// pairingSummary is the summary of pairing p from its counts per category and its open
// discrepancies.
func pairingSummary(p regions.Pairing, count map[byte]int64, open map[coordinationv1.DiscrepancyKind]int64) *coordinationv1.PairingSummary {
	return &coordinationv1.PairingSummary{
		ReceivingRegion:        p.Receiving,
		SendingRegion:          p.Sending,
		Departed:               count[catDeparted],
		Arrived:                count[catArrived],
		NoShow:                 count[catNoShow],
		Onboarded:              count[catOnboarded],
		EmployedThreeMonths:    count[catEmployed3],
		EmployedSixMonths:      count[catEmployed6],
		LeftJob:                count[catLeftJob],
		ReturnedHome:           count[catReturnedHome],
		OpenDiscrepancies:      open[0],
		OpenUnaccounted:        open[coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_UNACCOUNTED],
		OpenOverdueCheckpoints: open[coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_OVERDUE_CHECKPOINT],
		OpenLateIncidents:      open[coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_LATE_INCIDENT],
		OpenAbandoned:          open[coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_ABANDONED],
	}
}

// summaryCategories are the categories a pairing summary counts.
var summaryCategories = []byte{catDeparted, catArrived, catNoShow, catOnboarded, catEmployed3, catEmployed6, catLeftJob, catReturnedHome}

// discrepancyMatches reports whether d passes the filters of a ListDiscrepancies request (the
// batch filter is the range listed).
func discrepancyMatches(req *coordinationv1.ListDiscrepanciesRequest, d *coordinationv1.Discrepancy) bool {
	if !req.GetIncludeClosed() && d.GetState() != coordinationv1.DiscrepancyState_DISCREPANCY_STATE_OPEN {
		return false
	}
	if req.GetKind() != coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_UNSPECIFIED && d.GetKind() != req.GetKind() {
		return false
	}
	return involves(d, req.GetRegion())
}

// involves reports whether discrepancy d involves province region on either side ("" for any
// province): the region filter of ListDiscrepancies and of GetDiscrepancy.
func involves(d *coordinationv1.Discrepancy, region string) bool {
	return region == "" || d.GetSendingRegion() == region || d.GetReceivingRegion() == region
}

// The name of a discrepancy is `discrepancies/{number}`, its number given when it first opens.
const discrepancyNamePrefix = "discrepancies/"

// discrepancyName is the resource name of discrepancy number n.
func discrepancyName(n uint64) string { return discrepancyNamePrefix + strconv.FormatUint(n, 10) }

// parseDiscrepancyName returns the number of a discrepancy name, or why name is not one.
func parseDiscrepancyName(name string) (uint64, string) {
	s, ok := strings.CutPrefix(name, discrepancyNamePrefix)
	if name == "" {
		return 0, "is required: discrepancies/{number}"
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if !ok || err != nil || n == 0 || s != strconv.FormatUint(n, 10) {
		return 0, fmt.Sprintf("must be discrepancies/{number}, the number a decimal integer from 1 (such as discrepancies/12), got %q", name)
	}
	return n, ""
}

// batchMatches reports whether rec passes the filters of a ListBatchReconciliations request.
func batchMatches(req *coordinationv1.ListBatchReconciliationsRequest, rec *coordinationv1.BatchReconciliation) bool {
	if r := req.GetReceivingRegion(); r != "" && rec.GetReceivingRegion() != r {
		return false
	}
	if r := req.GetSendingRegion(); r != "" && rec.GetSendingRegion() != r {
		return false
	}
	return true
}

// summaryPeriod is the period [from, until) of a ListPairingSummaries request at time now: from
// 00:00 China time of period_start (the ledger's earliest time when unset) to 00:00 of the day
// after period_end (after today when unset), both days included.
func summaryPeriod(req *coordinationv1.ListPairingSummariesRequest, now time.Time) (from, until time.Time) {
	from = EarliestOccur
	if d := req.GetPeriodStart(); d != nil {
		from = civil.Start(d)
	}
	end := req.GetPeriodEnd()
	if end == nil {
		end = civil.Today(now)
	}
	return from, civil.Start(civil.AddDays(end, 1))
}

package eligibility

import (
	"sort"
	"strconv"
	"time"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
)

// Evaluate returns the entries of one worker under r from the worker's events, as of asOf: only
// events recorded at or before asOf and occurred before it count. A trip is the events of one
// batch with a DEPARTED event (the earliest, when reported twice); its qualifying fact is that
// DEPARTED event, or its earliest EMPLOYMENT_CHECKPOINT still employed at min_months_employed or
// more. A trip qualifies when the DEPARTED event says registered-poor (if the rule asks), goes
// out of the sending province (if asked), and has no disqualifying event (at or before the fact,
// if the rule says so). Per window (the calendar year of the fact, or ever) the earliest
// qualifying fact is the worker's one entry. Entries come in fact order.
func Evaluate(r *Rule, evs []*coordinationv1.LedgerEvent, asOf time.Time) []*coordinationv1.EligibleWorker {
	trips := map[string][]*coordinationv1.LedgerEvent{}
	for _, ev := range evs {
		if ev.GetBatchId() == "" || ev.GetRecordTime().AsTime().After(asOf) || !ev.GetOccurTime().AsTime().Before(asOf) {
			continue
		}
		trips[ev.GetBatchId()] = append(trips[ev.GetBatchId()], ev)
	}
	best := map[string]*coordinationv1.LedgerEvent{} // window -> fact
	entry := map[*coordinationv1.LedgerEvent]*coordinationv1.EligibleWorker{}
	for batch, trip := range trips {
		dep := earliest(trip, func(ev *coordinationv1.LedgerEvent) bool {
			return ev.GetKind() == coordinationv1.EventKind_EVENT_KIND_DEPARTED
		})
		if dep == nil || (r.RegisteredPoor && !dep.GetRegisteredPoor()) ||
			(r.OutOfProvince && dep.GetReceivingRegion() == dep.GetSendingRegion()) {
			continue
		}
		fact := dep
		if r.fact == coordinationv1.EventKind_EVENT_KIND_EMPLOYMENT_CHECKPOINT {
			fact = earliest(trip, func(ev *coordinationv1.LedgerEvent) bool {
				cp := ev.GetEmploymentCheckpoint()
				return ev.GetKind() == r.fact && cp.GetStillEmployed() && cp.GetMonths() >= r.MinMonthsEmployed
			})
			if fact == nil {
				continue
			}
		}
		if disqualified(r, trip, fact) {
			continue
		}
		w := window(r, fact)
		if b := best[w]; b == nil || before(fact, b) {
			best[w] = fact
		}
		vacancy := ""
		for _, ev := range trip {
			if ev.GetVacancy() != "" {
				vacancy = ev.GetVacancy()
				break
			}
		}
		e := &coordinationv1.EligibleWorker{
			WorkerId: fact.GetWorkerId(), Rule: r.ID, FactEventId: fact.GetEventId(),
			FactDate: civil.Today(fact.GetOccurTime().AsTime()), BatchId: batch,
			ReceivingRegion: dep.GetReceivingRegion(), Vacancy: vacancy,
			DepartedEventId: dep.GetEventId(), DepartedDate: civil.Today(dep.GetOccurTime().AsTime()),
			RegisteredPoor: dep.GetRegisteredPoor(),
		}
		if r.fact == coordinationv1.EventKind_EVENT_KIND_EMPLOYMENT_CHECKPOINT {
			e.MonthsEmployed = fact.GetEmploymentCheckpoint().GetMonths()
		}
		entry[fact] = e
	}
	facts := make([]*coordinationv1.LedgerEvent, 0, len(best))
	for _, f := range best {
		facts = append(facts, f)
	}
	sort.Slice(facts, func(i, j int) bool { return before(facts[i], facts[j]) })
	out := make([]*coordinationv1.EligibleWorker, len(facts))
	for i, f := range facts {
		out[i] = entry[f]
	}
	return out
}

// InPeriod keeps the entries whose fact date is in [start, end).
func InPeriod(es []*coordinationv1.EligibleWorker, start, end time.Time) []*coordinationv1.EligibleWorker {
	var out []*coordinationv1.EligibleWorker
	for _, e := range es {
		if t := civil.Start(e.GetFactDate()); !t.Before(start) && t.Before(end) {
			out = append(out, e)
		}
	}
	return out
}

func disqualified(r *Rule, trip []*coordinationv1.LedgerEvent, fact *coordinationv1.LedgerEvent) bool {
	for _, ev := range trip {
		if r.disq[ev.GetKind()] && (!r.DisqualifyOnlyBeforeFact || !ev.GetOccurTime().AsTime().After(fact.GetOccurTime().AsTime())) {
			return true
		}
	}
	return false
}

// window is the once_per window of a fact.
func window(r *Rule, fact *coordinationv1.LedgerEvent) string {
	if r.OncePer == OncePerEver {
		return ""
	}
	return strconv.Itoa(civil.Year(fact.GetOccurTime().AsTime()))
}

// earliest is the event of evs that ok accepts with the earliest occur time (then event id).
func earliest(evs []*coordinationv1.LedgerEvent, ok func(*coordinationv1.LedgerEvent) bool) *coordinationv1.LedgerEvent {
	var best *coordinationv1.LedgerEvent
	for _, ev := range evs {
		if ok(ev) && (best == nil || before(ev, best)) {
			best = ev
		}
	}
	return best
}

// before orders events by occur time, then event id.
func before(a, b *coordinationv1.LedgerEvent) bool {
	ta, tb := a.GetOccurTime().AsTime(), b.GetOccurTime().AsTime()
	if !ta.Equal(tb) {
		return ta.Before(tb)
	}
	return a.GetEventId() < b.GetEventId()
}

// lookback is the earliest departure that can give an entry in a period starting at start: the
// start of the fact's window for a DEPARTED fact, 121 months before for a checkpoint (months
// are at most 120), the ledger's earliest time for once_per ever (an earlier fact takes the
// worker's one entry).
func lookback(r *Rule, start time.Time) time.Time {
	switch {
	case r.OncePer == OncePerEver:
		return time.Date(2000, 1, 1, 0, 0, 0, 0, civil.Zone)
	case r.fact == coordinationv1.EventKind_EVENT_KIND_DEPARTED:
		return time.Date(start.In(civil.Zone).Year(), 1, 1, 0, 0, 0, 0, civil.Zone)
	default:
		y := time.Date(start.In(civil.Zone).Year(), 1, 1, 0, 0, 0, 0, civil.Zone)
		return y.AddDate(0, -121, 0)
	}
}

package ledger

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/codes/workcalendar"
	"github.com/eastwest/labourlink/services/coordination/registry"
	"github.com/eastwest/labourlink/services/platform/store"
)

// Deadlines kept by the system (docs/coordination.md, "Deadlines"). Beside the grace period of
// arrival (reconcile, UNACCOUNTED), a pairing's programme agreement fixes for each worker
// onboarded on a batch:
//
//	OVERDUE_CHECKPOINT  the 3- and 6-month checkpoints (from the onboarding day) reported by the
//	                    end of the tolerance's last day; not owed when the worker left the job
//	                    or returned home before the checkpoint day. Closes when reported.
//	LATE_INCIDENT       an incident recorded after the end of the agreed working days after its
//	                    day; open from the late report for lateIncidentReview, then closed.
//	ABANDONED           a spell of absence (ABSENCE events, by first day) reaching the agreed
//	                    consecutive working days without the worker back; closes when the
//	                    worker is reported back, left the job or returned home.
//
// The worker's events of a trip are those from its onboarding on the batch to its onboarding on
// a later batch (a worker out twice). Every rule is a function of the events and the clock; the
// deadline index holds each batch's next deadline, so the timer in Run reconciles it then.

// lateIncidentReview is how long a LATE_INCIDENT discrepancy stays open.
const lateIncidentReview = 30 * 24 * time.Hour

// terms are a pairing's agreement with the defaults filled in.
type terms struct {
	grace                     time.Duration
	toleranceDays             int
	incidentDays, abandonDays int
}

func termsOf(a *coordinationv1.ProgrammeAgreement, grace time.Duration) terms {
	t := terms{grace: grace, toleranceDays: registry.DefaultCheckpointToleranceDays,
		incidentDays: registry.DefaultIncidentWorkingDays, abandonDays: registry.DefaultAbandonmentWorkingDays}
	if g := a.GetArrivalGracePeriod(); g != nil {
		t.grace = g.AsDuration()
	}
	if n := a.GetCheckpointToleranceDays(); n > 0 {
		t.toleranceDays = int(n)
	}
	if n := a.GetIncidentReportWorkingDays(); n > 0 {
		t.incidentDays = int(n)
	}
	if n := a.GetAbandonmentWorkingDays(); n > 0 {
		t.abandonDays = int(n)
	}
	return t
}

// pairingTerms reads pairing p's agreement.
func (l *Ledger) pairingTerms(tx *bbolt.Tx, p regions.Pairing) (terms, error) {
	a, err := registry.Agreement(tx, p)
	return termsOf(a, l.cfg.GracePeriod), err
}

// workerKind reports whether events of kind k concern a worker's trip after onboarding (they
// may come without a batch; the worker's batches are reconciled again).
func workerKind(k coordinationv1.EventKind) bool {
	switch k {
	case coordinationv1.EventKind_EVENT_KIND_EMPLOYMENT_CHECKPOINT, coordinationv1.EventKind_EVENT_KIND_LEFT_JOB,
		coordinationv1.EventKind_EVENT_KIND_RETURNED_HOME, coordinationv1.EventKind_EVENT_KIND_INCIDENT,
		coordinationv1.EventKind_EVENT_KIND_ABSENCE:
		return true
	}
	return false
}

// workerEvents returns all the ledger's events about worker.
func workerEvents(tx *bbolt.Tx, worker string) ([]*coordinationv1.LedgerEvent, error) {
	var out []*coordinationv1.LedgerEvent
	err := byWorker.scan(tx, store.Range{Prefix: idPrefix(worker)}, func(k []byte) (bool, error) {
		id, seq, ok := parseIDKey(k)
		if !ok || id != worker {
			return true, nil
		}
		ev, err := event(tx, seq)
		if err != nil {
			return false, err
		}
		out = append(out, ev)
		return true, nil
	})
	return out, err
}

// workerBatches returns the batches of a worker's events evs, in order.
func workerBatches(evs []*coordinationv1.LedgerEvent) []string {
	set := map[string]bool{}
	for _, ev := range evs {
		if b := ev.GetBatchId(); b != "" {
			set[b] = true
		}
	}
	out := make([]string, 0, len(set))
	for b := range set {
		out = append(out, b)
	}
	sort.Strings(out)
	return out
}

// tripDeadlines returns the discrepancies the agreement's deadlines call for on batch at now
// and the next deadline still ahead (zero if none), from the events of each worker onboarded
// on it. uncovered lists the years counted on the plain week only (workcalendar).
func tripDeadlines(tx *bbolt.Tx, batch string, f *batchFacts, t terms, cal *workcalendar.Calendar, now time.Time) (want []wantedDiscrepancy, next time.Time, uncovered bool, err error) {
	workers := make([]string, 0, len(f.onboarded))
	for w := range f.onboarded {
		workers = append(workers, w)
	}
	sort.Strings(workers)
	for _, w := range workers {
		evs, err := workerEvents(tx, w)
		if err != nil {
			return nil, time.Time{}, false, err
		}
		ws, n, unc := workerDeadlines(batch, w, f.onboarded[w], evs, t, cal, now)
		want = append(want, ws...)
		next = earliest(next, n)
		uncovered = uncovered || unc
	}
	return want, next, uncovered, nil
}

// earliest is the earlier of two times, zero meaning none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// workerDeadlines applies the deadlines to one worker onboarded on batch at onboarded, with all
// the worker's events evs (a pure function: rules_test and deadlines_test call it directly).
func workerDeadlines(batch, worker string, onboarded time.Time, evs []*coordinationv1.LedgerEvent, t terms, cal *workcalendar.Calendar, now time.Time) (want []wantedDiscrepancy, next time.Time, uncovered bool) {
	// The trip: from the onboarding here to the worker's next onboarding on another batch.
	var end time.Time
	for _, ev := range evs {
		if ev.GetKind() == coordinationv1.EventKind_EVENT_KIND_ONBOARDED && ev.GetBatchId() != batch && ev.GetOccurTime().AsTime().After(onboarded) {
			end = earliest(end, ev.GetOccurTime().AsTime())
		}
	}
	var trip []*coordinationv1.LedgerEvent
	var ended time.Time // left the job or returned home
	for _, ev := range evs {
		at := ev.GetOccurTime().AsTime()
		if at.Before(onboarded) || (!end.IsZero() && !at.Before(end)) {
			continue
		}
		trip = append(trip, ev)
		if k := ev.GetKind(); k == coordinationv1.EventKind_EVENT_KIND_LEFT_JOB || k == coordinationv1.EventKind_EVENT_KIND_RETURNED_HOME {
			ended = earliest(ended, at)
		}
	}
	add := func(kind coordinationv1.DiscrepancyKind, detail string) {
		want = append(want, wantedDiscrepancy{kind, worker, detail})
	}

	// Checkpoints.
	day := civil.Today(onboarded)
	var overdue []string
	for _, months := range []int32{3, 6} {
		dueDay := addMonths(day, months)
		if !ended.IsZero() && ended.Before(civil.Start(dueDay)) {
			continue // not owed: the trip ended before
		}
		reported := false
		for _, ev := range trip {
			if ev.GetKind() == coordinationv1.EventKind_EVENT_KIND_EMPLOYMENT_CHECKPOINT && ev.GetEmploymentCheckpoint().GetMonths() == months {
				reported = true
			}
		}
		if reported {
			continue
		}
		deadline := civil.Start(civil.AddDays(dueDay, t.toleranceDays+1))
		if now.Before(deadline) {
			next = earliest(next, deadline)
			continue
		}
		overdue = append(overdue, fmt.Sprintf("the %d-month checkpoint (due %s, tolerance %d days, so by %s)",
			months, civil.Format(dueDay), t.toleranceDays, civil.Format(civil.AddDays(dueDay, t.toleranceDays))))
	}
	if len(overdue) > 0 {
		add(coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_OVERDUE_CHECKPOINT,
			fmt.Sprintf("onboarded %s; not reported: %s", civil.Format(day), strings.Join(overdue, "; ")))
	}

	// Incidents.
	var late []string
	for _, ev := range trip {
		if ev.GetKind() != coordinationv1.EventKind_EVENT_KIND_INCIDENT {
			continue
		}
		c := cal.AddWorkingDays(ev.GetOccurTime().AsTime(), t.incidentDays)
		uncovered = uncovered || !c.Covered
		due := c.Day.AddDate(0, 0, 1) // the end of that working day
		recorded := ev.GetRecordTime().AsTime()
		if !recorded.After(due) {
			continue
		}
		closeAt := recorded.Add(lateIncidentReview)
		if !now.Before(closeAt) {
			continue
		}
		next = earliest(next, closeAt)
		late = append(late, fmt.Sprintf("incident of %s reported %s, due by the end of %s (%d working days)",
			civil.Format(civil.Today(ev.GetOccurTime().AsTime())), civil.FormatTime(recorded), civil.Format(civil.Today(c.Day)), t.incidentDays))
	}
	if len(late) > 0 {
		add(coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_LATE_INCIDENT, strings.Join(late, "; "))
	}

	// Absences, spell by spell (by first day).
	type spell struct {
		first *commonv1.Date
		back  *commonv1.Date
	}
	spells := map[string]*spell{}
	for _, ev := range trip {
		a := ev.GetAbsence()
		if ev.GetKind() != coordinationv1.EventKind_EVENT_KIND_ABSENCE || a == nil {
			continue
		}
		k := civil.Format(a.GetFirstDay())
		s := spells[k]
		if s == nil {
			s = &spell{first: a.GetFirstDay()}
			spells[k] = s
		}
		if b := a.GetBackDay(); b != nil && (s.back == nil || civil.Compare(b, s.back) < 0) {
			s.back = b
		}
	}
	keys := make([]string, 0, len(spells))
	for k := range spells {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var abandoned []string
	for _, k := range keys {
		s := spells[k]
		c := cal.NthWorkingDayFrom(civil.Start(s.first), t.abandonDays)
		uncovered = uncovered || !c.Covered
		at := c.Day.AddDate(0, 0, 1) // the end of the last working day of the spell
		switch {
		case s.back != nil && civil.Compare(s.back, civil.Today(c.Day)) <= 0:
			// Back before the spell reached abandonment.
		case s.back != nil || (!ended.IsZero() && !ended.After(now)):
			// Back at work (late), or the trip ended: closed.
		case now.Before(at):
			next = earliest(next, at)
		default:
			abandoned = append(abandoned, fmt.Sprintf("absent since %s, %d consecutive working days by the end of %s",
				civil.Format(s.first), t.abandonDays, civil.Format(civil.Today(c.Day))))
		}
	}
	if len(abandoned) > 0 {
		add(coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_ABANDONED, strings.Join(abandoned, "; "))
	}
	if uncovered {
		for i := range want {
			if want[i].kind != coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_OVERDUE_CHECKPOINT {
				want[i].detail += " (working days counted on weekends only for a year the holiday calendar does not cover)"
			}
		}
	}
	return want, next, uncovered
}

// addMonths is d plus n months, the day kept (clamped to the month's last day).
func addMonths(d *commonv1.Date, n int32) *commonv1.Date {
	y, m := d.GetYear(), d.GetMonth()+n
	y += (m - 1) / 12
	m = (m-1)%12 + 1
	last := time.Date(int(y), time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
	day := min(d.GetDay(), int32(last))
	return &commonv1.Date{Year: y, Month: m, Day: day}
}

// ReconcilePairing reconciles again every batch of pairing p (its agreement changed): the
// registry calls it in the transaction of SetPairingAgreement.
func (l *Ledger) ReconcilePairing(tx *bbolt.Tx, p regions.Pairing, now time.Time) error {
	var todo []string
	err := batches.Scan(tx, store.Range{}, func(k []byte, rec *coordinationv1.BatchReconciliation) (bool, error) {
		if rec.GetReceivingRegion() == p.Receiving && rec.GetSendingRegion() == p.Sending {
			todo = append(todo, string(k))
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, b := range todo {
		if err := l.reconcileBatch(tx, b, now, nil); err != nil {
			return err
		}
	}
	l.wakeTimer()
	return nil
}

// MigrateDeadlines (schema 8) schedules every stored batch in the deadline index at the
// ledger's earliest time, so that the first pass of the timer at start reconciles each one under
// its pairing's agreement and the deadlines of its workers' trips (checkpoints, incidents,
// absences), with the service's clock and grace period.
func MigrateDeadlines(tx *bbolt.Tx) error {
	// The migration runs before the schema's buckets are made: a file without them gets them.
	for _, name := range [][]byte{deadlines.name, batches.Name()} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	var all []string
	err := batches.Scan(tx, store.Range{}, func(k []byte, _ *coordinationv1.BatchReconciliation) (bool, error) {
		all = append(all, string(k))
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, b := range all {
		if err := deadlines.put(tx, deadlineKey(EarliestOccur, b)); err != nil {
			return err
		}
	}
	return nil
}

package coordination

import (
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"pgregory.net/rapid"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/coordination/assessment"
	"github.com/eastwest/labourlink/services/coordination/ledger"
)

// The property test: a random scenario of distinct events is reported in random order, with
// random duplicates, in random batches, while the clock moves and the deadline timer runs at
// random moments. Every figure the service gives must equal a plain count over the distinct
// events (reference below), which knows nothing of order, duplicates or timers.

var propPairings = []regions.Pairing{
	{Receiving: "440000", Sending: "520000"},
	{Receiving: "440000", Sending: "450000"},
	{Receiving: "330000", Sending: "510000"},
}

var propKinds = []coordinationv1.EventKind{departed, arrived, noShow, onboarded, checkpoint, leftJob, returned, incident}

// propBase is shortly before a new year (CST), so that assessments span two years.
var propBase = time.Date(2024, 12, 27, 0, 0, 0, 0, civil.Zone)

const propGrace = 72 * time.Hour

func genEvents(t *rapid.T) []*coordinationv1.LedgerEvent {
	nBatches := rapid.IntRange(1, 4).Draw(t, "batches")
	batchPair := make([]regions.Pairing, nBatches)
	for i := range batchPair {
		batchPair[i] = rapid.SampledFrom(propPairings).Draw(t, "batchPairing")
	}
	n := rapid.IntRange(1, 40).Draw(t, "events")
	events := make([]*coordinationv1.LedgerEvent, n)
	for i := range events {
		if i > 0 && rapid.IntRange(0, 3).Draw(t, "restate") == 0 {
			// The same fact again under another id and time (a reporter that sent it twice).
			e := proto.Clone(events[rapid.IntRange(0, i-1).Draw(t, "restated")]).(*coordinationv1.LedgerEvent)
			e.EventId = fmt.Sprintf("e%d", i)
			e.OccurTime = timestamppb.New(propTime(t, e.GetKind()))
			events[i] = e
			continue
		}
		kind := rapid.SampledFrom(propKinds).Draw(t, "kind")
		batch := ""
		pair := rapid.SampledFrom(propPairings).Draw(t, "pairing")
		if ledger.NeedsBatch(kind) || rapid.Bool().Draw(t, "withBatch") {
			b := rapid.IntRange(0, nBatches-1).Draw(t, "batch")
			batch, pair = fmt.Sprintf("%s-B%d", batchPair[b].Sending, b), batchPair[b]
		}
		at := propTime(t, kind)
		e := &coordinationv1.LedgerEvent{
			EventId:         fmt.Sprintf("e%d", i),
			Kind:            kind,
			SendingRegion:   pair.Sending,
			ReceivingRegion: pair.Receiving,
			WorkerId:        fmt.Sprintf("w%d", rapid.IntRange(0, 4).Draw(t, "worker")),
			BatchId:         batch,
			OccurTime:       timestamppb.New(at),
			RegisteredPoor:  rapid.Bool().Draw(t, "poor"),
		}
		e.ReporterRegion = e.ReceivingRegion
		if ledger.SendingSide(kind) {
			e.ReporterRegion = e.SendingRegion
		}
		if kind == checkpoint {
			e.Details = &coordinationv1.LedgerEvent_EmploymentCheckpoint{EmploymentCheckpoint: &coordinationv1.EmploymentCheckpointDetails{
				Months:        rapid.SampledFrom([]int32{1, 3, 6}).Draw(t, "months"),
				StillEmployed: rapid.Bool().Draw(t, "still"),
			}}
		}
		events[i] = e
	}
	// A checkpoint of a trip with an onboarding would have to be months after it, later than
	// the test's clock: such checkpoints are reported without their batch (as a reporter may).
	onboardedTrips := map[string]bool{}
	for _, e := range events {
		if e.GetKind() == onboarded {
			onboardedTrips[e.GetWorkerId()+"/"+e.GetBatchId()] = true
		}
	}
	for _, e := range events {
		if e.GetKind() == checkpoint && onboardedTrips[e.GetWorkerId()+"/"+e.GetBatchId()] {
			e.BatchId = ""
		}
	}
	return events
}

// propTime draws the time of an event of kind in the scenario's ten days, in the time order of
// a trip (the ledger refuses a fact out of order, services/coordination/ledger/timeorder.go):
// departures in the first two days, arrivals and no-shows in the next two, onboardings on the
// fifth day, the rest after.
func propTime(t *rapid.T, kind coordinationv1.EventKind) time.Time {
	from, days := 5, 5
	switch kind {
	case departed:
		from, days = 0, 2
	case arrived, noShow:
		from, days = 2, 2
	case onboarded:
		from, days = 4, 1
	}
	return propBase.Add(time.Duration(from*24*60+rapid.IntRange(0, days*24*60-1).Draw(t, "minute")) * time.Minute)
}

// refBatch is the reference reconciliation of one batch.
func refBatch(events []*coordinationv1.LedgerEvent, batch string, now time.Time) (counts, map[string]bool) {
	sets := map[coordinationv1.EventKind]map[string]bool{departed: {}, arrived: {}, noShow: {}, onboarded: {}}
	var first time.Time
	for _, e := range events {
		if e.GetBatchId() != batch || sets[e.GetKind()] == nil {
			continue
		}
		sets[e.GetKind()][e.GetWorkerId()] = true
		if t := e.GetOccurTime().AsTime(); e.GetKind() == departed && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	D, A, N, O := sets[departed], sets[arrived], sets[noShow], sets[onboarded]
	past := !first.IsZero() && !now.Before(first.Add(propGrace))
	var c counts
	open := map[string]bool{}
	c.Departed, c.Arrived = int64(len(D)), int64(len(A))
	for w := range N {
		if !A[w] {
			c.NoShow++
		}
	}
	for w := range D {
		switch {
		case A[w]:
		case N[w]:
			open[batch+"/"+w+"/"+noShowDisc.String()] = true
		case past:
			c.Unaccounted++
			open[batch+"/"+w+"/"+unaccounted.String()] = true
		default:
			c.Awaiting++
		}
	}
	for w := range A {
		if !D[w] {
			c.Unexpected++
			open[batch+"/"+w+"/"+unexpected.String()] = true
		}
	}
	for w := range O {
		if !A[w] {
			c.Unverified++
			open[batch+"/"+w+"/"+unverified.String()] = true
		}
	}
	return c, open
}

// refCategory says whether e counts in a pairing-summary category.
func refCategory(e *coordinationv1.LedgerEvent) string {
	switch e.GetKind() {
	case checkpoint:
		if cp := e.GetEmploymentCheckpoint(); cp.GetStillEmployed() && (cp.GetMonths() == 3 || cp.GetMonths() == 6) {
			return fmt.Sprintf("employed%d", cp.GetMonths())
		}
		return ""
	case incident:
		return ""
	}
	return e.GetKind().String()
}

func refSummary(events []*coordinationv1.LedgerEvent, p regions.Pairing, from, until time.Time) map[string]int64 {
	workers := map[string]map[string]bool{}
	for _, e := range events {
		cat := refCategory(e)
		t := e.GetOccurTime().AsTime()
		if cat == "" || e.GetReceivingRegion() != p.Receiving || e.GetSendingRegion() != p.Sending || t.Before(from) || !t.Before(until) {
			continue
		}
		if workers[cat] == nil {
			workers[cat] = map[string]bool{}
		}
		workers[cat][e.GetWorkerId()] = true
	}
	out := map[string]int64{}
	for cat, ws := range workers {
		out[cat] = int64(len(ws))
	}
	return out
}

func refNumerator(events []*coordinationv1.LedgerEvent, province string, year int) int64 {
	ws := map[string]bool{}
	for _, e := range events {
		if !e.GetRegisteredPoor() || civil.Year(e.GetOccurTime().AsTime()) != year {
			continue
		}
		if (e.GetKind() == departed && e.GetSendingRegion() == province) || (e.GetKind() == onboarded && e.GetReceivingRegion() == province) {
			ws[e.GetWorkerId()] = true
		}
	}
	return int64(len(ws))
}

func TestCountsExactUnderDuplicatesReorderAndDelay(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(rt *rapid.T) {
		events := genEvents(rt)
		// Every event 1 to 3 times, in random order, in calls of 1 to 15 events.
		var deliveries []*coordinationv1.LedgerEvent
		for _, e := range events {
			for range rapid.IntRange(1, 3).Draw(rt, "copies") {
				deliveries = append(deliveries, e)
			}
		}
		deliveries = rapid.Permutation(deliveries).Draw(rt, "order")

		h := newHarness(rt, t.TempDir(), zap.NewNop(), Config{GracePeriod: propGrace}, propBase.Add(10*24*time.Hour+time.Hour))
		defer h.close()
		h.pair(rt, propPairings...)
		var recorded, duplicates int32
		for len(deliveries) > 0 {
			n := min(rapid.IntRange(1, 15).Draw(rt, "callSize"), len(deliveries))
			resp := h.report(rt, deliveries[:n]...)
			recorded += resp.GetRecorded()
			duplicates += resp.GetDuplicates()
			deliveries = deliveries[n:]
			h.clock.Advance(time.Duration(rapid.IntRange(0, 20).Draw(rt, "hoursLater")) * time.Hour)
			if rapid.Bool().Draw(rt, "timer") {
				if _, err := h.s.ledger.ExpireDue(); err != nil {
					rt.Fatal(err)
				}
			}
		}
		if _, err := h.s.ledger.ExpireDue(); err != nil {
			rt.Fatal(err)
		}
		now := h.clock.Now()
		if int(recorded) != len(events) {
			rt.Fatalf("recorded %d, want %d distinct events", recorded, len(events))
		}

		// Batches: counts and open discrepancies.
		batches := map[string]bool{}
		for _, e := range events {
			if e.GetBatchId() != "" {
				batches[e.GetBatchId()] = true
			}
		}
		wantOpen := map[string]bool{}
		openPerPair := map[regions.Pairing]int64{}
		for _, b := range sortedKeys(batches) {
			want, open := refBatch(events, b, now)
			got := h.batch(rt, b)
			if countsOf(got) != want {
				rt.Fatalf("batch %s: %+v, want %+v", b, countsOf(got), want)
			}
			for k := range open {
				wantOpen[k] = true
				openPerPair[regions.Pairing{Receiving: got.GetReceivingRegion(), Sending: got.GetSendingRegion()}]++
			}
			if n := len(batchKinds(got.GetDiscrepancies())); n != len(open) {
				rt.Fatalf("batch %s lists %d open discrepancies, want %d", b, n, len(open))
			}
		}
		list, err := h.recon.ListBatchReconciliations(ctxT(rt), &coordinationv1.ListBatchReconciliationsRequest{PageSize: 1000})
		if err != nil {
			rt.Fatal(err)
		}
		if len(list.GetReconciliations()) != len(batches) {
			rt.Fatalf("%d batches listed, want %d", len(list.GetReconciliations()), len(batches))
		}

		// Discrepancies: the open ones are the reference's, and the feed replays to the same state.
		all := map[string]*coordinationv1.Discrepancy{}
		tok := ""
		for {
			resp, err := h.recon.ListDiscrepancies(ctxT(rt), &coordinationv1.ListDiscrepanciesRequest{IncludeClosed: true, PageSize: 5, PageToken: tok})
			if err != nil {
				rt.Fatal(err)
			}
			for _, d := range resp.GetDiscrepancies() {
				all[d.GetName()] = d
			}
			if tok = resp.GetNextPageToken(); tok == "" {
				break
			}
		}
		gotOpen := map[string]bool{}
		for _, d := range all {
			if d.GetState() == open && !deadlineKind(d.GetKind()) {
				gotOpen[fmt.Sprintf("%s/%s/%s", d.GetBatchId(), d.GetWorkerId(), d.GetKind())] = true
			}
		}
		if fmt.Sprint(sortedKeys(gotOpen)) != fmt.Sprint(sortedKeys(wantOpen)) {
			rt.Fatalf("open discrepancies\n%v\nwant\n%v", sortedKeys(gotOpen), sortedKeys(wantOpen))
		}
		last := map[string]*coordinationv1.Discrepancy{}
		var rev int64
		for _, c := range h.changes(rt, 0) {
			if c.GetRevision() <= rev {
				rt.Fatalf("feed revisions not increasing: %d after %d", c.GetRevision(), rev)
			}
			rev = c.GetRevision()
			prev := last[c.GetName()]
			if (prev == nil && c.GetState() != open) || (prev != nil && prev.GetState() == c.GetState()) {
				rt.Fatalf("feed: %s goes to %s twice or starts closed", c.GetName(), c.GetState())
			}
			last[c.GetName()] = c
		}
		if len(last) != len(all) {
			rt.Fatalf("feed names %d discrepancies, list %d", len(last), len(all))
		}
		for name, d := range all {
			if last[name].GetState() != d.GetState() || last[name].GetRevision() != d.GetRevision() {
				rt.Fatalf("feed ends with %v, list has %v", last[name], d)
			}
		}

		// Pairing summaries over a random period, and over everything.
		startDay := rapid.IntRange(-1, 11).Draw(rt, "startDay")
		days := rapid.IntRange(0, 12).Draw(rt, "days")
		from := propBase.AddDate(0, 0, startDay)
		until := from.AddDate(0, 0, days+1)
		for _, req := range []*coordinationv1.ListPairingSummariesRequest{
			{PeriodStart: dateOf(from), PeriodEnd: dateOf(until.AddDate(0, 0, -1))},
			{},
		} {
			resp, err := h.recon.ListPairingSummaries(ctxT(rt), req)
			if err != nil {
				rt.Fatal(err)
			}
			lo, hi := from, until
			if req.GetPeriodStart() == nil {
				lo, hi = ledger.EarliestOccur, now.AddDate(0, 0, 2)
			}
			// Every registered pairing has a summary (zeros when it has no events).
			pairsWithEvents := map[regions.Pairing]bool{}
			for _, p := range propPairings {
				pairsWithEvents[p] = true
			}
			for _, e := range events {
				if refCategory(e) != "" {
					pairsWithEvents[regions.Pairing{Receiving: e.GetReceivingRegion(), Sending: e.GetSendingRegion()}] = true
				}
			}
			if len(resp.GetSummaries()) != len(pairsWithEvents) {
				rt.Fatalf("%d summaries, want %d", len(resp.GetSummaries()), len(pairsWithEvents))
			}
			for _, s := range resp.GetSummaries() {
				p := regions.Pairing{Receiving: s.GetReceivingRegion(), Sending: s.GetSendingRegion()}
				want := refSummary(events, p, lo, hi)
				got := map[string]int64{
					departed.String(): s.GetDeparted(), arrived.String(): s.GetArrived(), noShow.String(): s.GetNoShow(),
					onboarded.String(): s.GetOnboarded(), "employed3": s.GetEmployedThreeMonths(), "employed6": s.GetEmployedSixMonths(),
					leftJob.String(): s.GetLeftJob(), returned.String(): s.GetReturnedHome(),
				}
				for cat, n := range got {
					if n != want[cat] {
						rt.Fatalf("pairing %v %s in [%v, %v): %d, want %d", p, cat, lo, hi, n, want[cat])
					}
				}
				if n := s.GetOpenDiscrepancies() - s.GetOpenOverdueCheckpoints() - s.GetOpenLateIncidents() - s.GetOpenAbandoned(); n != openPerPair[p] {
					rt.Fatalf("pairing %v: %d open discrepancies, want %d", p, n, openPerPair[p])
				}
			}
		}

		// Assessment: distinct registered-poor workers per province and year; baseline from the
		// previous year unless an operator set one.
		for _, p := range []string{"440000", "330000", "520000", "450000", "510000"} {
			for _, year := range []int{2024, 2025} {
				resp, err := h.assess.GetAssessment(ctxT(rt), &coordinationv1.GetAssessmentRequest{Region: p, Year: int32(year)})
				if err != nil {
					rt.Fatal(err)
				}
				a := resp.GetAssessment()
				num, prev := refNumerator(events, p, year), refNumerator(events, p, year-1)
				if a.GetNumerator() != num || a.GetDenominator() != prev || (a.Denominator != nil) != (prev > 0) ||
					(a.GetBaselineSource() == coordinationv1.BaselineSource_BASELINE_SOURCE_NONE) != (prev == 0) {
					rt.Fatalf("%s %d: %v, want numerator %d denominator %d", p, year, a, num, prev)
				}
				if prev > 0 && (a.GetBaselineSource() != coordinationv1.BaselineSource_BASELINE_SOURCE_LEDGER_PREVIOUS_YEAR || a.GetPercentage() != assessment.Percentage(num, prev)) {
					rt.Fatalf("%s %d: %v", p, year, a)
				}
			}
		}

		// ListEvents pages through every distinct event once.
		seen := map[string]bool{}
		tok = ""
		for {
			resp, err := h.ledger.ListEvents(ctxT(rt), &coordinationv1.ListEventsRequest{PageSize: 7, PageToken: tok})
			if err != nil {
				rt.Fatal(err)
			}
			for _, e := range resp.GetEvents() {
				if seen[e.GetEventId()] {
					rt.Fatalf("event %s listed twice", e.GetEventId())
				}
				seen[e.GetEventId()] = true
			}
			if tok = resp.GetNextPageToken(); tok == "" {
				break
			}
		}
		if len(seen) != len(events) {
			rt.Fatalf("ListEvents gave %d events, want %d", len(seen), len(events))
		}
		byWorker := map[string]int{}
		for _, e := range events {
			byWorker[e.GetWorkerId()]++
		}
		for w, n := range byWorker {
			resp, err := h.ledger.ListEvents(ctxT(rt), &coordinationv1.ListEventsRequest{WorkerId: w, PageSize: 1000})
			if err != nil {
				rt.Fatal(err)
			}
			if len(resp.GetEvents()) != n {
				rt.Fatalf("worker %s: %d events, want %d", w, len(resp.GetEvents()), n)
			}
		}
	})
}

func dateOf(t time.Time) *commonv1.Date {
	y, m, d := t.In(civil.Zone).Date()
	return &commonv1.Date{Year: int32(y), Month: int32(m), Day: int32(d)}
}

// deadlineKind reports whether k is a kind of the agreement's deadlines after onboarding
// (deadlines_test.go tests them; the reference here is the batch reconciliation's).
func deadlineKind(k coordinationv1.DiscrepancyKind) bool {
	switch k {
	case coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_OVERDUE_CHECKPOINT, coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_LATE_INCIDENT,
		coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_ABANDONED:
		return true
	}
	return false
}

// batchKinds are the discrepancies of ds of the batch reconciliation's kinds.
func batchKinds(ds []*coordinationv1.Discrepancy) []*coordinationv1.Discrepancy {
	var out []*coordinationv1.Discrepancy
	for _, d := range ds {
		if !deadlineKind(d.GetKind()) {
			out = append(out, d)
		}
	}
	return out
}

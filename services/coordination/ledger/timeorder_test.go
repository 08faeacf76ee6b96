package ledger

import (
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
)

const (
	checkpointKind = coordinationv1.EventKind_EVENT_KIND_EMPLOYMENT_CHECKPOINT
	leftJobKind    = coordinationv1.EventKind_EVENT_KIND_LEFT_JOB
	incidentKind   = coordinationv1.EventKind_EVENT_KIND_INCIDENT
)

// checkpointEv is the N-month checkpoint of w1 on B1 at the start of day d.
func checkpointEv(id string, d *time.Time, months int32) *coordinationv1.LedgerEvent {
	e := ev(id, checkpointKind, "B1", "w1", *d)
	e.Details = &coordinationv1.LedgerEvent_EmploymentCheckpoint{EmploymentCheckpoint: &coordinationv1.EmploymentCheckpointDetails{Months: months, StillEmployed: true}}
	return e
}

// dayStart is midnight (CST) of t's day: how the receiving service dates day facts.
func dayStart(t time.Time) time.Time { return civil.Start(civil.Today(t)) }

// Each rule of the time order, both ways round (the earlier fact reported second is refused
// too), with the legitimate sequences that must stay accepted: same-day departure and arrival,
// minutes of clock skew between provinces, onboarding on the day of arrival.
func TestTimeOrderProblem(t *testing.T) {
	t.Parallel()
	dep := t0 // 2025-03-01 08:00 CST
	onb := dayStart(t0.Add(24 * time.Hour))
	threeMonths := onb.AddDate(0, 3, 0)
	dayShort := threeMonths.AddDate(0, 0, -1)
	tests := []struct {
		name      string
		ev, other *coordinationv1.LedgerEvent
		field     string // "": in order
	}{
		{"arrival hours after departure", ev("a", arrived, "B1", "w1", dep.Add(5*time.Hour)), ev("d", departed, "B1", "w1", dep), ""},
		{"same-day departure and arrival", ev("a", arrived, "B1", "w1", dep.Add(3*time.Hour)), ev("d", departed, "B1", "w1", dep), ""},
		{"arrival 40 minutes before departure (clock skew)", ev("a", arrived, "B1", "w1", dep.Add(-40*time.Minute)), ev("d", departed, "B1", "w1", dep), ""},
		{"arrival a day before departure", ev("a", arrived, "B1", "w1", dep.Add(-24*time.Hour)), ev("d", departed, "B1", "w1", dep), "occur_time"},
		{"departure reported after an earlier arrival", ev("d", departed, "B1", "w1", dep), ev("a", arrived, "B1", "w1", dep.Add(-2*time.Hour)), "occur_time"},
		{"onboarding the day of arrival", ev("o", onboarded, "B1", "w1", dayStart(dep)), ev("a", arrived, "B1", "w1", dep.Add(2*time.Hour)), ""},
		{"onboarding the day before arrival", ev("o", onboarded, "B1", "w1", dayStart(dep).Add(-24*time.Hour)), ev("a", arrived, "B1", "w1", dep), "occur_time"},
		{"onboarding the day before an arrival at 00:30 (clock skew)", ev("o", onboarded, "B1", "w1", dayStart(dep).Add(-24*time.Hour)),
			ev("a", arrived, "B1", "w1", dayStart(dep).Add(30*time.Minute)), ""},
		{"onboarding before departure", ev("o", onboarded, "B1", "w1", dayStart(dep).Add(-48*time.Hour)), ev("d", departed, "B1", "w1", dep), "occur_time"},
		{"arrival reported after a too early onboarding", ev("a", arrived, "B1", "w1", dep), ev("o", onboarded, "B1", "w1", dayStart(dep).Add(-24*time.Hour)), "occur_time"},
		{"3-month checkpoint 3 months after onboarding", checkpointEv("c", &threeMonths, 3), ev("o", onboarded, "B1", "w1", onb), ""},
		{"3-month checkpoint a day short", checkpointEv("c", &dayShort, 3), ev("o", onboarded, "B1", "w1", onb), "employment_checkpoint.months"},
		{"onboarding reported after a checkpoint too soon after it", ev("o", onboarded, "B1", "w1", onb), checkpointEv("c", &dayShort, 3), "occur_time"},
		{"checkpoint before arrival", checkpointEv("c", &dep, 1), ev("a", arrived, "B1", "w1", dep.Add(24*time.Hour)), "occur_time"},
		{"job left the day of onboarding", ev("l", leftJobKind, "B1", "w1", onb), ev("o", onboarded, "B1", "w1", onb), ""},
		{"job left before onboarding", ev("l", leftJobKind, "B1", "w1", onb.Add(-24*time.Hour)), ev("o", onboarded, "B1", "w1", onb), "occur_time"},
		{"a checkpoint and the job left are not ordered", checkpointEv("c", &threeMonths, 3), ev("l", leftJobKind, "B1", "w1", onb), ""},
		{"no-shows are not ordered", ev("n", noShow, "B1", "w1", dep.Add(-72*time.Hour)), ev("d", departed, "B1", "w1", dep), ""},
		{"incidents are not ordered", ev("i", incidentKind, "B1", "w1", dep.Add(-72*time.Hour)), ev("d", departed, "B1", "w1", dep), ""},
		{"two departures are not ordered", ev("d2", departed, "B1", "w1", dep.Add(48*time.Hour)), ev("a", departed, "B1", "w1", dep), ""},
	}
	for _, tt := range tests {
		field, problem := timeOrderProblem(tt.ev, tt.other)
		if field != tt.field || (problem == "") != (tt.field == "") {
			t.Errorf("%s: timeOrderProblem = %q, %q; want field %q", tt.name, field, problem, tt.field)
		}
	}
}

// genTrip draws the events of one trip of w1 on B1 in time order, as real reporters date them:
// a departure, an arrival from minutes before it (clock skew) to days after, onboarding on a
// day from the arrival's, checkpoints at N months at least N months after onboarding, the job
// left after onboarding. Each may be missing.
func genTrip(t *rapid.T) []*coordinationv1.LedgerEvent {
	dep := t0.Add(time.Duration(rapid.IntRange(0, 24*60).Draw(t, "departMinute")) * time.Minute)
	arr := dep.Add(time.Duration(rapid.IntRange(-int(ledgerclient.ClockSkew/time.Minute), 4*24*60).Draw(t, "travelMinutes")) * time.Minute)
	onb := dayStart(arr).AddDate(0, 0, rapid.IntRange(0, 10).Draw(t, "daysToOnboard"))
	var out []*coordinationv1.LedgerEvent
	if rapid.Bool().Draw(t, "departed") {
		out = append(out, ev("d", departed, "B1", "w1", dep))
	}
	if rapid.Bool().Draw(t, "arrived") {
		out = append(out, ev("a", arrived, "B1", "w1", arr))
	}
	out = append(out, ev("o", onboarded, "B1", "w1", onb))
	for _, m := range []int32{3, 6} {
		if rapid.Bool().Draw(t, fmt.Sprintf("checkpoint%d", m)) {
			at := onb.AddDate(0, int(m), rapid.IntRange(0, 20).Draw(t, "daysLate"))
			out = append(out, checkpointEv(fmt.Sprintf("c%d", m), &at, m))
		}
	}
	if rapid.Bool().Draw(t, "left") {
		out = append(out, ev("l", leftJobKind, "B1", "w1", onb.AddDate(0, 0, rapid.IntRange(0, 300).Draw(t, "daysWorked"))))
	}
	return out
}

// ingestOrder is the ledger's rule over one worker's trip: each event in turn is taken unless
// it contradicts one taken before (checkTimeOrder without storage).
func ingestOrder(events []*coordinationv1.LedgerEvent) (taken []*coordinationv1.LedgerEvent) {
	for _, e := range events {
		ok := true
		for _, o := range taken {
			if _, p := timeOrderProblem(e, o); p != "" {
				ok = false
				break
			}
		}
		if ok {
			taken = append(taken, e)
		}
	}
	return taken
}

// The time-order rule over random event sequences:
//   - a trip dated as real reporters date it is taken whole, whatever order its events arrive in;
//   - for any events at random times, what the ledger takes is in order pairwise, and the rule
//     is symmetric (a pair contradicts itself whichever is reported first).
func TestTimeOrderProperties(t *testing.T) {
	t.Parallel()
	t.Run("real trips are taken in any order", func(t *testing.T) {
		rapid.Check(t, func(rt *rapid.T) {
			trip := genTrip(rt)
			order := rapid.Permutation(trip).Draw(rt, "order")
			if taken := ingestOrder(order); len(taken) != len(trip) {
				rt.Fatalf("took %d of the %d events of a real trip", len(taken), len(trip))
			}
		})
	})
	t.Run("what is taken is in order", func(t *testing.T) {
		kinds := []coordinationv1.EventKind{departed, arrived, noShow, onboarded, checkpointKind, leftJobKind, incidentKind}
		rapid.Check(t, func(rt *rapid.T) {
			n := rapid.IntRange(1, 12).Draw(rt, "events")
			var events []*coordinationv1.LedgerEvent
			for i := range n {
				kind := rapid.SampledFrom(kinds).Draw(rt, "kind")
				at := t0.Add(time.Duration(rapid.IntRange(-300*24, 300*24).Draw(rt, "hour")) * time.Hour)
				if kind != departed && kind != arrived && kind != noShow {
					at = dayStart(at)
				}
				e := ev(fmt.Sprintf("e%d", i), kind, "B1", "w1", at)
				if kind == checkpointKind {
					e = checkpointEv(e.GetEventId(), &at, rapid.SampledFrom([]int32{1, 3, 6}).Draw(rt, "months"))
				}
				events = append(events, e)
			}
			for _, a := range events {
				for _, b := range events {
					_, p1 := timeOrderProblem(a, b)
					_, p2 := timeOrderProblem(b, a)
					if (p1 == "") != (p2 == "") {
						rt.Fatalf("not symmetric: %v vs %v: %q, %q", a, b, p1, p2)
					}
				}
			}
			taken := ingestOrder(events)
			for _, a := range taken {
				for _, b := range taken {
					if _, p := timeOrderProblem(a, b); p != "" {
						rt.Fatalf("took %s and %s, which contradict: %s", a.GetEventId(), b.GetEventId(), p)
					}
				}
			}
			// Taken in time order: departures before arrivals (less the skew), arrivals before
			// onboarding's day, checkpoints N months after onboarding.
			for _, a := range taken {
				for _, b := range taken {
					if a.GetKind() == departed && b.GetKind() == arrived && !ledgerclient.NotBefore(b.GetOccurTime().AsTime(), a.GetOccurTime().AsTime()) {
						rt.Fatalf("arrival %v before departure %v", b, a)
					}
					if a.GetKind() == onboarded && b.GetKind() == checkpointKind &&
						civil.WholeMonths(civil.Today(a.GetOccurTime().AsTime()), civil.Today(b.GetOccurTime().AsTime())) < b.GetEmploymentCheckpoint().GetMonths() {
						rt.Fatalf("checkpoint %v too soon after onboarding %v", b, a)
					}
				}
			}
		})
	})
}

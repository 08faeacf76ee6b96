package coordination

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"pgregory.net/rapid"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
)

// scriptTrip is one trip of the test's own script, with what the model needs to know.
type scriptTrip struct {
	worker     string
	departed   time.Time
	poor       bool
	noShow     bool
	checkpoint time.Time // zero: none
}

// listEligible lists all pages of a rule for 520000 in [start, end) as of asOf.
func listEligible(t *rapid.T, c coordinationv1.EligibilityServiceClient, rule string, start, end *commonv1.Date, asOf time.Time) []*coordinationv1.EligibleWorker {
	var out []*coordinationv1.EligibleWorker
	req := &coordinationv1.ListEligibleWorkersRequest{SendingRegion: "520000", Rule: rule, PeriodStart: start, PeriodEnd: end,
		AsOf: timestamppb.New(asOf), PageSize: 2}
	for {
		resp, err := c.ListEligibleWorkers(ctxT(t), req)
		if err != nil {
			t.Fatalf("ListEligibleWorkers: %v", err)
		}
		out = append(out, resp.GetWorkers()...)
		if resp.GetNextPageToken() == "" {
			return out
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

// TestEligibilityMatchesModel: random trip histories reported to the ledger; the eligible
// workers of each rule (transport: registered-poor, once per year, a no-show trip does not
// count; job-stability: a 3-month checkpoint without a no-show or leaving before it) equal those
// the test computes from its own script, the same list again after later events (same as_of).
func TestEligibilityMatchesModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		h := newHarness(rt, t.TempDir(), zapLogger(t), Config{LoadDefaultPairings: true}, time.Date(2027, 6, 1, 8, 0, 0, 0, civil.Zone)) // after the last trip the script can draw (up to ~15 months from 2026-01-01)
		defer h.close()
		c := coordinationv1.NewEligibilityServiceClient(h.cc)
		var script []scriptTrip
		nw := rapid.IntRange(1, 5).Draw(rt, "workers")
		n := 0
		for w := range nw {
			worker := fmt.Sprintf("520000-W%03d", w)
			day := rapid.IntRange(0, 60).Draw(rt, "firstDay")
			for range rapid.IntRange(1, 3).Draw(rt, "trips") {
				n++
				batch := fmt.Sprintf("520000-B%03d", n)
				dep := time.Date(2026, 1, 1, 9, 0, 0, 0, civil.Zone).AddDate(0, 0, day)
				tr := scriptTrip{worker: worker, departed: dep, poor: rapid.Bool().Draw(rt, "poor"), noShow: rapid.IntRange(0, 4).Draw(rt, "noshow") == 0}
				d := ev(batch+"-dep", coordinationv1.EventKind_EVENT_KIND_DEPARTED, batch, worker, dep)
				d.RegisteredPoor = tr.poor
				evs := []*coordinationv1.LedgerEvent{d}
				end := dep.AddDate(0, 0, 2)
				if tr.noShow {
					evs = append(evs, ev(batch+"-ns", coordinationv1.EventKind_EVENT_KIND_NO_SHOW, batch, worker, dep.Add(10*time.Hour)))
				} else {
					evs = append(evs, ev(batch+"-arr", coordinationv1.EventKind_EVENT_KIND_ARRIVED, batch, worker, dep.Add(10*time.Hour)))
					on := time.Date(dep.Year(), dep.Month(), dep.Day()+1, 0, 0, 0, 0, civil.Zone)
					evs = append(evs, ev(batch+"-on", coordinationv1.EventKind_EVENT_KIND_ONBOARDED, batch, worker, on))
					switch rapid.IntRange(0, 2).Draw(rt, "after") {
					case 1: // employed 3 months
						cp := ev(batch+"-cp3", coordinationv1.EventKind_EVENT_KIND_EMPLOYMENT_CHECKPOINT, batch, worker, on.AddDate(0, 3, 0))
						cp.Details = &coordinationv1.LedgerEvent_EmploymentCheckpoint{EmploymentCheckpoint: &coordinationv1.EmploymentCheckpointDetails{Months: 3, StillEmployed: true}}
						evs = append(evs, cp)
						tr.checkpoint = on.AddDate(0, 3, 0)
						end = on.AddDate(0, 3, 1)
					case 2: // left after a month
						evs = append(evs, ev(batch+"-left", coordinationv1.EventKind_EVENT_KIND_LEFT_JOB, batch, worker, on.AddDate(0, 1, 0)))
						end = on.AddDate(0, 1, 1)
					}
					if !tr.checkpoint.IsZero() || rapid.Bool().Draw(rt, "home") {
						evs = append(evs, ev(batch+"-home", coordinationv1.EventKind_EVENT_KIND_RETURNED_HOME, batch, worker, end))
						end = end.AddDate(0, 0, 1)
					}
				}
				h.report(rt, evs...)
				script = append(script, tr)
				day = int(end.Sub(time.Date(2026, 1, 1, 9, 0, 0, 0, civil.Zone)).Hours()/24) + 1 + rapid.IntRange(0, 30).Draw(rt, "gap")
			}
		}
		asOf := h.clock.Now()
		year := func(d time.Time) int { return d.In(civil.Zone).Year() }
		// The model: per worker and year, is there a qualifying trip?
		model := func(rule string, from, before time.Time) []string {
			first := map[string]time.Time{} // worker/year -> earliest fact
			for _, tr := range script {
				var fact time.Time
				switch {
				case rule == "transport" && tr.poor && !tr.noShow:
					fact = tr.departed
				case rule == "job-stability" && !tr.checkpoint.IsZero():
					fact = tr.checkpoint
				default:
					continue
				}
				k := fmt.Sprintf("%s/%d", tr.worker, year(fact))
				if f, ok := first[k]; !ok || fact.Before(f) {
					first[k] = fact
				}
			}
			var out []string
			for k, f := range first {
				if !f.Before(from) && f.Before(before) {
					out = append(out, k[:len("520000-W000")])
				}
			}
			sort.Strings(out)
			return out
		}
		periods := []struct{ start, end *commonv1.Date }{
			{date(2026, 1, 1), date(2027, 1, 1)},
			{date(2026, 1, 1), date(2026, 4, 1)},
			{date(2026, 4, 1), date(2026, 10, 1)},
		}
		got := map[string][]*coordinationv1.EligibleWorker{}
		for _, rule := range []string{"transport", "job-stability"} {
			for _, p := range periods {
				list := listEligible(rt, c, rule, p.start, p.end, asOf)
				var ids []string
				for _, e := range list {
					ids = append(ids, e.GetWorkerId())
				}
				want := model(rule, civil.Start(p.start), civil.Start(p.end))
				if fmt.Sprint(ids) != fmt.Sprint(want) {
					rt.Fatalf("%s %s..%s: listed %v, the script says %v", rule, civil.Format(p.start), civil.Format(p.end), ids, want)
				}
				got[rule+civil.Format(p.start)+civil.Format(p.end)] = list
			}
		}
		// Later events (a new trip of every worker) do not change the list as of the same time.
		h.clock.Advance(time.Hour)
		for w := range nw {
			worker := fmt.Sprintf("520000-W%03d", w)
			batch := fmt.Sprintf("520000-L%03d", w)
			d := ev(batch+"-dep", coordinationv1.EventKind_EVENT_KIND_DEPARTED, batch, worker, time.Date(2026, 11, 30, 9, 0, 0, 0, civil.Zone))
			d.RegisteredPoor = true
			h.report(rt, d)
		}
		for _, rule := range []string{"transport", "job-stability"} {
			again := listEligible(rt, c, rule, periods[0].start, periods[0].end, asOf)
			want := got[rule+civil.Format(periods[0].start)+civil.Format(periods[0].end)]
			if len(again) != len(want) {
				rt.Fatalf("%s as of the same time after later events: %d workers, before %d", rule, len(again), len(want))
			}
			for i := range want {
				if !proto.Equal(again[i], want[i]) {
					rt.Fatalf("%s: entry %d changed after later events: %v, was %v", rule, i, again[i], want[i])
				}
			}
		}
	})
}

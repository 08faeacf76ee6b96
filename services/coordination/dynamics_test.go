package coordination

import (
	"testing"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"pgregory.net/rapid"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/outatwork"
	"github.com/eastwest/labourlink/services/platform/outatwork/outatworktest"
)

// dynamicsPairings pair every generated sending province with every destination.
var dynamicsPairings = []regions.Pairing{
	{Receiving: "440000", Sending: "520000"}, {Receiving: "330000", Sending: "520000"},
	{Receiving: "440000", Sending: "450000"}, {Receiving: "330000", Sending: "450000"},
}

// journeyEvents are the ledger events of the generated journeys, as the two sides report them.
func journeyEvents(ws []outatworktest.Worker) []*coordinationv1.LedgerEvent {
	var out []*coordinationv1.LedgerEvent
	for _, w := range ws {
		for _, tr := range w.Trips {
			e := func(kind coordinationv1.EventKind, at *timestamppb.Timestamp) *coordinationv1.LedgerEvent {
				x := &coordinationv1.LedgerEvent{
					EventId: kind.String() + ":" + tr.Batch + ":" + w.ID, Kind: kind, SendingRegion: w.Sending, ReceivingRegion: tr.Dest,
					WorkerId: w.ID, BatchId: tr.Batch, OccurTime: at, ReporterRegion: tr.Dest,
				}
				if kind == departed || kind == returned {
					x.ReporterRegion = w.Sending
				}
				return x
			}
			dep := e(departed, timestamppb.New(tr.Depart))
			dep.RegisteredPoor = w.Poor
			dep.Details = &coordinationv1.LedgerEvent_Departed{Departed: &coordinationv1.DepartedDetails{HomeCounty: w.HomeCounty, Occupation: tr.Occupation}}
			out = append(out, dep)
			if tr.NoShow {
				out = append(out, e(noShow, timestamppb.New(tr.Depart.Add(30*3600e9))))
			}
			if tr.LeftJob != nil {
				l := e(leftJob, timestamppb.New(*tr.LeftJob))
				l.Details = &coordinationv1.LedgerEvent_LeftJob{LeftJob: &coordinationv1.LeftJobDetails{Reason: "contract ended"}}
				out = append(out, l)
			}
			if tr.Returned != nil {
				out = append(out, e(returned, timestamppb.New(*tr.Returned)))
			}
		}
	}
	return out
}

// checkNational compares the national figures as of asOf (of sending, "" for all) with the
// figures counted day by day from the journeys.
func checkNational(t tb, h *harness, ws []outatworktest.Worker, asOf *commonv1.Date, sending string) {
	t.Helper()
	resp, err := h.dynamics.GetNationalEmploymentDynamics(ctxT(t), &coordinationv1.GetNationalEmploymentDynamicsRequest{AsOf: asOf, SendingRegion: sending})
	if err != nil {
		t.Fatalf("GetNationalEmploymentDynamics(%s, %q): %v", civil.Format(asOf), sending, err)
	}
	want := outatworktest.Expected(ws, func(w outatworktest.Worker) bool { return sending == "" || w.Sending == sending },
		asOf, outatwork.SameDayLastYear(asOf), int(asOf.GetYear())-1)
	row := func(what string, r *commonv1.DynamicsRow, c outatworktest.Counts) {
		t.Helper()
		got := outatworktest.Counts{AsOf: r.GetOutAtWork(), SameDay: r.GetSameDayLastYear(), LastYear: r.GetLastYearTotal()}
		if got != c {
			t.Fatalf("as of %s (sending %q), %s: got %+v, want %+v", civil.Format(asOf), sending, what, got, c)
		}
		if r.GetAgainstLastYearTotal().GetNumerator() != c.AsOf || r.GetAgainstLastYearTotal().GetDenominator() != c.LastYear ||
			r.GetAgainstSameDayLastYear().GetDenominator() != c.SameDay || (c.LastYear == 0) != (r.GetAgainstLastYearTotal().Percentage == nil) {
			t.Fatalf("as of %s, %s: ratios %v %v for %+v", civil.Format(asOf), what, r.GetAgainstSameDayLastYear(), r.GetAgainstLastYearTotal(), c)
		}
	}
	row("total", resp.GetTotal(), want.Get("total", ""))
	rows := func(dim string, got []*commonv1.DynamicsRow) {
		t.Helper()
		n := 0
		for _, c := range want[dim] {
			if *c != (outatworktest.Counts{}) {
				n++
			}
		}
		if len(got) != n {
			t.Fatalf("as of %s, %d rows by %s, want %d (%v)", civil.Format(asOf), len(got), dim, n, got)
		}
		for _, r := range got {
			row(dim+" "+r.GetKey(), r, want.Get(dim, r.GetKey()))
		}
	}
	rows("sending", resp.GetBySendingRegion())
	rows("destination", resp.GetByDestination())
	rows("county", resp.GetByHomeCounty())
	rows("occupation", resp.GetByOccupation())
}

// The national figures equal a count day by day over the journeys, whatever the order the
// events arrive in, and after a restart.
func TestNationalDynamicsCountDistinctWorkersOutAtWork(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(rt *rapid.T) {
		dir := t.TempDir()
		h := newHarness(rt, dir, zap.NewNop(), Config{}, outatworktest.Now)
		defer func() { h.close() }()
		h.pair(rt, dynamicsPairings...)
		ws := outatworktest.Journeys(rt, 8)
		events := journeyEvents(ws)
		order := rapid.Permutation(events).Draw(rt, "order")
		for len(order) > 0 {
			n := min(len(order), rapid.IntRange(1, 5).Draw(rt, "chunk"))
			h.report(rt, order[:n]...)
			order = order[n:]
		}
		if len(events) > 0 {
			h.report(rt, events...) // every event again: duplicates count nothing
		}
		days := rapid.SliceOfN(rapid.IntRange(0, 1065), 1, 3).Draw(rt, "asOf")
		check := func() {
			for _, d := range days {
				asOf := civil.Today(outatworktest.Base.AddDate(0, 0, d))
				checkNational(rt, h, ws, asOf, "")
				checkNational(rt, h, ws, asOf, "520000")
			}
		}
		check()
		h.close()
		h = newHarness(rt, dir, zap.NewNop(), Config{}, outatworktest.Now)
		check()
	})
}

// A file written with schema version 4 (events, no dynamics counts) opens with version 5: the
// migration builds the counts from the stored events, and the figures are those of a ledger
// that counted as it went.
func TestOpenVersion4FileBuildsDynamics(t *testing.T) {
	t.Parallel()
	checkDynamicsUpgrade(t, 4, "ledgerDynamicsTrips", "ledgerDynamicsDays", "ledgerDynamicsYears")
}

// A file written with schema version 6 (the dynamics without the counts by home county and
// occupation) opens with version 7: the migration rebuilds the dynamics from the stored events,
// and the figures, the rows by home county and occupation included, are those of a ledger that
// counted as it went.
func TestOpenVersion6FileRebuildsDynamics(t *testing.T) {
	t.Parallel()
	checkDynamicsUpgrade(t, 6, "ledgerDynamicsDimDays", "ledgerDynamicsDimYears")
}

// checkDynamicsUpgrade records random journeys, turns the file into one of version from without
// buckets, opens it, and checks that the figures are those before and the day-by-day count.
func checkDynamicsUpgrade(t *testing.T, from uint64, buckets ...string) {
	rapid.Check(t, func(rt *rapid.T) {
		dir := t.TempDir()
		lg := zap.NewNop()
		h := newHarness(rt, dir, lg, Config{}, outatworktest.Now)
		h.pair(rt, dynamicsPairings...)
		ws := outatworktest.Journeys(rt, 6)
		if events := journeyEvents(ws); len(events) > 0 {
			h.report(rt, events...)
		}
		asOf := civil.Today(outatworktest.Base.AddDate(0, 0, rapid.IntRange(0, 1065).Draw(rt, "asOf")))
		before, err := h.dynamics.GetNationalEmploymentDynamics(ctxT(rt), &coordinationv1.GetNationalEmploymentDynamicsRequest{AsOf: asOf})
		if err != nil {
			rt.Fatal(err)
		}
		h.close()

		asVersion(rt, dir, from, buckets...)
		h = newHarness(rt, dir, lg, Config{}, outatworktest.Now)
		defer h.close()
		after, err := h.dynamics.GetNationalEmploymentDynamics(ctxT(rt), &coordinationv1.GetNationalEmploymentDynamicsRequest{AsOf: asOf})
		if err != nil {
			rt.Fatal(err)
		}
		if !proto.Equal(before, after) {
			rt.Fatalf("after the upgrade from version %d:\n%v\nbefore:\n%v", from, after, before)
		}
		checkNational(rt, h, ws, asOf, "")
	})
}

// Bad requests are refused with the field, before anything is read.
func TestNationalDynamicsValidation(t *testing.T) {
	t.Parallel()
	h := startHarness(t, Config{})
	today := civil.Today(h.clock.Now())
	for _, tt := range []struct {
		name  string
		req   *coordinationv1.GetNationalEmploymentDynamicsRequest
		field string
	}{
		{"no date", &coordinationv1.GetNationalEmploymentDynamicsRequest{}, "as_of"},
		{"not a date", &coordinationv1.GetNationalEmploymentDynamicsRequest{AsOf: &commonv1.Date{Year: 2025, Month: 2, Day: 30}}, "as_of"},
		{"tomorrow", &coordinationv1.GetNationalEmploymentDynamicsRequest{AsOf: civil.AddDays(today, 1)}, "as_of"},
		{"before 2000", &coordinationv1.GetNationalEmploymentDynamicsRequest{AsOf: &commonv1.Date{Year: 1999, Month: 12, Day: 31}}, "as_of"},
		{"not a province", &coordinationv1.GetNationalEmploymentDynamicsRequest{AsOf: today, SendingRegion: "520102"}, "sending_region"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.dynamics.GetNationalEmploymentDynamics(ctxT(t), tt.req)
			if _, ok := fieldViolations(t, err)[tt.field]; !ok {
				t.Fatalf("error %v does not name %s", err, tt.field)
			}
		})
	}
	resp, err := h.dynamics.GetNationalEmploymentDynamics(ctxT(t), &coordinationv1.GetNationalEmploymentDynamicsRequest{AsOf: today})
	if err != nil {
		t.Fatalf("today: %v", err)
	}
	if resp.GetTotal().GetOutAtWork() != 0 || resp.GetTotal().GetAgainstLastYearTotal().Percentage != nil {
		t.Fatalf("an empty ledger: %v", resp)
	}
}

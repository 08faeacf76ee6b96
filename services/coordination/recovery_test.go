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
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
)

// recoveryBase is the first day of the generated employers' histories.
var recoveryBase = time.Date(2024, 1, 1, 9, 0, 0, 0, civil.Zone)

// genEmployer is a generated local employer: registered on day Created (days after
// recoveryBase) resumed or not (Initial), then its resumed flag flipping on each day of Flips
// (increasing, after Created).
type genEmployer struct {
	Region, County string
	ID             string
	Kind           sendingv1.LocalEmployerKind
	Created        int
	Initial        bool
	Flips          []int
}

// at returns the time of day d of the history.
func at(d int) time.Time { return recoveryBase.AddDate(0, 0, d) }

// states returns the states the sending service reports: one after the registration and one
// after each flip, with increasing versions.
func (g genEmployer) states(firstVersion int64) []*coordinationv1.LocalEmployerState {
	changes := []*sendingv1.ResumptionChange{{Resumed: g.Initial, ChangeTime: timestamppb.New(at(g.Created))}}
	resumed := g.Initial
	out := []*coordinationv1.LocalEmployerState{}
	emit := func() {
		out = append(out, &coordinationv1.LocalEmployerState{
			Name: "localEmployers/" + g.ID, Kind: g.Kind, County: g.County, Capacity: 10, Resumed: resumed,
			CreateTime: timestamppb.New(at(g.Created)), ResumptionChanges: append([]*sendingv1.ResumptionChange(nil), changes...),
			Version: firstVersion + int64(len(out)),
		})
	}
	emit()
	for _, f := range g.Flips {
		resumed = !resumed
		changes = append(changes, &sendingv1.ResumptionChange{Resumed: resumed, ChangeTime: timestamppb.New(at(f))})
		emit()
	}
	return out
}

// onDay reports whether g was registered at the end of day d and whether it had resumed then,
// counted from the generated days (not from the reported history).
func (g genEmployer) onDay(d int) (registered, resumed bool) {
	if d < g.Created {
		return false, false
	}
	resumed = g.Initial
	for _, f := range g.Flips {
		if f <= d {
			resumed = !resumed
		}
	}
	return true, resumed
}

var recoveryCounties = map[string][]string{"520000": {"520102", "520424"}, "450000": {"450102"}}

func drawEmployers(rt *rapid.T) []genEmployer {
	var out []genEmployer
	for _, region := range []string{"520000", "450000"} {
		n := rapid.IntRange(0, 6).Draw(rt, "n"+region)
		for i := range n {
			g := genEmployer{
				Region: region, County: rapid.SampledFrom(recoveryCounties[region]).Draw(rt, "county"),
				ID:      fmt.Sprintf("%s-L%08d", region, i+1),
				Kind:    sendingv1.LocalEmployerKind(rapid.IntRange(1, 3).Draw(rt, "kind")),
				Created: rapid.IntRange(0, 300).Draw(rt, "created"), Initial: rapid.Bool().Draw(rt, "initial"),
			}
			d := g.Created
			for range rapid.IntRange(0, 4).Draw(rt, "flips") {
				d += rapid.IntRange(1, 30).Draw(rt, "gap")
				g.Flips = append(g.Flips, d)
			}
			out = append(out, g)
		}
	}
	return out
}

// wantRecovery is resumed / registered by kind (0: all kinds) of the employers of region ("":
// all) on day d.
func wantRecovery(gs []genEmployer, region string, d int) map[sendingv1.LocalEmployerKind][2]int64 {
	out := map[sendingv1.LocalEmployerKind][2]int64{}
	for _, g := range gs {
		if region != "" && g.Region != region {
			continue
		}
		registered, resumed := g.onDay(d)
		if !registered {
			continue
		}
		for _, k := range []sendingv1.LocalEmployerKind{0, g.Kind} {
			c := out[k]
			c[0]++
			if resumed {
				c[1]++
			}
			out[k] = c
		}
	}
	return out
}

// gotRecovery is what byKind and total say, in the shape of wantRecovery.
func gotRecovery(t tb, byKind []*sendingv1.LocalRecovery, total *sendingv1.LocalRecovery) map[sendingv1.LocalEmployerKind][2]int64 {
	t.Helper()
	out := map[sendingv1.LocalEmployerKind][2]int64{}
	for _, r := range append(byKind, total) {
		if r.GetRecoveryRate().GetDenominator() == 0 {
			continue
		}
		if r.GetKind() == 0 && r != total {
			t.Fatalf("a by-kind row without a kind: %v", r)
		}
		out[r.GetKind()] = [2]int64{r.GetRecoveryRate().GetDenominator(), r.GetRecoveryRate().GetNumerator()}
	}
	return out
}

// checkRecovery compares the national recovery rates of day d with those counted from the
// generated days: in all, by province (the rows, and asked with sending_region), by kind.
func checkRecovery(t tb, h *harness, gs []genEmployer, d int) {
	t.Helper()
	asOf := civil.Today(at(d))
	resp, err := h.dynamics.GetNationalEmploymentDynamics(ctxT(t), &coordinationv1.GetNationalEmploymentDynamicsRequest{AsOf: asOf})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := gotRecovery(t, resp.GetRecoveryByKind(), resp.GetRecoveryTotal()), wantRecovery(gs, "", d); !mapsEqual(got, want) {
		t.Fatalf("day %d, nation: got %v, want %v", d, got, want)
	}
	rows := map[string]*coordinationv1.RegionRecovery{}
	for _, r := range resp.GetRecoveryBySendingRegion() {
		rows[r.GetSendingRegion()] = r
	}
	for _, region := range []string{"520000", "450000"} {
		want := wantRecovery(gs, region, d)
		if got := gotRecovery(t, rows[region].GetRecoveryByKind(), rows[region].GetRecoveryTotal()); !mapsEqual(got, want) {
			t.Fatalf("day %d, row of %s: got %v, want %v", d, region, got, want)
		}
		if (rows[region] == nil) != (len(want) == 0) {
			t.Fatalf("day %d: row of %s is %v with %d employers registered", d, region, rows[region], want[0][0])
		}
		one, err := h.dynamics.GetNationalEmploymentDynamics(ctxT(t), &coordinationv1.GetNationalEmploymentDynamicsRequest{AsOf: asOf, SendingRegion: region})
		if err != nil {
			t.Fatal(err)
		}
		if got := gotRecovery(t, one.GetRecoveryByKind(), one.GetRecoveryTotal()); !mapsEqual(got, want) {
			t.Fatalf("day %d, sending_region %s: got %v, want %v", d, region, got, want)
		}
	}
}

func mapsEqual(a, b map[sendingv1.LocalEmployerKind][2]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestNationalRecoveryRate: the national recovery rate, by province and kind, on any day, is
// what the provinces' employers' histories give, counted day by day, whatever order the states
// arrive in, however often each is delivered, and after a restart.
func TestNationalRecoveryRate(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		dir := t.TempDir()
		start := at(400)
		h := newHarness(rt, dir, zap.NewNop(), Config{}, start)
		defer func() { h.close() }()
		gs := drawEmployers(rt)
		var states []*coordinationv1.LocalEmployerState
		for i, g := range gs {
			states = append(states, g.states(int64(1+10*i))...)
		}
		// Every state at least once, some again, in any order, in calls of a few.
		deliveries := append([]*coordinationv1.LocalEmployerState(nil), states...)
		deliveries = append(deliveries, rapid.SliceOfN(rapid.SampledFrom(append(states, &coordinationv1.LocalEmployerState{})), 0, 5).Draw(rt, "again")...)
		order := rapid.Permutation(deliveries).Draw(rt, "order")
		by := map[string][]*coordinationv1.LocalEmployerState{}
		for _, s := range order {
			if s.GetName() == "" {
				continue
			}
			region := s.GetName()[len("localEmployers/"):][:6]
			by[region] = append(by[region], s)
		}
		for region, list := range by {
			for len(list) > 0 {
				n := min(len(list), rapid.IntRange(1, 4).Draw(rt, "chunk"))
				if _, err := h.dynamics.ReportLocalEmployers(ctxT(rt), &coordinationv1.ReportLocalEmployersRequest{ReporterRegion: region, Employers: list[:n]}); err != nil {
					rt.Fatal(err)
				}
				list = list[n:]
			}
		}
		days := rapid.SliceOfN(rapid.IntRange(0, 400), 1, 3).Draw(rt, "days")
		for _, d := range days {
			checkRecovery(rt, h, gs, d)
		}
		h.close()
		h = newHarness(rt, dir, zap.NewNop(), Config{}, start)
		for _, d := range days {
			checkRecovery(rt, h, gs, d)
		}
	})
}

// TestReportLocalEmployersLatestWins: a state older than the one kept, or the same again, is
// stale and changes nothing; a repeat of a request id gets the first answer.
func TestReportLocalEmployersLatestWins(t *testing.T) {
	h := newHarness(t, t.TempDir(), zapLogger(t), Config{}, at(100))
	defer h.close()
	g := genEmployer{Region: "520000", County: "520102", ID: "520000-L00000001", Kind: sendingv1.LocalEmployerKind_LOCAL_EMPLOYER_KIND_POVERTY_ALLEVIATION_WORKSHOP,
		Created: 0, Initial: false, Flips: []int{10}}
	st := g.states(1) // version 1 not resumed, version 2 resumed on day 10
	report := func(id string, s ...*coordinationv1.LocalEmployerState) *coordinationv1.ReportLocalEmployersResponse {
		t.Helper()
		resp, err := h.dynamics.ReportLocalEmployers(ctxT(t), &coordinationv1.ReportLocalEmployersRequest{ReporterRegion: "520000", Employers: s, RequestId: id})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	rate := func() *commonv1.Ratio {
		t.Helper()
		resp, err := h.dynamics.GetNationalEmploymentDynamics(ctxT(t), &coordinationv1.GetNationalEmploymentDynamicsRequest{AsOf: civil.Today(at(50))})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetRecoveryTotal().GetRecoveryRate()
	}
	for _, c := range []struct {
		name            string
		id              string
		states          []*coordinationv1.LocalEmployerState
		recorded, stale int32
		resumed         int64
	}{
		{"the newer state first", "r1", st[1:], 1, 0, 1},
		{"the older one late changes nothing", "r2", st[:1], 0, 1, 1},
		{"the same again", "r3", st[1:], 0, 1, 1},
		{"a repeated request gets its first answer", "r1", st[1:], 1, 0, 1},
	} {
		got := report(c.id, c.states...)
		if got.GetRecorded() != c.recorded || got.GetStale() != c.stale {
			t.Errorf("%s: recorded %d, stale %d; want %d, %d", c.name, got.GetRecorded(), got.GetStale(), c.recorded, c.stale)
		}
		if r := rate(); r.GetNumerator() != c.resumed || r.GetDenominator() != 1 {
			t.Errorf("%s: recovery rate %v, want %d/1", c.name, r, c.resumed)
		}
	}
}

// TestReportLocalEmployersValidation: a bad state is refused with its field, and nothing is
// kept of the request.
func TestReportLocalEmployersValidation(t *testing.T) {
	h := newHarness(t, t.TempDir(), zapLogger(t), Config{}, at(100))
	defer h.close()
	good := func() *coordinationv1.LocalEmployerState {
		return genEmployer{Region: "520000", County: "520102", ID: "520000-L00000001", Kind: sendingv1.LocalEmployerKind_LOCAL_EMPLOYER_KIND_LEADING_ENTERPRISE, Initial: true}.states(1)[0]
	}
	for _, c := range []struct {
		name   string
		region string
		edit   func(*coordinationv1.LocalEmployerState)
		field  string
	}{
		{"no reporter", "", nil, "reporter_region"},
		{"an employer of another province", "450000", nil, "employers[0].name"},
		{"not a name", "520000", func(s *coordinationv1.LocalEmployerState) { s.Name = "520000-L00000001" }, "employers[0].name"},
		{"no kind", "520000", func(s *coordinationv1.LocalEmployerState) { s.Kind = 0 }, "employers[0].kind"},
		{"unknown kind", "520000", func(s *coordinationv1.LocalEmployerState) { s.Kind = 99 }, "employers[0].kind"},
		{"county of another province", "520000", func(s *coordinationv1.LocalEmployerState) { s.County = "450102" }, "employers[0].county"},
		{"negative capacity", "520000", func(s *coordinationv1.LocalEmployerState) { s.Capacity = -1 }, "employers[0].capacity"},
		{"no create time", "520000", func(s *coordinationv1.LocalEmployerState) { s.CreateTime = nil }, "employers[0].create_time"},
		{"a change without its time", "520000", func(s *coordinationv1.LocalEmployerState) { s.ResumptionChanges[0].ChangeTime = nil }, "employers[0].resumption_changes[0].change_time"},
		{"no version", "520000", func(s *coordinationv1.LocalEmployerState) { s.Version = 0 }, "employers[0].version"},
	} {
		s := good()
		if c.edit != nil {
			c.edit(s)
		}
		_, err := h.dynamics.ReportLocalEmployers(ctxT(t), &coordinationv1.ReportLocalEmployersRequest{ReporterRegion: c.region, Employers: []*coordinationv1.LocalEmployerState{s, good()}})
		if f := fieldViolations(t, err); f[c.field] == "" {
			t.Errorf("%s: violations %v, want one on %s", c.name, f, c.field)
		}
	}
	_, err := h.dynamics.ReportLocalEmployers(ctxT(t), &coordinationv1.ReportLocalEmployersRequest{ReporterRegion: "520000"})
	if f := fieldViolations(t, err); f["employers"] == "" {
		t.Errorf("no employers: violations %v", f)
	}
	resp, err := h.dynamics.GetNationalEmploymentDynamics(ctxT(t), &coordinationv1.GetNationalEmploymentDynamicsRequest{AsOf: civil.Today(at(50))})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(resp.GetRecoveryTotal().GetRecoveryRate(), &commonv1.Ratio{}) || len(resp.GetRecoveryBySendingRegion()) != 0 {
		t.Errorf("after refusals: %v %v, want nothing kept", resp.GetRecoveryTotal(), resp.GetRecoveryBySendingRegion())
	}
}

// A file of schema version 5 (no local employers' bucket) opens with version 6: the ledger's
// figures are those of before, the recovery rate is empty, and the provinces' reports are kept.
func TestOpenVersion5FileAddsLocalEmployers(t *testing.T) {
	dir := t.TempDir()
	lg := zapLogger(t)
	h := newHarness(t, dir, lg, Config{LoadDefaultPairings: true}, at(100))
	dep := ev("e-dep1", departed, "B1", "w1", at(20))
	dep.RegisteredPoor = true
	h.report(t, dep)
	asOf := &coordinationv1.GetNationalEmploymentDynamicsRequest{AsOf: civil.Today(at(50))}
	before, err := h.dynamics.GetNationalEmploymentDynamics(ctxT(t), asOf)
	if err != nil {
		t.Fatal(err)
	}
	h.close()

	asVersion(t, dir, 5, "localEmployers")

	h = newHarness(t, dir, lg, Config{LoadDefaultPairings: true}, at(100))
	defer h.close()
	after, err := h.dynamics.GetNationalEmploymentDynamics(ctxT(t), asOf)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(after, before) || after.GetTotal().GetOutAtWork() != 1 || after.GetRecoveryTotal().GetRecoveryRate().GetDenominator() != 0 {
		t.Fatalf("after the upgrade %v, want %v (one worker out, no employer)", after, before)
	}
	g := genEmployer{Region: "520000", County: "520102", ID: "520000-L00000001", Kind: sendingv1.LocalEmployerKind_LOCAL_EMPLOYER_KIND_PUBLIC_WELFARE_POST, Initial: true}
	if _, err := h.dynamics.ReportLocalEmployers(ctxT(t), &coordinationv1.ReportLocalEmployersRequest{ReporterRegion: "520000", Employers: g.states(1)}); err != nil {
		t.Fatal(err)
	}
	checkRecovery(t, h, []genEmployer{g}, 50)
}

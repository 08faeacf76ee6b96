package matcher

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

var day0 = DateOf(2026, time.March, 1)

// genInstance draws a small instance whose dates sit near the age and availability
// boundaries, so that the constraints bite.
func genInstance(t *rapid.T, maxWorkers, maxVacancies, maxOpenings int) ([]Worker, []Vacancy) {
	occs := []string{"8212", "9313"}
	provs := []string{"440000", "330000"}
	counties := []string{"520102", "520221", "522301"}
	nv := rapid.IntRange(1, maxVacancies).Draw(t, "vacancies")
	vacs := make([]Vacancy, nv)
	for i := range vacs {
		v := &vacs[i]
		v.Key = fmt.Sprintf("440000/vacancies/440000-V%03d", i)
		v.Province = rapid.SampledFrom(provs).Draw(t, "province")
		v.County = v.Province[:4] + "03"
		v.Occupation = rapid.SampledFrom([]string{"8212", "9313", General}).Draw(t, "occupation")
		v.StartDate = day0 + Date(rapid.IntRange(0, 3).Draw(t, "start"))
		v.MinAge = rapid.SampledFrom([]int{0, 16, 17, 18}).Draw(t, "minAge")
		v.MaxAge = rapid.SampledFrom([]int{0, 17, 18, 19}).Draw(t, "maxAge")
		v.Openings = rapid.IntRange(0, maxOpenings).Draw(t, "openings")
	}
	nw := rapid.IntRange(0, maxWorkers).Draw(t, "workers")
	workers := make([]Worker, nw)
	for i := range workers {
		w := &workers[i]
		w.ID = fmt.Sprintf("w%03d", i)
		w.County = rapid.SampledFrom(counties).Draw(t, "county")
		w.Poor = rapid.Bool().Draw(t, "poor")
		for _, o := range occs {
			if rapid.Bool().Draw(t, "hasOcc") {
				w.Occupations = append(w.Occupations, o)
			}
		}
		for _, pr := range provs {
			if rapid.IntRange(0, 2).Draw(t, "dest") == 0 {
				w.Destinations = append(w.Destinations, pr)
			}
		}
		age := rapid.IntRange(15, 20).Draw(t, "age")
		w.BirthDate = DateOf(2026-age, time.March, 1) + Date(rapid.IntRange(-2, 3).Draw(t, "birthShift"))
		w.AvailableFrom = day0 + Date(rapid.IntRange(-1, 4).Draw(t, "avail"))
		w.HealthOK = rapid.IntRange(0, 9).Draw(t, "health") > 0
		// Exclusions: about a third of the workers have some, now and then of a vacancy that
		// is not in the input.
		if rapid.IntRange(0, 2).Draw(t, "hasExclusions") == 0 {
			for j := range vacs {
				if rapid.Bool().Draw(t, "excluded") {
					w.Excluded = append(w.Excluded, vacs[j].Key)
				}
			}
			if rapid.IntRange(0, 4).Draw(t, "unknownExclusion") == 0 {
				w.Excluded = append(w.Excluded, "440000/vacancies/440000-V999")
			}
		}
	}
	return workers, vacs
}

// withShuffledExclusions returns a copy of workers whose exclusion lists are in another
// order (drawn from t).
func withShuffledExclusions(t *rapid.T, workers []Worker) []Worker {
	out := slices.Clone(workers)
	for i := range out {
		if len(out[i].Excluded) > 1 {
			out[i].Excluded = rapid.Permutation(out[i].Excluded).Draw(t, "exclusionOrder")
		}
	}
	return out
}

// bruteForce returns the lexicographic optimum (registered-poor placed, placed) by trying
// every assignment.
func bruteForce(workers []Worker, vacs []Vacancy) (bestPoor, bestPlaced int) {
	left := make([]int, len(vacs))
	for i, v := range vacs {
		left[i] = v.Openings
	}
	var rec func(i, poor, placed int)
	rec = func(i, poor, placed int) {
		if i == len(workers) {
			if poor > bestPoor || (poor == bestPoor && placed > bestPlaced) {
				bestPoor, bestPlaced = poor, placed
			}
			return
		}
		rec(i+1, poor, placed) // not placed
		for v := range vacs {
			if left[v] > 0 && Eligible(&workers[i], &vacs[v]) {
				left[v]--
				p := poor
				if workers[i].Poor {
					p++
				}
				rec(i+1, p, placed+1)
				left[v]++
			}
		}
	}
	rec(0, 0, 0)
	return bestPoor, bestPlaced
}

// checkValid fails t unless res is a feasible assignment whose counts match its assignments.
// fataler is what checkValid needs of *testing.T and *rapid.T.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

func checkValid(t fataler, workers []Worker, vacs []Vacancy, res Result) {
	t.Helper()
	wByID := map[string]*Worker{}
	for i := range workers {
		wByID[workers[i].ID] = &workers[i]
	}
	vByKey := map[string]*Vacancy{}
	for i := range vacs {
		vByKey[vacs[i].Key] = &vacs[i]
	}
	used := map[string]int{}
	seen := map[string]bool{}
	groups := map[[2]string]bool{}
	poor := 0
	for i, a := range res.Assignments {
		w, v := wByID[a.WorkerID], vByKey[a.VacancyKey]
		if w == nil || v == nil {
			t.Fatalf("assignment %v names an unknown worker or vacancy", a)
		}
		if seen[a.WorkerID] {
			t.Fatalf("worker %s assigned twice", a.WorkerID)
		}
		seen[a.WorkerID] = true
		if !Eligible(w, v) {
			t.Fatalf("worker %+v not eligible for vacancy %+v", *w, *v)
		}
		used[a.VacancyKey]++
		if used[a.VacancyKey] > v.Openings {
			t.Fatalf("vacancy %s over its %d openings", v.Key, v.Openings)
		}
		if w.Poor {
			poor++
		}
		groups[[2]string{v.Key, w.County}] = true
		if i > 0 {
			p := res.Assignments[i-1]
			if p.VacancyKey > a.VacancyKey || (p.VacancyKey == a.VacancyKey && p.WorkerID >= a.WorkerID) {
				t.Fatalf("assignments out of order at %d: %v then %v", i, p, a)
			}
		}
	}
	if res.Placed != len(res.Assignments) || res.PlacedPoor != poor || res.CountyGroups != len(groups) {
		t.Fatalf("counts placed=%d poor=%d groups=%d, assignments say %d, %d, %d",
			res.Placed, res.PlacedPoor, res.CountyGroups, len(res.Assignments), poor, len(groups))
	}
}

func TestMatchEqualsBruteForceOptimum(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		workers, vacs := genInstance(t, 8, 3, 2)
		wantPoor, wantPlaced := bruteForce(workers, vacs)
		res, err := Match(workers, vacs, Options{})
		if err != nil {
			t.Fatal(err)
		}
		checkValid(t, workers, vacs, res)
		if res.PlacedPoor != wantPoor || res.Placed != wantPlaced {
			t.Fatalf("Match placed (poor %d, all %d), optimum (poor %d, all %d)", res.PlacedPoor, res.Placed, wantPoor, wantPlaced)
		}
	})
}

func TestMatchAndGreedyFeasible(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		workers, vacs := genInstance(t, 60, 10, 6)
		res, err := Match(workers, vacs, Options{})
		if err != nil {
			t.Fatal(err)
		}
		checkValid(t, workers, vacs, res)
		greedy, err := Greedy(workers, vacs)
		if err != nil {
			t.Fatal(err)
		}
		checkValid(t, workers, vacs, greedy)
		if res.PlacedPoor < greedy.PlacedPoor || (res.PlacedPoor == greedy.PlacedPoor && res.Placed < greedy.Placed) {
			t.Fatalf("Match (poor %d, all %d) worse than greedy (poor %d, all %d)", res.PlacedPoor, res.Placed, greedy.PlacedPoor, greedy.Placed)
		}
		if res.EligibleWorkers != greedy.EligibleWorkers || res.Openings != greedy.Openings {
			t.Fatalf("eligible/openings differ: %d/%d vs %d/%d", res.EligibleWorkers, res.Openings, greedy.EligibleWorkers, greedy.Openings)
		}
		eligible := 0
		for i := range workers {
			for j := range vacs {
				if vacs[j].Openings > 0 && Eligible(&workers[i], &vacs[j]) {
					eligible++
					break
				}
			}
		}
		if res.EligibleWorkers != eligible {
			t.Fatalf("EligibleWorkers %d, want %d", res.EligibleWorkers, eligible)
		}
	})
}

// addExclusions excludes every 50th worker from up to three vacancies it is eligible for.
func addExclusions(r *rand.Rand, workers []Worker, vacs []Vacancy) {
	for i := 0; i < len(workers); i += 50 {
		w := &workers[i]
		for j, k := r.IntN(len(vacs)), 0; k < len(vacs) && len(w.Excluded) < 3; j, k = (j+1)%len(vacs), k+1 {
			if Eligible(w, &vacs[j]) {
				w.Excluded = append(w.Excluded, vacs[j].Key)
			}
		}
	}
}

func TestMatchDeterministic(t *testing.T) {
	workers, vacs := generate(7, 20_000, 400)
	r := rand.New(rand.NewPCG(1, 2))
	addExclusions(r, workers, vacs)
	want, err := Match(workers, vacs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, _ := json.Marshal(want)
	for range 2 {
		ws, vs := slices.Clone(workers), slices.Clone(vacs)
		for i := range ws {
			ws[i].Excluded = slices.Clone(ws[i].Excluded)
			r.Shuffle(len(ws[i].Excluded), func(a, b int) { ws[i].Excluded[a], ws[i].Excluded[b] = ws[i].Excluded[b], ws[i].Excluded[a] })
		}
		r.Shuffle(len(ws), func(i, j int) { ws[i], ws[j] = ws[j], ws[i] })
		r.Shuffle(len(vs), func(i, j int) { vs[i], vs[j] = vs[j], vs[i] })
		got, err := Match(ws, vs, Options{})
		if err != nil {
			t.Fatal(err)
		}
		gotJSON, _ := json.Marshal(got)
		if !bytes.Equal(gotJSON, wantJSON) {
			t.Fatal("shuffled input gave a different result")
		}
	}
	checkValid(t, workers, vacs, want)
}

func TestMatchDeterministicSmall(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		workers, vacs := genInstance(t, 40, 8, 5)
		want, err := Match(workers, vacs, Options{})
		if err != nil {
			t.Fatal(err)
		}
		ws := withShuffledExclusions(t, rapid.Permutation(workers).Draw(t, "workerOrder"))
		vs := rapid.Permutation(vacs).Draw(t, "vacancyOrder")
		got, err := Match(ws, vs, Options{})
		if err != nil {
			t.Fatal(err)
		}
		a, _ := json.Marshal(want)
		b, _ := json.Marshal(got)
		if !bytes.Equal(a, b) {
			t.Fatalf("result depends on input order:\n%s\n%s", a, b)
		}
	})
}

func TestConstraintBoundaries(t *testing.T) {
	start := DateOf(2026, time.March, 10)
	base := Worker{ID: "w1", County: "520102", Occupations: []string{"8212"}, BirthDate: DateOf(2000, time.June, 1),
		AvailableFrom: start - 5, HealthOK: true}
	vac := Vacancy{Key: "440000/vacancies/440000-V1", Province: "440000", County: "440303", Occupation: "8212",
		StartDate: start, Openings: 1}
	tests := []struct {
		name string
		w    func(*Worker)
		v    func(*Vacancy)
		want bool
	}{
		{"plain fit", nil, nil, true},
		{"age exactly MinAge on start date", func(w *Worker) { w.BirthDate = DateOf(2008, time.March, 10) },
			func(v *Vacancy) { v.MinAge = 18 }, true},
		{"MinAge birthday the day after start", func(w *Worker) { w.BirthDate = DateOf(2008, time.March, 11) },
			func(v *Vacancy) { v.MinAge = 18 }, false},
		{"MinAge 0 means 16: sixteen on start date", func(w *Worker) { w.BirthDate = DateOf(2010, time.March, 10) }, nil, true},
		{"MinAge 0 means 16: fifteen on start date", func(w *Worker) { w.BirthDate = DateOf(2010, time.March, 11) }, nil, false},
		{"age exactly MaxAge, next birthday the day after", func(w *Worker) { w.BirthDate = DateOf(1981, time.March, 11) },
			func(v *Vacancy) { v.MaxAge = 44 }, true},
		{"turns MaxAge+1 on start date", func(w *Worker) { w.BirthDate = DateOf(1981, time.March, 10) },
			func(v *Vacancy) { v.MaxAge = 44 }, false},
		{"MaxAge 0 is no limit", func(w *Worker) { w.BirthDate = DateOf(1950, time.January, 1) }, nil, true},
		{"born 29 February, eighteen on 1 March of a common year",
			func(w *Worker) {
				w.BirthDate = DateOf(2008, time.February, 29)
				w.AvailableFrom = DateOf(2026, time.January, 1)
			},
			func(v *Vacancy) { v.MinAge = 18; v.StartDate = DateOf(2026, time.March, 1) }, true},
		{"born 29 February, not yet eighteen on 28 February of a common year",
			func(w *Worker) {
				w.BirthDate = DateOf(2008, time.February, 29)
				w.AvailableFrom = DateOf(2026, time.January, 1)
			},
			func(v *Vacancy) { v.MinAge = 18; v.StartDate = DateOf(2026, time.February, 28) }, false},
		{"AvailableFrom == StartDate", func(w *Worker) { w.AvailableFrom = start }, nil, true},
		{"AvailableFrom the day after StartDate", func(w *Worker) { w.AvailableFrom = start + 1 }, nil, false},
		{"occupation not listed", func(w *Worker) { w.Occupations = []string{"9313"} }, nil, false},
		{"GENERAL takes a worker without occupations", func(w *Worker) { w.Occupations = nil },
			func(v *Vacancy) { v.Occupation = General }, true},
		{"GENERAL takes a worker of another trade", func(w *Worker) { w.Occupations = []string{"9313"} },
			func(v *Vacancy) { v.Occupation = General }, true},
		{"destinations empty means any", nil, func(v *Vacancy) { v.Province = "310000" }, true},
		{"destination listed", func(w *Worker) { w.Destinations = []string{"330000", "440000"} }, nil, true},
		{"destination not listed", func(w *Worker) { w.Destinations = []string{"330000"} }, nil, false},
		{"health check not passed", func(w *Worker) { w.HealthOK = false }, nil, false},
		{"excluded from the vacancy", func(w *Worker) { w.Excluded = []string{"440000/vacancies/440000-V0", vac.Key} }, nil, false},
		{"excluded from other vacancies only", func(w *Worker) { w.Excluded = []string{"440000/vacancies/440000-V0", "V9"} }, nil, true},
		{"no openings left", nil, func(v *Vacancy) { v.Openings = 0 }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, v := base, vac
			if tc.w != nil {
				tc.w(&w)
			}
			if tc.v != nil {
				tc.v(&v)
			}
			if v.Openings > 0 && Eligible(&w, &v) != tc.want {
				t.Fatalf("Eligible = %v, want %v", !tc.want, tc.want)
			}
			for _, solve := range []func([]Worker, []Vacancy) (Result, error){
				func(ws []Worker, vs []Vacancy) (Result, error) { return Match(ws, vs, Options{}) },
				Greedy,
			} {
				res, err := solve([]Worker{w}, []Vacancy{v})
				if err != nil {
					t.Fatal(err)
				}
				if got := res.Placed == 1; got != tc.want {
					t.Fatalf("placed = %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestPoorFirstThenMost(t *testing.T) {
	start := DateOf(2026, time.March, 10)
	birth := DateOf(1995, time.May, 5)
	w := func(id string, poor bool, occ ...string) Worker {
		return Worker{ID: id, County: "520102", Poor: poor, Occupations: occ, BirthDate: birth, AvailableFrom: start, HealthOK: true}
	}
	v := func(key, occ string, n int) Vacancy {
		return Vacancy{Key: key, Province: "440000", Occupation: occ, StartDate: start, Openings: n}
	}
	// The greedy baseline puts poor worker a on vacancy A (first by key); then poor b, who can
	// only do A, is left out. The optimum puts a on B and b on A.
	workers := []Worker{w("a", true, "8212", "9313"), w("b", true, "8212"), w("c", false, "9313")}
	vacs := []Vacancy{v("A", "8212", 1), v("B", "9313", 1)}
	res, err := Match(workers, vacs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Assignment{{"b", "A"}, {"a", "B"}}
	if !slices.Equal(res.Assignments, want) || res.PlacedPoor != 2 {
		t.Fatalf("Match = %+v, want %+v", res.Assignments, want)
	}
	greedy, err := Greedy(workers, vacs)
	if err != nil {
		t.Fatal(err)
	}
	if greedy.PlacedPoor != 1 {
		t.Fatalf("greedy placed %d poor, the example expects 1", greedy.PlacedPoor)
	}
	// Placing a non-poor worker never displaces a poor one, even when it would place more.
	workers = []Worker{w("p", true, "8212", "9313"), w("q", false, "8212"), w("r", false, "8212")}
	vacs = []Vacancy{v("A", "8212", 2)}
	res, err = Match(workers, vacs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.PlacedPoor != 1 || res.Placed != 2 {
		t.Fatalf("placed poor %d all %d, want 1 and 2", res.PlacedPoor, res.Placed)
	}
}

// TestExclusionsAreConstraints: an exclusion is part of the problem solved, not a filter of
// its solution. Worker x, excluded from A, goes to B so that y can take A; dropping the
// pair (x, A) from the unconstrained optimum instead would place one worker, not two.
func TestExclusionsAreConstraints(t *testing.T) {
	start := DateOf(2026, time.March, 10)
	mk := func(id, county string, excluded ...string) Worker {
		return Worker{ID: id, County: county, Occupations: []string{"8212", "9313"}, BirthDate: DateOf(1990, time.January, 2),
			AvailableFrom: start, HealthOK: true, Excluded: excluded}
	}
	vacs := []Vacancy{
		{Key: "A", Province: "440000", Occupation: "8212", StartDate: start, Openings: 1},
		{Key: "B", Province: "440000", Occupation: "9313", StartDate: start, Openings: 1},
	}
	want := []Assignment{{"y", "A"}, {"x", "B"}}
	for _, workers := range [][]Worker{
		{mk("x", "520102", "A"), mk("y", "522301")},
		{mk("x", "522301", "A"), mk("y", "520102")},
		{mk("x", "520102", "A", "gone"), mk("y", "520102")},
	} {
		res, err := Match(workers, vacs, Options{})
		if err != nil {
			t.Fatal(err)
		}
		checkValid(t, workers, vacs, res)
		if !slices.Equal(res.Assignments, want) || res.EligibleWorkers != 2 {
			t.Fatalf("Match = %+v (eligible %d), want %+v", res.Assignments, res.EligibleWorkers, want)
		}
		greedy, err := Greedy(workers, vacs)
		if err != nil {
			t.Fatal(err)
		}
		checkValid(t, workers, vacs, greedy)
	}
	// Excluded from the only vacancy it fits, a worker is not eligible at all.
	workers := []Worker{mk("x", "520102", "A", "B")}
	res, err := Match(workers, vacs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Placed != 0 || res.EligibleWorkers != 0 {
		t.Fatalf("worker excluded from every vacancy: placed %d, eligible %d", res.Placed, res.EligibleWorkers)
	}
}

func TestCountyTieBreak(t *testing.T) {
	start := DateOf(2026, time.March, 10)
	mk := func(id, county string, occ ...string) Worker {
		return Worker{ID: id, County: county, Occupations: occ, BirthDate: DateOf(1990, time.January, 2), AvailableFrom: start, HealthOK: true}
	}
	// Two vacancies of two; two workers from each of two counties, ids interleaving the
	// counties and the occupations making them different classes. Keeping counties together
	// gives two (vacancy, county) pairs.
	workers := []Worker{mk("1", "520102", "8212"), mk("2", "522301", "8212"), mk("3", "520102", "9313"), mk("4", "522301", "9313")}
	vacs := []Vacancy{
		{Key: "A", Province: "440000", Occupation: General, StartDate: start, Openings: 2},
		{Key: "B", Province: "440000", Occupation: General, StartDate: start, Openings: 2},
	}
	res, err := Match(workers, vacs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkValid(t, workers, vacs, res)
	if res.Placed != 4 || res.CountyGroups != 2 {
		t.Fatalf("placed %d with %d county groups (%+v), want 4 with 2", res.Placed, res.CountyGroups, res.Assignments)
	}
	// With spare workers, a lone worker of another county is replaced by one of the main
	// county, keeping the registered-poor count.
	workers = []Worker{mk("1", "520102", "8212"), mk("2", "522301", "8212"), mk("3", "520102", "9313")}
	vacs = []Vacancy{{Key: "A", Province: "440000", Occupation: "8212", StartDate: start, Openings: 2}}
	workers[2].Occupations = []string{"8212", "9313"}
	res, err = Match(workers, vacs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkValid(t, workers, vacs, res)
	if res.Placed != 2 || res.CountyGroups != 1 {
		t.Fatalf("placed %d with %d county groups (%+v), want 2 with 1", res.Placed, res.CountyGroups, res.Assignments)
	}
}

func TestAgeThreshold(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := DateOf(1960, time.January, 1) + Date(rapid.IntRange(0, 60*366).Draw(t, "birth"))
		on := DateOf(2020, time.January, 1) + Date(rapid.IntRange(0, 3000).Draw(t, "on"))
		age := rapid.IntRange(0, 70).Draw(t, "age")
		if (AgeOn(b, on) >= age) != (b <= latestBirthForAge(on, age)) {
			t.Fatalf("birth %v on %v age %d: AgeOn=%d threshold %v", b, on, age, AgeOn(b, on), latestBirthForAge(on, age))
		}
	})
}

func TestDuplicateInput(t *testing.T) {
	w := Worker{ID: "x", HealthOK: true}
	if _, err := Match([]Worker{w, w}, nil, Options{}); err == nil {
		t.Fatal("duplicate worker ids accepted")
	}
	v := Vacancy{Key: "k", Openings: 1}
	if _, err := Greedy(nil, []Vacancy{v, v}); err == nil {
		t.Fatal("duplicate vacancy keys accepted")
	}
}

func TestProgress(t *testing.T) {
	workers, vacs := generate(3, 2000, 50)
	last := -1
	var stages []string
	_, err := Match(workers, vacs, Options{Progress: func(stage string, pct int) {
		if pct < last || pct > 100 {
			t.Fatalf("progress %d after %d", pct, last)
		}
		last = pct
		if len(stages) == 0 || stages[len(stages)-1] != stage {
			stages = append(stages, stage)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if last != 100 || stages[len(stages)-1] != "done" {
		t.Fatalf("progress ended at %d in stage %v", last, stages)
	}
}

func TestDateString(t *testing.T) {
	d, err := ParseDate("2026-03-01")
	if err != nil || d != DateOf(2026, time.March, 1) || d.String() != "2026-03-01" {
		t.Fatalf("ParseDate = %v, %v", d, err)
	}
	if _, err := ParseDate("2026-02-30"); err == nil {
		t.Fatal("2026-02-30 accepted")
	}
}

// randomInstance draws a small instance from r with plenty of contention: most workers are
// eligible for something and openings are scarce.
func randomInstance(r *rand.Rand, nWorkers, nVacancies int) ([]Worker, []Vacancy) {
	pick := func(s []string) string { return s[r.IntN(len(s))] }
	vacs := make([]Vacancy, nVacancies)
	for i := range vacs {
		vacs[i] = Vacancy{
			Key:        fmt.Sprintf("V%d", i),
			Province:   pick([]string{"440000", "330000"}),
			Occupation: pick([]string{"8212", "9313", "8153", General}),
			StartDate:  day0 + Date(r.IntN(3)),
			MinAge:     []int{0, 0, 17, 18}[r.IntN(4)],
			MaxAge:     []int{0, 0, 19, 20}[r.IntN(4)],
			Openings:   r.IntN(3),
		}
	}
	workers := make([]Worker, nWorkers)
	for i := range workers {
		w := Worker{ID: fmt.Sprintf("w%d", i), County: pick([]string{"520102", "520221"}), Poor: r.IntN(2) == 0, HealthOK: r.IntN(12) > 0}
		for _, o := range []string{"8212", "9313", "8153"} {
			if r.IntN(2) == 0 {
				w.Occupations = append(w.Occupations, o)
			}
		}
		if r.IntN(2) == 0 {
			w.Destinations = []string{pick([]string{"440000", "330000"})}
		}
		w.BirthDate = DateOf(2026-16-r.IntN(5), time.March, 1) + Date(r.IntN(5)-2)
		w.AvailableFrom = day0 + Date(r.IntN(4)-1)
		if r.IntN(4) == 0 {
			w.Excluded = append(w.Excluded, vacs[r.IntN(len(vacs))].Key)
		}
		workers[i] = w
	}
	return workers, vacs
}

func TestMatchEqualsBruteForceOptimumSeeded(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	greedyWorse := 0
	for i := range 3000 {
		workers, vacs := randomInstance(r, 4+r.IntN(6), 1+r.IntN(3))
		wantPoor, wantPlaced := bruteForce(workers, vacs)
		res, err := Match(workers, vacs, Options{})
		if err != nil {
			t.Fatal(err)
		}
		checkValid(t, workers, vacs, res)
		if res.PlacedPoor != wantPoor || res.Placed != wantPlaced {
			t.Fatalf("instance %d: Match placed (poor %d, all %d), optimum (poor %d, all %d)\nworkers %+v\nvacancies %+v",
				i, res.PlacedPoor, res.Placed, wantPoor, wantPlaced, workers, vacs)
		}
		greedy, err := Greedy(workers, vacs)
		if err != nil {
			t.Fatal(err)
		}
		if greedy.PlacedPoor < wantPoor || greedy.Placed < wantPlaced {
			greedyWorse++
		}
	}
	// The instances must be hard enough that the per-worker greedy misses the optimum often.
	if greedyWorse < 40 {
		t.Fatalf("only %d of 3000 instances separate greedy from the optimum", greedyWorse)
	}
	t.Logf("greedy below the optimum on %d of 3000 instances", greedyWorse)
}

func TestEmptyInput(t *testing.T) {
	workers, _ := generate(1, 10, 1)
	for _, in := range []struct {
		ws []Worker
		vs []Vacancy
	}{{nil, nil}, {workers, nil}, {nil, []Vacancy{{Key: "k", Openings: 3, Occupation: General}}}} {
		res, err := Match(in.ws, in.vs, Options{})
		if err != nil || res.Placed != 0 || len(res.Assignments) != 0 {
			t.Fatalf("Match on %d workers, %d vacancies: %+v, %v", len(in.ws), len(in.vs), res, err)
		}
	}
}

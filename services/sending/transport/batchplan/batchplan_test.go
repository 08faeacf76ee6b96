package batchplan

import (
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// workersOf makes workers of counties c0, c1, ... with the given sizes.
func workersOf(sizes ...int) []Worker {
	var ws []Worker
	for c, n := range sizes {
		for i := range n {
			ws = append(ws, Worker{ID: fmt.Sprintf("w%02d-%03d", c, i), HomeCounty: fmt.Sprintf("5201%02d", c)})
		}
	}
	return ws
}

// checkLoads fails t unless loads carry every worker exactly once, in ceil(n/seats) vehicles,
// none over seats.
func checkLoads(t interface {
	Helper()
	Fatalf(string, ...any)
}, workers []Worker, loads [][]Worker, seats int) {
	t.Helper()
	want := (len(workers) + seats - 1) / seats
	if len(loads) != want {
		t.Fatalf("%d vehicles for %d workers of %d seats, want %d", len(loads), len(workers), seats, want)
	}
	seen := map[string]int{}
	for i, l := range loads {
		if len(l) > seats || len(l) == 0 {
			t.Fatalf("vehicle %d carries %d workers, seats %d", i, len(l), seats)
		}
		for _, w := range l {
			seen[w.ID]++
		}
	}
	for _, w := range workers {
		if seen[w.ID] != 1 {
			t.Fatalf("worker %s carried %d times", w.ID, seen[w.ID])
		}
	}
	if len(seen) != len(workers) {
		t.Fatalf("%d workers carried, %d given", len(seen), len(workers))
	}
}

func TestPlanGroupTable(t *testing.T) {
	tests := []struct {
		name       string
		sizes      []int
		seats      int
		wantSplits int
	}{
		{"empty", nil, 45, 0},
		{"one seat left", []int{44}, 45, 0},
		{"exactly full", []int{45}, 45, 0},
		{"one over", []int{46}, 45, 1},
		{"two counties, one bus", []int{20, 25}, 45, 0},
		{"counties fit exactly into two buses", []int{30, 15, 20, 25}, 45, 0},
		{"first-fit decreasing would split, exact packing does not", []int{5, 4, 3, 3, 3, 2}, 10, 0},
		{"must split: three of 2 in two 3-seaters", []int{2, 2, 2}, 3, 1},
		{"big county fills coaches on its own", []int{250, 10}, 118, 2},
		{"many small counties", []int{7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7}, 45, 0},
		{"charter flight", []int{100, 90, 80}, 180, 0},
		{"county over one vehicle shares the last", []int{50, 40}, 45, 1},
		{"one seat per vehicle", []int{3, 2}, 1, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ws := workersOf(tc.sizes...)
			loads, err := PlanGroup(ws, tc.seats)
			if err != nil {
				t.Fatal(err)
			}
			checkLoads(t, ws, loads, tc.seats)
			if got := CountySplits(loads); got != tc.wantSplits {
				t.Fatalf("county splits %d, want %d: %v", got, tc.wantSplits, shape(loads))
			}
		})
	}
}

func TestPlanGroupProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		seats := rapid.SampledFrom([]int{1, 2, 5, 10, 45, 118, 180}).Draw(t, "seats")
		sizes := rapid.SliceOfN(rapid.IntRange(1, 120), 0, 30).Draw(t, "sizes")
		ws := workersOf(sizes...)
		loads, err := PlanGroup(ws, seats)
		if err != nil {
			t.Fatal(err)
		}
		checkLoads(t, ws, loads, seats)
		// Deterministic whatever the input order.
		again, err := PlanGroup(rapid.Permutation(ws).Draw(t, "order"), seats)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(loads, again, func(a, b []Worker) bool { return slices.Equal(a, b) }) {
			t.Fatal("plan depends on input order")
		}
	})
}

// A plan where counties can be kept whole must keep them whole: built by cutting vehicles
// into random county pieces.
func TestPlanGroupKeepsCountiesWhenTheyFit(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		seats := rapid.IntRange(2, 50).Draw(t, "seats")
		vehicles := rapid.IntRange(1, 5).Draw(t, "vehicles")
		var sizes []int
		for range vehicles {
			left := seats
			for left > 0 {
				n := rapid.IntRange(1, left).Draw(t, "piece")
				sizes = append(sizes, n)
				left -= n
			}
		}
		ws := workersOf(sizes...)
		loads, err := PlanGroup(ws, seats)
		if err != nil {
			t.Fatal(err)
		}
		checkLoads(t, ws, loads, seats)
		if s := CountySplits(loads); s != 0 {
			t.Fatalf("%d county splits, counties %v fit whole in %d vehicles of %d", s, sizes, vehicles, seats)
		}
	})
}

func TestPlan(t *testing.T) {
	groups := []Group{
		{Province: "440000", County: "440306", StartDate: "2026-03-02", Workers: workersOf(30, 20)[:40]},
		{Province: "330000", County: "330106", StartDate: "2026-03-02", Workers: []Worker{{ID: "x1", HomeCounty: "520102"}}},
		{Province: "440000", County: "440306", StartDate: "2026-03-02", Workers: workersOf(30, 20)[40:]},
	}
	vs, err := Plan(groups, 45)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 3 || vs[0].Province != "330000" || vs[1].County != "440306" || vs[2].Seats != 45 {
		t.Fatalf("unexpected plan %+v", vs)
	}
	if len(vs[1].Workers)+len(vs[2].Workers) != 50 {
		t.Fatalf("merged group carries %d workers, want 50", len(vs[1].Workers)+len(vs[2].Workers))
	}
	if _, err := Plan(groups, 0); err != ErrBadSeats {
		t.Fatalf("seats 0: err = %v", err)
	}
	dup := []Group{{Workers: []Worker{{ID: "a"}}}, {County: "x", Workers: []Worker{{ID: "a"}}}}
	if _, err := Plan(dup, 45); err == nil {
		t.Fatal("a worker in two groups was accepted")
	}
}

// shape describes loads as per-vehicle county counts, for failure messages.
func shape(loads [][]Worker) []map[string]int {
	var out []map[string]int
	for _, l := range loads {
		m := map[string]int{}
		for _, w := range l {
			m[w.HomeCounty]++
		}
		out = append(out, m)
	}
	return out
}

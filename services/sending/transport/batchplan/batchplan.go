// Package batchplan plans the vehicles (batches) that take accepted workers to their jobs.
//
// Workers going to the same destination (receiving province and work county) on the same start
// date form a group. Each group gets the minimum number of vehicles, ceil(workers / seats),
// always. Subject to that, workers of one home county travel together as much as possible: the
// plan keeps the number of (vehicle, home county) pairs small, i.e. splits as few counties
// across vehicles as it can.
//
// Per group, counties of at least a vehicle's seats first fill whole vehicles on their own;
// the remainders and the smaller counties are then packed whole into the remaining vehicles:
// by an exact depth-first search when the pieces are few (bounded work), otherwise by
// first-fit decreasing; pieces that fit nowhere whole are split over the vehicles with the
// most free seats first. Everything is ordered by size, county code and worker id, so the same
// input gives the same plan whatever its order.
package batchplan

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Worker is an accepted worker to be carried.
type Worker struct {
	// ID is the worker's opaque id.
	ID string
	// HomeCounty is the worker's home county (GB/T 2260 code).
	HomeCounty string
}

// Group is a set of workers with one destination and start date.
type Group struct {
	// Province is the receiving province code.
	Province string
	// County is the work county code.
	County string
	// StartDate is the jobs' start date, YYYY-MM-DD.
	StartDate string
	// Workers to carry.
	Workers []Worker
}

// Vehicle is one planned batch.
type Vehicle struct {
	Province  string
	County    string
	StartDate string
	// Seats in the vehicle.
	Seats int
	// Workers is the manifest, in (home county, id) order.
	Workers []Worker
}

// ErrBadSeats is returned for a seat count below 1.
var ErrBadSeats = errors.New("batchplan: seats per vehicle must be at least 1")

// Plan plans vehicles of the given seats for every group. Groups with the same (Province,
// County, StartDate) are merged. Vehicles come in (Province, County, StartDate) order, and
// within a group in plan order. It fails for seats < 1 or a worker id that appears twice.
func Plan(groups []Group, seats int) ([]Vehicle, error) {
	if seats < 1 {
		return nil, ErrBadSeats
	}
	type key struct{ province, county, start string }
	merged := map[key][]Worker{}
	var keys []key
	seen := map[string]bool{}
	for _, g := range groups {
		k := key{g.Province, g.County, g.StartDate}
		if _, ok := merged[k]; !ok {
			keys = append(keys, k)
		}
		for _, w := range g.Workers {
			if seen[w.ID] {
				return nil, fmt.Errorf("batchplan: worker %q appears twice", w.ID)
			}
			seen[w.ID] = true
		}
		merged[k] = append(merged[k], g.Workers...)
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(strings.Compare(a.province, b.province), strings.Compare(a.county, b.county), strings.Compare(a.start, b.start))
	})
	var out []Vehicle
	for _, k := range keys {
		loads, err := PlanGroup(merged[k], seats)
		if err != nil {
			return nil, err
		}
		for _, ws := range loads {
			out = append(out, Vehicle{Province: k.province, County: k.county, StartDate: k.start, Seats: seats, Workers: ws})
		}
	}
	return out, nil
}

// PlanGroup splits one group's workers into exactly ceil(len(workers)/seats) vehicle loads,
// none over seats, keeping home counties together as much as it can. Each load is in
// (home county, id) order.
func PlanGroup(workers []Worker, seats int) ([][]Worker, error) {
	if seats < 1 {
		return nil, ErrBadSeats
	}
	if len(workers) == 0 {
		return nil, nil
	}
	ws := slices.Clone(workers)
	slices.SortFunc(ws, func(a, b Worker) int {
		return cmp.Or(strings.Compare(a.HomeCounty, b.HomeCounty), strings.Compare(a.ID, b.ID))
	})
	for i := 1; i < len(ws); i++ {
		if ws[i].ID == ws[i-1].ID {
			return nil, fmt.Errorf("batchplan: worker %q appears twice", ws[i].ID)
		}
	}
	// Counties as runs of ws.
	type piece struct{ workers []Worker }
	var counties []piece
	for i := 0; i < len(ws); {
		j := i
		for j < len(ws) && ws[j].HomeCounty == ws[i].HomeCounty {
			j++
		}
		counties = append(counties, piece{ws[i:j:j]})
		i = j
	}
	bySize := func(a, b piece) int {
		return cmp.Or(cmp.Compare(len(b.workers), len(a.workers)), strings.Compare(a.workers[0].HomeCounty, b.workers[0].HomeCounty))
	}
	slices.SortStableFunc(counties, bySize)

	var loads [][]Worker
	// Whole vehicles for big counties; their remainders become pieces.
	var pieces []piece
	for _, c := range counties {
		w := c.workers
		for len(w) >= seats {
			loads = append(loads, w[:seats:seats])
			w = w[seats:]
		}
		if len(w) > 0 {
			pieces = append(pieces, piece{w})
		}
	}
	slices.SortStableFunc(pieces, bySize)
	rest := 0
	for _, p := range pieces {
		rest += len(p.workers)
	}
	k := (rest + seats - 1) / seats

	sizes := make([]int, len(pieces))
	for i, p := range pieces {
		sizes[i] = len(p.workers)
	}
	bin := exactPack(sizes, k, seats)
	if bin == nil {
		bin = firstFitDecreasing(sizes, k, seats)
	}
	bins := make([][]Worker, k)
	free := make([]int, k)
	for i := range free {
		free[i] = seats
	}
	var split []int
	for i, b := range bin {
		if b < 0 {
			split = append(split, i)
			continue
		}
		bins[b] = append(bins[b], pieces[i].workers...)
		free[b] -= sizes[i]
	}
	// Pieces that fit nowhere whole go, in order, to the vehicles with the most free seats.
	for _, i := range split {
		w := pieces[i].workers
		for len(w) > 0 {
			best := 0
			for b := range free {
				if free[b] > free[best] {
					best = b
				}
			}
			n := min(free[best], len(w))
			bins[best] = append(bins[best], w[:n]...)
			free[best] -= n
			w = w[n:]
		}
	}
	for _, b := range bins {
		slices.SortFunc(b, func(x, y Worker) int {
			return cmp.Or(strings.Compare(x.HomeCounty, y.HomeCounty), strings.Compare(x.ID, y.ID))
		})
		loads = append(loads, b)
	}
	return loads, nil
}

// exactBudget bounds the depth-first search of exactPack.
const exactBudget = 200_000

// exactPack looks for a packing of sizes (in decreasing order) into k bins of capacity seats
// without splitting any piece. It returns the bin of each piece, or nil when it finds none
// within its budget.
func exactPack(sizes []int, k, seats int) []int {
	if len(sizes) > 64 {
		return nil
	}
	free := make([]int, k)
	for i := range free {
		free[i] = seats
	}
	bin := make([]int, len(sizes))
	steps := 0
	var place func(i int) bool
	place = func(i int) bool {
		if i == len(sizes) {
			return true
		}
		steps++
		if steps > exactBudget {
			return false
		}
		var tried []int // bins with equal free space are interchangeable
		for b := range free {
			if free[b] < sizes[i] || slices.Contains(tried, free[b]) {
				continue
			}
			tried = append(tried, free[b])
			free[b] -= sizes[i]
			bin[i] = b
			if place(i + 1) {
				return true
			}
			free[b] += sizes[i]
		}
		return false
	}
	if !place(0) {
		return nil
	}
	return bin
}

// firstFitDecreasing puts each piece (sizes in decreasing order) into the first bin where it
// fits whole, or -1 when none has room.
func firstFitDecreasing(sizes []int, k, seats int) []int {
	free := make([]int, k)
	for i := range free {
		free[i] = seats
	}
	bin := make([]int, len(sizes))
	for i, s := range sizes {
		bin[i] = -1
		for b := range free {
			if free[b] >= s {
				free[b] -= s
				bin[i] = b
				break
			}
		}
	}
	return bin
}

// CountySplits returns the number of (vehicle, home county) pairs of loads minus the number of
// distinct home counties: 0 when no county is split across vehicles.
func CountySplits(loads [][]Worker) int {
	counties := map[string]bool{}
	pairs := 0
	for _, l := range loads {
		here := map[string]bool{}
		for _, w := range l {
			counties[w.HomeCounty] = true
			if !here[w.HomeCounty] {
				here[w.HomeCounty] = true
				pairs++
			}
		}
	}
	return pairs - len(counties)
}

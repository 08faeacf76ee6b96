// Package matcher proposes available workers for open vacancies: which worker goes to which
// vacancy, under the matching constraints of the point-to-point programme, and with the
// programme's objective:
//
//  1. place as many registered-poor workers as possible;
//  2. subject to 1, place as many workers as possible;
//  3. subject to 1 and 2, keep workers of one home county together on one vacancy: the
//     number of distinct (vacancy, home county) pairs among the assignments (CountyGroups)
//     is made small.
//
// The constraints (see Eligible): health check passed; the vacancy's occupation is one the
// worker lists, or the vacancy is General; the worker's age in whole years on the start date is
// within the vacancy's limits; the vacancy's province is among the worker's destinations (or
// the worker has none); the worker is available by the start date; the vacancy is not among
// the worker's exclusions (Worker.Excluded, for example vacancies the worker was proposed for
// before); no vacancy gets more workers than its openings; no worker goes to two vacancies.
// All of them, exclusions included, are hard constraints: no assignment breaks one, and the
// optimality below is among the assignments that keep all of them.
//
// # Algorithm
//
// Match solves objectives 1 and 2 exactly, as a maximum flow computed with Dinic's algorithm
// in two phases on an aggregated network:
//
//	source -> worker class -> ladder nodes (market, age bucket, start date) -> vacancy -> sink
//	source -> worker class -> vacancy -> sink   (markets where the class has exclusions)
//
// where:
//   - A worker class is a set of workers with the same occupations, destinations,
//     registered-poor flag, age bucket, availability bucket and exclusions (only those from
//     vacancies they would otherwise be eligible for count; sorted, so the class does not
//     depend on their order); they are interchangeable for every constraint. Its source arc
//     has the class size as capacity. Home county is not part of the class (it matters only
//     for objective 3), which keeps classes few; few workers have exclusions, so those add
//     few classes.
//   - A market is the (occupation, province) of a vacancy. A class enters, for each market it
//     fits (its occupations plus General, times its destinations), the ladder of that market
//     and of its age bucket, at the first start date it is available for. The age buckets of
//     a market cut the birth-date line wherever one of the market's vacancies changes its
//     answer (start date minus the minimum age; start date minus the maximum age plus one),
//     so all workers of a bucket meet the same age limits of the market.
//   - A ladder has one node per start date of its market, linked by infinite-capacity arcs
//     that only go to later dates (steps of 1, 2, 4, ... as in a skip list, so paths stay
//     short), which keeps "available by the start date" without a node per (class, date).
//   - A ladder node has an arc to each vacancy of its market that starts that day and whose
//     age limits its age bucket meets; a vacancy's arc to the sink has its openings as
//     capacity.
//   - A ladder is shared by every class entering it, so it cannot keep a class away from one
//     of its vacancies. A class excluded from some vacancy of a market therefore does not
//     enter that market's ladder: it gets direct arcs to the market's other vacancies whose
//     age limits and start date it meets.
//
// Every source-to-sink path therefore joins a class to a vacancy all its workers are eligible
// for, and every eligible (worker, vacancy) pair has such a path, so integral flows are exactly
// the feasible assignments (counted per class), and flow value = workers placed.
//
// Phase 1 gives capacity only to the source arcs of registered-poor classes and computes a
// maximum flow: the most registered-poor workers that can be placed. Phase 2 opens the other
// source arcs and continues Dinic from that flow. Augmenting paths are simple paths from the
// source, so they never lower the flow on a source arc: the registered-poor count of phase 1
// is kept, and phase 2 ends at a maximum flow of the whole network. Sets of workers that can be
// placed together are the independent sets of a transversal matroid, so "maximum
// registered-poor set first, extended to a maximum set" is optimal for the lexicographic
// objective (1, 2): no assignment places more registered-poor workers, and none with as many
// registered-poor workers places more workers.
//
// Objective 3 is a tie-breaker that never changes the counts reached. Minimising the number of
// (vacancy, home county) pairs exactly is a fixed-charge problem (NP-hard), so it is improved
// by two deterministic steps that keep the flow's counts:
//
//  1. Turning the flow into workers: a class hands its workers, in (county, id) order, to its
//     ladder entries and then to its direct arcs (as many as each arc's flow); inside a ladder
//     every worker who entered at or before a start date may go to any vacancy of that date
//     (flow conservation guarantees there are enough), so each vacancy takes its workers
//     county by county: counties already on the vacancy first, then the county with the most
//     workers waiting.
//  2. Consolidation: each vacancy then tries to replace all the workers of one of its smaller
//     county groups by unplaced workers with the same registered-poor flag, eligible for it,
//     from a county already on the vacancy (largest group first). A group is replaced whole
//     or not at all, so every replacement removes one (vacancy, county) pair and leaves
//     Placed and PlacedPoor unchanged.
//
// The output depends only on the set of workers and vacancies (and each worker's set of
// exclusions): inputs are sorted by worker id and vacancy key first, exclusions by vacancy,
// and every later step visits them in a fixed order.
package matcher

import (
	"cmp"
	"fmt"
	"iter"
	"slices"
	"sort"
	"strings"
)

// Algorithm names the algorithm Match uses, for the record of a match run.
const Algorithm = "two-phase Dinic maximum flow on worker classes and (occupation, province, age bucket) start-date ladders; county consolidation by whole-group replacement"

// Options tunes a Match call.
type Options struct {
	// Progress, when not nil, is called as the match advances, with a short stage name and a
	// rough percentage (0..100) of the whole run.
	Progress func(stage string, percent int)
}

// Assignment places one worker on one vacancy.
type Assignment struct {
	WorkerID   string
	VacancyKey string
}

// Result is the outcome of Match or Greedy.
type Result struct {
	// Assignments in (VacancyKey, WorkerID) order.
	Assignments []Assignment
	// Placed is the number of workers placed.
	Placed int
	// PlacedPoor is the number of registered-poor workers placed.
	PlacedPoor int
	// EligibleWorkers is the number of workers eligible for at least one vacancy.
	EligibleWorkers int
	// Openings is the sum of the vacancies' openings.
	Openings int
	// CountyGroups is the number of distinct (vacancy, home county) pairs among the
	// assignments (objective 3; lower keeps counties together better).
	CountyGroups int
	// Algorithm names the algorithm used.
	Algorithm string
}

// problem is the input sorted and reduced to small integers.
type problem struct {
	workers  []*Worker  // by ID
	vacs     []*Vacancy // by Key
	counties []string   // distinct worker counties, sorted
	wCounty  []int32
	// wExcl[w] are the indices of the vacancies worker w is excluded from, ascending; nil
	// when no worker has exclusions.
	wExcl [][]int32
	// directs are the direct arcs of the classes that have some (see class.direct); set by
	// classify.
	directs [][]int32

	provs []string // distinct vacancy provinces, sorted
	occs  []string // distinct vacancy occupations other than General, sorted; General = len(occs)

	// per vacancy
	vStart  []Date
	vThMin  []Date // age >= min  <=>  birth <= vThMin
	vThMax1 []Date // age <= max  <=>  birth >  vThMax1 (when vHasMax)
	vHasMax []bool
	vOpen   []int32
	vMarket []int32

	markets []market // indexed by occupation id * len(provs) + province id
}

type market struct {
	vacs   []int32 // vacancy indices, ascending
	starts []Date  // distinct start dates, ascending
	bps    []Date  // age bucket breakpoints, ascending: bucket(b) = #{bps < b}
	vPos   []int32 // position in starts of each of vacs
	vLo    []int32 // lowest fitting age bucket of each of vacs
	vHi    []int32 // highest fitting age bucket (inclusive), -1 when none
	// lastFit[bucket] is the last start position with a vacancy the bucket fits, -1 if none.
	lastFit []int32
}

// fits reports whether worker w meets vacancy v's availability and age limits and is not
// excluded from it; occupation, destination and health are the caller's (market) business.
func (p *problem) fits(w int32, v int32) bool {
	return p.fitsDates(w, v) && !p.excluded(w, v)
}

// fitsDates is fits without the exclusions.
func (p *problem) fitsDates(w int32, v int32) bool {
	b := p.workers[w].BirthDate
	if p.workers[w].AvailableFrom > p.vStart[v] || b > p.vThMin[v] {
		return false
	}
	return !p.vHasMax[v] || b > p.vThMax1[v]
}

// excluded reports whether worker w is excluded from vacancy v.
func (p *problem) excluded(w int32, v int32) bool {
	if p.wExcl == nil || len(p.wExcl[w]) == 0 {
		return false
	}
	_, found := slices.BinarySearch(p.wExcl[w], v)
	return found
}

func newProblem(workers []Worker, vacancies []Vacancy) (*problem, error) {
	p := &problem{}
	p.workers = make([]*Worker, len(workers))
	for i := range workers {
		p.workers[i] = &workers[i]
	}
	slices.SortFunc(p.workers, func(a, b *Worker) int { return strings.Compare(a.ID, b.ID) })
	for i := 1; i < len(p.workers); i++ {
		if p.workers[i].ID == p.workers[i-1].ID {
			return nil, fmt.Errorf("matcher: duplicate worker id %q", p.workers[i].ID)
		}
	}
	p.vacs = make([]*Vacancy, len(vacancies))
	for i := range vacancies {
		p.vacs[i] = &vacancies[i]
	}
	slices.SortFunc(p.vacs, func(a, b *Vacancy) int { return strings.Compare(a.Key, b.Key) })
	for i := 1; i < len(p.vacs); i++ {
		if p.vacs[i].Key == p.vacs[i-1].Key {
			return nil, fmt.Errorf("matcher: duplicate vacancy key %q", p.vacs[i].Key)
		}
	}

	for wi, w := range p.workers {
		var excl []int32
		for _, key := range w.Excluded {
			i, found := slices.BinarySearchFunc(p.vacs, key, func(v *Vacancy, k string) int { return strings.Compare(v.Key, k) })
			if found {
				excl = append(excl, int32(i))
			}
		}
		if len(excl) > 0 {
			if p.wExcl == nil {
				p.wExcl = make([][]int32, len(p.workers))
			}
			slices.Sort(excl)
			p.wExcl[wi] = slices.Compact(excl)
		}
	}

	for _, w := range p.workers {
		p.counties = append(p.counties, w.County)
	}
	p.counties = sortedUnique(p.counties)
	p.wCounty = make([]int32, len(p.workers))
	for i, w := range p.workers {
		p.wCounty[i] = int32(index(p.counties, w.County))
	}

	for _, v := range p.vacs {
		p.provs = append(p.provs, v.Province)
		if v.Occupation != General {
			p.occs = append(p.occs, v.Occupation)
		}
	}
	p.provs = sortedUnique(p.provs)
	p.occs = sortedUnique(p.occs)
	if len(p.provs) > 64 {
		return nil, fmt.Errorf("matcher: %d vacancy provinces, at most 64 supported", len(p.provs))
	}
	nv := len(p.vacs)
	p.vStart = make([]Date, nv)
	p.vThMin = make([]Date, nv)
	p.vThMax1 = make([]Date, nv)
	p.vHasMax = make([]bool, nv)
	p.vOpen = make([]int32, nv)
	p.vMarket = make([]int32, nv)
	p.markets = make([]market, (len(p.occs)+1)*len(p.provs))
	for i, v := range p.vacs {
		p.vStart[i] = v.StartDate
		minAge := v.MinAge
		if minAge <= 0 {
			minAge = DefaultMinAge
		}
		p.vThMin[i] = latestBirthForAge(v.StartDate, minAge)
		if v.MaxAge > 0 {
			p.vHasMax[i] = true
			p.vThMax1[i] = latestBirthForAge(v.StartDate, v.MaxAge+1)
		}
		p.vOpen[i] = int32(min(max(v.Openings, 0), 1<<30))
		occ := len(p.occs)
		if v.Occupation != General {
			occ = index(p.occs, v.Occupation)
		}
		m := int32(occ*len(p.provs) + index(p.provs, v.Province))
		p.vMarket[i] = m
		p.markets[m].vacs = append(p.markets[m].vacs, int32(i))
	}
	for mi := range p.markets {
		m := &p.markets[mi]
		for _, v := range m.vacs {
			m.starts = append(m.starts, p.vStart[v])
			m.bps = append(m.bps, p.vThMin[v])
			if p.vHasMax[v] {
				m.bps = append(m.bps, p.vThMax1[v])
			}
		}
		slices.Sort(m.starts)
		m.starts = slices.Compact(m.starts)
		slices.Sort(m.bps)
		m.bps = slices.Compact(m.bps)
		m.vPos = make([]int32, len(m.vacs))
		m.vLo = make([]int32, len(m.vacs))
		m.vHi = make([]int32, len(m.vacs))
		m.lastFit = make([]int32, len(m.bps)+1)
		for i := range m.lastFit {
			m.lastFit[i] = -1
		}
		for i, v := range m.vacs {
			m.vPos[i] = int32(lowerBound(m.starts, p.vStart[v]))
			// bucket(b) <= j  <=>  b <= bps[j]
			hi := int32(lowerBound(m.bps, p.vThMin[v]))
			lo := int32(0)
			if p.vHasMax[v] {
				lo = int32(lowerBound(m.bps, p.vThMax1[v])) + 1
			}
			if p.vOpen[v] == 0 {
				hi = -1 // a full vacancy takes nobody
			}
			m.vLo[i], m.vHi[i] = lo, hi
			for b := lo; b <= hi; b++ {
				m.lastFit[b] = max(m.lastFit[b], m.vPos[i])
			}
		}
	}
	return p, nil
}

// lowerBound returns the number of elements of s less than x.
func lowerBound(s []Date, x Date) int {
	return sort.Search(len(s), func(i int) bool { return s[i] >= x })
}

func sortedUnique(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

func index(sorted []string, s string) int {
	i, ok := slices.BinarySearch(sorted, s)
	if !ok {
		return -1
	}
	return i
}

// class is a set of interchangeable workers.
type class struct {
	workers []int32 // worker indices, in (county, id) order
	poor    bool
	// direct indexes problem.directs when the class has direct arcs (see problem.direct),
	// 0 when not; an index, not a slice, keeps the many classes small.
	direct  int32
	entries []entry
}

// direct returns the vacancies class c reaches by arcs of its own instead of a ladder: those
// it fits in the markets where it is excluded from some vacancy. Ascending by market, then key.
func (p *problem) direct(c *class) []int32 {
	if c.direct == 0 {
		return nil
	}
	return p.directs[c.direct]
}

// marketsOf yields each market class c reaches, once: those of its ladder entries, then those
// of its direct arcs.
func (p *problem) marketsOf(c *class) iter.Seq[int32] {
	return func(yield func(int32) bool) {
		for _, e := range c.entries {
			if !yield(e.market) {
				return
			}
		}
		last := int32(-1)
		for _, v := range p.direct(c) {
			if m := p.vMarket[v]; m != last {
				if !yield(m) {
					return
				}
				last = m
			}
		}
	}
}

// entry is where a class enters a market's ladder.
type entry struct {
	market int32
	bucket int32
	pos    int32
}

// classify groups the workers eligible for something into classes, in order of their first
// worker's id.
func (p *problem) classify() []class {
	var gStarts, gBps []Date
	for _, m := range p.markets {
		gStarts = append(gStarts, m.starts...)
		gBps = append(gBps, m.bps...)
	}
	slices.Sort(gStarts)
	gStarts = slices.Compact(gStarts)
	slices.Sort(gBps)
	gBps = slices.Compact(gBps)

	type key struct {
		occs   string
		dest   uint64
		poor   bool
		ab, ai int32
	}
	// Workers with exclusions that matter have classes of their own, found by the key and
	// the exclusions (4 bytes per vacancy index); the others keep the smaller key.
	type exclKey struct {
		key
		excl string
	}
	allDest := uint64(1)<<len(p.provs) - 1
	if len(p.provs) == 64 {
		allDest = ^uint64(0)
	}
	ids := map[key]int32{}
	exclIDs := map[exclKey]int32{}
	p.directs = nil
	var classes []class
	var occBuf, exclBuf []byte
	var excl []int32
	for wi, w := range p.workers {
		if !w.HealthOK {
			continue
		}
		occBuf = occBuf[:0]
		var occIDs []int
		for _, o := range w.Occupations {
			if i := index(p.occs, o); i >= 0 && !slices.Contains(occIDs, i) {
				occIDs = append(occIDs, i)
			}
		}
		slices.Sort(occIDs)
		for _, o := range occIDs {
			occBuf = append(occBuf, byte(o), byte(o>>8), byte(o>>16))
		}
		dest := allDest
		if len(w.Destinations) > 0 {
			dest = 0
			for _, d := range w.Destinations {
				if i := index(p.provs, d); i >= 0 {
					dest |= 1 << i
				}
			}
		}
		// Only the exclusions from vacancies the worker would otherwise be eligible for are
		// part of the class: the others change nothing, and leaving them out keeps such
		// workers in the classes of their peers. Workers of one class meet the same age
		// limits and start dates, so they agree on which exclusions matter.
		excl, exclBuf = excl[:0], exclBuf[:0]
		if p.wExcl != nil {
			for _, v := range p.wExcl[wi] {
				occ := int(p.vMarket[v]) / len(p.provs)
				pi := int(p.vMarket[v]) % len(p.provs)
				if p.vOpen[v] > 0 && dest&(1<<pi) != 0 && (occ == len(p.occs) || slices.Contains(occIDs, occ)) &&
					p.fitsDates(int32(wi), v) {
					excl = append(excl, v)
					exclBuf = append(exclBuf, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
				}
			}
		}
		k := key{string(occBuf), dest, w.Poor, int32(lowerBound(gBps, w.BirthDate)), int32(lowerBound(gStarts, w.AvailableFrom))}
		var ek exclKey
		var id int32
		var ok bool
		if len(excl) == 0 {
			id, ok = ids[k]
		} else {
			ek = exclKey{k, string(exclBuf)}
			id, ok = exclIDs[ek]
		}
		if !ok {
			id = int32(len(classes))
			c := class{poor: w.Poor}
			var direct []int32
			occIDs = append(occIDs, len(p.occs)) // General
			for _, o := range occIDs {
				for pi := range p.provs {
					if dest&(1<<pi) == 0 {
						continue
					}
					mi := int32(o*len(p.provs) + pi)
					m := &p.markets[mi]
					if len(m.vacs) == 0 {
						continue
					}
					b := int32(lowerBound(m.bps, w.BirthDate))
					pos := int32(lowerBound(m.starts, w.AvailableFrom))
					if !slices.ContainsFunc(excl, func(v int32) bool { return p.vMarket[v] == mi }) {
						if pos <= m.lastFit[b] {
							c.entries = append(c.entries, entry{mi, b, pos})
						}
						continue
					}
					// Excluded from a vacancy of this market: the ladder would lead there
					// too, so the class gets arcs of its own to the market's other
					// vacancies it fits.
					for i, v := range m.vacs {
						if m.vPos[i] >= pos && b >= m.vLo[i] && b <= m.vHi[i] && !slices.Contains(excl, v) {
							direct = append(direct, v)
						}
					}
				}
			}
			if len(direct) > 0 {
				if p.directs == nil {
					p.directs = [][]int32{nil} // index 0: none
				}
				c.direct = int32(len(p.directs))
				p.directs = append(p.directs, direct)
			}
			if len(c.entries) == 0 && len(direct) == 0 {
				id = -1
			} else {
				classes = append(classes, c)
			}
			if len(excl) == 0 {
				ids[k] = id
			} else {
				exclIDs[ek] = id
			}
		}
		if id >= 0 {
			classes[id].workers = append(classes[id].workers, int32(wi))
		}
	}
	for ci := range classes {
		ws := classes[ci].workers
		slices.SortFunc(ws, func(a, b int32) int {
			return cmp.Or(cmp.Compare(p.wCounty[a], p.wCounty[b]), cmp.Compare(a, b))
		})
	}
	return classes
}

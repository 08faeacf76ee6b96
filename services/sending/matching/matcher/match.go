package matcher

import (
	"cmp"
	"slices"
)

// Match assigns workers to vacancies optimally for registered-poor workers placed, then
// workers placed, and keeps home counties together as a tie-breaker (see the package
// documentation for the algorithm). The inputs are not modified; their order does not matter.
// It fails only on a duplicate worker id or vacancy key, or more than 64 vacancy provinces.
func Match(workers []Worker, vacancies []Vacancy, opts Options) (Result, error) {
	progress := func(stage string, pct int) {
		if opts.Progress != nil {
			opts.Progress(stage, pct)
		}
	}
	progress("indexing", 0)
	p, err := newProblem(workers, vacancies)
	if err != nil {
		return Result{}, err
	}
	classes := p.classify()
	progress("building network", 10)

	nv := int32(len(p.vacs))
	const s, t = int32(0), int32(1)
	vacBase := int32(2)
	classBase := vacBase + nv
	ladderBase := classBase + int32(len(classes))

	// Ladders: one per (market, age bucket) that some class enters.
	type ladder struct {
		market, bucket, first, last, base int32
	}
	ladderOf := make([][]int32, len(p.markets))
	var ladders []ladder
	nEntries := 0
	for ci := range classes {
		for _, e := range classes[ci].entries {
			nEntries++
			lo := ladderOf[e.market]
			if lo == nil {
				lo = make([]int32, len(p.markets[e.market].bps)+1)
				for i := range lo {
					lo[i] = -1
				}
				ladderOf[e.market] = lo
			}
			if lo[e.bucket] < 0 {
				lo[e.bucket] = int32(len(ladders))
				ladders = append(ladders, ladder{market: e.market, bucket: e.bucket, first: e.pos,
					last: p.markets[e.market].lastFit[e.bucket]})
			} else if l := &ladders[lo[e.bucket]]; e.pos < l.first {
				l.first = e.pos
			}
		}
	}
	n := ladderBase
	for i := range ladders {
		ladders[i].base = n
		n += ladders[i].last - ladders[i].first + 1
	}

	// Vacancies of each market by start position, then key.
	byPos := make([][]int32, len(p.markets)) // indices into market.vacs
	for mi := range p.markets {
		m := &p.markets[mi]
		idx := make([]int32, len(m.vacs))
		for i := range idx {
			idx[i] = int32(i)
		}
		slices.SortStableFunc(idx, func(a, b int32) int { return cmp.Compare(m.vPos[a], m.vPos[b]) })
		byPos[mi] = idx
	}

	nDirect := 0
	for ci := range classes {
		nDirect += len(p.direct(&classes[ci]))
	}
	g := newFlowGraph(n, len(classes)+nEntries+nDirect+int(n-ladderBase)*3+int(nv))
	srcArc := make([]int32, len(classes))
	for ci := range classes {
		c := int32(0)
		if classes[ci].poor {
			c = int32(len(classes[ci].workers))
		}
		srcArc[ci] = g.addArc(s, classBase+int32(ci), c)
	}
	entryArc := make([]int32, 0, nEntries) // class by class, entry by entry
	for ci := range classes {
		size := int32(len(classes[ci].workers))
		for _, e := range classes[ci].entries {
			l := ladders[ladderOf[e.market][e.bucket]]
			entryArc = append(entryArc, g.addArc(classBase+int32(ci), l.base+e.pos-l.first, size))
		}
	}
	directArc := make([]int32, 0, nDirect) // class by class, vacancy by vacancy
	for ci := range classes {
		size := int32(len(classes[ci].workers))
		for _, v := range p.direct(&classes[ci]) {
			directArc = append(directArc, g.addArc(classBase+int32(ci), vacBase+v, size))
		}
	}
	for _, l := range ladders {
		m := &p.markets[l.market]
		// Forward arcs of length 1, 2, 4, ... from positions divisible by that length
		// (a skip list): any later date is reached in O(log dates) arcs, which keeps
		// augmenting paths short and Dinic's phases few.
		for pos := l.first; pos < l.last; pos++ {
			for step := int32(1); pos+step <= l.last; step <<= 1 {
				g.addArc(l.base+pos-l.first, l.base+pos-l.first+step, infCap)
				if pos&(step<<1-1) != 0 {
					break
				}
			}
		}
		for _, i := range byPos[l.market] {
			pos := m.vPos[i]
			if pos < l.first || pos > l.last || l.bucket < m.vLo[i] || l.bucket > m.vHi[i] {
				continue
			}
			g.addArc(l.base+pos-l.first, vacBase+m.vacs[i], infCap)
		}
	}
	openings := 0
	for v := int32(0); v < nv; v++ {
		openings += int(p.vOpen[v])
		g.addArc(vacBase+v, t, p.vOpen[v])
	}
	fwd := g.build()
	for ci := range srcArc {
		srcArc[ci] = fwd[srcArc[ci]]
	}
	for i := range entryArc {
		entryArc[i] = fwd[entryArc[i]]
	}
	for i := range directArc {
		directArc[i] = fwd[directArc[i]]
	}

	// Phase 1: registered-poor workers only. Phase 2: everyone, from the phase-1 flow.
	progress("solving registered-poor", 20)
	poorFlow := g.maxFlow(s, t, func(added int64) {
		progress("solving registered-poor", 20+int(30*added/int64(max(openings, 1))))
	})
	progress("solving all", 50)
	for ci := range classes {
		if !classes[ci].poor {
			g.cap[srcArc[ci]] = int32(len(classes[ci].workers))
		}
	}
	g.maxFlow(s, t, func(added int64) {
		progress("solving all", 50+int(30*(poorFlow+added)/int64(max(openings, 1))))
	})
	progress("assigning", 80)

	// Turn the flow into workers. Each class hands its workers, in (county, id) order, to its
	// entries in turn, as many as the entry's flow. Within a ladder, any worker who entered at
	// or before a start date may go to any of that date's vacancies (flow conservation keeps
	// enough of them), so each vacancy takes its workers county by county: first counties it
	// already has, then the county with the most workers waiting.
	assign := make([]int32, len(p.workers))
	for i := range assign {
		assign[i] = -1
	}
	type countyCount struct{ county, n int32 }
	vacCounties := make([][]countyCount, nv)
	type token struct{ pos, worker int32 }
	ladderTokens := make([][]token, len(ladders))
	k, kd := 0, 0
	for ci := range classes {
		ws := classes[ci].workers
		for _, e := range classes[ci].entries {
			f := g.flow(entryArc[k])
			k++
			li := ladderOf[e.market][e.bucket]
			for ; f > 0; f-- {
				ladderTokens[li] = append(ladderTokens[li], token{e.pos, ws[0]})
				ws = ws[1:]
			}
		}
		// The flow on the class's direct arcs (markets where it has exclusions) goes straight
		// to their vacancies.
		for _, v := range p.direct(&classes[ci]) {
			f := g.flow(directArc[kd])
			kd++
			for ; f > 0; f-- {
				x := ws[0]
				ws = ws[1:]
				assign[x] = v
				i := slices.IndexFunc(vacCounties[v], func(cc countyCount) bool { return cc.county == p.wCounty[x] })
				if i < 0 {
					vacCounties[v] = append(vacCounties[v], countyCount{p.wCounty[x], 1})
				} else {
					vacCounties[v][i].n++
				}
			}
		}
	}
	type waiting struct {
		county  int32
		workers []int32
	}
	var pool []waiting
	for li, l := range ladders {
		toks := ladderTokens[li]
		slices.SortStableFunc(toks, func(a, b token) int { return cmp.Compare(a.pos, b.pos) })
		pool = pool[:0]
		for pos := l.first; pos <= l.last; pos++ {
			for len(toks) > 0 && toks[0].pos == pos {
				c := p.wCounty[toks[0].worker]
				i, found := slices.BinarySearchFunc(pool, c, func(w waiting, c int32) int { return cmp.Compare(w.county, c) })
				if !found {
					pool = slices.Insert(pool, i, waiting{county: c})
				}
				pool[i].workers = append(pool[i].workers, toks[0].worker)
				toks = toks[1:]
			}
			u := l.base + pos - l.first
			for a := g.start[u]; a < g.start[u+1]; a++ {
				to := g.to[a]
				if to < vacBase || to >= classBase {
					continue
				}
				v := to - vacBase
				for need := g.flow(a); need > 0; {
					// Best county: most workers already on v, then most waiting, then lowest code.
					best, bestOn := -1, int32(-1)
					for i := range pool {
						if len(pool[i].workers) == 0 {
							continue
						}
						on := int32(0)
						for _, cc := range vacCounties[v] {
							if cc.county == pool[i].county {
								on = cc.n
							}
						}
						if best < 0 || on > bestOn || (on == bestOn && len(pool[i].workers) > len(pool[best].workers)) {
							best, bestOn = i, on
						}
					}
					w := &pool[best]
					d := min(need, int32(len(w.workers)))
					for _, x := range w.workers[len(w.workers)-int(d):] {
						assign[x] = v
					}
					w.workers = w.workers[:len(w.workers)-int(d)]
					need -= d
					if bestOn > 0 {
						for i := range vacCounties[v] {
							if vacCounties[v][i].county == w.county {
								vacCounties[v][i].n += d
							}
						}
					} else {
						vacCounties[v] = append(vacCounties[v], countyCount{w.county, d})
					}
				}
			}
		}
	}
	g = nil // release the network
	vacCounties, ladderTokens = nil, nil

	progress("grouping counties", 90)
	p.consolidate(classes, assign)
	progress("done", 100)

	res := p.result(assign)
	res.Openings = openings
	for ci := range classes {
		res.EligibleWorkers += len(classes[ci].workers)
	}
	res.Algorithm = Algorithm
	return res, nil
}

// maxScan bounds how many pool entries one replacement search examines in consolidate, so the
// pass stays near linear; it only limits how much county grouping is found.
const maxScan = 512

// consolidate is the objective-3 pass: for each vacancy it tries to replace every worker of one
// of its smaller home-county groups by unplaced, eligible workers with the same registered-poor
// flag from counties already on the vacancy. A group is replaced whole or not at all, so every
// change removes one (vacancy, county) pair and keeps Placed and PlacedPoor.
func (p *problem) consolidate(classes []class, assign []int32) {
	nm := int32(len(p.markets))
	poolKey := func(county int32, poor bool, market int32) int32 {
		k := county * 2
		if poor {
			k++
		}
		return k*nm + market
	}
	// Pool of candidate workers per (county, poor, market), in id order.
	nKeys := int32(len(p.counties)) * 2 * nm
	poolStart := make([]int32, nKeys+1)
	wClass := make([]int32, len(p.workers))
	for i := range wClass {
		wClass[i] = -1
	}
	for ci := range classes {
		for _, w := range classes[ci].workers {
			wClass[w] = int32(ci)
		}
	}
	for w, ci := range wClass {
		if ci < 0 {
			continue
		}
		for m := range p.marketsOf(&classes[ci]) {
			poolStart[poolKey(p.wCounty[w], classes[ci].poor, m)+1]++
		}
	}
	for k := int32(0); k < nKeys; k++ {
		poolStart[k+1] += poolStart[k]
	}
	pool := make([]int32, poolStart[nKeys])
	fill := slices.Clone(poolStart[:nKeys])
	for w, ci := range wClass {
		if ci < 0 {
			continue
		}
		for m := range p.marketsOf(&classes[ci]) {
			k := poolKey(p.wCounty[w], classes[ci].poor, m)
			pool[fill[k]] = int32(w)
			fill[k]++
		}
	}

	// Workers of each vacancy.
	vStart := make([]int32, len(p.vacs)+1)
	for _, v := range assign {
		if v >= 0 {
			vStart[v+1]++
		}
	}
	for v := range p.vacs {
		vStart[v+1] += vStart[v]
	}
	onVac := make([]int32, vStart[len(p.vacs)])
	fill = slices.Clone(vStart[:len(p.vacs)])
	for w, v := range assign {
		if v >= 0 {
			onVac[fill[v]] = int32(w)
			fill[v]++
		}
	}

	type group struct {
		county  int32
		workers []int32
	}
	var groups []group
	var picked []int32
	for v := range p.vacs {
		ws := onVac[vStart[v]:vStart[v+1]]
		if len(ws) < 2 {
			continue
		}
		slices.SortFunc(ws, func(a, b int32) int {
			return cmp.Or(cmp.Compare(p.wCounty[a], p.wCounty[b]), cmp.Compare(a, b))
		})
		groups = groups[:0]
		for i := 0; i < len(ws); {
			j := i
			for j < len(ws) && p.wCounty[ws[j]] == p.wCounty[ws[i]] {
				j++
			}
			groups = append(groups, group{p.wCounty[ws[i]], slices.Clone(ws[i:j])})
			i = j
		}
		if len(groups) < 2 {
			continue
		}
		bySize := func(a, b group) int {
			return cmp.Or(cmp.Compare(len(b.workers), len(a.workers)), cmp.Compare(a.county, b.county))
		}
		slices.SortFunc(groups, bySize)
		market := p.vMarket[v]
		// Dissolve from the smallest group up; the largest group always stays.
		for gi := len(groups) - 1; gi >= 1; gi-- {
			picked = picked[:0]
			ok := true
			for _, x := range groups[gi].workers {
				poor := p.workers[x].Poor
				found := int32(-1)
				for hi := 0; hi < gi && found < 0; hi++ {
					k := poolKey(groups[hi].county, poor, market)
					list := pool[poolStart[k]:poolStart[k+1]]
					for n, z := range list {
						if n == maxScan {
							break
						}
						if assign[z] < 0 && p.fits(z, int32(v)) {
							found = z
							break
						}
					}
				}
				if found < 0 {
					ok = false
					break
				}
				assign[found] = int32(v) // reserve
				picked = append(picked, found)
			}
			if !ok {
				for _, z := range picked {
					assign[z] = -1
				}
				continue
			}
			for _, x := range groups[gi].workers {
				assign[x] = -1
			}
			// Move the replacements into their county groups and drop the dissolved group.
			for _, z := range picked {
				for hi := 0; hi < gi; hi++ {
					if groups[hi].county == p.wCounty[z] {
						groups[hi].workers = append(groups[hi].workers, z)
						break
					}
				}
			}
			groups = slices.Delete(groups, gi, gi+1)
			slices.SortStableFunc(groups[:gi], bySize)
		}
	}
}

// result turns a worker -> vacancy assignment into a Result.
func (p *problem) result(assign []int32) Result {
	var res Result
	type pair struct{ v, w int32 }
	var pairs []pair
	for w, v := range assign {
		if v >= 0 {
			pairs = append(pairs, pair{v, int32(w)})
		}
	}
	// Vacancies are in key order and workers in id order, so this is (key, id) order.
	slices.SortFunc(pairs, func(a, b pair) int { return cmp.Or(cmp.Compare(a.v, b.v), cmp.Compare(a.w, b.w)) })
	res.Assignments = make([]Assignment, len(pairs))
	seen := map[[2]int32]bool{}
	for i, pr := range pairs {
		res.Assignments[i] = Assignment{WorkerID: p.workers[pr.w].ID, VacancyKey: p.vacs[pr.v].Key}
		if p.workers[pr.w].Poor {
			res.PlacedPoor++
		}
		seen[[2]int32{pr.v, p.wCounty[pr.w]}] = true
	}
	res.Placed = len(pairs)
	res.CountyGroups = len(seen)
	return res
}

package matcher

import "slices"

// GreedyAlgorithm names the baseline algorithm of Greedy.
const GreedyAlgorithm = "per-worker greedy: registered-poor first, then by id, first eligible vacancy (by key) with openings"

// Greedy is the simple baseline Match is compared with: workers are taken registered-poor
// first, then in id order, and each goes to the first vacancy in key order that it is eligible
// for and that still has openings. It is not optimal for any of the objectives.
func Greedy(workers []Worker, vacancies []Vacancy) (Result, error) {
	p, err := newProblem(workers, vacancies)
	if err != nil {
		return Result{}, err
	}
	left := slices.Clone(p.vOpen)
	// skip[m] is a union-find over positions of market m's vacancy list: find(i) is the first
	// position >= i whose vacancy still has openings (len means none).
	skip := make([][]int32, len(p.markets))
	for mi := range p.markets {
		s := make([]int32, len(p.markets[mi].vacs)+1)
		for i := range s {
			s[i] = int32(i)
		}
		for i, v := range p.markets[mi].vacs {
			if left[v] == 0 {
				s[i] = int32(i + 1)
			}
		}
		skip[mi] = s
	}
	find := func(s []int32, i int32) int32 {
		r := i
		for s[r] != r {
			r = s[r]
		}
		for s[i] != r {
			s[i], i = r, s[i]
		}
		return r
	}

	order := make([]int32, 0, len(p.workers))
	for pass := 0; pass < 2; pass++ {
		for i, w := range p.workers {
			if w.Poor == (pass == 0) {
				order = append(order, int32(i))
			}
		}
	}
	assign := make([]int32, len(p.workers))
	var markets []int32
	for _, wi := range order {
		assign[wi] = -1
		w := p.workers[wi]
		if !w.HealthOK {
			continue
		}
		markets = markets[:0]
		occIDs := []int{len(p.occs)}
		for _, o := range w.Occupations {
			if i := index(p.occs, o); i >= 0 {
				occIDs = append(occIDs, i)
			}
		}
		for _, o := range occIDs {
			for pi, prov := range p.provs {
				if len(w.Destinations) == 0 || contains(w.Destinations, prov) {
					markets = append(markets, int32(o*len(p.provs)+pi))
				}
			}
		}
		best, bestM, bestI := int32(-1), int32(-1), int32(-1)
		for _, mi := range markets {
			m := &p.markets[mi]
			s := skip[mi]
			for i := find(s, 0); int(i) < len(m.vacs); i = find(s, i+1) {
				v := m.vacs[i]
				if best >= 0 && v >= best {
					break
				}
				if p.fits(wi, v) {
					best, bestM, bestI = v, mi, i
					break
				}
			}
		}
		if best < 0 {
			continue
		}
		assign[wi] = best
		left[best]--
		if left[best] == 0 {
			skip[bestM][bestI] = bestI + 1
		}
	}
	res := p.result(assign)
	for _, v := range p.vOpen {
		res.Openings += int(v)
	}
	for _, c := range p.classify() {
		res.EligibleWorkers += len(c.workers)
	}
	res.Algorithm = GreedyAlgorithm
	return res, nil
}

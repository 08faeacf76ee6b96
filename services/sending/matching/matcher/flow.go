package matcher

// flowGraph is a directed network in compressed sparse row form for Dinic's maximum-flow
// algorithm. Every arc a has a reverse arc rev[a]; residual capacities are in cap. Arcs are
// added with addArc and frozen with build; the order of a node's arcs is the order they were
// added, so the flow computed is the same on every run.
type flowGraph struct {
	n     int32
	start []int32 // arcs of node u are start[u]..start[u+1]-1
	to    []int32
	cap   []int32
	rev   []int32

	// pending arcs until build
	from, head, c []int32

	level []int32
	iter  []int32
	queue []int32
}

const infCap = int32(1 << 30)

func newFlowGraph(n int32, arcsHint int) *flowGraph {
	return &flowGraph{
		n:    n,
		from: make([]int32, 0, arcsHint),
		head: make([]int32, 0, arcsHint),
		c:    make([]int32, 0, arcsHint),
	}
}

// addArc adds an arc u->v of capacity c and returns its index in the future build order
// (valid after build via arcIndex).
func (g *flowGraph) addArc(u, v, c int32) int32 {
	g.from = append(g.from, u)
	g.head = append(g.head, v)
	g.c = append(g.c, c)
	return int32(len(g.from) - 1)
}

// build lays the arcs out in CSR form. It returns, for each added arc (by the index addArc
// returned), the position of its forward arc.
func (g *flowGraph) build() []int32 {
	m := len(g.from)
	g.start = make([]int32, g.n+1)
	for i := 0; i < m; i++ {
		g.start[g.from[i]+1]++
		g.start[g.head[i]+1]++
	}
	for u := int32(0); u < g.n; u++ {
		g.start[u+1] += g.start[u]
	}
	pos := make([]int32, g.n)
	copy(pos, g.start[:g.n])
	g.to = make([]int32, 2*m)
	g.cap = make([]int32, 2*m)
	g.rev = make([]int32, 2*m)
	fwd := make([]int32, m)
	for i := 0; i < m; i++ {
		u, v := g.from[i], g.head[i]
		a, b := pos[u], pos[v]
		pos[u]++
		pos[v]++
		g.to[a], g.cap[a], g.rev[a] = v, g.c[i], b
		g.to[b], g.cap[b], g.rev[b] = u, 0, a
		fwd[i] = a
	}
	g.from, g.head, g.c = nil, nil, nil
	g.level = make([]int32, g.n)
	g.iter = make([]int32, g.n)
	g.queue = make([]int32, 0, 1024)
	return fwd
}

// flow returns the flow on forward arc a.
func (g *flowGraph) flow(a int32) int32 { return g.cap[g.rev[a]] }

// maxFlow augments the current flow from s to t to a maximum flow with Dinic's algorithm
// (shortest augmenting paths in phases, blocking flow by depth-first search with current-arc
// pointers) and returns the amount added. progress, when not nil, is called after each phase
// with the total added so far.
func (g *flowGraph) maxFlow(s, t int32, progress func(added int64)) int64 {
	var total int64
	for g.bfs(s, t) {
		copy(g.iter, g.start[:g.n])
		for {
			f := g.dfs(s, t, infCap)
			if f == 0 {
				break
			}
			total += int64(f)
		}
		if progress != nil {
			progress(total)
		}
	}
	return total
}

// bfs labels nodes with their distance from s in the residual network and reports whether t
// is reachable. Nodes at t's distance or beyond are left unlabelled except t.
func (g *flowGraph) bfs(s, t int32) bool {
	for i := range g.level {
		g.level[i] = -1
	}
	q := g.queue[:0]
	g.level[s] = 0
	q = append(q, s)
	tl := int32(-1)
	for h := 0; h < len(q); h++ {
		u := q[h]
		lu := g.level[u]
		if tl >= 0 && lu+1 >= tl {
			break
		}
		for a := g.start[u]; a < g.start[u+1]; a++ {
			v := g.to[a]
			if g.cap[a] > 0 && g.level[v] < 0 {
				g.level[v] = lu + 1
				if v == t {
					tl = lu + 1
					continue
				}
				q = append(q, v)
			}
		}
	}
	g.queue = q
	return g.level[t] >= 0
}

// dfs pushes up to f units from u to t along level-increasing arcs and returns how many.
func (g *flowGraph) dfs(u, t, f int32) int32 {
	if u == t {
		return f
	}
	var pushed int32
	end := g.start[u+1]
	for ; g.iter[u] < end; g.iter[u]++ {
		a := g.iter[u]
		v := g.to[a]
		if g.cap[a] <= 0 || g.level[v] != g.level[u]+1 {
			continue
		}
		d := g.dfs(v, t, min(f-pushed, g.cap[a]))
		if d > 0 {
			g.cap[a] -= d
			g.cap[g.rev[a]] += d
			pushed += d
			if pushed == f {
				return pushed
			}
		}
	}
	g.level[u] = -1 // dead end for the rest of the phase
	return pushed
}

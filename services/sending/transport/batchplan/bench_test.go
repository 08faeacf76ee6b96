package batchplan

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkPlan300k plans buses (45 seats) for 300,000 accepted workers in 6,000 groups
// (destination county x start date) from 80 home counties of skewed size.
func BenchmarkPlan300k(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	groups := make([]Group, 6000)
	for i := range groups {
		groups[i] = Group{Province: "440000", County: fmt.Sprintf("4403%02d", i%60), StartDate: fmt.Sprintf("2026-03-%02d", 1+i/60%28)}
	}
	for i := range 300_000 {
		g := r.IntN(len(groups))
		c := int(80 * r.Float64() * r.Float64())
		groups[g].Workers = append(groups[g].Workers, Worker{ID: fmt.Sprintf("w%07d", i), HomeCounty: fmt.Sprintf("52%04d", c)})
	}
	b.ReportAllocs()
	var vs []Vehicle
	for b.Loop() {
		var err error
		if vs, err = Plan(groups, 45); err != nil {
			b.Fatal(err)
		}
	}
	splits := 0
	for i := 0; i < len(vs); {
		j := i
		var loads [][]Worker
		for j < len(vs) && vs[j].County == vs[i].County && vs[j].StartDate == vs[i].StartDate {
			loads = append(loads, vs[j].Workers)
			j++
		}
		splits += CountySplits(loads)
		i = j
	}
	b.ReportMetric(float64(len(vs)), "vehicles")
	b.ReportMetric(float64(splits), "county_splits")
}

package matcher

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// Benchmarks run only with -bench (go test without -bench runs none of them); the 1M one also
// skips under -short. Command and figures: BENCHMARKS.md, section "Matching".

func BenchmarkMatch100k(b *testing.B) { benchmarkMatch(b, 100_000, 2_000) }

func BenchmarkMatch1M(b *testing.B) {
	if testing.Short() {
		b.Skip("1M-worker benchmark skipped in -short mode")
	}
	benchmarkMatch(b, 1_000_000, 20_000)
}

func benchmarkMatch(b *testing.B, nWorkers, nVacancies int) {
	workers, vacs := generate(20260302, nWorkers, nVacancies)
	greedy, err := Greedy(workers, vacs)
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // sample the heap while Match runs
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > peak.Load() {
					peak.Store(ms.HeapAlloc)
				}
			}
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	var res Result
	for b.Loop() {
		res, err = Match(workers, vacs, Options{})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	close(stop)
	<-done
	b.ReportMetric(float64(res.Placed), "placed")
	b.ReportMetric(float64(res.PlacedPoor), "placed_poor")
	b.ReportMetric(float64(res.CountyGroups), "county_groups")
	b.ReportMetric(float64(greedy.Placed), "greedy_placed")
	b.ReportMetric(float64(greedy.PlacedPoor), "greedy_placed_poor")
	b.ReportMetric(float64(greedy.CountyGroups), "greedy_county_groups")
	b.ReportMetric(float64(res.Openings), "openings")
	b.ReportMetric(float64(peak.Load()-min(peak.Load(), base.HeapAlloc))/(1<<20), "peak_heap_MiB")
}

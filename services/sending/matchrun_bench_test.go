package sending

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/occupation"
	"github.com/eastwest/labourlink/services/codes/regions"
)

// BenchmarkStartMatchRun: a match run through the service at a province's scale. A real
// receiving service (Guangdong) takes MATCHBENCH_VACANCIES vacancies (default 20,000) through
// ImportVacancies; a real sending service (Guizhou, gRPC on loopback, a real bbolt file) takes
// MATCHBENCH_WORKERS workers (default 1,000,000) through ImportWorkers and follows the demand
// feed until its replica holds every vacancy. Then, through MatchingService: `dry` starts b.N
// dry runs one after the other (every stage of a run: the workers read from bbolt, the demand
// from its replica, the optimal matching; no proposals written) and `propose` one run that
// proposes (the proposals, the workers' moves and the outbox in one transaction), each from
// StartMatchRun to GetMatchRun saying it ended. The instance is drawn with a fixed seed like
// the matcher's own BenchmarkMatch1M (matcher/gen_test.go): 80-odd home counties of skewed
// sizes, 30% registered poor, 0–3 of 30 occupations, ages 16–60, start dates over 90 days.
//
//	go test ./services/sending -run '^$' -bench StartMatchRun -benchtime 1x -timeout 60m
//
// Metrics: s/run; peak-heap-MB (the process's heap, sampled every 20 ms during the run, above
// what it held before), alloc-MB per run; placed and placed-poor (the run's counts); and, once,
// setup-s (the imports and the replica).
func BenchmarkStartMatchRun(b *testing.B) {
	if testing.Short() {
		b.Skip("a province's roster")
	}
	nWorkers, nVacancies := benchEnv("MATCHBENCH_WORKERS", 1_000_000), benchEnv("MATCHBENCH_VACANCIES", 20_000)
	setup := time.Now()
	r := startReceiving(b, fastFeeds)
	importBenchVacancies(b, r, nVacancies)
	head := r.head()
	n := startSending(b, "", fastConfig(r.addr), true)
	importBenchWorkers(b, n, nWorkers)
	ctx := context.Background()
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for deadline := time.Now().Add(10 * time.Minute); ; <-poll.C {
		p, err := n.followPosition(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if p.GetDemandLag().GetAppliedRevision() >= head {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the demand replica did not reach revision %d", head)
		}
	}
	setupTime := time.Since(setup)
	b.Logf("%d workers, %d vacancies (revision %d) set up in %v", nWorkers, nVacancies, head, setupTime.Round(time.Second))

	run := func(b *testing.B, dry bool) {
		var took time.Duration
		var peak, alloc uint64
		var last *sendingv1.MatchRun
		for i := range b.N {
			runtime.GC()
			before := heapBytes()
			stop := sampleHeap()
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			start := time.Now()
			resp, err := n.matching.StartMatchRun(ctx, &sendingv1.StartMatchRunRequest{DryRun: dry, RequestId: fmt.Sprintf("bench-%v-%d-%d", dry, i, time.Now().UnixNano())})
			if err != nil {
				b.Fatal(err)
			}
			tick := time.NewTicker(20 * time.Millisecond)
			var stages []string // each stage the run reported, with when it was first seen
			stage, since := "", start
			for {
				got, err := n.matching.GetMatchRun(ctx, &sendingv1.GetMatchRunRequest{Name: resp.GetMatchRun().GetName()})
				if err != nil {
					b.Fatal(err)
				}
				last = got.GetMatchRun()
				if st := last.GetStage(); st != stage {
					if stage != "" {
						stages = append(stages, fmt.Sprintf("%s %.1fs", stage, time.Since(since).Seconds()))
					}
					stage, since = st, time.Now()
				}
				if last.GetState() != sendingv1.MatchRunState_MATCH_RUN_STATE_RUNNING {
					break
				}
				<-tick.C
			}
			tick.Stop()
			took += time.Since(start)
			b.Logf("run %s: %v in all; stages (as polled every 20 ms): %s", last.GetName(), time.Since(start).Round(time.Millisecond), strings.Join(stages, ", "))
			runtime.ReadMemStats(&ms1)
			if p := stop(); p > before {
				peak = max(peak, p-before)
			}
			alloc += ms1.TotalAlloc - ms0.TotalAlloc
			if last.GetState() != sendingv1.MatchRunState_MATCH_RUN_STATE_SUCCEEDED {
				b.Fatalf("run %s ended %s: %v", last.GetName(), last.GetState(), last.GetError())
			}
		}
		b.ReportMetric(took.Seconds()/float64(b.N), "s/run")
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
		b.ReportMetric(float64(alloc)/float64(b.N)/(1<<20), "alloc-MB/run")
		b.ReportMetric(float64(last.GetProposed()), "placed")
		b.ReportMetric(float64(last.GetProposedRegisteredPoor()), "placed-poor")
		b.ReportMetric(float64(last.GetWorkersEligible()), "eligible")
		b.ReportMetric(setupTime.Seconds(), "setup-s")
	}
	b.Run("dry", func(b *testing.B) { run(b, true) })
	b.Run("propose", func(b *testing.B) {
		if b.N > 1 {
			b.Fatal("run propose once (-benchtime 1x): a second run would find the workers proposed")
		}
		run(b, false)
	})
}

func benchEnv(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// benchOccupations are the 30 occupations of the instance, most popular first: elementary,
// plant and machine, and craft occupations.
func benchOccupations() []string {
	var out []string
	for _, o := range occupation.All() {
		if o.Code != occupation.General && strings.ContainsAny(o.Code[:1], "789") && len(out) < 30 {
			out = append(out, o.Code)
		}
	}
	return out
}

// zipf draws an index of n with weight 1/(i+1).
func zipf(rng *rand.Rand, n int) int {
	total := 0.0
	for i := range n {
		total += 1 / float64(i+1)
	}
	x := rng.Float64() * total
	for i := range n {
		if x -= 1 / float64(i+1); x <= 0 {
			return i
		}
	}
	return n - 1
}

func importBenchVacancies(b *testing.B, r *recvNode, n int) {
	rng := rand.New(rand.NewPCG(7, 11))
	counties := regions.Default().CountiesOf(flowReceiving)
	occs := benchOccupations()
	stream, err := r.vac.ImportVacancies(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	base := time.Date(2027, 1, 4, 0, 0, 0, 0, time.UTC)
	sendRows(b, n, func(i int) *receivingv1.VacancyRow {
		occ := occs[zipf(rng, len(occs))]
		if rng.IntN(100) < 15 {
			occ = occupation.General
		}
		start := base.AddDate(0, 0, rng.IntN(90))
		return &receivingv1.VacancyRow{
			RowNumber: int64(i + 2), EmployerName: fmt.Sprintf("深圳市测试电子%d有限公司", i), EmployerCreditCode: testCreditCode(b, i),
			WorkCounty: counties[rng.IntN(len(counties))], Occupation: occ, Headcount: strconv.Itoa(1 + rng.IntN(60)),
			MonthlyWageMinYuan: "4500", MonthlyWageMaxYuan: "6000",
			StartDate: start.Format(time.DateOnly), ValidThrough: start.AddDate(0, 4, 0).Format(time.DateOnly),
			MinAge: []string{"16", "18", "20"}[rng.IntN(3)], MaxAge: []string{"", "40", "45", "50", "55"}[rng.IntN(5)],
			HousingProvided: "是", MealsProvided: "是", Contact: "0755-26000000",
		}
	}, func(rows []*receivingv1.VacancyRow, total int64) error {
		return stream.Send(&receivingv1.ImportVacanciesRequest{ImportId: "bench-vacancies", Rows: rows, Final: total > 0, TotalRows: total})
	})
	resp, err := stream.CloseAndRecv()
	if err != nil {
		b.Fatal(err)
	}
	if s := resp.GetSummary(); s.GetCreated() != int64(n) {
		b.Fatalf("vacancy import: %v", s)
	}
}

func importBenchWorkers(b *testing.B, n *sendNode, count int) {
	rng := rand.New(rand.NewPCG(3, 5))
	counties := regions.Default().CountiesOf(rosterRegion)
	occs := benchOccupations()
	stream, err := n.roster.ImportWorkers(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	avail := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	sendRows(b, count, func(i int) *sendingv1.WorkerRow {
		county := counties[int(float64(len(counties))*rng.Float64()*rng.Float64())]
		// Ages 16–60 and a distinct identity number per row: the numbers' sequence is i%1000,
		// and each block of 1000 rows has its own 15 birth days (1,000 blocks: 41 years).
		birth := time.Date(1967, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, (i/1000)%1000*15+rng.IntN(15))
		var mine []string
		for range rng.IntN(4) {
			if o := occs[zipf(rng, len(occs))]; !strings.Contains(strings.Join(mine, ";"), o) {
				mine = append(mine, o)
			}
		}
		dest := ""
		if rng.IntN(100) >= 40 {
			dest = flowReceiving
		}
		from := avail
		if rng.IntN(100) >= 55 {
			from = avail.AddDate(0, 0, 30+rng.IntN(100))
		}
		poor, health, checked := "否", "是", "2026-10-01"
		if rng.IntN(100) < 30 {
			poor = "是"
		}
		if rng.IntN(100) < 5 {
			health, checked = "否", ""
		}
		return &sendingv1.WorkerRow{
			RowNumber: int64(i + 2), IdNumber: makeIDNumber(county, birth, i), FullName: testName(i), Phone: fmt.Sprintf("139%08d", i),
			HomeCounty: county, RegisteredPoor: poor, Occupations: strings.Join(mine, ";"), PreferredDestinations: dest,
			AvailableFrom: from.Format(time.DateOnly), HealthCheckPassed: health, HealthCheckDate: checked,
		}
	}, func(rows []*sendingv1.WorkerRow, total int64) error {
		return stream.Send(&sendingv1.ImportWorkersRequest{ImportId: "bench-workers", Rows: rows, Final: total > 0, TotalRows: total})
	})
	resp, err := stream.CloseAndRecv()
	if err != nil {
		b.Fatal(err)
	}
	if s := resp.GetSummary(); s.GetCreated() != int64(count) {
		b.Fatalf("worker import: created %d of %d, first rejections %v", s.GetCreated(), count, s.GetRejections()[:min(3, len(s.GetRejections()))])
	}
}

// sendRows sends n rows made by row to an import stream in messages of 5000 rows; send gets
// the total on the last one (0 before: not final).
func sendRows[R any](b *testing.B, n int, row func(i int) R, send func(rows []R, total int64) error) {
	rows := make([]R, 0, 5000)
	for i := range n {
		rows = append(rows, row(i))
		if len(rows) < 5000 && i < n-1 {
			continue
		}
		total := int64(0)
		if i == n-1 {
			total = int64(n)
		}
		if err := send(rows, total); err != nil {
			b.Fatal(err)
		}
		rows = make([]R, 0, 5000)
	}
}

// heapBytes is the heap's live and unused bytes now.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64() + s[1].Value.Uint64()
}

// sampleHeap samples heapBytes every 20 ms until the returned function is called, which
// returns the peak.
func sampleHeap() func() uint64 {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if h := heapBytes(); h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	var once sync.Once
	return func() uint64 {
		once.Do(func() { close(done); wg.Wait() })
		return peak.Load()
	}
}

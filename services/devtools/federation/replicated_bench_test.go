package federation_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/daemon"
	"github.com/eastwest/labourlink/services/devtools/federation"
	"github.com/eastwest/labourlink/services/devtools/proctest"
	"github.com/eastwest/labourlink/services/platform/peers"
)

// BenchmarkReplicatedIngest: the throughput of the whole coordination service, replicated
// against one process. The same ReportEvents calls (100 new departures or arrivals of
// Guizhou–Guangdong workers each, alternately from either province) over gRPC on loopback, by
// 1 and 8 concurrent reporters, to one `labourlink serve coordination` process (one bbolt file)
// and to three `-replication nats` node processes (the client given all three, round robin as
// the provinces are: every call appended to the command stream, acknowledged by two of the
// three, applied by every node), interleaved in rounds (REPLBENCH_ROUNDS, default 3). Each
// sub-benchmark reports events/s and the call's p50 and p99; the table at the end gives the
// median and spread of each, with the replicated throughput as a ratio to the single process's
// of the same round:
//
//	go test ./services/devtools/federation -run '^$' -bench ReplicatedIngest -benchtime 300x -timeout 30m
func BenchmarkReplicatedIngest(b *testing.B) {
	rounds := 3
	if v, err := strconv.Atoi(os.Getenv("REPLBENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	single := startSingleCoordination(b)
	nodes := startReplicatedNodes(b)
	targets := map[string]string{"single": single, "replicated": nodes.cfg.CoordinationTarget()}
	modes := []string{"single", "replicated"}
	clients := map[string]coordinationv1.LedgerServiceClient{}
	for _, m := range modes {
		cc, err := peers.Dial(targets[m], peers.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer cc.Close()
		clients[m] = coordinationv1.NewLedgerServiceClient(cc)
	}
	type key struct {
		mode    string
		writers int
	}
	got := map[key][]ingestSample{}
	for r := 1; r <= rounds; r++ {
		for _, w := range []int{1, 8} {
			for _, m := range modes {
				var s ingestSample
				b.Run(fmt.Sprintf("round=%d/writers=%d/mode=%s", r, w, m), func(b *testing.B) {
					s = ingest(b, clients[m], w, b.N, fmt.Sprintf("r%d-w%d-%s-%d", r, w, m, b.N))
					b.ReportMetric(s.eventsPerSec, "events/s")
					b.ReportMetric(s.p50, "p50-ms")
					b.ReportMetric(s.p99, "p99-ms")
				})
				got[key{m, w}] = append(got[key{m, w}], s)
			}
		}
	}
	var out strings.Builder
	fmt.Fprintf(&out, "\n%d rounds, median [min–max]\n| mode | reporters | events/s | × one process | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|---:|\n", rounds)
	for _, w := range []int{1, 8} {
		for _, m := range modes {
			var rate, ratio, p50, p99 []float64
			for i, s := range got[key{m, w}] {
				rate = append(rate, s.eventsPerSec)
				ratio = append(ratio, s.eventsPerSec/got[key{"single", w}][i].eventsPerSec)
				p50, p99 = append(p50, s.p50), append(p99, s.p99)
			}
			fmt.Fprintf(&out, "| %s | %d | %s | %s | %s | %s |\n", m, w, spread(rate, 0), spread(ratio, 2), spread(p50, 1), spread(p99, 1))
		}
	}
	fmt.Print(out.String())
}

// startSingleCoordination starts one coordination process as `labourlink dev` does and returns
// its address.
func startSingleCoordination(tb testing.TB) string {
	cfg := federation.Defaults(proctest.Binary(tb))
	cfg.DataDir, cfg.Metrics, cfg.HTTP = tb.TempDir(), false, false
	cfg.CoordinationAddr = proctest.FreeAddr(tb)
	for _, sc := range cfg.Services() {
		if sc.Kind == daemon.Coordination {
			p := proctest.Launch(tb, proctest.Spec{Kind: string(daemon.Coordination), Addr: sc.Listen, Args: sc.Args()})
			p.WaitServing()
			return sc.Listen
		}
	}
	tb.Fatal("no coordination in the federation")
	return ""
}

// ingestSample is one sub-benchmark's figures.
type ingestSample struct {
	eventsPerSec float64
	p50, p99     float64 // ms per call
}

// eventsPerCall is the size of a benchmark call.
const eventsPerCall = 100

// ingest makes calls ReportEvents calls of eventsPerCall new events, by writers at once, with
// ids under prefix; every call must be acknowledged without refusals.
func ingest(b *testing.B, client coordinationv1.LedgerServiceClient, writers, calls int, prefix string) ingestSample {
	b.StopTimer()
	reqs := make([]*coordinationv1.ReportEventsRequest, calls)
	occur := timestamppb.New(time.Now().Add(-time.Hour))
	for c := range reqs {
		region, kind := federation.SendingRegion, coordinationv1.EventKind_EVENT_KIND_DEPARTED
		if c%2 == 1 {
			region, kind = federation.ReceivingRegion, coordinationv1.EventKind_EVENT_KIND_ARRIVED
		}
		events := make([]*coordinationv1.LedgerEvent, eventsPerCall)
		for j := range events {
			w := (c/2)*eventsPerCall + j // the arrivals of call 2k+1 are the departures of call 2k
			events[j] = &coordinationv1.LedgerEvent{
				EventId: fmt.Sprintf("%s-%s-%d", prefix, kind, w), Kind: kind,
				SendingRegion: federation.SendingRegion, ReceivingRegion: federation.ReceivingRegion, ReporterRegion: region,
				WorkerId: fmt.Sprintf("%s-w%d", prefix, w), BatchId: fmt.Sprintf("520000-%s-B%d", prefix, w/45), OccurTime: occur,
			}
		}
		reqs[c] = &coordinationv1.ReportEventsRequest{Events: events, RequestId: fmt.Sprintf("%s-call-%d", prefix, c)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	lat := make([]time.Duration, calls)
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed error
	b.StartTimer()
	start := time.Now()
	for range writers {
		wg.Go(func() {
			for c := range next {
				t0 := time.Now()
				resp, err := client.ReportEvents(ctx, reqs[c])
				lat[c] = time.Since(t0)
				if err == nil && len(resp.GetRefusals()) > 0 {
					err = fmt.Errorf("refusals %v", resp.GetRefusals()[:1])
				}
				if err != nil {
					mu.Lock()
					failed = fmt.Errorf("call %d: %w", c, err)
					mu.Unlock()
				}
			}
		})
	}
	for c := range calls {
		next <- c
	}
	close(next)
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if failed != nil {
		b.Fatal(failed)
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return ingestSample{
		eventsPerSec: float64(calls*eventsPerCall) / elapsed.Seconds(),
		p50:          ms(lat[len(lat)/2]),
		p99:          ms(lat[min(len(lat)-1, len(lat)*99/100)]),
	}
}

// spread is "median [min–max]" of xs.
func spread(xs []float64, prec int) string {
	s := slices.Clone(xs)
	sort.Float64s(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return fmt.Sprintf("%.*f [%.*f–%.*f]", prec, med, prec, s[0], prec, s[len(s)-1])
}

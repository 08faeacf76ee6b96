package enginebench_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eastwest/labourlink/services/devtools/enginebench"
)

func TestMain(m *testing.M) {
	if enginebench.RunNode() {
		return
	}
	os.Exit(m.Run())
}

// command is a command of about 1 KiB, the size of a ReportEvents of 10 events (method, the
// request's bytes, the time), distinct per id.
func command(id string) []byte {
	r := rand.New(rand.NewPCG(uint64(len(id)), 1))
	b := make([]byte, 1024)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	copy(b, "/labourlink.coordination.v1.LedgerService/ReportEvents "+id+" "+time.Now().UTC().Format(time.RFC3339Nano))
	return b
}

type engine struct {
	name  string
	app   enginebench.Appender
	count func(context.Context) (uint64, error)
}

// startEngines starts the four engines under dir: bbolt (one local file), NATS JetStream R3
// with its default file sync and with sync always, and etcd with three members.
func startEngines(tb testing.TB, dir string) []engine {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := enginebench.OpenBolt(filepath.Join(dir, "bolt.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = b.Close() })
	es := []engine{{"bbolt", b, func(context.Context) (uint64, error) { return b.Count() }}}
	for _, sync := range []bool{false, true} {
		nc, err := enginebench.StartNATS(filepath.Join(dir, fmt.Sprintf("nats-sync-%v", sync)), 3, sync)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(nc.Close)
		cl, err := enginebench.DialNATS(ctx, strings.Join(nc.Ports.ClientURLs("nats"), ","), true)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = cl.Close() })
		name := "nats"
		if sync {
			name = "nats-sync"
		}
		es = append(es, engine{name, cl, cl.Count})
	}
	ec, err := enginebench.StartEtcd(filepath.Join(dir, "etcd"), 3)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(ec.Close)
	cl, err := enginebench.DialEtcd(ec.Ports.ClientURLs("http"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cl.Close() })
	return append(es, engine{"etcd", cl, cl.Count})
}

// TestEnginesDeduplicate: on every engine a command appended twice under its id is there once,
// and distinct ids are each there.
func TestEnginesDeduplicate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two NATS and one etcd cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, e := range startEngines(t, t.TempDir()) {
		t.Run(e.name, func(t *testing.T) {
			for _, id := range []string{"a", "b", "a", "c", "b"} {
				if err := e.app.Append(ctx, id, command(id)); err != nil {
					t.Fatalf("append %s: %v", id, err)
				}
			}
			n, err := e.count(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n != 3 {
				t.Errorf("%d commands after appending a b a c b, want 3", n)
			}
		})
	}
}

// sample is one measured run: throughput and acknowledgement latencies.
type sample struct {
	opsPerSec float64
	p50, p99  time.Duration
}

// run appends n commands with w concurrent writers.
func run(b *testing.B, e engine, w, n int, prefix string) sample {
	ctx := context.Background()
	lat := make([][]time.Duration, w)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for k := range w {
		share := n / w
		if k < n%w {
			share++
		}
		wg.Go(func() {
			for i := range share {
				id := fmt.Sprintf("%s-w%d-%d", prefix, k, i)
				cmd := command(id)
				t0 := time.Now()
				if err := e.app.Append(ctx, id, cmd); err != nil {
					b.Error(err)
					return
				}
				lat[k] = append(lat[k], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return sample{}
	}
	return sample{
		opsPerSec: float64(len(all)) / elapsed.Seconds(),
		p50:       all[len(all)/2],
		p99:       all[min(len(all)-1, len(all)*99/100)],
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// median and spread (min–max) of xs.
func stats(xs []float64) (med, lo, hi float64) {
	s := slices.Clone(xs)
	sort.Float64s(s)
	n := len(s)
	med = s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return med, s[0], s[n-1]
}

// BenchmarkEngines appends the same commands to every engine with 1 and 16 writers, in
// interleaved rounds (ENGINEBENCH_ROUNDS, default 3), and logs the median and spread of each
// figure with the throughput as a ratio to bbolt's in the same round.
//
//	go test ./services/devtools/enginebench/ -run '^$' -bench Engines -benchtime 400x -timeout 60m
func BenchmarkEngines(b *testing.B) {
	es := startEngines(b, b.TempDir())
	rounds := envInt("ENGINEBENCH_ROUNDS", 3)
	type key struct {
		engine  string
		writers int
	}
	got := map[key][]sample{}
	for r := 1; r <= rounds; r++ {
		for _, w := range []int{1, 16} {
			for _, e := range es {
				name := fmt.Sprintf("round=%d/writers=%d/engine=%s", r, w, e.name)
				var last sample
				b.Run(name, func(b *testing.B) {
					last = run(b, e, w, b.N, fmt.Sprintf("r%d-w%d-n%d-%d", r, w, b.N, time.Now().UnixNano()))
					b.ReportMetric(last.opsPerSec, "appends/s")
					b.ReportMetric(float64(last.p50.Microseconds())/1000, "p50-ms")
					b.ReportMetric(float64(last.p99.Microseconds())/1000, "p99-ms")
				})
				got[key{e.name, w}] = append(got[key{e.name, w}], last)
			}
		}
	}
	var out strings.Builder
	fmt.Fprintf(&out, "\n%d rounds, median [min–max]\n", rounds)
	fmt.Fprintf(&out, "| engine | writers | appends/s | × bbolt | p50 ms | p99 ms |\n|---|---|---|---|---|---|\n")
	for _, w := range []int{1, 16} {
		for _, e := range es {
			ss := got[key{e.name, w}]
			base := got[key{"bbolt", w}]
			var ops, ratio, p50, p99 []float64
			for i, s := range ss {
				ops = append(ops, s.opsPerSec)
				ratio = append(ratio, s.opsPerSec/base[i].opsPerSec)
				p50 = append(p50, float64(s.p50.Microseconds())/1000)
				p99 = append(p99, float64(s.p99.Microseconds())/1000)
			}
			f := func(xs []float64, prec int) string {
				m, lo, hi := stats(xs)
				return fmt.Sprintf("%.*f [%.*f–%.*f]", prec, m, prec, lo, prec, hi)
			}
			fmt.Fprintf(&out, "| %s | %d | %s | %s | %s | %s |\n", e.name, w, f(ops, 0), f(ratio, 2), f(p50, 2), f(p99, 2))
		}
	}
	fmt.Print(out.String())
}

// cluster is a three-node cluster of child processes (the test binary as RunNode).
type cluster struct {
	engine string
	ports  enginebench.Ports
	procs  []*exec.Cmd
}

func startCluster(tb testing.TB, engine, dir string) *cluster {
	tb.Helper()
	p, err := enginebench.NewPorts(3)
	if err != nil {
		tb.Fatal(err)
	}
	c := &cluster{engine: engine, ports: p}
	for i := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d,%s,%s", enginebench.NodeEnv, engine, i, dir, p))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			tb.Fatal(err)
		}
		c.procs = append(c.procs, cmd)
	}
	tb.Cleanup(func() {
		for _, p := range c.procs {
			if p.ProcessState == nil {
				_ = p.Process.Kill()
				_ = p.Wait()
			}
		}
	})
	return c
}

func (c *cluster) kill(i int) {
	_ = c.procs[i].Process.Signal(syscall.SIGKILL)
	_ = c.procs[i].Wait()
}

// failover starts a cluster of child processes, appends until it acknowledges, finds the
// leader, kills it with SIGKILL and returns the time from the kill to the next acknowledged
// append through a surviving node (attempts of at most 250 ms each), and the number of
// commands in the engine against the number acknowledged.
func failover(b *testing.B, engine, dir string) (time.Duration, uint64, uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := startCluster(b, engine, dir)
	type client interface {
		enginebench.Appender
		Count(context.Context) (uint64, error)
	}
	var cl client
	var leader func() (string, error)
	switch engine {
	case "etcd":
		ec, err := enginebench.DialEtcd(c.ports.ClientURLs("http"))
		if err != nil {
			b.Fatal(err)
		}
		cl = ec
		leader = func() (string, error) { return ec.Leader(ctx, c.ports.ClientURLs("http")[0]) }
	default:
		nc, err := enginebench.DialNATS(ctx, strings.Join(c.ports.ClientURLs("nats"), ","), true)
		if err != nil {
			b.Fatal(err)
		}
		cl = nc
		leader = func() (string, error) { return nc.Leader(ctx) }
	}
	var acked uint64
	appendUntil := func(cl client, id string) time.Duration {
		t0 := time.Now()
		for ctx.Err() == nil {
			actx, acancel := context.WithTimeout(ctx, 250*time.Millisecond)
			err := cl.Append(actx, id, command(id))
			acancel()
			if err == nil {
				acked++
				return time.Since(t0)
			}
		}
		b.Fatalf("%s: no acknowledgement of %s: %v", engine, id, ctx.Err())
		return 0
	}
	for i := range 20 {
		appendUntil(cl, fmt.Sprintf("before-%d", i))
	}
	name, err := leader()
	if err != nil {
		b.Fatal(err)
	}
	li, err := strconv.Atoi(name[1:])
	if err != nil {
		b.Fatal(err)
	}
	survivor := (li + 1) % 3
	_ = cl.Close()
	var sc client
	if engine == "etcd" {
		ec, err := enginebench.DialEtcd([]string{c.ports.ClientURLs("http")[survivor]})
		if err != nil {
			b.Fatal(err)
		}
		sc = ec
	} else {
		nc, err := enginebench.DialNATS(ctx, c.ports.ClientURLs("nats")[survivor], false)
		if err != nil {
			b.Fatal(err)
		}
		sc = nc
	}
	defer sc.Close()
	appendUntil(sc, "warm") // the survivor's connection is up before the kill
	c.kill(li)
	d := appendUntil(sc, "after-leader-killed")
	for i := range 20 {
		appendUntil(sc, fmt.Sprintf("after-%d", i))
	}
	var n uint64
	for ctx.Err() == nil {
		if n, err = sc.Count(ctx); err == nil {
			break
		}
	}
	return d, n, acked
}

// BenchmarkFailover kills the leader of each three-node engine (child processes) with SIGKILL
// and measures the time to the next acknowledged append, in interleaved rounds
// (ENGINEBENCH_FAILOVER_ROUNDS, default 3).
//
//	go test ./services/devtools/enginebench/ -run '^$' -bench Failover -benchtime 1x -timeout 30m
func BenchmarkFailover(b *testing.B) {
	rounds := envInt("ENGINEBENCH_FAILOVER_ROUNDS", 3)
	got := map[string][]float64{}
	engines := []string{"nats", "etcd"}
	for r := 1; r <= rounds; r++ {
		for _, e := range engines {
			b.Run(fmt.Sprintf("round=%d/engine=%s", r, e), func(b *testing.B) {
				d, n, acked := failover(b, e, b.TempDir())
				if n != acked {
					b.Errorf("%s holds %d commands, %d were acknowledged", e, n, acked)
				}
				b.ReportMetric(d.Seconds(), "failover-s")
				got[e] = append(got[e], d.Seconds())
			})
		}
	}
	var out strings.Builder
	fmt.Fprintf(&out, "\nleader killed (SIGKILL) → next acknowledged append, %d rounds, median [min–max]\n", rounds)
	for _, e := range engines {
		m, lo, hi := stats(got[e])
		fmt.Fprintf(&out, "%s: %.2f s [%.2f–%.2f]\n", e, m, lo, hi)
	}
	fmt.Print(out.String())
}

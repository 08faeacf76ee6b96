package roster

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/platform/grpcserver"
	"github.com/eastwest/labourlink/services/platform/identity"
)

// The read path under concurrent load: a Go load generator of readClients goroutines sharing one
// client connection (as ghz does by default), each call timed, against the real sending roster
// service (the real grpcserver with its interceptors, a real bbolt file of readWorkers workers)
// and, in the same run and interleaved round by round, against a bare grpc-go server
// (grpc.NewServer without interceptors) whose RosterServiceServer returns the very same
// response message. Run with -count 1 (the rounds are inside):
//
//	go test ./services/sending/roster -run '^$' -bench 'ReadLoad' -benchtime 5000x -timeout 10m
//
// Metrics per sub-benchmark: qps, p50-us and p99-us (per-call latency seen by the client),
// cpu-us/op (user+system CPU of the whole process, client and server together, per call) and, on
// each "service" or "mtls" sub-benchmark, the ratios to the baseline run just before it in the
// same round: qps-ratio (subject/baseline), p99-ratio and cpu-ratio.
const (
	readClients = 50
	readWorkers = 10_000
	readRounds  = 3
)

// bareRoster answers GetWorker and ListWorkers with fixed, prepared responses: what grpc-go alone
// costs for the same messages.
type bareRoster struct {
	sendingv1.UnimplementedRosterServiceServer
	get  *sendingv1.GetWorkerResponse
	list *sendingv1.ListWorkersResponse
}

func (r *bareRoster) GetWorker(context.Context, *sendingv1.GetWorkerRequest) (*sendingv1.GetWorkerResponse, error) {
	return r.get, nil
}

func (r *bareRoster) ListWorkers(context.Context, *sendingv1.ListWorkersRequest) (*sendingv1.ListWorkersResponse, error) {
	return r.list, nil
}

// loadResult is one load run: calls per second, latency quantiles and process CPU per call.
type loadResult struct {
	qps, p50, p99, cpu float64
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runLoad makes b.N calls of call from readClients goroutines and reports the figures.
func runLoad(b *testing.B, call func(i int) error) loadResult {
	b.Helper()
	var next atomic.Int64
	lat := make([][]time.Duration, readClients)
	var wg sync.WaitGroup
	var failed atomic.Value
	b.ResetTimer()
	cpu0, start := processCPU(), time.Now()
	for g := range readClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t := time.Now()
				if err := call(i); err != nil {
					failed.Store(err)
					return
				}
				lat[g] = append(lat[g], time.Since(t))
			}
		}()
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), processCPU()-cpu0
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	q := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) }
	r := loadResult{qps: float64(b.N) / elapsed.Seconds(), p50: q(0.50), p99: q(0.99), cpu: float64(cpu.Microseconds()) / float64(b.N)}
	b.ReportMetric(r.qps, "qps")
	b.ReportMetric(r.p50, "p50-us")
	b.ReportMetric(r.p99, "p99-us")
	b.ReportMetric(r.cpu, "cpu-us/op")
	return r
}

func reportRatio(b *testing.B, r, base loadResult) {
	b.ReportMetric(r.qps/base.qps, "qps-ratio")
	b.ReportMetric(r.p99/base.p99, "p99-ratio")
	b.ReportMetric(r.cpu/base.cpu, "cpu-ratio")
}

// readFixture is a sending service with readWorkers imported workers, the names of some of them,
// and the prepared responses of the bare server.
type readFixture struct {
	env   *rosterEnv
	names []string
	bare  *bareRoster
}

func newReadFixture(b *testing.B, opts ...grpc.ServerOption) (*readFixture, *grpc.Server, string) {
	b.Helper()
	env := startRoster(b, zap.NewNop(), "")
	rows := make([]*sendingv1.WorkerRow, readWorkers)
	for i := range rows {
		rows[i] = genRow(i)
	}
	if _, err := importRows(context.Background(), env.client, "read-bench", rows, 5000); err != nil {
		b.Fatal(err)
	}
	f := &readFixture{env: env, bare: &bareRoster{}}
	token := ""
	for range 10 {
		page, err := env.client.ListWorkers(context.Background(), &sendingv1.ListWorkersRequest{PageSize: 100, PageToken: token})
		if err != nil {
			b.Fatal(err)
		}
		if f.bare.list == nil {
			f.bare.list = page
		}
		for _, w := range page.GetWorkers() {
			f.names = append(f.names, w.GetName())
		}
		token = page.GetNextPageToken()
	}
	get, err := env.client.GetWorker(context.Background(), &sendingv1.GetWorkerRequest{Name: f.names[0]})
	if err != nil {
		b.Fatal(err)
	}
	f.bare.get = get
	bare := grpc.NewServer(opts...)
	sendingv1.RegisterRosterServiceServer(bare, f.bare)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = bare.Serve(lis) }()
	b.Cleanup(bare.Stop)
	return f, bare, lis.Addr().String()
}

func dialBench(b *testing.B, addr string, creds credentials.TransportCredentials) sendingv1.RosterServiceClient {
	b.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cc.Close() })
	return sendingv1.NewRosterServiceClient(cc)
}

// readCalls are the two measured calls: GetWorker of one of the fixture's workers (cycling) and
// the first ListWorkers page of 100.
func readCalls(names []string) map[string]func(c sendingv1.RosterServiceClient, i int) error {
	return map[string]func(c sendingv1.RosterServiceClient, i int) error{
		"GetWorker": func(c sendingv1.RosterServiceClient, i int) error {
			_, err := c.GetWorker(context.Background(), &sendingv1.GetWorkerRequest{Name: names[i%len(names)]})
			return err
		},
		"ListWorkers100": func(c sendingv1.RosterServiceClient, i int) error {
			_, err := c.ListWorkers(context.Background(), &sendingv1.ListWorkersRequest{PageSize: 100})
			return err
		},
	}
}

// BenchmarkReadLoad: the sending service against the bare server, GetWorker and a ListWorkers
// page of 100, rounds interleaved (round1/GetWorker/bare, round1/GetWorker/service, ...);
// GetWorker also through a server logging JSON at info level (service-infolog).
func BenchmarkReadLoad(b *testing.B) {
	f, _, bareAddr := newReadFixture(b)
	bare := dialBench(b, bareAddr, insecure.NewCredentials())
	// The same service behind a second grpcserver whose logger writes JSON at info level (to
	// io.Discard), as a daemon logs: what the per-RPC log line costs.
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	infoLog := zap.New(zapcore.NewCore(enc, zapcore.AddSync(io.Discard), zapcore.InfoLevel))
	srv := grpcserver.New(grpcserver.Config{ServiceName: "sending"}, infoLog)
	f.env.svc.Register(srv.GRPC())
	srv.SetServing()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	b.Cleanup(func() { srv.Stop(context.Background()) })
	logged := dialBench(b, lis.Addr().String(), insecure.NewCredentials())
	calls := readCalls(f.names)
	for round := 1; round <= readRounds; round++ {
		for _, name := range []string{"GetWorker", "ListWorkers100"} {
			call := calls[name]
			var base loadResult
			b.Run(fmt.Sprintf("round%d/%s/bare", round, name), func(b *testing.B) {
				base = runLoad(b, func(i int) error { return call(bare, i) })
			})
			b.Run(fmt.Sprintf("round%d/%s/service", round, name), func(b *testing.B) {
				reportRatio(b, runLoad(b, func(i int) error { return call(f.env.client, i) }), base)
			})
			if name == "GetWorker" {
				b.Run(fmt.Sprintf("round%d/%s/service-infolog", round, name), func(b *testing.B) {
					reportRatio(b, runLoad(b, func(i int) error { return call(logged, i) }), base)
				})
			}
		}
	}
}

// BenchmarkReadLoadMTLS: the same GetWorker calls to the sending service over plaintext and over
// mutual TLS (certificates of a test federation made by identity.Init, the server's TLS
// configuration from identity.ServerTLS as the daemon makes it), interleaved. Authorisation is
// left out so that only the transport differs.
//
//	go test ./services/sending/roster -run '^$' -bench 'ReadLoadMTLS' -benchtime 5000x -timeout 10m
func BenchmarkReadLoadMTLS(b *testing.B) {
	dir := b.TempDir()
	if _, err := identity.Init(dir, identity.LocalFederation()); err != nil {
		b.Fatal(err)
	}
	ca := filepath.Join(dir, identity.CAFile)
	srvCert, srvKey := identity.Paths(dir, identity.Sending(rosterRegion))
	cliCert, cliKey := identity.Paths(dir, identity.Operator(rosterRegion, true))
	serverTLS, err := identity.ServerTLS(ca, srvCert, srvKey)
	if err != nil {
		b.Fatal(err)
	}
	clientTLS, err := identity.ClientTLS(ca, cliCert, cliKey)
	if err != nil {
		b.Fatal(err)
	}
	f, _, _ := newReadFixture(b)
	// The same service and data file behind a second, mTLS grpcserver.
	srv := grpcserver.New(grpcserver.Config{ServiceName: "sending", ServerOptions: []grpc.ServerOption{grpc.Creds(credentials.NewTLS(serverTLS))}}, zap.NewNop())
	f.env.svc.Register(srv.GRPC())
	srv.SetServing()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	b.Cleanup(func() { srv.Stop(context.Background()) })
	mtls := dialBench(b, lis.Addr().String(), credentials.NewTLS(clientTLS))
	call := readCalls(f.names)["GetWorker"]
	for round := 1; round <= readRounds; round++ {
		var base loadResult
		b.Run(fmt.Sprintf("round%d/GetWorker/plaintext", round), func(b *testing.B) {
			base = runLoad(b, func(i int) error { return call(f.env.client, i) })
		})
		b.Run(fmt.Sprintf("round%d/GetWorker/mtls", round), func(b *testing.B) {
			reportRatio(b, runLoad(b, func(i int) error { return call(mtls, i) }), base)
		})
	}
}

package peers_test

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/eastwest/labourlink/services/platform/identity"
	"github.com/eastwest/labourlink/services/platform/peers"
)

// replica is a coordination-like gRPC server on a loopback port: health, and a count of the
// unary calls (health Check) that reach it. The client's health watch is a stream and is not
// counted.
type replica struct {
	addr   string
	srv    *grpc.Server
	health *health.Server
	calls  atomic.Int64
}

// startReplica listens on host (127.0.0.1 or localhost) with the credentials opts give.
func startReplica(t *testing.T, host string, opts ...grpc.ServerOption) *replica {
	t.Helper()
	r := &replica{health: health.NewServer()}
	r.srv = grpc.NewServer(append(opts, grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		r.calls.Add(1)
		return h(ctx, req)
	}))...)
	healthpb.RegisterHealthServer(r.srv, r.health)
	lis, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(lis.Addr().String())
	r.addr = net.JoinHostPort(host, port)
	go func() { _ = r.srv.Serve(lis) }()
	t.Cleanup(r.srv.Stop)
	return r
}

// deadAddr is a loopback address nobody listens on (a node that is down).
func deadAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	return addr
}

// callN makes n health checks on cc; each must succeed.
func callN(t *testing.T, cc *grpc.ClientConn, n int) {
	t.Helper()
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
}

func TestSplitTargets(t *testing.T) {
	tests := []struct {
		target string
		want   []string
		ok     bool
	}{
		{"127.0.0.1:50051", []string{"127.0.0.1:50051"}, true},
		{"a:1,b:2,c:3", []string{"a:1", "b:2", "c:3"}, true},
		{" a:1 , b:2 ", []string{"a:1", "b:2"}, true},
		{"a:1,,b:2", nil, false},
		{"a:1,", nil, false},
		{"", nil, false},
	}
	for _, tt := range tests {
		got, err := peers.SplitTargets(tt.target)
		if (err == nil) != tt.ok || strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("SplitTargets(%q) = %q, %v; want %q, ok %v", tt.target, got, err, tt.want, tt.ok)
		}
	}
	if _, err := peers.Dial("127.0.0.1:1,,127.0.0.1:2", peers.Options{}); err == nil {
		t.Error("Dial accepted an empty address in the list")
	}
	if _, err := peers.Dial("127.0.0.1:1,nohostport", peers.Options{}); err == nil {
		t.Error("Dial accepted an address without a port in a list")
	}
}

// TestDialReplicasSkipsDownAndNotServing: of three addresses, one has nobody listening and one
// answers health NOT_SERVING (a draining node): every call succeeds, and all of them reach the
// one SERVING replica.
func TestDialReplicasSkipsDownAndNotServing(t *testing.T) {
	up := startReplica(t, "127.0.0.1")
	draining := startReplica(t, "127.0.0.1")
	draining.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	cc, err := peers.Dial(strings.Join([]string{deadAddr(t), draining.addr, up.addr}, ","), peers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	callN(t, cc, 20)
	if got := up.calls.Load(); got != 20 {
		t.Errorf("the serving replica saw %d calls, want 20", got)
	}
	if got := draining.calls.Load(); got != 0 {
		t.Errorf("the NOT_SERVING replica saw %d calls, want 0", got)
	}
}

// TestDialReplicasSurvivesAStoppedNode: two replicas, with mTLS (each address verified under its
// own host name, 127.0.0.1 and localhost) and the coordination identity expected; calls go on
// succeeding after the replica that answered is stopped (its connections cut, as by kill -9).
func TestDialReplicasSurvivesAStoppedNode(t *testing.T) {
	dir := certDir(t)
	cert, key := identity.Paths(dir, identity.Coordination())
	scfg, err := identity.ServerTLS(filepath.Join(dir, identity.CAFile), cert, key)
	if err != nil {
		t.Fatal(err)
	}
	a := startReplica(t, "127.0.0.1", grpc.Creds(credentials.NewTLS(scfg)))
	b := startReplica(t, "localhost", grpc.Creds(credentials.NewTLS(scfg)))
	ccert, ckey := identity.Paths(dir, identity.Sending("520000"))
	ccfg, err := identity.ClientTLS(filepath.Join(dir, identity.CAFile), ccert, ckey)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := peers.Dial(a.addr+","+b.addr, peers.Options{TLS: ccfg, Expect: identity.Coordination()})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	callN(t, cc, 10)
	// Stop whichever replica answered (round_robin: possibly both); the other must carry on.
	first, second := a, b
	if b.calls.Load() > a.calls.Load() {
		first, second = b, a
	}
	first.srv.Stop()
	before := second.calls.Load()
	callN(t, cc, 20)
	if got := second.calls.Load() - before; got != 20 {
		t.Errorf("after stopping %s, %s saw %d of the 20 calls", first.addr, second.addr, got)
	}
}

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
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/eastwest/labourlink/services/devtools/faultproxy"
	"github.com/eastwest/labourlink/services/platform/grpcserver"
	"github.com/eastwest/labourlink/services/platform/identity"
	"github.com/eastwest/labourlink/services/platform/peers"
)

// certDir makes a federation's certificates: the coordination service, Guizhou's sending
// service and the receiving services of Guangdong (440000) and Zhejiang (330000).
func certDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	p := identity.Plan{Regions: []identity.RegionRole{
		{Code: "520000", Role: identity.RoleSending},
		{Code: "440000", Role: identity.RoleReceiving},
		{Code: "330000", Role: identity.RoleReceiving},
	}}
	if _, err := identity.Init(dir, p); err != nil {
		t.Fatal(err)
	}
	return dir
}

// server serves health over mTLS with the certificate of who and counts the calls that reach
// it.
func server(t *testing.T, dir string, who identity.Identity) (addr string, calls *atomic.Int64) {
	t.Helper()
	cert, key := identity.Paths(dir, who)
	cfg, err := identity.ServerTLS(filepath.Join(dir, identity.CAFile), cert, key)
	if err != nil {
		t.Fatal(err)
	}
	calls = new(atomic.Int64)
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			calls.Add(1)
			return h(ctx, req)
		}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), calls
}

// check calls health on addr as Guizhou's sending service with options o.
func check(t *testing.T, dir, addr string, o peers.Options) error {
	t.Helper()
	cert, key := identity.Paths(dir, identity.Sending("520000"))
	cfg, err := identity.ClientTLS(filepath.Join(dir, identity.CAFile), cert, key)
	if err != nil {
		t.Fatal(err)
	}
	o.TLS = cfg
	cc, err := peers.Dial(addr, o)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

// TestExpectedServerIdentity: a client expecting Guangdong's receiving service reaches it, and
// fails the handshake against a server holding another receiving province's or the
// coordination service's certificate, with an UNAVAILABLE error naming both identities and
// without a call reaching that server.
func TestExpectedServerIdentity(t *testing.T) {
	dir := certDir(t)
	guangdong := identity.Receiving("440000")
	tests := []struct {
		name   string
		server identity.Identity
		expect identity.Identity
		ok     bool
	}{
		{"the expected receiving province", guangdong, guangdong, true},
		{"another receiving province", identity.Receiving("330000"), guangdong, false},
		{"the coordination service instead of a province", identity.Coordination(), guangdong, false},
		{"the coordination service expected", identity.Coordination(), identity.Coordination(), true},
		{"a province instead of the coordination service", guangdong, identity.Coordination(), false},
		{"no expectation: any service of the federation", identity.Receiving("330000"), identity.Identity{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr, calls := server(t, dir, tt.server)
			err := check(t, dir, addr, peers.Options{Expect: tt.expect})
			if tt.ok {
				if err != nil {
					t.Fatalf("expecting %q, server %s: %v", tt.expect, tt.server, err)
				}
				if calls.Load() != 1 {
					t.Errorf("the server saw %d calls, want 1", calls.Load())
				}
				return
			}
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("expecting %s, server %s: %v, want UNAVAILABLE", tt.expect, tt.server, err)
			}
			msg := status.Convert(err).Message()
			t.Logf("the caller sees: %v", err)
			for _, want := range []string{"expected " + tt.expect.String(), "presents " + tt.server.String()} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q lacks %q", msg, want)
				}
			}
			if n := calls.Load(); n != 0 {
				t.Errorf("%d calls reached the wrong server", n)
			}
		})
	}
}

// TestExpectNeedsTLSConfig: an expectation cannot be checked with opaque credentials, and an
// invalid one is refused, both when dialling rather than silently unchecked.
func TestExpectNeedsTLSConfig(t *testing.T) {
	dir := certDir(t)
	cert, key := identity.Paths(dir, identity.Sending("520000"))
	cfg, err := identity.ClientTLS(filepath.Join(dir, identity.CAFile), cert, key)
	if err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]peers.Options{
		"opaque credentials": {Creds: credentials.NewTLS(cfg), Expect: identity.Coordination()},
		"invalid identity":   {TLS: cfg, Expect: identity.Receiving("")},
		"TLS and Creds":      {TLS: cfg, Creds: credentials.NewTLS(cfg)},
	} {
		if cc, err := peers.Dial("127.0.0.1:1", o); err == nil {
			cc.Close()
			t.Errorf("%s: Dial succeeded", name)
		}
	}
}

// TestDeadlinesFitTheWork: a call's deadline is the base plus an allowance per item, capped,
// and configurable; the defaults give a call over a slow link (5 s each way) several round
// trips.
func TestDeadlinesFitTheWork(t *testing.T) {
	custom := peers.Deadlines{Base: 2 * time.Second, PerItem: time.Millisecond, Max: 3 * time.Second}
	tests := []struct {
		name  string
		d     peers.Deadlines
		items int
		want  time.Duration
	}{
		{"default, no items", peers.Deadlines{}, 0, peers.DefaultCallBase},
		{"default, 1000 candidates", peers.Deadlines{}, 1000, peers.DefaultCallBase + 1000*peers.DefaultCallPerItem},
		{"default, capped", peers.Deadlines{}, 1 << 30, peers.DefaultCallMax},
		{"negative items count as none", peers.Deadlines{}, -5, peers.DefaultCallBase},
		{"custom", custom, 500, 2500 * time.Millisecond},
		{"custom, capped", custom, 5000, 3 * time.Second},
		{"max below base is raised to base", peers.Deadlines{Base: 4 * time.Second, Max: time.Second}, 10, 4 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.d.For(tt.items); got != tt.want {
				t.Errorf("For(%d) = %v, want %v", tt.items, got, tt.want)
			}
		})
	}
	if peers.CallTimeout(0) < 40*time.Second {
		t.Errorf("default deadline %v: a call on a new TLS connection over a link with 5 s latency each way needs four round trips (40 s)", peers.CallTimeout(0))
	}
	if got, want := (peers.Options{Deadlines: custom}).CallTimeout(100), 2100*time.Millisecond; got != want {
		t.Errorf("Options.CallTimeout(100) = %v, want %v", got, want)
	}

	// A caller's own deadline is kept.
	parent, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	ctx, cancel2 := peers.WithTimeoutFor(parent, 10)
	defer cancel2()
	if d, _ := ctx.Deadline(); time.Until(d) < 59*time.Minute {
		t.Errorf("WithTimeoutFor replaced the caller's deadline: %v left", time.Until(d))
	}
	ctx, cancel3 := peers.WithTimeoutFor(context.Background(), 10)
	defer cancel3()
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > peers.CallTimeout(10) {
		t.Errorf("WithTimeoutFor without a caller's deadline: %v, %v", d, ok)
	}
}

// TestKeepaliveFindsBlackholedPeer: when the link to a peer goes silent (a blackhole: the
// connection stays open, nothing gets through), an open stream fails UNAVAILABLE within the
// keepalive window (10 s + 5 s), not after 40 s or never. The server enforces the labourlink
// keepalive policy, which the client's pings respect.
func TestKeepaliveFindsBlackholedPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for keepalive (about 15 s)")
	}
	srv := grpc.NewServer(grpc.KeepaliveEnforcementPolicy(grpcserver.DefaultKeepaliveEnforcement))
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	proxy := faultproxy.Start(t, lis.Addr().String())

	cc, err := peers.Dial(proxy.Addr(), peers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := healthpb.NewHealthClient(cc).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	proxy.Blackhole()
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		_, err := stream.Recv()
		errc <- err
	}()
	window := peers.DefaultKeepaliveTime + peers.DefaultKeepaliveTimeout
	select {
	case err := <-errc:
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("stream over the blackholed link ended with %v, want UNAVAILABLE", err)
		}
		t.Logf("dead link found after %v (keepalive window %v): %v", time.Since(start).Round(100*time.Millisecond), window, err)
	case <-time.After(2 * window):
		t.Fatalf("the stream over a blackholed link was still open after %v: keepalive does not find a dead peer", 2*window)
	}
}

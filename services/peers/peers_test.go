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

	"github.com/eastwest/labourlink/services/identity"
	"github.com/eastwest/labourlink/services/peers"
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

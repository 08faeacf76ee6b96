package main

import (
	"context"
	"crypto/tls"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/platform/identity"
)

// fakeRoster answers GetWorker with NotFound, after recording the deadline the call arrived with;
// with hold it waits until the caller gives up instead.
type fakeRoster struct {
	sendingv1.UnimplementedRosterServiceServer
	hold bool

	mu       sync.Mutex
	deadline time.Duration // what was left of the call's deadline when it arrived; 0: none
}

func (f *fakeRoster) GetWorker(ctx context.Context, _ *sendingv1.GetWorkerRequest) (*sendingv1.GetWorkerResponse, error) {
	f.mu.Lock()
	if dl, ok := ctx.Deadline(); ok {
		f.deadline = time.Until(dl)
	}
	f.mu.Unlock()
	if f.hold {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return nil, status.Error(codes.NotFound, "worker not found")
}

// listen returns a TCP listener on host (127.0.0.1 unless given) and its address.
func listen(t *testing.T, host string) (net.Listener, string) {
	t.Helper()
	if host == "" {
		host = "127.0.0.1"
	}
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, l.Addr().String()
}

// serveRoster serves f on l, with TLS when cfg is set.
func serveRoster(t *testing.T, l net.Listener, f *fakeRoster, cfg *tls.Config) {
	t.Helper()
	var opts []grpc.ServerOption
	if cfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg)))
	}
	s := grpc.NewServer(opts...)
	sendingv1.RegisterRosterServiceServer(s, f)
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
}

// federationCerts makes a CA and the certificates of the local federation in a new folder.
func federationCerts(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := identity.Init(dir, identity.LocalFederation()); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tlsFlags are the CLI's TLS flags with the certificate of id from dir.
func tlsFlags(dir string, id identity.Identity) []string {
	c, k := identity.Paths(dir, id)
	return []string{"-tls-ca", filepath.Join(dir, identity.CAFile), "-tls-cert", c, "-tls-key", k}
}

// serverTLS is the TLS configuration of Guizhou's sending service with the certificates of dir.
func serverTLS(t *testing.T, dir string) *tls.Config {
	t.Helper()
	c, k := identity.Paths(dir, identity.Sending("520000"))
	cfg, err := identity.ServerTLS(filepath.Join(dir, identity.CAFile), c, k)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// acceptAndHold accepts connections on l and keeps them open, answering nothing (reply nil) or,
// after reading what the client sends first, reply.
func acceptAndHold(t *testing.T, l net.Listener, reply []byte) {
	t.Helper()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			if reply != nil {
				go func() {
					buf := make([]byte, 64)
					if _, err := c.Read(buf); err == nil {
						_, _ = c.Write(reply)
					}
				}()
			}
		}
	}()
}

// A call that cannot reach the service is explained in one sentence naming the address and the
// likely fix, not in gRPC's words, for each way of getting the connection wrong: each case runs
// against a real listener.
func TestConnectionProblemsExplained(t *testing.T) {
	t.Parallel()
	fed, other := federationCerts(t), federationCerts(t)
	op := identity.Operator("520000", true)

	closedL, closed := listen(t, "")
	closedL.Close()
	silentL, silent := listen(t, "")
	acceptAndHold(t, silentL, nil)
	httpL, httpAddr := listen(t, "")
	acceptAndHold(t, httpL, []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
	tlsL, tlsAddr := listen(t, "")
	serveRoster(t, tlsL, &fakeRoster{}, serverTLS(t, fed))
	plainL, plainAddr := listen(t, "")
	serveRoster(t, plainL, &fakeRoster{}, nil)
	otherHostL, otherHost := listen(t, "127.0.0.2")
	serveRoster(t, otherHostL, &fakeRoster{}, serverTLS(t, fed))
	fedCA := filepath.Join(fed, identity.CAFile)
	otherCert, otherKey := identity.Paths(other, op)

	for _, c := range []struct {
		name string
		addr string
		args []string
		want []string
	}{
		{"nothing listening", closed, nil, []string{"nothing listens at", "start the service", "-addr"}},
		{"listener that never answers", silent, []string{"-timeout", "300ms"}, []string{"no answer from", "within 300ms", "wrong -addr", "-timeout"}},
		{"an HTTP server", httpAddr, nil, []string{"not as a gRPC service", "-addr"}},
		{"plaintext client, TLS server", tlsAddr, nil, []string{"closed the connection", "expects TLS", "-tls-ca, -tls-cert and -tls-key", "LABOURLINK_TLS_CA"}},
		{"TLS client, plaintext server", plainAddr, tlsFlags(fed, op), []string{"is a plaintext service", "leave out -tls-ca"}},
		{"server certificate of another CA", tlsAddr, tlsFlags(other, op), []string{"is not signed by the CA in -tls-ca", filepath.Join(other, identity.CAFile)}},
		{"client certificate of another CA", tlsAddr, []string{"-tls-ca", fedCA, "-tls-cert", otherCert, "-tls-key", otherKey},
			[]string{"refused your client certificate", otherCert, "federation's CA"}},
		{"server certificate for another host", otherHost, tlsFlags(fed, op), []string{"is for another host", "127.0.0.1, ::1, not 127.0.0.2", "certs issue -hosts"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			code, _, errOut := cli(t, append([]string{"roster", "get", "w-1", "-addr", c.addr}, c.args...)...)
			if code != exitFailed {
				t.Errorf("exit %d, want %d", code, exitFailed)
			}
			for _, w := range append(c.want, c.addr) {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr does not say %q:\n%s", w, errOut)
				}
			}
			if strings.Contains(errOut, "rpc error") || strings.Contains(errOut, "Unavailable") || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
				t.Errorf("not one sentence in plain words:\n%s", errOut)
			}
		})
	}
	// The same certificates against the right server work: the call reaches the service.
	if code, _, errOut := cli(t, append([]string{"roster", "get", "w-1", "-addr", tlsAddr}, tlsFlags(fed, op)...)...); code != exitFailed || !strings.Contains(errOut, "NotFound: worker not found") {
		t.Errorf("roster get with the federation's certificates: exit %d\n%s", code, errOut)
	}
}

// -timeout is the deadline each call carries to the service (60 s by default, longer ones not
// capped), and a call the service does not finish in time fails saying so.
func TestTimeoutFlagBoundsCalls(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		args     []string
		hold     bool
		min, max time.Duration
		want     string
	}{
		{"default", nil, false, 50 * time.Second, 60 * time.Second, "NotFound"},
		{"longer than the default", []string{"-timeout", "3m"}, false, 2 * time.Minute, 3 * time.Minute, "NotFound"},
		{"a service that does not answer in time", []string{"-timeout", "500ms"}, true, 1, 500 * time.Millisecond, "did not finish the call within 500ms: raise -timeout"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			l, addr := listen(t, "")
			f := &fakeRoster{hold: c.hold}
			serveRoster(t, l, f, nil)
			code, _, errOut := cli(t, append([]string{"roster", "get", "w-1", "-addr", addr}, c.args...)...)
			if code != exitFailed || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d, want %d and %q:\n%s", code, exitFailed, c.want, errOut)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.deadline < c.min || f.deadline > c.max {
				t.Errorf("the call arrived with %v left of its deadline, want %v to %v", f.deadline, c.min, c.max)
			}
		})
	}
	if code, _, errOut := cli(t, "roster", "get", "w-1", "-timeout", "0s"); code != exitFailed || !strings.Contains(errOut, "-timeout must be more than 0") {
		t.Errorf("-timeout 0s: exit %d\n%s", code, errOut)
	}
}

package daemon_test

import (
	"context"
	"github.com/eastwest/labourlink/services/devtools/wait"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/eastwest/labourlink/services/daemon"
	"github.com/eastwest/labourlink/services/devtools/proctest"
	"github.com/eastwest/labourlink/services/platform/identity"
)

// run starts daemon.Run for cfg and stops it at the end of the test.
func run(t *testing.T, cfg daemon.Config, lg *zap.Logger) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- daemon.Run(ctx, cfg, lg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run: %v", err)
		}
	})
}

func sendingConfig(t *testing.T) daemon.Config {
	return daemon.Config{Kind: daemon.Sending, Region: "520000", Listen: proctest.FreeAddr(t), DataDir: t.TempDir(),
		LogLevel: "info", ShutdownTimeout: 2 * time.Second}
}

// healthy waits until addr answers SERVING over creds.
func healthy(t *testing.T, addr string, creds credentials.TransportCredentials) {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	var last error
	if !wait.Until(wait.Limit, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
		last = err
		return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
	}) {
		t.Fatalf("%s not SERVING: %v", addr, last)
	}
}

func TestPlaintextSaysAuthorisationIsOff(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.InfoLevel)
	cfg := sendingConfig(t)
	run(t, cfg, zap.New(core))
	healthy(t, cfg.Listen, insecure.NewCredentials())
	found := false
	for _, e := range logs.All() {
		found = found || (e.Level == zapcore.WarnLevel && strings.Contains(e.Message, "tls is off") && strings.Contains(e.Message, "every caller may call every method"))
	}
	if !found {
		t.Errorf("no warning that authorisation is off in %d log lines", logs.Len())
	}
}

func certs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := identity.Init(dir, identity.LocalFederation()); err != nil {
		t.Fatal(err)
	}
	return dir
}

func tlsOf(dir string, id identity.Identity) daemon.TLSConfig {
	cert, key := identity.Paths(dir, id)
	return daemon.TLSConfig{CAFile: filepath.Join(dir, identity.CAFile), CertFile: cert, KeyFile: key}
}

// A service does not start with another party's certificate.
func TestCertificateMustNameTheService(t *testing.T) {
	t.Parallel()
	dir := certs(t)
	for _, id := range []identity.Identity{identity.Receiving("440000"), identity.System("520000"), identity.Coordination()} {
		cfg := sendingConfig(t)
		cfg.TLS = tlsOf(dir, id)
		err := daemon.Run(context.Background(), cfg, zaptest.NewLogger(t))
		if err == nil || !strings.Contains(err.Error(), "not of this service") || !strings.Contains(err.Error(), id.String()) {
			t.Errorf("started with the certificate of %v: %v", id, err)
		}
	}
}

// With TLS the gRPC port refuses plaintext, and -health-listen serves health alone in
// plaintext for probes.
func TestHealthListenServesProbesInPlaintext(t *testing.T) {
	t.Parallel()
	dir := certs(t)
	core, logs := observer.New(zapcore.InfoLevel)
	cfg := sendingConfig(t)
	cfg.TLS = tlsOf(dir, identity.Sending("520000"))
	cfg.HealthListen = proctest.FreeAddr(t)
	run(t, cfg, zap.New(core))

	clientTLS, err := identity.ClientTLS(cfg.TLS.CAFile, tlsOf(dir, identity.System("520000")).CertFile, tlsOf(dir, identity.System("520000")).KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	healthy(t, cfg.Listen, credentials.NewTLS(clientTLS))
	healthy(t, cfg.HealthListen, insecure.NewCredentials())

	cc, err := grpc.NewClient(cfg.Listen, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("plaintext on the mTLS port: %v, want Unavailable", err)
	}
	// The health port serves nothing but health.
	hc, err := grpc.NewClient(cfg.HealthListen, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	err = hc.Invoke(ctx, "/labourlink.sending.v1.RosterService/ListWorkers", &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("roster on the health port: %v, want Unimplemented", err)
	}
	if logs.FilterMessageSnippet("mtls on").Len() != 1 {
		t.Errorf("no log line saying mTLS and authorisation are on")
	}
}

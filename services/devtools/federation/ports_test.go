package federation_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/eastwest/labourlink/services/devtools/federation"
	"github.com/eastwest/labourlink/services/devtools/proctest"
	"github.com/eastwest/labourlink/services/platform/peers"
)

// runDevUntilExit runs `labourlink dev` on addrs with data in data and returns its stdout and
// stderr once it exits; it fails the test if dev is still running after 90 s (it is stopped).
func runDevUntilExit(t *testing.T, addrs map[string]string, data string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, proctest.Binary(t), "dev", "-data", data,
		"-coordination-addr", addrs["coordination"], "-sending-addr", addrs["sending"], "-receiving-addr", addrs["receiving"])
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("dev still running after 90s:\n%s\nstderr:\n%s", out.String(), errOut.String())
	}
	return out.String(), errOut.String(), err
}

// TestDevFailsWhenAPortIsTaken: another program serves gRPC health (SERVING) on the sending
// service's port. dev must not take that answer for its own service: it fails at once, saying
// which service could not start and quoting the service's own error, instead of saying the
// federation is up. (Item 9 of issue 10: dev said "up" while another federation held its ports.)
func TestDevFailsWhenAPortIsTaken(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	impostor := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("", grpc_health_v1.HealthCheckResponse_SERVING)
	grpc_health_v1.RegisterHealthServer(impostor, hs)
	go func() { _ = impostor.Serve(lis) }()
	defer impostor.Stop()

	addrs := map[string]string{
		"coordination": proctest.FreeAddrWith(t, federation.MetricsPortOffset, federation.HTTPPortOffset),
		"sending":      lis.Addr().String(),
		"receiving":    proctest.FreeAddrWith(t, federation.MetricsPortOffset, federation.HTTPPortOffset),
	}
	stdout, stderr, err := runDevUntilExit(t, addrs, t.TempDir())
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("dev exited with %v, want a failure:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	if strings.Contains(stdout, "is up") {
		t.Errorf("dev said the federation is up while another program held the sending port:\n%s", stdout)
	}
	for _, want := range []string{"the sending service did not start", "address already in use", addrs["sending"], "sending.log"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("dev's error does not say %q:\n%s", want, stderr)
		}
	}
	// The services that did start were stopped again.
	for _, kind := range []string{"coordination", "receiving"} {
		if c, err := net.DialTimeout("tcp", addrs[kind], time.Second); err == nil {
			c.Close()
			t.Errorf("%s still listening on %s after dev failed", kind, addrs[kind])
		}
	}
}

// TestSecondDevOnTheSamePortsFails: a second `labourlink dev` (another data folder) on the ports
// of a running one fails with the port named, and the first federation keeps serving.
func TestSecondDevOnTheSamePortsFails(t *testing.T) {
	t.Parallel()
	first := startDev(t)
	stdout, stderr, err := runDevUntilExit(t, first.addrs, t.TempDir())
	if err == nil || strings.Contains(stdout, "is up") {
		t.Fatalf("second dev: %v\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	for _, want := range []string{"the coordination service did not start", "address already in use", first.addrs["coordination"]} {
		if !strings.Contains(stderr, want) {
			t.Errorf("second dev's error does not say %q:\n%s", want, stderr)
		}
	}
	for kind, addr := range first.addrs {
		cc, err := peers.Dial(addr, peers.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := grpc_health_v1.NewHealthClient(cc).Check(ctx, &grpc_health_v1.HealthCheckRequest{})
		cancel()
		cc.Close()
		if err != nil || resp.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING {
			t.Errorf("first federation's %s on %s after the second failed: %v %v", kind, addr, resp.GetStatus(), err)
		}
	}
	first.interrupt()
}

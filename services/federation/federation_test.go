package federation_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/health/grpc_health_v1"

	coordinationv1 "github.com/eastwest/labourlink/proto/labour/coordination/v1"
	"github.com/eastwest/labourlink/services/federation"
	"github.com/eastwest/labourlink/services/peers"
	"github.com/eastwest/labourlink/services/proctest"
)

// TestDevStartsAndStopsTheFederation runs `labourlink dev` as a user would, checks that the
// three services answer SERVING on the printed addresses, that Guizhou and Guangdong are paired
// and registered, and that Ctrl-C (SIGINT) stops all three cleanly.
func TestDevStartsAndStopsTheFederation(t *testing.T) {
	bin := proctest.Binary(t)
	data := t.TempDir()
	addrs := map[string]string{
		"coordination": proctest.FreeAddr(t),
		"sending":      proctest.FreeAddr(t),
		"receiving":    proctest.FreeAddr(t),
	}
	cmd := exec.Command(bin, "dev", "-data", data,
		"-coordination-addr", addrs["coordination"], "-sending-addr", addrs["sending"], "-receiving-addr", addrs["receiving"])
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var printed strings.Builder
	deadline := time.After(90 * time.Second)
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("dev exited before the federation was up:\n%s\nstderr:\n%s", printed.String(), stderr.String())
			}
			printed.WriteString(l + "\n")
			if strings.Contains(l, "Press Ctrl-C to stop") {
				break wait
			}
		case <-deadline:
			t.Fatalf("federation not up after 90s:\n%s\nstderr:\n%s", printed.String(), stderr.String())
		}
	}
	out := printed.String()
	for kind, addr := range addrs {
		if !strings.Contains(out, addr) {
			t.Errorf("welcome text does not print the %s address %s:\n%s", kind, addr, out)
		}
		if !strings.Contains(out, "grpcurl") {
			t.Errorf("welcome text has no grpcurl command")
		}
		cc, err := peers.Dial(addr, peers.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := grpc_health_v1.NewHealthClient(cc).Check(ctx, &grpc_health_v1.HealthCheckRequest{})
		cancel()
		if err != nil || resp.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING {
			t.Errorf("%s on %s: health %v, %v", kind, addr, resp.GetStatus(), err)
		}
		cc.Close()
	}

	// The pairing Guangdong <- Guizhou is in the registry, and both regions registered.
	cc, err := peers.Dial(addrs["coordination"], peers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg := coordinationv1.NewRegistryServiceClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pairs, err := reg.ListPairings(ctx, &coordinationv1.ListPairingsRequest{Region: federation.SendingRegion})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range pairs.GetPairings() {
		found = found || (p.GetReceivingRegion() == federation.ReceivingRegion && p.GetSendingRegion() == federation.SendingRegion)
	}
	if !found {
		t.Errorf("pairing 440000-520000 not in the registry: %v", pairs.GetPairings())
	}
	for _, code := range []string{"520000", "440000"} {
		var r *coordinationv1.GetRegionResponse
		for i := 0; i < 100; i++ { // registration happens right after start; allow it a moment
			r, err = reg.GetRegion(ctx, &coordinationv1.GetRegionRequest{Name: "regions/" + code})
			if err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("region %s not registered: %v", code, err)
		}
		_ = r
	}
	cc.Close()

	// Ctrl-C stops everything.
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev exited with %v after SIGINT; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("dev did not stop within 60s of SIGINT")
	}
	for kind, addr := range addrs {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still listening on %s after the federation stopped", kind, addr)
		}
	}
	for _, f := range []string{"coordination.log", "sending.log", "receiving.log"} {
		if _, err := exec.Command("test", "-s", filepath.Join(data, f)).Output(); err != nil {
			t.Errorf("log file %s missing or empty", f)
		}
	}
}

package federation_test

import (
	"context"
	"github.com/eastwest/labourlink/services/devtools/wait"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/health/grpc_health_v1"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/devtools/federation"
	"github.com/eastwest/labourlink/services/platform/peers"
)

// TestDevStartsAndStopsTheFederation runs `labourlink dev` as a user would, checks that the
// three services answer SERVING on the printed addresses, that Guizhou and Guangdong are paired
// and registered, and that Ctrl-C (SIGINT) stops all three cleanly.
func TestDevStartsAndStopsTheFederation(t *testing.T) {
	t.Parallel()
	d := startDev(t)
	if !strings.Contains(d.out, "grpcurl") {
		t.Errorf("welcome text has no grpcurl command:\n%s", d.out)
	}
	for kind, addr := range d.addrs {
		if !strings.Contains(d.out, addr) {
			t.Errorf("welcome text does not print the %s address %s:\n%s", kind, addr, d.out)
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
	cc, err := peers.Dial(d.addrs["coordination"], peers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	reg := coordinationv1.NewRegistryServiceClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
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
	for _, code := range []string{federation.SendingRegion, federation.ReceivingRegion} {
		wait.Until(10*time.Second, func() bool { // registration happens right after start; allow it a moment
			_, err = reg.GetRegion(ctx, &coordinationv1.GetRegionRequest{Name: "regions/" + code})
			return err == nil
		})
		if err != nil {
			t.Errorf("region %s not registered: %v", code, err)
		}
	}

	d.interrupt()
	for kind, addr := range d.addrs {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still listening on %s after the federation stopped", kind, addr)
		}
	}
	for _, f := range []string{"coordination.log", "sending.log", "receiving.log"} {
		if fi, err := os.Stat(filepath.Join(d.data, f)); err != nil || fi.Size() == 0 {
			t.Errorf("log file %s missing or empty: %v", f, err)
		}
	}
}

// TestServicesStopWhenDevIsKilled: when `labourlink dev` itself is killed with SIGKILL (it cannot
// stop the services in order), the services are told to stop by the kernel and do not keep
// running on their own.
func TestServicesStopWhenDevIsKilled(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("relies on the Linux parent-death signal")
	}
	d := startDev(t)
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for kind, addr := range d.addrs {
		if !wait.Until(30*time.Second, func() bool {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return true // closed
			}
			c.Close()
			return false
		}) {
			t.Fatalf("%s still listening on %s 30s after dev was killed", kind, addr)
		}
	}
}

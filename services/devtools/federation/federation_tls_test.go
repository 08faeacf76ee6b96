package federation_test

import (
	"context"
	"github.com/eastwest/labourlink/services/devtools/wait"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/devtools/federation"
	"github.com/eastwest/labourlink/services/platform/identity"
)

// TestDevWithTLS runs `labourlink dev -tls`: the certificates are made in DATA/certs, the three
// services run with mTLS and authorisation (they register with each other over mTLS), the
// welcome text prints grpcurl lines with certificates, a province's certificate opens its own
// service and not the other's, plaintext is refused, and Ctrl-C stops everything.
func TestDevWithTLS(t *testing.T) {
	t.Parallel()
	d := startDev(t, "-tls")
	addrs, out := d.addrs, d.out
	dir := filepath.Join(d.data, "certs")
	for _, want := range []string{"mTLS is on", "-cacert " + filepath.Join(dir, "ca.pem"), "-cert " + filepath.Join(dir, "system-520000.pem"), "LABOURLINK_TLS_CERT="} {
		if !strings.Contains(out, want) {
			t.Errorf("welcome text lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "-plaintext") {
		t.Errorf("welcome text offers -plaintext with TLS on:\n%s", out)
	}

	conn := func(addr string, who identity.Identity) *grpc.ClientConn {
		cert, key := identity.Paths(dir, who)
		cfg, err := identity.ClientTLS(filepath.Join(dir, identity.CAFile), cert, key)
		if err != nil {
			t.Fatal(err)
		}
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return cc
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	guizhou := conn(addrs["sending"], identity.System(federation.SendingRegion))
	if resp, err := grpc_health_v1.NewHealthClient(guizhou).Check(ctx, &grpc_health_v1.HealthCheckRequest{}); err != nil || resp.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING {
		t.Errorf("sending health over mTLS: %v %v", resp.GetStatus(), err)
	}
	if _, err := sendingv1.NewRosterServiceClient(guizhou).ListWorkers(ctx, &sendingv1.ListWorkersRequest{}); status.Code(err) == codes.PermissionDenied {
		t.Errorf("Guizhou's system cannot list its own roster: %v", err)
	}
	guangdongOnGuizhou := conn(addrs["sending"], identity.System(federation.ReceivingRegion))
	if _, err := sendingv1.NewRosterServiceClient(guangdongOnGuizhou).ListWorkers(ctx, &sendingv1.ListWorkersRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("Guangdong's system listed Guizhou's roster: %v, want PermissionDenied", err)
	}
	guizhouOnGuangdong := conn(addrs["receiving"], identity.System(federation.SendingRegion))
	if _, err := receivingv1.NewIntakeServiceClient(guizhouOnGuangdong).ListIntakeBatches(ctx, &receivingv1.ListIntakeBatchesRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("Guizhou's system read Guangdong's intake: %v, want PermissionDenied", err)
	}

	// The regional services registered with the coordination service over mTLS, as themselves.
	reg := coordinationv1.NewRegistryServiceClient(conn(addrs["coordination"], identity.Operator("", false)))
	for _, code := range []string{federation.SendingRegion, federation.ReceivingRegion} {
		var err error
		wait.Until(10*time.Second, func() bool {
			_, err = reg.GetRegion(ctx, &coordinationv1.GetRegionRequest{Name: "regions/" + code})
			return err == nil
		})
		if err != nil {
			t.Errorf("region %s not registered over mTLS: %v", code, err)
		}
	}

	// Plaintext is refused.
	plain, err := grpc.NewClient(addrs["coordination"], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := grpc_health_v1.NewHealthClient(plain).Check(ctx, &grpc_health_v1.HealthCheckRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("plaintext health check: %v, want Unavailable", err)
	}

	d.interrupt()

	// No call between the services was refused: the services' own identities are enough for
	// everything they do to each other. (The refusals this test provoked are the only ones.)
	for _, f := range []string{"coordination.log", "sending.log", "receiving.log"} {
		b, err := os.ReadFile(filepath.Join(d.data, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, `"code":"PermissionDenied"`) && !strings.Contains(l, "/system") {
				t.Errorf("%s: a call between services was refused: %s", f, l)
			}
		}
	}
}

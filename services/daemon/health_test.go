package daemon

import (
	"context"
	"testing"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/eastwest/labourlink/services/platform/grpcserver"
	"github.com/eastwest/labourlink/services/platform/identity"
	"github.com/eastwest/labourlink/services/platform/peers"
)

// TestLinkHealth: a background loop sets a link's health name SERVING or NOT_SERVING without
// touching the service's own names (a service whose peer is down still serves); once the server
// stops, every name stays NOT_SERVING.
func TestLinkHealth(t *testing.T) {
	t.Parallel()
	srv := grpcserver.New(grpcserver.Config{}, nil)
	const own = "labourlink.sending.v1.MatchingService"
	srv.SetServing(own)
	set := linkHealth(srv)
	link := peers.LinkHealthName(identity.Receiving("440000"))
	if link != "labourlink.link.receiving.440000" {
		t.Fatalf("link health name %q", link)
	}
	status := func(name string) healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		resp, err := srv.Health().Check(context.Background(), &healthpb.HealthCheckRequest{Service: name})
		if err != nil {
			t.Fatalf("check %q: %v", name, err)
		}
		return resp.GetStatus()
	}
	set(link, true)
	if status(link) != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("%s = %s, want SERVING", link, status(link))
	}
	set(link, false)
	if got := status(link); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("%s = %s, want NOT_SERVING", link, got)
	}
	for _, name := range []string{own, ""} {
		if got := status(name); got != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("service name %q = %s while a link is down, want SERVING", name, got)
		}
	}
	srv.Stop(context.Background())
	set(link, true)
	if got := status(link); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("%s = %s after Stop, want NOT_SERVING", link, got)
	}
}

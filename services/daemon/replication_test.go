package daemon_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/coordination"
	"github.com/eastwest/labourlink/services/daemon"
	"github.com/eastwest/labourlink/services/devtools/proctest"
	"github.com/eastwest/labourlink/services/devtools/wait"
)

// TestReplicatedCoordinationNode: a coordination started with -replication nats runs its own
// NATS JetStream node in the data directory, takes writes through the replicated log, and
// after a restart on the same directory answers what it took before and takes a retried write
// once.
func TestReplicatedCoordinationNode(t *testing.T) {
	if testing.Short() {
		t.Skip("a NATS node")
	}
	dir := t.TempDir()
	cfg := daemon.Config{Kind: daemon.Coordination, Listen: proctest.FreeAddr(t), DataDir: dir, LogLevel: "info",
		ShutdownTimeout: 2 * time.Second, LedgerKey: filepath.Join(dir, "ledger.key"),
		Replication: daemon.ReplicationNATS, ReplicaName: "coordination-0", NATSListen: proctest.FreeAddr(t), NATSReplicas: 1}
	register := func() *coordinationv1.Region {
		cc, err := grpc.NewClient(cfg.Listen, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		resp, err := coordinationv1.NewRegistryServiceClient(cc).RegisterRegion(t.Context(), &coordinationv1.RegisterRegionRequest{
			Region:    &coordinationv1.Region{Code: "520000", Role: commonv1.RegionRole_REGION_ROLE_SENDING, Endpoint: "127.0.0.1:1"},
			RequestId: "register-guizhou",
		})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetRegion()
	}
	stop := start(t, cfg, zaptest.NewLogger(t))
	first := register()
	stop()
	if _, err := os.Stat(filepath.Join(dir, "nats", "jetstream")); err != nil {
		t.Fatalf("the node's log is not in the data directory: %v", err)
	}

	start(t, cfg, zaptest.NewLogger(t))
	cc, err := grpc.NewClient(cfg.Listen, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	got, err := coordinationv1.NewRegistryServiceClient(cc).GetRegion(t.Context(), &coordinationv1.GetRegionRequest{Name: "regions/520000"})
	if err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	if got.GetRegion().GetEndpoint() != "127.0.0.1:1" {
		t.Fatalf("after the restart the region is %v", got.GetRegion())
	}
	// Current with its log: the node, and the server as a whole, are SERVING.
	hc := healthpb.NewHealthClient(cc)
	for _, name := range []string{"", coordination.ReplicationHealthName} {
		if !wait.Until(10*time.Second, func() bool {
			resp, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{Service: name})
			return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
		}) {
			t.Errorf("health of %q is not SERVING on a node current with its log", name)
		}
	}
	// The retry after the restart gets the first answer (its register time), not a second write.
	if again := register(); !again.GetRegisterTime().AsTime().Equal(first.GetRegisterTime().AsTime()) {
		t.Fatalf("the retried registration answered %v, the first %v", again.GetRegisterTime().AsTime(), first.GetRegisterTime().AsTime())
	}
}

package receiving

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/coordination"
	"github.com/eastwest/labourlink/services/platform/grpcserver"
	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/platform/store"
)

// TestUnpairedProvinceLosesItsOpenWatch: a sending province following the demand feed is
// unpaired in the (real) coordination registry while its stream is open; the stream ends with
// PERMISSION_DENIED instead of going on sending the province's vacancies, and so does its open
// employment feed watch.
func TestUnpairedProvinceLosesItsOpenWatch(t *testing.T) {
	t.Parallel()
	// A real coordination service with the default pairings (Guangdong <- Guizhou among them).
	lg := zaptest.NewLogger(t)
	db, err := store.Open(filepath.Join(t.TempDir(), "coordination.db"), coordination.Schema, lg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	coord, err := coordination.New(db, lg, coordination.Config{LoadDefaultPairings: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := grpcserver.New(grpcserver.Config{}, lg)
	coord.Register(srv.GRPC())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop(context.Background())

	e := newEnv(t, func(c *Config) {
		c.Coordination = lis.Addr().String()
		c.PairingRecheck = 100 * time.Millisecond
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stream, err := e.feed.WatchDemand(ctx, &receivingv1.WatchDemandRequest{SendingRegion: sending})
	if err != nil {
		t.Fatal(err)
	}
	e.createVacancy(goodVacancy(t))
	if _, err := nextChange(stream); err != nil {
		t.Fatalf("paired province gets the change: %v", err)
	}
	// Its employment feed watch, open too (its first message: caught up on an empty feed).
	emp, err := e.emp.WatchEmployment(ctx, &receivingv1.WatchEmploymentRequest{SendingRegion: sending})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := emp.Recv(); err != nil || !r.GetProgress().GetCaughtUp() {
		t.Fatalf("employment watch of a paired province: %v, %v", r, err)
	}

	cc, err := peers.Dial(lis.Addr().String(), peers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if _, err := coordinationv1.NewRegistryServiceClient(cc).DeletePairing(ctx, &coordinationv1.DeletePairingRequest{
		Name: "pairings/" + region + "-" + sending,
	}); err != nil {
		t.Fatal(err)
	}
	// The registry answers are cached for a short time; within it plus a recheck the stream ends.
	for {
		_, err := nextChange(stream)
		if err == nil {
			continue // changes committed before the unpairing may still arrive
		}
		if status.Code(err) != codes.PermissionDenied {
			t.Fatalf("stream ended with %v, want PERMISSION_DENIED", err)
		}
		break
	}
	for {
		_, err := emp.Recv()
		if err == nil {
			continue // progress notices before the recheck
		}
		if status.Code(err) != codes.PermissionDenied {
			t.Fatalf("employment watch ended with %v, want PERMISSION_DENIED", err)
		}
		break
	}
}

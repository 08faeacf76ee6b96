package sending

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/coordination"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/platform/grpcserver"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/store"
)

// startCoordination serves a coordination service on a loopback port and returns its address
// and a client of its DynamicsService.
func startCoordination(t *testing.T) (string, coordinationv1.DynamicsServiceClient) {
	t.Helper()
	lg := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Named("coordination")
	db, err := store.Open(filepath.Join(t.TempDir(), "coordination.db"), coordination.Schema, lg)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := coordination.New(db, lg, coordination.Config{LoadDefaultPairings: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := grpcserver.New(grpcserver.Config{ServiceName: "coordination", ShutdownTimeout: 2 * time.Second}, lg)
	svc.Register(srv.GRPC())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	srv.SetServing(svc.ServiceNames()...)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		srv.Stop(context.Background())
		db.Close()
	})
	return lis.Addr().String(), coordinationv1.NewDynamicsServiceClient(conn)
}

// TestLocalEmployersReachTheNation: every registration and change of a local employer puts its
// state in the outbox in the same transaction; employers of a file from before (no marker) are
// put there once at start, not again after a restart; delivered to the coordination service,
// the national recovery rate of the province, by kind, is the province's own.
func TestLocalEmployersReachTheNation(t *testing.T) {
	t.Parallel()
	n := startSending(t, "", Config{Region: rosterRegion}, false)
	ctx := testCtx(t)
	rs := sendingv1.NewReturneeServiceClient(n.conn)
	pending := func() int {
		t.Helper()
		p, err := outbox.Pending(n.db, ledgerclient.LocalEmployersDestination)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	create := func(name string, kind sendingv1.LocalEmployerKind, resumed bool) *sendingv1.LocalEmployer {
		t.Helper()
		resp, err := rs.CreateLocalEmployer(ctx, &sendingv1.CreateLocalEmployerRequest{RequestId: "create-" + name,
			LocalEmployer: &sendingv1.LocalEmployer{DisplayName: name, Kind: kind, County: homeCounty, Capacity: 3, Resumed: resumed}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetLocalEmployer()
	}
	workshop := create("花江镇扶贫车间", kindWorkshop, true)
	post := create("公益性岗位（护林员）", kindPost, false)
	create("县茶叶龙头企业", kindLeading, false)
	if _, err := rs.UpdateLocalEmployer(ctx, &sendingv1.UpdateLocalEmployerRequest{RequestId: "resume-post",
		LocalEmployer: &sendingv1.LocalEmployer{Name: post.GetName(), Resumed: true}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"resumed"}}}); err != nil {
		t.Fatal(err)
	}
	// A refused change puts nothing.
	if _, err := rs.UpdateLocalEmployer(ctx, &sendingv1.UpdateLocalEmployerRequest{
		LocalEmployer: &sendingv1.LocalEmployer{Name: workshop.GetName(), Resumed: false, Etag: "stale"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"resumed"}}}); err == nil {
		t.Fatal("update with a stale etag succeeded")
	}
	if got := pending(); got != 4 {
		t.Fatalf("%d states in the outbox after 3 registrations and 1 change, want 4", got)
	}

	// A file of before: the employers, no state in the outbox, no marker.
	n.stop()
	raw, err := bbolt.Open(n.path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = raw.Update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(store.BucketOutbox).DeleteBucket([]byte(ledgerclient.LocalEmployersDestination)); err != nil {
			return err
		}
		return store.SetCounter(tx, []byte("localEmployersReported"), 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}
	n.start(false)
	if got := pending(); got != 3 {
		t.Fatalf("%d states in the outbox after the upgrade, want the 3 employers", got)
	}
	n.restart(false)
	if got := pending(); got != 3 {
		t.Fatalf("%d states in the outbox after a restart, want still 3 (reported once)", got)
	}

	// Delivered, the nation's figure for the province is the province's.
	addr, national := startCoordination(t)
	n.stop()
	n.cfg.Coordination = addr
	n.cfg.Outbox = fastConfig("").Outbox
	n.start(true)
	today := civil.Today(time.Now())
	province, err := sendingv1.NewDynamicsServiceClient(n.conn).GetEmploymentDynamics(ctx, &sendingv1.GetEmploymentDynamicsRequest{AsOf: today})
	if err != nil {
		t.Fatal(err)
	}
	if r := province.GetRecoveryTotal().GetRecoveryRate(); r.GetNumerator() != 2 || r.GetDenominator() != 3 {
		t.Fatalf("the province's recovery rate %v, want 2/3", r)
	}
	eventually(t, "the nation's recovery rate of the province", func() (bool, string) {
		resp, err := national.GetNationalEmploymentDynamics(ctx, &coordinationv1.GetNationalEmploymentDynamicsRequest{AsOf: today})
		if err != nil {
			return false, err.Error()
		}
		rows := resp.GetRecoveryBySendingRegion()
		ok := len(rows) == 1 && rows[0].GetSendingRegion() == rosterRegion &&
			proto.Equal(rows[0].GetRecoveryTotal(), province.GetRecoveryTotal()) && proto.Equal(resp.GetRecoveryTotal(), province.GetRecoveryTotal()) &&
			len(resp.GetRecoveryByKind()) == len(province.GetRecoveryByKind())
		for i := range resp.GetRecoveryByKind() {
			ok = ok && proto.Equal(resp.GetRecoveryByKind()[i], province.GetRecoveryByKind()[i])
		}
		return ok, fmt.Sprintf("national %v, province %v %v", resp.GetRecoveryBySendingRegion(), province.GetRecoveryByKind(), province.GetRecoveryTotal())
	})
	eventually(t, "the outbox delivered", func() (bool, string) {
		p := pending()
		return p == 0, fmt.Sprintf("%d pending", p)
	})
}

package coordination

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/coordination/ledger"
	"github.com/eastwest/labourlink/services/platform/grpcserver"
	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/platform/store"
)

// tb is what the helpers need of a *testing.T or a *rapid.T.
type tb interface {
	Helper()
	Cleanup(func())
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// fakeClock is an injectable clock (Config.Now).
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// harness is a coordination service on a real bbolt file, served in process over bufconn (the
// whole gRPC stack, interceptors included, without a port), with clients of its four gRPC
// services.
type harness struct {
	s        *Service
	db       *store.DB
	clock    *fakeClock
	cc       *grpc.ClientConn
	registry coordinationv1.RegistryServiceClient
	ledger   coordinationv1.LedgerServiceClient
	recon    coordinationv1.ReconciliationServiceClient
	assess   coordinationv1.AssessmentServiceClient
	dynamics coordinationv1.DynamicsServiceClient
	close    func()
}

// t0 is the default start of test clocks: 2025-03-01 08:00 CST.
var t0 = time.Date(2025, 3, 1, 8, 0, 0, 0, civil.Zone)

// newHarness starts a service in dir. cfg.Now is replaced by the harness clock (starting at
// start) unless set.
func newHarness(t tb, dir string, lg *zap.Logger, cfg Config, start time.Time) *harness {
	t.Helper()
	return newHarnessOn(t, listenInProcess, dir, lg, cfg, start)
}

// listener returns a listener and how to dial it.
type listener func() (net.Listener, func() (*grpc.ClientConn, error), error)

// listenInProcess listens over bufconn.
func listenInProcess() (net.Listener, func() (*grpc.ClientConn, error), error) {
	lis := bufconn.Listen(bufSize)
	return lis, func() (*grpc.ClientConn, error) { return dialBufconn(lis) }, nil
}

// listenLoopback listens on a loopback port (the benchmark: the cost of the network stack
// included).
func listenLoopback() (net.Listener, func() (*grpc.ClientConn, error), error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	return lis, func() (*grpc.ClientConn, error) { return peers.Dial(lis.Addr().String(), peers.Options{}) }, nil
}

// newHarnessOn is newHarness served on the listener of listen.
func newHarnessOn(t tb, listen listener, dir string, lg *zap.Logger, cfg Config, start time.Time) *harness {
	t.Helper()
	db, err := store.Open(filepath.Join(dir, "coordination.db"), Schema, lg)
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock(start)
	if cfg.Now == nil {
		cfg.Now = clock.Now
	}
	s, err := New(db, lg, cfg)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	srv := grpcserver.New(grpcserver.Config{ServiceName: "coordination"}, lg)
	s.Register(srv.GRPC())
	lis, dial, err := listen()
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	srv.SetServing(s.ServiceNames()...)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	cc, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{
		s: s, db: db, clock: clock, cc: cc,
		registry: coordinationv1.NewRegistryServiceClient(cc),
		ledger:   coordinationv1.NewLedgerServiceClient(cc),
		recon:    coordinationv1.NewReconciliationServiceClient(cc),
		assess:   coordinationv1.NewAssessmentServiceClient(cc),
		dynamics: coordinationv1.NewDynamicsServiceClient(cc),
	}
	var once sync.Once
	h.close = func() {
		once.Do(func() {
			cc.Close()
			srv.Stop(context.Background())
			<-done
			db.Close()
		})
	}
	return h
}

// bufSize is the buffer of an in-process connection.
const bufSize = 1 << 20

// dialBufconn returns a client connection to the server listening on lis.
func dialBufconn(lis *bufconn.Listener) (*grpc.ClientConn, error) {
	return grpc.NewClient("passthrough:///coordination",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
}

// startHarness is newHarness in t.TempDir(), closed when the test ends.
func startHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := newHarness(t, t.TempDir(), zapLogger(t), cfg, t0)
	t.Cleanup(h.close)
	return h
}

func zapLogger(t *testing.T) *zap.Logger {
	return zaptest.NewLogger(t)
}

func ctxT(t tb) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// ev builds a ledger event; reporter_region follows from the kind.
func ev(id string, kind coordinationv1.EventKind, batch, worker string, at time.Time) *coordinationv1.LedgerEvent {
	e := &coordinationv1.LedgerEvent{
		EventId:         id,
		Kind:            kind,
		SendingRegion:   "520000",
		ReceivingRegion: "440000",
		WorkerId:        worker,
		BatchId:         batch,
		OccurTime:       timestamppb.New(at),
	}
	e.ReporterRegion = e.ReceivingRegion
	if ledger.SendingSide(kind) {
		e.ReporterRegion = e.SendingRegion
	}
	return e
}

func (h *harness) report(t tb, events ...*coordinationv1.LedgerEvent) *coordinationv1.ReportEventsResponse {
	t.Helper()
	resp, err := h.ledger.ReportEvents(ctxT(t), &coordinationv1.ReportEventsRequest{Events: events})
	if err != nil {
		t.Fatalf("ReportEvents: %v", err)
	}
	if len(resp.GetRefusals()) > 0 {
		t.Fatalf("ReportEvents refused %v", resp.GetRefusals())
	}
	return resp
}

// pair registers pairings (the ledger takes events of registered pairings only).
func (h *harness) pair(t tb, ps ...regions.Pairing) {
	t.Helper()
	for _, p := range ps {
		_, err := h.registry.CreatePairing(ctxT(t), &coordinationv1.CreatePairingRequest{
			Pairing: &coordinationv1.Pairing{ReceivingRegion: p.Receiving, SendingRegion: p.Sending},
		})
		if err != nil {
			t.Fatalf("CreatePairing %v: %v", p, err)
		}
	}
}

// batch reads the reconciliation of batch id: of the sending province its id starts with, or of
// 520000 (ev's) for the short ids of the tests.
func (h *harness) batch(t tb, id string) *coordinationv1.BatchReconciliation {
	t.Helper()
	sending := regions.IDOwner(id)
	if sending == "" {
		sending = "520000"
	}
	resp, err := h.recon.GetBatchReconciliation(ctxT(t), &coordinationv1.GetBatchReconciliationRequest{BatchId: id, SendingRegion: sending})
	if err != nil {
		t.Fatalf("GetBatchReconciliation(%s): %v", id, err)
	}
	return resp.GetReconciliation()
}

// changes reads the whole discrepancy feed after rev.
func (h *harness) changes(t tb, after int64) []*coordinationv1.Discrepancy {
	t.Helper()
	var out []*coordinationv1.Discrepancy
	for {
		resp, err := h.recon.ListDiscrepancyChanges(ctxT(t), &coordinationv1.ListDiscrepancyChangesRequest{AfterRevision: after, PageSize: 7})
		if err != nil {
			t.Fatalf("ListDiscrepancyChanges: %v", err)
		}
		out = append(out, resp.GetChanges()...)
		if len(resp.GetChanges()) == 0 {
			return out
		}
		after = resp.GetChanges()[len(resp.GetChanges())-1].GetRevision()
	}
}

// fieldViolations returns the BadRequest field names of err's status (and fails if err is not
// INVALID_ARGUMENT).
func fieldViolations(t tb, err error) map[string]string {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.InvalidArgument {
		t.Fatalf("error = %v, want INVALID_ARGUMENT", err)
	}
	out := map[string]string{}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out[v.GetField()] = v.GetDescription()
			}
		}
	}
	return out
}

// errorInfo returns the ErrorInfo of err's status.
func errorInfo(err error) *errdetails.ErrorInfo {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

func wantCode(t tb, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("error = %v, want %s", err, code)
	}
}

func date(y, m, d int32) *commonv1.Date { return &commonv1.Date{Year: y, Month: m, Day: d} }

func describe(d *coordinationv1.Discrepancy) string {
	return fmt.Sprintf("%s/%s/%s=%s", d.GetBatchId(), d.GetWorkerId(), d.GetKind(), d.GetState())
}

// asVersion rewrites the coordination file in dir the way schema version v left it: without the
// buckets named (added after v) and with v as its version.
func asVersion(t tb, dir string, v uint64, buckets ...string) {
	t.Helper()
	raw, err := bbolt.Open(filepath.Join(dir, "coordination.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = raw.Update(func(tx *bbolt.Tx) error {
		for _, b := range buckets {
			if err := tx.DeleteBucket([]byte(b)); err != nil {
				return err
			}
		}
		return tx.Bucket(store.BucketMeta).Put([]byte("version"), store.Uint64Key(v))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}
}

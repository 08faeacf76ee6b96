package ledgerclient_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/coordination"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/grpcserver"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/platform/store"
)

// outboxSchema is a data file with only an outbox, standing in for a sending or receiving
// service's file.
var outboxSchema = store.Schema{Name: "ledgertest", Version: 1, Buckets: [][]byte{store.BucketOutbox}}

func openOutbox(t *testing.T, path string) *store.DB {
	t.Helper()
	db, err := store.Open(path, outboxSchema, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	// Registered before any relay's cleanup, so it runs after the relays stopped.
	t.Cleanup(func() { db.Close() })
	return db
}

// departure is the ledger event the sending side writes when worker boards batch.
func departure(batch, worker string, at time.Time) *coordinationv1.LedgerEvent {
	return &coordinationv1.LedgerEvent{
		EventId: "520000:departed:" + batch + ":" + worker, Kind: coordinationv1.EventKind_EVENT_KIND_DEPARTED,
		ReporterRegion: "520000", SendingRegion: "520000", ReceivingRegion: "440000",
		WorkerId: worker, BatchId: batch, OccurTime: timestamppb.New(at), RegisteredPoor: true,
	}
}

// putEvents commits events to the outbox, one transaction each (as services do).
func putEvents(t *testing.T, db *store.DB, events ...*coordinationv1.LedgerEvent) {
	t.Helper()
	for _, ev := range events {
		if err := db.Update(func(tx *bbolt.Tx) error {
			_, err := outbox.Put(context.Background(), tx, time.Now(), ledgerclient.Destination, "", ev)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// startRelay runs a relay with short waits until the returned stop is called.
func startRelay(t *testing.T, db *store.DB, addr string, lg *zap.Logger) (stop func()) {
	t.Helper()
	cc, err := peers.Dial(addr, peers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	relay := outbox.NewRelay(db, ledgerclient.Destination, ledgerclient.Deliver(coordinationv1.NewLedgerServiceClient(cc), peers.Deadlines{}), lg,
		outbox.Options{BatchSize: 40, MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, PollInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := relay.Run(ctx); err != nil {
			t.Errorf("relay: %v", err)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
			cc.Close()
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitDrained waits until the outbox has no ledger entries left (bounded by a generous limit,
// not a timing assertion: the relay may need several retries).
func waitDrained(t *testing.T, db *store.DB) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		n, err := outbox.Pending(db, ledgerclient.Destination)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d outbox entries still pending", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startCoordinationOn serves an in-process coordination service on addr (data in dir).
func startCoordinationOn(t *testing.T, addr, dir string, lg *zap.Logger) (stop func()) {
	t.Helper()
	db, err := store.Open(filepath.Join(dir, "coordination.db"), coordination.Schema, lg)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := coordination.New(db, lg, coordination.Config{LoadDefaultPairings: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := grpcserver.New(grpcserver.Config{ServiceName: "coordination"}, lg)
	svc.Register(srv.GRPC())
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			srv.Stop(context.Background())
			<-done
			db.Close()
		})
	}
	t.Cleanup(stop)
	return stop
}

// ledgerEventIDs lists every event id in the ledger, failing on an id listed twice.
func ledgerEventIDs(t *testing.T, cc grpc.ClientConnInterface) map[string]*coordinationv1.LedgerEvent {
	t.Helper()
	client := coordinationv1.NewLedgerServiceClient(cc)
	out := map[string]*coordinationv1.LedgerEvent{}
	token := ""
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		resp, err := client.ListEvents(ctx, &coordinationv1.ListEventsRequest{PageSize: 1000, PageToken: token})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.GetEvents() {
			if out[e.GetEventId()] != nil {
				t.Fatalf("event %s recorded twice", e.GetEventId())
			}
			out[e.GetEventId()] = e
		}
		if token = resp.GetNextPageToken(); token == "" {
			return out
		}
	}
}

// TestRelayDeliversOnceWhenLedgerStartsLate: entries written while the coordination service is
// not running reach the ledger once it starts; an event written twice (same fact, same id) and
// an event without an id (it gets the entry id) are each recorded once.
func TestRelayDeliversOnceWhenLedgerStartsLate(t *testing.T) {
	t.Parallel()
	lg := zaptest.NewLogger(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	db := openOutbox(t, filepath.Join(t.TempDir(), "sending.db"))
	dep := time.Now().Add(-time.Hour)
	var events []*coordinationv1.LedgerEvent
	for i := range 100 {
		events = append(events, departure(fmt.Sprintf("520000-B%d", i%3), fmt.Sprintf("w%03d", i), dep))
	}
	putEvents(t, db, events...)
	putEvents(t, db, departure("520000-B0", "w000", dep)) // the same fact again
	noID := departure("520000-B9", "w999", dep)
	noID.EventId = ""
	putEvents(t, db, noID)

	startRelay(t, db, addr, lg)
	startCoordinationOn(t, addr, t.TempDir(), lg)
	waitDrained(t, db)

	cc, err := peers.Dial(addr, peers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	got := ledgerEventIDs(t, cc)
	if len(got) != 101 {
		t.Fatalf("%d events in the ledger, want 101", len(got))
	}
	for _, e := range events {
		if got[e.GetEventId()] == nil {
			t.Fatalf("event %s missing", e.GetEventId())
		}
	}
	var fallback int
	for id, e := range got {
		if e.GetWorkerId() == "w999" {
			fallback++
			if !strings.HasPrefix(id, db.InstanceID()+"-") {
				t.Errorf("event without id recorded as %q, want the outbox entry id", id)
			}
		}
	}
	if fallback != 1 {
		t.Fatalf("event without id recorded %d times", fallback)
	}
}

// fakeLedger records ReportEvents calls.
type fakeLedger struct {
	coordinationv1.LedgerServiceClient
	calls  []int
	answer func(*coordinationv1.ReportEventsRequest) (*coordinationv1.ReportEventsResponse, error)
}

func (f *fakeLedger) ReportEvents(ctx context.Context, in *coordinationv1.ReportEventsRequest, _ ...grpc.CallOption) (*coordinationv1.ReportEventsResponse, error) {
	if _, ok := ctx.Deadline(); !ok {
		return nil, fmt.Errorf("call without a deadline")
	}
	f.calls = append(f.calls, len(in.GetEvents()))
	if f.answer != nil {
		return f.answer(in)
	}
	return &coordinationv1.ReportEventsResponse{Recorded: int32(len(in.GetEvents()))}, nil
}

func entries(t *testing.T, n int) []outbox.Entry {
	t.Helper()
	out := make([]outbox.Entry, n)
	for i := range out {
		p, err := anypb.New(departure("B", fmt.Sprintf("w%d", i), time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = outbox.Entry{Seq: uint64(i + 1), ID: fmt.Sprintf("x-%d", i+1), Destination: ledgerclient.Destination, Payload: p}
	}
	return out
}

func TestDeliverSplitsAtTheLedgerLimit(t *testing.T) {
	t.Parallel()
	f := &fakeLedger{}
	res, err := ledgerclient.Deliver(f, peers.Deadlines{})(context.Background(), entries(t, 2500))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(f.calls) != "[1000 1000 500]" || res.Done != 2500 || len(res.Refused) != 0 {
		t.Fatalf("calls %v, result %+v", f.calls, res)
	}
}

func TestDeliverQuarantinesOtherPayloads(t *testing.T) {
	t.Parallel()
	f := &fakeLedger{}
	es := entries(t, 3)
	p, err := anypb.New(wrapperspb.String("not an event"))
	if err != nil {
		t.Fatal(err)
	}
	es[1].Payload = p
	res, err := ledgerclient.Deliver(f, peers.Deadlines{})(context.Background(), es)
	if err != nil {
		t.Fatal(err)
	}
	if res.Done != 3 || len(res.Refused) != 1 || res.Refused[1].Reason != "NOT_A_LEDGER_EVENT" {
		t.Fatalf("result %+v, want entry 1 refused and the others delivered", res)
	}
	if fmt.Sprint(f.calls) != "[2]" {
		t.Fatalf("calls %v, want the two events in one call", f.calls)
	}
}

func TestDeliverRefusalsBelongToTheirEntries(t *testing.T) {
	t.Parallel()
	t.Run("refused item by item", func(t *testing.T) {
		f := &fakeLedger{answer: func(in *coordinationv1.ReportEventsRequest) (*coordinationv1.ReportEventsResponse, error) {
			resp := &coordinationv1.ReportEventsResponse{}
			for i, ev := range in.GetEvents() {
				if ev.GetWorkerId() == "w2" || ev.GetWorkerId() == "w4" {
					resp.Refusals = append(resp.Refusals, &commonv1.ItemRefusal{Index: int32(i), Item: ev.GetEventId(), Code: code.Code_FAILED_PRECONDITION, Reason: "NOT_PAIRED", Message: "not paired"})
				} else {
					resp.Recorded++
				}
			}
			return resp, nil
		}}
		res, err := ledgerclient.Deliver(f, peers.Deadlines{})(context.Background(), entries(t, 6))
		if err != nil {
			t.Fatal(err)
		}
		if res.Done != 6 || len(res.Refused) != 2 || res.Refused[2].Reason != "NOT_PAIRED" || res.Refused[4].Code != codes.FailedPrecondition {
			t.Fatalf("result %+v, want entries 2 and 4 refused", res)
		}
	})
	t.Run("refused as a whole", func(t *testing.T) {
		// A call refused before the handler (personal data in one event): sent again one by
		// one, only the event at fault is refused.
		f := &fakeLedger{answer: func(in *coordinationv1.ReportEventsRequest) (*coordinationv1.ReportEventsResponse, error) {
			for i, ev := range in.GetEvents() {
				if ev.GetWorkerId() == "w1" {
					var v apierror.Violations
					v.Add(fmt.Sprintf("events[%d].detail", i), "must not contain a resident identity number")
					return nil, apierror.Status(v.Err()).Err()
				}
			}
			return &coordinationv1.ReportEventsResponse{Recorded: int32(len(in.GetEvents()))}, nil
		}}
		res, err := ledgerclient.Deliver(f, peers.Deadlines{})(context.Background(), entries(t, 3))
		if err != nil {
			t.Fatal(err)
		}
		if res.Done != 3 || len(res.Refused) != 1 || res.Refused[1].Code != codes.InvalidArgument {
			t.Fatalf("result %+v, want only entry 1 refused", res)
		}
		if fmt.Sprint(f.calls) != "[3 1 1 1]" {
			t.Errorf("calls %v, want the whole report then one event at a time", f.calls)
		}
	})
	t.Run("ledger down", func(t *testing.T) {
		f := &fakeLedger{answer: func(*coordinationv1.ReportEventsRequest) (*coordinationv1.ReportEventsResponse, error) {
			return nil, status.Error(codes.Unavailable, "down")
		}}
		res, err := ledgerclient.Deliver(f, peers.Deadlines{})(context.Background(), entries(t, 3))
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("err %v, want the ledger's UNAVAILABLE", err)
		}
		if res.Done != 0 || len(res.Refused) != 0 {
			t.Fatalf("result %+v, want nothing dealt with", res)
		}
	})
}

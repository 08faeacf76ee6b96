package ledgerclient

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/devtools/proctest"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/platform/store"
)

// A delivery of several calls acknowledges each call while the next one is under way, and counts
// an entry as delivered only once its call's acknowledgement is kept: with the second of three
// acknowledgements failing, only the first call's entries are done (the third call reached the
// ledger, but is not acknowledged), and delivering the rest again leaves every event in the
// ledger once and every one acknowledged in the province's file.
func TestDeliveryCountsOnlyAcknowledgedCalls(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs the labourlink binary")
	}
	lg := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	coord := proctest.Start(t, "coordination", "", "-data", t.TempDir())
	client := coordinationv1.NewLedgerServiceClient(coord.Conn())
	schema := store.Schema{Name: "pipelinetest", Version: 1, Buckets: WatchBuckets()}
	db, err := store.Open(filepath.Join(t.TempDir(), "520000.db"), schema, lg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w := NewWatch(db, lg, WatchConfig{Region: "520000"})

	const n = 2*MaxEventsPerCall + MaxEventsPerCall/2
	dep := time.Now().Add(-time.Hour).Truncate(time.Second)
	entries := make([]outbox.Entry, n)
	for i := range entries {
		p, err := anypb.New(&coordinationv1.LedgerEvent{
			EventId: fmt.Sprintf("520000:departed:520000-B1:520000-W%010d", i), Kind: coordinationv1.EventKind_EVENT_KIND_DEPARTED,
			ReporterRegion: "520000", SendingRegion: "520000", ReceivingRegion: "440000",
			WorkerId: fmt.Sprintf("520000-W%010d", i), BatchId: "520000-B1", OccurTime: timestamppb.New(dep),
		})
		if err != nil {
			t.Fatal(err)
		}
		entries[i] = outbox.Entry{Seq: uint64(i + 1), ID: fmt.Sprintf("x-%d", i+1), Destination: Destination, Payload: p}
	}

	var acks, reports atomic.Int32
	counting := coordinationv1.LedgerServiceClient(reportCounter{client, &reports})
	failSecond := func(ctx context.Context, c coordinationv1.LedgerServiceClient, batch []*coordinationv1.LedgerEvent, resp *coordinationv1.ReportEventsResponse) error {
		if acks.Add(1) == 2 {
			return errors.New("the province's file is full")
		}
		return w.Acknowledge(ctx, c, batch, resp)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := deliver(counting, peers.Deadlines{}, failSecond)(ctx, entries)
	if err == nil || res.Done != MaxEventsPerCall {
		t.Fatalf("delivery with the second acknowledgement failing: done %d, %v; want %d done and the error", res.Done, err, MaxEventsPerCall)
	}
	if got := reports.Load(); got != 3 {
		t.Errorf("%d calls, want 3 (the third under way while the second was acknowledged)", got)
	}
	st, err := w.State()
	if err != nil {
		t.Fatal(err)
	}
	if st.GetAcknowledgedEvents() != MaxEventsPerCall {
		t.Errorf("%d events acknowledged, want %d", st.GetAcknowledgedEvents(), MaxEventsPerCall)
	}

	rest, err := DeliverWatched(client, peers.Deadlines{}, w)(ctx, entries[res.Done:])
	if err != nil || rest.Done != n-MaxEventsPerCall {
		t.Fatalf("delivering the rest again: done %d, %v", rest.Done, err)
	}
	if st, err = w.State(); err != nil || st.GetAcknowledgedEvents() != n || st.GetFailureCount() != 0 || st.GetCheckpoint().GetTreeSize() != n {
		t.Fatalf("after the repeat: %v, %v; want %d acknowledged, none failed, a tree of %d", st, err, n, n)
	}
	cp, err := client.GetLedgerCheckpoint(ctx, &coordinationv1.GetLedgerCheckpointRequest{ReporterRegion: "520000"})
	if err != nil || cp.GetCheckpoint().GetTreeSize() != n {
		t.Fatalf("the ledger's log: %v, %v; want each of the %d events once", cp.GetCheckpoint(), err, n)
	}
}

// reportCounter counts the ReportEvents calls made through it.
type reportCounter struct {
	coordinationv1.LedgerServiceClient
	calls *atomic.Int32
}

func (r reportCounter) ReportEvents(ctx context.Context, req *coordinationv1.ReportEventsRequest, opts ...grpc.CallOption) (*coordinationv1.ReportEventsResponse, error) {
	r.calls.Add(1)
	return r.LedgerServiceClient.ReportEvents(ctx, req, opts...)
}

package coordination

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/coordination/ledger"
	"github.com/eastwest/labourlink/services/coordination/replicated"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/replog"
	"github.com/eastwest/labourlink/services/platform/store"
)

// replicaSet is three coordination services, each on its own file, over one replicated log of
// three embedded NATS JetStream nodes on loopback.
type replicaSet struct {
	nodes []*replog.Node
	logs  []*replog.Log
	hs    []*harness
}

func freeLoopbackPorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

func startReplicaSet(t *testing.T, start time.Time) *replicaSet {
	t.Helper()
	dir := t.TempDir()
	key, err := ledger.LoadOrCreateKey(filepath.Join(dir, ledger.KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	ports := freeLoopbackPorts(t, 6)
	var routes []string
	for _, p := range ports[3:] {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	rs := &replicaSet{}
	for i := range 3 {
		n, err := replog.StartNode(replog.NodeOptions{
			Name: fmt.Sprintf("coordination-%d", i), StoreDir: filepath.Join(dir, fmt.Sprintf("nats-%d", i)),
			ClientListen: fmt.Sprintf("127.0.0.1:%d", ports[i]), ClusterName: "coordination",
			ClusterListen: fmt.Sprintf("127.0.0.1:%d", ports[3+i]), Routes: routes,
		})
		if err != nil {
			t.Fatal(err)
		}
		rs.nodes = append(rs.nodes, n)
		t.Cleanup(n.Shutdown)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := range 3 {
		l, err := replog.Open(ctx, []string{rs.nodes[i].ClientURL()}, "COORDINATION", 3)
		if err != nil {
			t.Fatal(err)
		}
		rs.logs = append(rs.logs, l)
		t.Cleanup(func() { _ = l.Close() })
	}
	for i := range 3 {
		h := newHarness(t, filepath.Join(dir, fmt.Sprintf("node-%d", i)), zapLogger(t), Config{
			LoadDefaultPairings: true, LedgerKey: key, Log: rs.logs[i], Replica: fmt.Sprintf("coordination-%d", i),
			CheckInterval: 20 * time.Millisecond,
		}, start)
		runCtx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = h.s.Run(runCtx) }()
		t.Cleanup(func() { stop(); <-done; h.close() })
		rs.hs = append(rs.hs, h)
	}
	return rs
}

// settle waits until the three files have applied the same last command and returns it.
func (rs *replicaSet) settle(t *testing.T) uint64 {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var seqs []uint64
		for _, h := range rs.hs {
			seq, err := replicated.Applied(h.db)
			if err != nil {
				t.Fatal(err)
			}
			seqs = append(seqs, seq)
		}
		if seqs[0] == seqs[1] && seqs[1] == seqs[2] {
			return seqs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("the nodes do not settle: applied %v", seqs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReplicatedNodesAgree: writes taken by any of three nodes are applied by all three in one
// order, so the three files hold the same keys and values and answer the same figures; a write
// taken twice (an event reported to two nodes, a request id sent to another node) counts once;
// a refused write is refused and changes nothing anywhere; the default pairings of three
// starting nodes are loaded once.
func TestReplicatedNodesAgree(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("three NATS nodes")
	}
	start := cst(2026, 1, 5, 9)
	rs := startReplicaSet(t, start)
	a, b, c := rs.hs[0], rs.hs[1], rs.hs[2]
	ctx := ctxT(t)

	var events []*coordinationv1.LedgerEvent
	for i := range 30 {
		w := fmt.Sprintf("w%d", i)
		events = append(events, poor(ev("d"+w, departed, fmt.Sprintf("520000-B%d", i/9), w, start.Add(-time.Hour))))
		if i%4 != 0 {
			events = append(events, ev("a"+w, arrived, fmt.Sprintf("520000-B%d", i/9), w, start))
		}
	}
	for i, e := range events {
		h := rs.hs[i%3]
		h.report(t, e)
	}
	// The same events again, to another node: duplicates.
	again := b.report(t, events[:10]...)
	if again.GetRecorded() != 0 || again.GetDuplicates() != 10 {
		t.Fatalf("events reported again through another node: %d recorded, %d duplicates", again.GetRecorded(), again.GetDuplicates())
	}
	first, err := a.assess.SetBaseline(ctx, &coordinationv1.SetBaselineRequest{Region: "520000", Year: 2026, Count: 11, RequestId: "base-1"})
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.assess.SetBaseline(ctx, &coordinationv1.SetBaselineRequest{Region: "520000", Year: 2026, Count: 11, RequestId: "base-1"})
	if err != nil || !proto.Equal(first, second) {
		t.Fatalf("a request id repeated to another node: %v, %v; want the first answer %v", second, err, first)
	}
	if _, err := c.assess.SetBaseline(ctx, &coordinationv1.SetBaselineRequest{Region: "520000", Year: 2026, Count: 12, RequestId: "base-1"}); apierror.Code(err) != codes.InvalidArgument {
		t.Fatalf("a request id reused with another body on another node: %v, want INVALID_ARGUMENT", err)
	}
	if _, err := b.registry.DeletePairing(ctx, &coordinationv1.DeletePairingRequest{Name: "pairings/440000-110000"}); apierror.Code(err) != codes.NotFound {
		t.Fatalf("deleting a pairing that does not exist: %v, want NOT_FOUND", err)
	}

	seq := rs.settle(t)
	if seq == 0 {
		t.Fatal("nothing applied")
	}
	ref := fileEntries(t, a.db)
	for i, h := range rs.hs[1:] {
		got := fileEntries(t, h.db)
		if len(got) != len(ref) {
			t.Errorf("node %d holds %d keys, node 0 %d", i+1, len(got), len(ref))
		}
		for id, w := range ref {
			if o, ok := got[id]; !ok || string(o.value) != string(w.value) {
				t.Errorf("node %d differs from node 0 at %s", i+1, showKey(w))
			}
		}
	}
	pairings, err := c.registry.ListPairings(ctx, &coordinationv1.ListPairingsRequest{PageSize: 100})
	if err != nil || len(pairings.GetPairings()) == 0 {
		t.Fatalf("pairings: %v, %v", pairings, err)
	}
	want := summaries(t, a)
	for i, h := range rs.hs {
		if got := summaries(t, h); !proto.Equal(got, want) {
			t.Errorf("node %d's pairing summaries differ:\n%v\nwant\n%v", i, got, want)
		}
	}
	var departedN int64
	for _, s := range want.GetSummaries() {
		departedN += s.GetDeparted()
	}
	if departedN != 30 {
		t.Fatalf("the summaries count %d departures, want 30 (each event once)", departedN)
	}
}

var _ store.Writer = (*replicated.Writer)(nil)

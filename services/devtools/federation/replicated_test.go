package federation_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/coordination/ledger"
	"github.com/eastwest/labourlink/services/daemon"
	"github.com/eastwest/labourlink/services/devtools/federation"
	"github.com/eastwest/labourlink/services/devtools/proctest"
	"github.com/eastwest/labourlink/services/devtools/wait"
	"github.com/eastwest/labourlink/services/platform/backoff"
	"github.com/eastwest/labourlink/services/platform/peers"
)

// replicatedNodes is a three-node replicated coordination, each node a `labourlink serve
// coordination -replication nats` process configured as `labourlink dev -replicas 3` does.
type replicatedNodes struct {
	t     testing.TB
	cfg   federation.Config
	specs []daemon.Config
	procs []*proctest.Process
}

func startReplicatedNodes(t testing.TB) *replicatedNodes {
	t.Helper()
	cfg := federation.Defaults(proctest.Binary(t))
	cfg.DataDir, cfg.Replicas, cfg.Metrics, cfg.HTTP = t.TempDir(), 3, false, false
	var offsets []int
	for i := range cfg.Replicas {
		for _, o := range []int{0, federation.NATSPortOffset, federation.NATSClusterPortOffset} {
			if i*federation.ReplicaPortStep+o > 0 {
				offsets = append(offsets, i*federation.ReplicaPortStep+o)
			}
		}
	}
	cfg.CoordinationAddr = proctest.FreeAddrWith(t, offsets...)
	if _, err := ledger.LoadOrCreateKey(cfg.LedgerKeyFile()); err != nil {
		t.Fatal(err)
	}
	n := &replicatedNodes{t: t, cfg: cfg}
	for _, sc := range cfg.Services() {
		if sc.Kind == daemon.Coordination {
			n.specs = append(n.specs, sc)
		}
	}
	if len(n.specs) != 3 {
		t.Fatalf("-replicas 3 gives %d coordination nodes", len(n.specs))
	}
	n.procs = make([]*proctest.Process, 3)
	for i := range n.specs {
		n.launch(i)
	}
	for _, p := range n.procs {
		p.WaitServing()
	}
	return n
}

// launch starts node i on its data directory.
func (n *replicatedNodes) launch(i int) {
	sc := n.specs[i]
	n.procs[i] = proctest.Launch(n.t, proctest.Spec{Kind: string(daemon.Coordination), Addr: sc.Listen, Args: sc.Args()})
}

// leader returns the node that leads the command stream now.
func (n *replicatedNodes) leader(ctx context.Context, except int) int {
	n.t.Helper()
	for {
		for i, sc := range n.specs {
			if i == except || n.procs[i].Exited() {
				continue
			}
			if l, err := streamLeader(ctx, "nats://"+sc.NATSListen); err == nil {
				for j, s := range n.specs {
					if s.ReplicaName == l && j != except {
						return j
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			n.t.Fatalf("no leader of the command stream: %v", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func streamLeader(ctx context.Context, url string) (string, error) {
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err != nil {
		return "", err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return "", err
	}
	s, err := js.Stream(ctx, daemon.ReplicationStream)
	if err != nil {
		return "", err
	}
	info, err := s.Info(ctx)
	if err != nil || info.Cluster == nil || info.Cluster.Leader == "" {
		return "", fmt.Errorf("no leader: %v", err)
	}
	return info.Cluster.Leader, nil
}

// reporter reports events of one side (Guizhou's departures, Guangdong's arrivals) in calls of
// ten to every node, retrying a failed call with the same events and request id until it is
// acknowledged, as a province's outbox relay does.
type reporter struct {
	region string
	kind   coordinationv1.EventKind
	mu     sync.Mutex
	acked  []string    // event ids acknowledged
	times  []time.Time // when each call was acknowledged
	errs   int         // failed attempts (then retried)
}

func (r *reporter) run(ctx context.Context, t *testing.T, client coordinationv1.LedgerServiceClient, stop <-chan struct{}) {
	for call := 0; ; call++ {
		select {
		case <-stop:
			return
		default:
		}
		var events []*coordinationv1.LedgerEvent
		var ids []string
		for j := range 10 {
			w := call*10 + j
			e := &coordinationv1.LedgerEvent{
				EventId: fmt.Sprintf("%s-%s-%d", r.region, r.kind, w), Kind: r.kind,
				SendingRegion: federation.SendingRegion, ReceivingRegion: federation.ReceivingRegion, ReporterRegion: r.region,
				WorkerId: fmt.Sprintf("w%d", w), BatchId: fmt.Sprintf("520000-B%d", w/45),
				OccurTime: timestamppb.New(time.Now().Add(-time.Hour)),
			}
			if r.kind == coordinationv1.EventKind_EVENT_KIND_ARRIVED {
				e.OccurTime = timestamppb.New(time.Now().Add(-time.Minute))
			}
			events, ids = append(events, e), append(ids, e.GetEventId())
		}
		req := &coordinationv1.ReportEventsRequest{Events: events, RequestId: fmt.Sprintf("%s-call-%d", r.region, call)}
		retry := backoff.Policy{Min: 50 * time.Millisecond, Max: time.Second}
		for attempt := 1; ; attempt++ {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			resp, err := client.ReportEvents(cctx, req)
			cancel()
			if err == nil {
				if len(resp.GetRefusals()) > 0 {
					t.Errorf("%s call %d: refusals %v", r.region, call, resp.GetRefusals())
				}
				r.mu.Lock()
				r.acked = append(r.acked, ids...)
				r.times = append(r.times, time.Now())
				r.mu.Unlock()
				break
			}
			if ctx.Err() != nil {
				t.Errorf("%s call %d never acknowledged: %v", r.region, call, err)
				return
			}
			r.mu.Lock()
			r.errs++
			r.mu.Unlock()
			backoff.Sleep(ctx, retry.Delay(attempt))
		}
	}
}

// count returns the events acknowledged so far.
func (r *reporter) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.acked)
}

// longestGap is the longest time between two acknowledged calls.
func (r *reporter) longestGap() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var most time.Duration
	for i := 1; i < len(r.times); i++ {
		most = max(most, r.times[i].Sub(r.times[i-1]))
	}
	return most
}

// eventIDs lists every event of one node, alone, page by page.
func eventIDs(ctx context.Context, t *testing.T, addr string) []string {
	t.Helper()
	cc, err := peers.Dial(addr, peers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := coordinationv1.NewLedgerServiceClient(cc)
	var ids []string
	req := &coordinationv1.ListEventsRequest{PageSize: 1000}
	for {
		resp, err := client.ListEvents(ctx, req)
		if err != nil {
			t.Fatalf("ListEvents on %s: %v", addr, err)
		}
		for _, e := range resp.GetEvents() {
			ids = append(ids, e.GetEventId())
		}
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			return ids
		}
	}
}

// TestReplicatedCoordinationSurvivesSIGKILL: Guizhou and Guangdong report events to a
// three-node replicated coordination (real processes, given every node as -coordination is)
// while a follower is killed with SIGKILL and restarted on its directory, then the leader is
// killed and replaced by a node on an empty directory. Every acknowledged event is in every
// node's ledger exactly once, nothing else is, the three nodes sign the same trees,
// reconciliation, assessment and checkpoints are answered throughout and agree on every
// node at the end, and the longest pause in acknowledgements is logged.
func TestReplicatedCoordinationSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("three coordination processes")
	}
	t.Parallel()
	n := startReplicatedNodes(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cc, err := peers.Dial(n.cfg.CoordinationTarget(), peers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := coordinationv1.NewLedgerServiceClient(cc)
	recon, assess := coordinationv1.NewReconciliationServiceClient(cc), coordinationv1.NewAssessmentServiceClient(cc)

	reporters := []*reporter{
		{region: federation.SendingRegion, kind: coordinationv1.EventKind_EVENT_KIND_DEPARTED},
		{region: federation.ReceivingRegion, kind: coordinationv1.EventKind_EVENT_KIND_ARRIVED},
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, r := range reporters {
		wg.Go(func() { r.run(ctx, t, client, stop) })
	}
	// Reads go on through the kills, on the same connection.
	var readErrs, reads int
	var readMu sync.Mutex
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
			var err error
			switch reads % 3 {
			case 0:
				_, err = client.GetLedgerCheckpoint(rctx, &coordinationv1.GetLedgerCheckpointRequest{ReporterRegion: federation.SendingRegion}, grpc.WaitForReady(true))
			case 1:
				_, err = recon.ListPairingSummaries(rctx, &coordinationv1.ListPairingSummariesRequest{Region: federation.SendingRegion}, grpc.WaitForReady(true))
			case 2:
				_, err = assess.GetAssessment(rctx, &coordinationv1.GetAssessmentRequest{Region: federation.SendingRegion, Year: int32(time.Now().Year())}, grpc.WaitForReady(true))
			}
			rcancel()
			readMu.Lock()
			reads++
			if err != nil {
				readErrs++
			}
			readMu.Unlock()
		}
	})
	progress := func(what string) {
		t.Helper()
		want := reporters[0].count() + reporters[1].count() + 200
		if !wait.Until(time.Minute, func() bool { return reporters[0].count()+reporters[1].count() >= want }) {
			t.Fatalf("%s: no progress (acknowledged %d and %d events)", what, reporters[0].count(), reporters[1].count())
		}
	}
	progress("before the kills")

	lead := n.leader(ctx, -1)
	follower := (lead + 1) % 3
	t.Logf("leader %s; killing follower %s", n.specs[lead].ReplicaName, n.specs[follower].ReplicaName)
	n.procs[follower].Kill()
	progress("with a follower killed")
	n.launch(follower)
	n.procs[follower].WaitServing()
	progress("with the follower back")

	lead = n.leader(ctx, -1)
	t.Logf("killing leader %s and replacing it with a node on an empty directory", n.specs[lead].ReplicaName)
	n.procs[lead].Kill()
	killedAt := time.Now()
	progress("with the leader killed")
	t.Logf("writes acknowledged again %v after the leader was killed", time.Since(killedAt).Round(time.Millisecond))
	if err := os.RemoveAll(n.specs[lead].DataDir); err != nil {
		t.Fatal(err)
	}
	n.launch(lead)
	n.procs[lead].WaitServing()
	progress("with the leader replaced")
	close(stop)
	wg.Wait()

	var acked []string
	for _, r := range reporters {
		acked = append(acked, r.acked...)
		t.Logf("%s: %d events acknowledged, %d failed attempts retried, longest pause %v", r.region, len(r.acked), r.errs, r.longestGap().Round(time.Millisecond))
	}
	t.Logf("reads: %d, %d failed", reads, readErrs)
	if readErrs > 0 {
		t.Errorf("%d of %d reads failed while nodes were killed, with every node given", readErrs, reads)
	}
	sort.Strings(acked)

	// Every node, the replaced one too, holds every acknowledged event once and nothing else.
	for i, sc := range n.specs {
		var ids []string
		if !wait.Until(time.Minute, func() bool {
			ids = eventIDs(ctx, t, sc.Listen)
			return len(ids) >= len(acked)
		}) {
			t.Errorf("%s holds %d events, %d were acknowledged", sc.ReplicaName, len(ids), len(acked))
			continue
		}
		sort.Strings(ids)
		if dup := duplicate(ids); dup != "" {
			t.Errorf("%s holds event %s twice", sc.ReplicaName, dup)
		}
		if !slices.Equal(ids, acked) {
			t.Errorf("node %d (%s) holds %d events, not the %d acknowledged", i, sc.ReplicaName, len(ids), len(acked))
		}
	}
	// The nodes sign the same tree of each reporter's log: its size and root hash.
	for _, region := range []string{federation.SendingRegion, federation.ReceivingRegion} {
		var notes []string
		for _, sc := range n.specs {
			pc, err := peers.Dial(sc.Listen, peers.Options{})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := coordinationv1.NewLedgerServiceClient(pc).GetLedgerCheckpoint(ctx, &coordinationv1.GetLedgerCheckpointRequest{ReporterRegion: region})
			pc.Close()
			if err != nil {
				t.Fatal(err)
			}
			cp := resp.GetCheckpoint()
			// The tree each node signs; the signing time is each node's own.
			notes = append(notes, fmt.Sprintf("%s %d %x", cp.GetOrigin(), cp.GetTreeSize(), cp.GetRootHash()))
		}
		if notes[0] != notes[1] || notes[1] != notes[2] || !strings.HasPrefix(notes[0], "labourlink/ledger/"+region+" ") {
			t.Errorf("the nodes' checkpoints of %s differ:\n%s", region, strings.Join(notes, "\n--\n"))
		}
	}
	// And the same figures: reconciliation and assessment.
	var figures []string
	for _, sc := range n.specs {
		pc, err := peers.Dial(sc.Listen, peers.Options{})
		if err != nil {
			t.Fatal(err)
		}
		sum, err := coordinationv1.NewReconciliationServiceClient(pc).ListPairingSummaries(ctx, &coordinationv1.ListPairingSummariesRequest{Region: federation.SendingRegion})
		if err != nil {
			t.Fatal(err)
		}
		as, err := coordinationv1.NewAssessmentServiceClient(pc).GetAssessment(ctx, &coordinationv1.GetAssessmentRequest{Region: federation.SendingRegion, Year: int32(time.Now().Year())})
		pc.Close()
		if err != nil {
			t.Fatal(err)
		}
		figures = append(figures, prototext.Format(sum)+prototext.Format(as))
	}
	if figures[0] != figures[1] || figures[1] != figures[2] {
		t.Errorf("the nodes' figures differ:\n%s", strings.Join(figures, "\n--\n"))
	}
	for _, p := range n.procs {
		p.Stop()
	}
}

// duplicate returns an id that sorted ids hold twice, or "".
func duplicate(ids []string) string {
	for i := 1; i < len(ids); i++ {
		if ids[i] == ids[i-1] {
			return ids[i]
		}
	}
	return ""
}

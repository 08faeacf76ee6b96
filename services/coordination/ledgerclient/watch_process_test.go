package ledgerclient_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	ledgerwatchv1 "github.com/eastwest/labourlink/proto/labourlink/ledgerwatch/v1"
	"github.com/eastwest/labourlink/services/coordination/ledger"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/devtools/proctest"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/platform/store"
)

// watchSchema is a regional data file with an outbox and the ledger watch's buckets, standing in
// for a sending or receiving service's file.
var watchSchema = store.Schema{Name: "watchtest", Version: 1, Buckets: append([][]byte{store.BucketOutbox, store.BucketOutboxQuarantine}, ledgerclient.WatchBuckets()...)}

// province is a regional service's ledger side: its file, its watch and its relay to the ledger.
type province struct {
	region string
	db     *store.DB
	watch  *ledgerclient.Watch
	health *healthLog
}

// healthLog records what the watch publishes as its health.
type healthLog struct {
	mu      sync.Mutex
	serving map[string]bool
}

func (h *healthLog) set(name string, serving bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.serving[name] = serving
}

func (h *healthLog) get(name string) (serving, known bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	serving, known = h.serving[name]
	return serving, known
}

func newProvince(t *testing.T, region string, lg *zap.Logger) *province {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), region+".db"), watchSchema, lg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	p := &province{region: region, db: db, health: &healthLog{serving: map[string]bool{}}}
	p.watch = ledgerclient.NewWatch(db, lg.Named(region), ledgerclient.WatchConfig{Region: region, LeavesPerCheck: 2, Health: p.health.set})
	return p
}

// deliver runs the province's relay to the ledger at addr until every entry of its outbox is
// delivered (acknowledged and kept by the watch).
func (p *province) deliver(t *testing.T, addr string, lg *zap.Logger) {
	t.Helper()
	cc, err := peers.Dial(addr, peers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := coordinationv1.NewLedgerServiceClient(cc)
	relay := outbox.NewRelay(p.db, ledgerclient.Destination, ledgerclient.DeliverWatched(client, peers.Deadlines{}, p.watch), lg,
		outbox.Options{BatchSize: 2, MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, PollInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := relay.Run(ctx); err != nil {
			t.Errorf("relay: %v", err)
		}
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for pendingEntries(t, p.db) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if n := pendingEntries(t, p.db); n > 0 {
		t.Fatalf("%s: %d entries not delivered", p.region, n)
	}
}

func pendingEntries(t *testing.T, db *store.DB) int {
	t.Helper()
	n, err := outbox.Pending(db, ledgerclient.Destination)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// check runs the scheduled check until the cursor has gone through every acknowledged event
// (LeavesPerCheck is 2) against the ledger at addr, then the check of the whole history, and
// returns the state.
func (p *province) check(t *testing.T, addr string, rounds int) *ledgerwatchv1.LedgerWatch {
	t.Helper()
	cc, err := peers.Dial(addr, peers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	p.watch.SetClient(coordinationv1.NewLedgerServiceClient(cc))
	for range rounds {
		if err := p.watch.Check(callCtx(t)); err != nil {
			t.Fatalf("%s: check: %v", p.region, err)
		}
	}
	st, err := p.watch.State()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// verifyAll runs the check of the whole history against the ledger at addr.
func (p *province) verifyAll(t *testing.T, addr string) *ledgerwatchv1.LedgerWatch {
	t.Helper()
	cc, err := peers.Dial(addr, peers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	p.watch.SetClient(coordinationv1.NewLedgerServiceClient(cc))
	var calls []uint64
	if err := p.watch.VerifyAll(callCtx(t), func(done, total uint64) { calls = append(calls, done) }); err != nil {
		t.Fatalf("%s: verify: %v", p.region, err)
	}
	if !slices.IsSorted(calls) {
		t.Errorf("progress went back: %v", calls)
	}
	st, err := p.watch.State()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestProvinceDetectsLedgerTampering is the verifiable ledger's done-when, with a real
// coordination process: Guizhou (520000) and Guangdong (440000) report events through their
// outboxes, and each keeps what the ledger acknowledged (with the proofs checked on delivery).
// The coordination service is stopped, one of Guizhou's acknowledged events is changed (or
// deleted) in its bbolt file offline, and it is started again: Guizhou's scheduled checks and its
// check of the whole history name that event and its leaf index, its health turns NOT_SERVING;
// Guangdong's checks stay clean; and both provinces keep reporting (the next events are
// acknowledged and checked as before).
func TestProvinceDetectsLedgerTampering(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs the labourlink binary")
	}
	tests := []struct {
		name   string
		want   string
		tamper func(b *bbolt.Bucket, key []byte) error
	}{
		{"changed", "changed", func(b *bbolt.Bucket, key []byte) error {
			e := &coordinationv1.LedgerEvent{}
			if err := proto.Unmarshal(b.Get(key), e); err != nil {
				return err
			}
			e.WorkerId = "520000-W9999999999"
			v, err := proto.Marshal(e)
			if err != nil {
				return err
			}
			return b.Put(key, v)
		}},
		{"deleted", "missing", func(b *bbolt.Bucket, key []byte) error { return b.Delete(key) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lg := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
			dataC := t.TempDir()
			coord := proctest.Start(t, "coordination", "", "-data", dataC)
			gz, gd := newProvince(t, "520000", lg), newProvince(t, "440000", lg)

			dep := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
			var gzEvents, gdEvents []*coordinationv1.LedgerEvent
			for i := range 5 {
				w := fmt.Sprintf("520000-W%010d", i+1)
				gzEvents = append(gzEvents, departure("520000-B1", w, dep))
				a := departure("520000-B1", w, dep.Add(30*time.Minute))
				a.EventId = "440000:arrived:520000-B1:" + w
				a.Kind = coordinationv1.EventKind_EVENT_KIND_ARRIVED
				a.ReporterRegion = "440000"
				a.RegisteredPoor = false
				a.OccurTime = timestamppb.New(dep.Add(30 * time.Minute))
				gdEvents = append(gdEvents, a)
			}
			putEvents(t, gz.db, gzEvents...)
			putEvents(t, gd.db, gdEvents...)
			gz.deliver(t, coord.Addr, lg)
			gd.deliver(t, coord.Addr, lg)
			for _, p := range []*province{gz, gd} {
				st := p.check(t, coord.Addr, 3)
				if st.GetAcknowledgedEvents() != 5 || st.GetFailureCount() != 0 || st.GetCheckpointProblem() != "" || st.GetCheckpoint().GetTreeSize() != 5 {
					t.Fatalf("%s before tampering: %v", p.region, st)
				}
				if serving, known := p.health.get(ledgerclient.HealthName); !serving || !known {
					t.Fatalf("%s: health %v (known %v) before tampering", p.region, serving, known)
				}
			}

			coord.Stop()
			victim := gzEvents[2].GetEventId()
			raw, err := bbolt.Open(filepath.Join(dataC, "coordination.db"), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = raw.Update(func(tx *bbolt.Tx) error {
				seq := tx.Bucket([]byte("ledgerEventIDs")).Get([]byte(victim))
				if seq == nil {
					return fmt.Errorf("no event %s in the file", victim)
				}
				return tc.tamper(tx.Bucket([]byte("ledgerEvents")), append([]byte(nil), seq...))
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := raw.Close(); err != nil {
				t.Fatal(err)
			}
			coord = proctest.Start(t, "coordination", coord.Addr, "-data", dataC)

			// The scheduled checks (2 events each) go through all 5 in 3 rounds.
			st := gz.check(t, coord.Addr, 3)
			if st.GetFailureCount() != 1 || st.GetFailures()[0].GetEventId() != victim || st.GetFailures()[0].GetLeafIndex() != 2 ||
				!strings.HasPrefix(st.GetFailures()[0].GetProblem(), tc.want) {
				t.Errorf("Guizhou's scheduled checks: want one failure naming %s at leaf 2 (%s), got %v", victim, tc.want, st.GetFailures())
			}
			if serving, _ := gz.health.get(ledgerclient.HealthName); serving {
				t.Error("Guizhou's ledger health is SERVING after the tampering was found")
			}
			st = gz.verifyAll(t, coord.Addr)
			if st.GetFailureCount() != 1 || st.GetFailures()[0].GetEventId() != victim || st.GetFailures()[0].GetLeafIndex() != 2 {
				t.Errorf("Guizhou's whole-history check: want one failure naming %s at leaf 2, got %v", victim, st.GetFailures())
			}
			if st.GetCheckpointProblem() != "" {
				t.Errorf("Guizhou: the tree was not touched, got checkpoint problem %q", st.GetCheckpointProblem())
			}
			for _, check := range []func() *ledgerwatchv1.LedgerWatch{
				func() *ledgerwatchv1.LedgerWatch { return gd.check(t, coord.Addr, 3) },
				func() *ledgerwatchv1.LedgerWatch { return gd.verifyAll(t, coord.Addr) },
			} {
				if st := check(); st.GetFailureCount() != 0 || st.GetCheckpointProblem() != "" {
					t.Errorf("Guangdong's facts were not touched, got %v", st)
				}
			}
			if serving, _ := gd.health.get(ledgerclient.HealthName); !serving {
				t.Error("Guangdong's ledger health turned NOT_SERVING")
			}

			// Nothing else is disturbed: both keep reporting, and the new events are acknowledged.
			more := departure("520000-B2", "520000-W0000000009", dep)
			putEvents(t, gz.db, more)
			gz.deliver(t, coord.Addr, lg)
			st = gz.verifyAll(t, coord.Addr)
			if st.GetAcknowledgedEvents() != 6 || st.GetCheckpoint().GetTreeSize() != 6 || st.GetFailureCount() != 1 {
				t.Errorf("Guizhou after one more event: %v", st)
			}
		})
	}
}

// What the ledger acknowledges is checked on delivery: a good answer is kept with no failure; an
// answer whose inclusion proof was changed on the way is kept as a failure naming the event; an
// answer whose checkpoint is signed by another key than the pinned one is a problem of the log
// as a whole, and its checkpoint is not kept.
func TestAcknowledgeChecksProofs(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs the labourlink binary")
	}
	lg := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	coord := proctest.Start(t, "coordination", "", "-data", t.TempDir())
	client := coordinationv1.NewLedgerServiceClient(coord.Conn())
	dep := time.Now().Add(-time.Hour).Truncate(time.Second)
	var evs []*coordinationv1.LedgerEvent
	for i := range 3 {
		evs = append(evs, departure("520000-B7", fmt.Sprintf("520000-W%010d", i+1), dep))
	}
	resp, err := client.ReportEvents(callCtx(t), &coordinationv1.ReportEventsRequest{Events: evs})
	if err != nil {
		t.Fatal(err)
	}
	other, err := ledger.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		key         string
		change      func(r *coordinationv1.ReportEventsResponse)
		failures    []string // event ids
		problem     string   // how the checkpoint problem starts
		keptCheckpt bool
	}{
		{name: "good", keptCheckpt: true},
		{name: "proof changed", change: func(r *coordinationv1.ReportEventsResponse) { r.GetInclusions()[1].GetProof()[0][0] ^= 1 },
			failures: []string{evs[1].GetEventId()}, keptCheckpt: true},
		{name: "leaf index changed", change: func(r *coordinationv1.ReportEventsResponse) {
			r.GetInclusions()[0].LeafIndex, r.GetInclusions()[2].LeafIndex = r.GetInclusions()[2].GetLeafIndex(), r.GetInclusions()[0].GetLeafIndex()
		}, failures: []string{evs[0].GetEventId(), evs[2].GetEventId()}, keptCheckpt: true},
		{name: "another key", key: other.PublicKey(), problem: "the ledger's checkpoint is not signed by the pinned key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newProvince(t, "520000", lg)
			if tc.key != "" {
				p.watch = ledgerclient.NewWatch(p.db, lg, ledgerclient.WatchConfig{Region: "520000", PublicKey: tc.key, Health: p.health.set})
			}
			r := proto.Clone(resp).(*coordinationv1.ReportEventsResponse)
			if tc.change != nil {
				tc.change(r)
			}
			if err := p.watch.Acknowledge(callCtx(t), client, evs, r); err != nil {
				t.Fatal(err)
			}
			st, err := p.watch.State()
			if err != nil {
				t.Fatal(err)
			}
			checkChangedFailures(t, st, tc.failures)
			if !strings.HasPrefix(st.GetCheckpointProblem(), tc.problem) || (tc.problem == "") != (st.GetCheckpointProblem() == "") {
				t.Errorf("checkpoint problem %q, want %q", st.GetCheckpointProblem(), tc.problem)
			}
			if (st.GetCheckpoint() != nil) != tc.keptCheckpt {
				t.Errorf("checkpoint kept: %v, want %v", st.GetCheckpoint() != nil, tc.keptCheckpt)
			}
			if st.GetAcknowledgedEvents() != 3 {
				t.Errorf("%d acknowledged events kept, want 3", st.GetAcknowledgedEvents())
			}
			serving, _ := p.health.get(ledgerclient.HealthName)
			if serving != (len(tc.failures) == 0 && tc.problem == "") {
				t.Errorf("health SERVING = %v", serving)
			}
		})
	}
}

// consistencyCounter counts the GetConsistencyProof calls made through it.
type consistencyCounter struct {
	coordinationv1.LedgerServiceClient
	calls *int
}

func (c consistencyCounter) GetConsistencyProof(ctx context.Context, req *coordinationv1.GetConsistencyProofRequest, opts ...grpc.CallOption) (*coordinationv1.GetConsistencyProofResponse, error) {
	*c.calls++
	return c.LedgerServiceClient.GetConsistencyProof(ctx, req, opts...)
}

// A ReportEvents answer with leaf ranges (PROOF_FORM_RANGES, as the relay asks) is checked as
// the inclusions are: a range that starts at the kept checkpoint proves the new one extends it
// without a consistency proof; a changed compact range, or events in another order than the
// leaves, is a failure of every event of the range (the checkpoint's consistency then checked
// with a proof, and kept); a duplicate's inclusion in the same answer is checked on its own.
func TestAcknowledgeChecksLeafRanges(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs the labourlink binary")
	}
	lg := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	coord := proctest.Start(t, "coordination", "", "-data", t.TempDir())
	client := coordinationv1.NewLedgerServiceClient(coord.Conn())
	dep := time.Now().Add(-time.Hour).Truncate(time.Second)
	var first, second []*coordinationv1.LedgerEvent
	for i := range 3 {
		first = append(first, departure("520000-B8", fmt.Sprintf("520000-W%010d", i+1), dep))
		second = append(second, departure("520000-B8", fmt.Sprintf("520000-W%010d", i+11), dep))
	}
	// The second report repeats the first report's last event: a duplicate, proven by inclusion.
	second = append(second, first[2])
	report := func(evs []*coordinationv1.LedgerEvent) *coordinationv1.ReportEventsResponse {
		resp, err := client.ReportEvents(callCtx(t), &coordinationv1.ReportEventsRequest{Events: evs, ProofForm: coordinationv1.ProofForm_PROOF_FORM_RANGES})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	firstResp, secondResp := report(first), report(second)
	if r := secondResp.GetRanges(); len(r) != 1 || r[0].GetFirstLeafIndex() != 3 || fmt.Sprint(r[0].GetIndexes()) != "[0 1 2]" || r[0].GetTreeSize() != 6 ||
		len(secondResp.GetInclusions()) != 1 || secondResp.GetInclusions()[0].GetIndex() != 3 {
		t.Fatalf("the second answer: ranges %v, inclusions %v; want the 3 new events from leaf 3 and the duplicate's inclusion", r, secondResp.GetInclusions())
	}

	tests := []struct {
		name        string
		change      func(r *coordinationv1.ReportEventsResponse)
		failures    []string // event ids
		consistency int      // GetConsistencyProof calls
	}{
		{name: "good"},
		{name: "compact range changed", change: func(r *coordinationv1.ReportEventsResponse) { r.GetRanges()[0].GetLeft()[0][0] ^= 1 },
			failures: ids(second[:3]), consistency: 1},
		{name: "events in another order", change: func(r *coordinationv1.ReportEventsResponse) {
			ix := r.GetRanges()[0].GetIndexes()
			ix[0], ix[2] = ix[2], ix[0]
		}, failures: ids(second[:3]), consistency: 1},
		{name: "duplicate's proof changed", change: func(r *coordinationv1.ReportEventsResponse) { r.GetInclusions()[0].GetProof()[0][0] ^= 1 },
			failures: ids(first[2:])},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newProvince(t, "520000", lg)
			calls := 0
			c := consistencyCounter{client, &calls}
			if err := p.watch.Acknowledge(callCtx(t), c, first, firstResp); err != nil {
				t.Fatal(err)
			}
			r := proto.Clone(secondResp).(*coordinationv1.ReportEventsResponse)
			if tc.change != nil {
				tc.change(r)
			}
			if err := p.watch.Acknowledge(callCtx(t), c, second, r); err != nil {
				t.Fatal(err)
			}
			st, err := p.watch.State()
			if err != nil {
				t.Fatal(err)
			}
			checkChangedFailures(t, st, tc.failures)
			if calls != tc.consistency {
				t.Errorf("%d consistency proofs asked for, want %d", calls, tc.consistency)
			}
			if st.GetCheckpoint().GetTreeSize() != 6 || st.GetCheckpointProblem() != "" || st.GetAcknowledgedEvents() != 6 {
				t.Errorf("checkpoint of %d leaves (problem %q), %d events acknowledged; want 6, none, 6", st.GetCheckpoint().GetTreeSize(), st.GetCheckpointProblem(), st.GetAcknowledgedEvents())
			}
		})
	}
}

// checkChangedFailures checks that the watch's failures are the events want (ids, sorted), each
// found changed (a proof given on delivery that does not hold).
func checkChangedFailures(t *testing.T, st *ledgerwatchv1.LedgerWatch, want []string) {
	t.Helper()
	var got []string
	for _, f := range st.GetFailures() {
		got = append(got, f.GetEventId())
		if !strings.HasPrefix(f.GetProblem(), "changed") {
			t.Errorf("problem %q", f.GetProblem())
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("failures %v, want %v", got, want)
	}
}

// ids returns the events' ids, sorted.
func ids(evs []*coordinationv1.LedgerEvent) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.GetEventId())
	}
	slices.Sort(out)
	return out
}

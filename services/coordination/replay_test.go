package coordination

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
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/durationpb"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/coordination/ledger"
	"github.com/eastwest/labourlink/services/platform/store"
)

// command is one write as a replicated log would carry it: the method, the request's bytes and
// the time the node that took it chose, with what the first run answered.
type command struct {
	method string
	req    []byte
	now    time.Time
	resp   []byte
	err    error
}

// recorder is the local writer, recording every write it runs.
type recorder struct {
	store.Local
	mu   sync.Mutex
	cmds []command
}

func (r *recorder) Write(ctx context.Context, m *store.Mutation, now time.Time, req, resp proto.Message) error {
	b, err := proto.Marshal(req)
	if err != nil {
		return err
	}
	werr := r.Local.Write(ctx, m, now, req, resp)
	rb, err := proto.Marshal(resp)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.cmds = append(r.cmds, command{method: m.Method(), req: b, now: now, resp: rb, err: werr})
	r.mu.Unlock()
	return werr
}

// TestWritesReplayToTheSameFile is what a replicated coordination service rests on: every write
// of the service is a function of its request and time alone, so that applying the same
// commands, in the same order, to another file gives a file holding the same keys and values,
// and the same answers. A service takes a scenario through its gRPC API (pairings, an agreement,
// reports with duplicates and refusals, a baseline, the deadline timer, a repeated request id, a
// refused request) while its writes are recorded; the commands are then applied to a second
// file through the mutations of a second service, found by method.
func TestWritesReplayToTheSameFile(t *testing.T) {
	t.Parallel()
	key, err := ledger.LoadOrCreateKey(filepath.Join(t.TempDir(), ledger.KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	start := cst(2026, 1, 5, 9)
	a := newHarness(t, t.TempDir(), zapLogger(t), Config{LedgerKey: key, GracePeriod: 72 * time.Hour}, start)
	t.Cleanup(a.close)
	rec := &recorder{Local: store.Local{DB: a.db}}
	a.s.SetWriter(rec)

	c := ctxT(t)
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(a.registry.LoadDefaultPairings(c, &coordinationv1.LoadDefaultPairingsRequest{RequestId: "defaults"}))
	must(a.registry.RegisterRegion(c, &coordinationv1.RegisterRegionRequest{
		Region: &coordinationv1.Region{Code: "520000", Role: sendingRole, Endpoint: "127.0.0.1:50052"}, RequestId: "reg-1",
	}))
	must(a.registry.SetPairingAgreement(c, &coordinationv1.SetPairingAgreementRequest{
		Name: "pairings/440000-520000", RequestId: "agree-1",
		Agreement: &coordinationv1.ProgrammeAgreement{ArrivalGracePeriod: durationpb.New(24 * time.Hour), CheckpointToleranceDays: 10},
	}))
	dep := start.Add(-time.Hour)
	var events []*coordinationv1.LedgerEvent
	for i := range 20 {
		w := fmt.Sprintf("w%d", i)
		events = append(events, poor(ev("d"+w, departed, fmt.Sprintf("520000-B%d", i/7), w, dep)))
		if i%3 != 0 {
			events = append(events, ev("a"+w, arrived, fmt.Sprintf("520000-B%d", i/7), w, dep.Add(30*time.Minute)))
		}
	}
	a.report(t, events[:15]...)
	// Duplicates, new events and one refused (a pairing not in the registry) in one call.
	stray := ev("stray", departed, "110000-B1", "x1", dep)
	stray.SendingRegion, stray.ReceivingRegion = "110000", "120000"
	must(a.ledger.ReportEvents(c, &coordinationv1.ReportEventsRequest{Events: append(slices.Clone(events[10:]), stray)}))
	must(a.assess.SetBaseline(c, &coordinationv1.SetBaselineRequest{Region: "520000", Year: 2026, Count: 9, RequestId: "base-1"}))
	must(a.assess.SetBaseline(c, &coordinationv1.SetBaselineRequest{Region: "520000", Year: 2026, Count: 9, RequestId: "base-1"}))
	if _, err := a.registry.DeletePairing(c, &coordinationv1.DeletePairingRequest{Name: "pairings/440000-110000"}); err == nil {
		t.Fatal("deleting a pairing that does not exist succeeded")
	}
	// The grace period passes: the timer's write opens the missing arrivals.
	a.at(t, start.Add(48*time.Hour))
	if _, err := a.s.ledger.ExpireDue(); err != nil {
		t.Fatal(err)
	}
	if got := a.openKinds(t); got == "" {
		t.Fatal("no discrepancy opened after the grace period: the scenario does not exercise the timer's write")
	}

	methods := map[string]bool{}
	for _, cmd := range rec.cmds {
		methods[cmd.method] = true
	}
	for _, m := range []string{
		coordinationv1.RegistryService_LoadDefaultPairings_FullMethodName, coordinationv1.RegistryService_RegisterRegion_FullMethodName,
		coordinationv1.RegistryService_SetPairingAgreement_FullMethodName, coordinationv1.RegistryService_DeletePairing_FullMethodName,
		coordinationv1.LedgerService_ReportEvents_FullMethodName, coordinationv1.AssessmentService_SetBaseline_FullMethodName,
		ledger.ExpireDueMethod,
	} {
		if !methods[m] {
			t.Errorf("the scenario's writes did not go through the writer: no %s recorded", m)
		}
	}

	// The second service's clock is far ahead: a write that read the clock instead of its
	// command's time would change its file otherwise.
	b := newHarness(t, t.TempDir(), zapLogger(t), Config{LedgerKey: key, GracePeriod: 72 * time.Hour}, start.Add(1000*time.Hour))
	t.Cleanup(b.close)
	byMethod := map[string]*store.Mutation{}
	for _, m := range b.s.Mutations() {
		byMethod[m.Method()] = m
	}
	for i, cmd := range rec.cmds {
		m := byMethod[cmd.method]
		if m == nil {
			t.Fatalf("command %d: no mutation for %s", i, cmd.method)
		}
		req, resp := m.NewRequest(), m.NewResponse()
		if err := proto.Unmarshal(cmd.req, req); err != nil {
			t.Fatal(err)
		}
		err := store.Local{DB: b.db}.Write(c, m, cmd.now, req, resp)
		if (err == nil) != (cmd.err == nil) || (err != nil && err.Error() != cmd.err.Error()) {
			t.Fatalf("command %d (%s): replay error %v, first run %v", i, cmd.method, err, cmd.err)
		}
		if err != nil {
			continue
		}
		first := m.NewResponse()
		if err := proto.Unmarshal(cmd.resp, first); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(first, resp) {
			t.Fatalf("command %d (%s): replay answered\n%v\nthe first run\n%v", i, cmd.method, resp, first)
		}
	}

	fa, fb := fileEntries(t, a.db), fileEntries(t, b.db)
	for id, w := range fa {
		if o, ok := fb[id]; !ok {
			t.Errorf("only in the first file: %s", showKey(w))
		} else if string(o.value) != string(w.value) {
			t.Errorf("values differ: %s", showKey(w))
		}
	}
	for id, w := range fb {
		if _, ok := fa[id]; !ok {
			t.Errorf("only in the replayed file: %s", showKey(w))
		}
	}
}

// TestEveryWriteIsAMutation: each coordination RPC that is not a read (Get*, List*) is one of
// the service's mutations, so that no write escapes the writer (a replicated service would
// apply it on one node only).
func TestEveryWriteIsAMutation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t.TempDir(), zapLogger(t), Config{}, t0)
	t.Cleanup(h.close)
	have := map[string]bool{}
	for _, m := range h.s.Mutations() {
		if have[m.Method()] {
			t.Errorf("mutation %s registered twice", m.Method())
		}
		have[m.Method()] = true
	}
	writes := 0
	for _, name := range h.s.ServiceNames() {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			t.Fatal(err)
		}
		methods := d.(protoreflect.ServiceDescriptor).Methods()
		for i := range methods.Len() {
			m := methods.Get(i)
			n := string(m.Name())
			if strings.HasPrefix(n, "Get") || strings.HasPrefix(n, "List") {
				continue
			}
			writes++
			if full := "/" + name + "/" + n; !have[full] {
				t.Errorf("%s writes but is not a mutation of the service", full)
			}
		}
	}
	if writes < 8 {
		t.Fatalf("found %d writing RPCs, want the 8 of the API at least", writes)
	}
}

// fileEntries is boltEntries of the whole file, without the store's own per-file keys (the
// file's instance id).
func fileEntries(t *testing.T, db *store.DB) map[string]boltWrite {
	t.Helper()
	var out map[string]boltWrite
	if err := db.View(func(tx *bbolt.Tx) error {
		out = boltEntries(tx)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for id, w := range out {
		if perFile(w) {
			delete(out, id)
		}
	}
	return out
}

func showKey(w boltWrite) string {
	var path []string
	for _, b := range w.bucket {
		path = append(path, string(b))
	}
	return fmt.Sprintf("%s %q", strings.Join(path, "/"), w.key)
}

// perFile reports whether w is one of the store's keys that differ from file to file by design.
func perFile(w boltWrite) bool {
	return len(w.bucket) == 1 && string(w.bucket[0]) == string(store.BucketMeta) && string(w.key) == "instance"
}

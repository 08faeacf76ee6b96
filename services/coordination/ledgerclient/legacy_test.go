package ledgerclient_test

import (
	"net"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/platform/store"
)

// oldCheckpoint is a checkpoint event as a receiving service before the per-kind details put it
// in its outbox: months (11) and still_employed (12) as flat fields.
func oldCheckpoint(worker string, months int32, at time.Time) *coordinationv1.LedgerEvent {
	e := departure("", worker, at)
	e.EventId = "440000:checkpoint:" + worker
	e.Kind, e.ReporterRegion, e.BatchId = coordinationv1.EventKind_EVENT_KIND_EMPLOYMENT_CHECKPOINT, "440000", ""
	var b []byte
	b = protowire.AppendVarint(protowire.AppendTag(b, 11, protowire.VarintType), uint64(months))
	b = protowire.AppendVarint(protowire.AppendTag(b, 12, protowire.VarintType), 1)
	e.ProtoReflect().SetUnknown(b)
	return e
}

func TestUpgradeEvent(t *testing.T) {
	t.Parallel()
	at := time.Now()
	cp := oldCheckpoint("w1", 3, at)
	if !ledgerclient.UpgradeEvent(cp) {
		t.Fatal("old checkpoint not converted")
	}
	if d := cp.GetEmploymentCheckpoint(); d.GetMonths() != 3 || !d.GetStillEmployed() || len(cp.ProtoReflect().GetUnknown()) != 0 {
		t.Fatalf("converted %v (unknown %x)", cp, cp.ProtoReflect().GetUnknown())
	}
	if ledgerclient.UpgradeEvent(cp) {
		t.Fatal("converted twice")
	}
	for _, tt := range []struct {
		kind coordinationv1.EventKind
		want func(*coordinationv1.LedgerEvent) string
	}{
		{coordinationv1.EventKind_EVENT_KIND_LEFT_JOB, func(e *coordinationv1.LedgerEvent) string { return e.GetLeftJob().GetReason() }},
		{coordinationv1.EventKind_EVENT_KIND_INCIDENT, func(e *coordinationv1.LedgerEvent) string { return e.GetIncident().GetKind() }},
	} {
		e := departure("B1", "w1", at)
		e.Kind = tt.kind
		e.ProtoReflect().SetUnknown(protowire.AppendString(protowire.AppendTag(nil, 13, protowire.BytesType), "text"))
		if !ledgerclient.UpgradeEvent(e) || tt.want(e) != "text" || len(e.ProtoReflect().GetUnknown()) != 0 {
			t.Errorf("%s: converted %v", tt.kind, e)
		}
	}
	// A detail on a kind that has none now stays as it was (kept, not shown).
	dep := departure("B1", "w1", at)
	old := protowire.AppendString(protowire.AppendTag(nil, 13, protowire.BytesType), "text")
	dep.ProtoReflect().SetUnknown(old)
	if ledgerclient.UpgradeEvent(dep) || dep.GetDetails() != nil || string(dep.ProtoReflect().GetUnknown()) != string(old) {
		t.Errorf("departure with a detail: %v", dep)
	}
	// Upgraded leaves its argument alone.
	cp = oldCheckpoint("w1", 6, at)
	up := ledgerclient.Upgraded(cp)
	if up == cp || cp.GetDetails() != nil || up.GetEmploymentCheckpoint().GetMonths() != 6 {
		t.Errorf("Upgraded: %v from %v", up, cp)
	}
}

// After an upgrade of the receiving service, events its outbox took before (flat months and
// still_employed) reach the ledger with their details, counted as before; and an event of a
// kind this ledger does not know (a newer reporter) is refused on its own and quarantined, while
// the relay goes on with the events after it.
func TestRelayDeliversOldEventsAndQuarantinesUnknownKinds(t *testing.T) {
	t.Parallel()
	lg := zaptest.NewLogger(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	schema := store.Schema{Name: "ledgertest", Version: 1, Buckets: [][]byte{store.BucketOutbox, store.BucketOutboxQuarantine}}
	db, err := store.Open(filepath.Join(t.TempDir(), "receiving.db"), schema, lg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	at := time.Now().Add(-time.Hour)
	newer := departure("520000-B1", "w2", at)
	newer.EventId = "520000:newer-kind:w2"
	newer.Kind = coordinationv1.EventKind(99) // not a value of this version's enum
	after := departure("520000-B1", "w3", at)
	putEvents(t, db, oldCheckpoint("w1", 3, at), newer, after)
	startCoordinationOn(t, addr, t.TempDir(), lg)
	startRelay(t, db, addr, lg)
	waitDrained(t, db)
	if n, err := outbox.Quarantined(db, ledgerclient.Destination); err != nil || n != 1 {
		t.Fatalf("%d entries quarantined (%v), want the one of the unknown kind", n, err)
	}
	cc, err := peers.Dial(addr, peers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	got := ledgerEventIDs(t, cc)
	if len(got) != 2 || got[after.GetEventId()] == nil {
		t.Fatalf("ledger has %v, want the checkpoint and the departure after the unknown kind", got)
	}
	cp := got["440000:checkpoint:w1"]
	want := &coordinationv1.EmploymentCheckpointDetails{Months: 3, StillEmployed: true}
	if !proto.Equal(cp.GetEmploymentCheckpoint(), want) || len(cp.ProtoReflect().GetUnknown()) != 0 {
		t.Fatalf("checkpoint recorded as %v, want details %v", cp, want)
	}
}

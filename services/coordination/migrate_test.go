package coordination

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/coordination/replicated"
	"github.com/eastwest/labourlink/services/platform/store"
)

// legacyEvent is ev as schema version 1 stored it: the per-kind details as the flat fields
// months (11), still_employed (12) and detail (13), written by number.
func legacyEvent(t *testing.T, ev *coordinationv1.LedgerEvent) []byte {
	t.Helper()
	flat := proto.Clone(ev).(*coordinationv1.LedgerEvent)
	flat.Details = nil
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(flat)
	if err != nil {
		t.Fatal(err)
	}
	switch d := ev.GetDetails().(type) {
	case *coordinationv1.LedgerEvent_EmploymentCheckpoint:
		b = protowire.AppendVarint(protowire.AppendTag(b, 11, protowire.VarintType), uint64(d.EmploymentCheckpoint.GetMonths()))
		if d.EmploymentCheckpoint.GetStillEmployed() {
			b = protowire.AppendVarint(protowire.AppendTag(b, 12, protowire.VarintType), 1)
		}
	case *coordinationv1.LedgerEvent_LeftJob:
		b = protowire.AppendString(protowire.AppendTag(b, 13, protowire.BytesType), d.LeftJob.GetReason())
	case *coordinationv1.LedgerEvent_Incident:
		b = protowire.AppendString(protowire.AppendTag(b, 13, protowire.BytesType), d.Incident.GetKind())
	}
	return b
}

// A file written with schema version 1 (ledger events with the flat months, still_employed and
// detail fields) opens with version 2: the migration converts the events to per-kind details,
// the ledger lists the same facts, counts the checkpoints as before, and takes the same events
// reported again (in the new shape) as duplicates, not as reused event ids.
func TestOpenVersion1FileConvertsEventDetails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	lg := zapLogger(t)
	cp := func(id, worker string, months int32, still bool) *coordinationv1.LedgerEvent {
		e := ev(id, checkpoint, "B1", worker, t0.AddDate(0, int(months), 0)) // N months after onboarding (the ledger refuses it sooner)
		e.Details = &coordinationv1.LedgerEvent_EmploymentCheckpoint{EmploymentCheckpoint: &coordinationv1.EmploymentCheckpointDetails{Months: months, StillEmployed: still}}
		return e
	}
	left := ev("e-left", coordinationv1.EventKind_EVENT_KIND_LEFT_JOB, "B1", "w2", t0.Add(time.Hour))
	left.Details = &coordinationv1.LedgerEvent_LeftJob{LeftJob: &coordinationv1.LeftJobDetails{Reason: "went home to harvest"}}
	inc := ev("e-incident", incident, "B1", "w1", t0.Add(time.Hour))
	inc.Details = &coordinationv1.LedgerEvent_Incident{Incident: &coordinationv1.IncidentDetails{Kind: "injury"}}
	reported := []*coordinationv1.LedgerEvent{
		ev("e-dep1", departed, "B1", "w1", t0), ev("e-dep2", departed, "B1", "w2", t0),
		ev("e-arr1", arrived, "B1", "w1", t0), ev("e-arr2", arrived, "B1", "w2", t0),
		ev("e-on1", onboarded, "B1", "w1", t0), ev("e-on2", onboarded, "B1", "w2", t0),
		cp("e-cp3", "w1", 3, true), cp("e-cp6", "w1", 6, false), cp("e-cp3b", "w2", 3, true),
		left, inc,
	}
	h := newHarness(t, dir, lg, Config{LoadDefaultPairings: true}, t0.Add(200*24*time.Hour))
	h.report(t, reported...)
	before := summaries(t, h)
	h.close()

	// Write the file back the way version 1 did.
	raw, err := bbolt.Open(filepath.Join(dir, "coordination.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = raw.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("ledgerEvents"))
		n := 0
		if err := b.ForEach(func(k, v []byte) error {
			e := &coordinationv1.LedgerEvent{}
			if err := proto.Unmarshal(v, e); err != nil {
				return err
			}
			n++
			return b.Put(k, legacyEvent(t, e))
		}); err != nil {
			return err
		}
		if n != len(reported) {
			t.Errorf("%d events stored, want %d", n, len(reported))
		}
		return tx.Bucket(store.BucketMeta).Put([]byte("version"), store.Uint64Key(1))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}

	h = newHarness(t, dir, lg, Config{LoadDefaultPairings: true}, t0.Add(200*24*time.Hour))
	t.Cleanup(h.close)
	list, err := h.ledger.ListEvents(ctxT(t), &coordinationv1.ListEventsRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetEvents()) != len(reported) {
		t.Fatalf("%d events listed, want %d", len(list.GetEvents()), len(reported))
	}
	for i, got := range list.GetEvents() {
		want := reported[i]
		if got.GetEventId() != want.GetEventId() || !proto.Equal(detailsOf(got), detailsOf(want)) {
			t.Errorf("event %d after the migration: %s %v, want %s %v", i, got.GetEventId(), got.GetDetails(), want.GetEventId(), want.GetDetails())
		}
		if len(got.ProtoReflect().GetUnknown()) != 0 {
			t.Errorf("event %s keeps unknown fields %x", got.GetEventId(), got.ProtoReflect().GetUnknown())
		}
	}
	if after := summaries(t, h); !proto.Equal(after, before) {
		t.Errorf("pairing summaries after the migration %v, want %v", after, before)
	}
	var pair *coordinationv1.PairingSummary
	for _, s := range before.GetSummaries() {
		if s.GetSendingRegion() == "520000" {
			pair = s
		}
	}
	if pair.GetEmployedThreeMonths() != 2 || pair.GetEmployedSixMonths() != 0 || pair.GetLeftJob() != 1 {
		t.Fatalf("summaries %v, want 520000 with 2 employed at 3 months, none at 6, 1 left", before.GetSummaries())
	}
	resp := h.report(t, reported...)
	if resp.GetDuplicates() != int32(len(reported)) || resp.GetRecorded() != 0 || len(resp.GetRefusals()) != 0 {
		t.Fatalf("the same events again: %v, want all duplicates", resp)
	}
}

// detailsOf is the details of e as a message (nil for none).
func detailsOf(e *coordinationv1.LedgerEvent) proto.Message {
	switch d := e.GetDetails().(type) {
	case *coordinationv1.LedgerEvent_EmploymentCheckpoint:
		return d.EmploymentCheckpoint
	case *coordinationv1.LedgerEvent_LeftJob:
		return d.LeftJob
	case *coordinationv1.LedgerEvent_Incident:
		return d.Incident
	}
	return nil
}

func summaries(t *testing.T, h *harness) *coordinationv1.ListPairingSummariesResponse {
	t.Helper()
	resp, err := h.recon.ListPairingSummaries(ctxT(t), &coordinationv1.ListPairingSummariesRequest{Region: "440000"})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// A reporter not yet upgraded sends the flat months and still_employed fields: the ledger takes
// them as the checkpoint's details.
func TestReportEventsTakesOldFlatFields(t *testing.T) {
	t.Parallel()
	h := startHarness(t, Config{LoadDefaultPairings: true})
	old := ev("440000:checkpoint:w1:3", checkpoint, "", "w1", t0)
	b := protowire.AppendVarint(protowire.AppendTag(nil, 11, protowire.VarintType), 3)
	old.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(b, 12, protowire.VarintType), 1))
	if resp := h.report(t, old); resp.GetRecorded() != 1 {
		t.Fatalf("report %v", resp)
	}
	list, err := h.ledger.ListEvents(ctxT(t), &coordinationv1.ListEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := &coordinationv1.EmploymentCheckpointDetails{Months: 3, StillEmployed: true}
	if len(list.GetEvents()) != 1 || !proto.Equal(list.GetEvents()[0].GetEmploymentCheckpoint(), want) {
		t.Fatalf("listed %v, want the checkpoint with %v", list.GetEvents(), want)
	}
}

// The privacy guard at the edge cannot see the old flat detail (an unknown field to it): the
// ledger scans the converted event, and refuses that event alone.
func TestReportEventsScansOldFlatDetail(t *testing.T) {
	t.Parallel()
	h := startHarness(t, Config{LoadDefaultPairings: true})
	old := ev("440000:incident:B1:w1:x", incident, "", "w1", t0)
	old.ProtoReflect().SetUnknown(protowire.AppendString(protowire.AppendTag(nil, 13, protowire.BytesType), "injured, 身份证"+testIDNumber))
	good := ev("440000:incident:B1:w2:x", incident, "", "w2", t0)
	resp, err := h.ledger.ReportEvents(ctxT(t), &coordinationv1.ReportEventsRequest{Events: []*coordinationv1.LedgerEvent{old, good}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetRecorded() != 1 || len(resp.GetRefusals()) != 1 {
		t.Fatalf("report %v, want the good event recorded and the old one refused", resp)
	}
	r := resp.GetRefusals()[0]
	if r.GetIndex() != 0 || r.GetField() != "incident.kind" || strings.Contains(r.GetMessage(), testIDNumber[:17]) {
		t.Fatalf("refusal %v, want one on incident.kind without the number", r)
	}
}

// A file written with schema version 9 (no counts, no kind or region index) opens with version
// 10: the migration builds them, and the summaries (with their open discrepancies), the
// assessments and the kind and region listings say what they said before, and go on counting.
func TestOpenVersion9FileBuildsCounts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	lg := zapLogger(t)
	now := t0.Add(10 * 24 * time.Hour) // past the grace period: w3 is unaccounted
	h := newHarness(t, dir, lg, Config{LoadDefaultPairings: true}, now)
	h.report(t,
		poor(ev("d1", departed, "B1", "w1", t0)), poor(ev("d2", departed, "B1", "w2", t0)), ev("d3", departed, "B1", "w3", t0),
		ev("a1", arrived, "B1", "w1", t0.Add(24*time.Hour)), ev("a2", arrived, "B1", "w2", t0.Add(24*time.Hour)),
		poor(ev("o1", onboarded, "B1", "w1", t0.Add(48*time.Hour))),
		// w1 goes out again: counted once.
		poor(ev("d4", departed, "B2", "w1", t0.Add(5*24*time.Hour))),
	)
	type view struct {
		summaries          *coordinationv1.ListPairingSummariesResponse
		sending, receiving *coordinationv1.Assessment
		arrived, inRegion  int
	}
	look := func(h *harness) view {
		count := func(req *coordinationv1.ListEventsRequest) int {
			resp, err := h.ledger.ListEvents(ctxT(t), req)
			if err != nil {
				t.Fatal(err)
			}
			return len(resp.GetEvents())
		}
		return view{
			summaries: summaries(t, h),
			sending:   h.assessment(t, "520000", int32(civil.Year(t0))), receiving: h.assessment(t, "440000", int32(civil.Year(t0))),
			arrived:  count(&coordinationv1.ListEventsRequest{Kind: arrived, PageSize: 100}),
			inRegion: count(&coordinationv1.ListEventsRequest{Region: "520000", PageSize: 100}),
		}
	}
	before := look(h)
	h.close()
	var pair *coordinationv1.PairingSummary
	for _, s := range before.summaries.GetSummaries() {
		if s.GetSendingRegion() == "520000" {
			pair = s
		}
	}
	if pair.GetDeparted() != 3 || pair.GetArrived() != 2 || pair.GetOpenDiscrepancies() == 0 || before.sending.GetNumerator() != 2 || before.arrived != 2 || before.inRegion != 7 {
		t.Fatalf("before the downgrade: %v %v %+v", pair, before.sending, before)
	}

	// Write the file back the way version 9 did: none of the version-10 buckets.
	raw, err := bbolt.Open(filepath.Join(dir, "coordination.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = raw.Update(func(tx *bbolt.Tx) error {
		for _, b := range []string{"ledgerPairingFirsts", "ledgerPairingRepeats", "ledgerPairingWorkers", "ledgerOpenCounts", "ledgerAssessedCounts", "ledgerByKind", "ledgerByRegion"} {
			if err := tx.DeleteBucket([]byte(b)); err != nil {
				return fmt.Errorf("%s: %w", b, err)
			}
		}
		return tx.Bucket(store.BucketMeta).Put([]byte("version"), store.Uint64Key(9))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}

	h = newHarness(t, dir, lg, Config{LoadDefaultPairings: true}, now)
	t.Cleanup(h.close)
	after := look(h)
	if !proto.Equal(after.summaries, before.summaries) || !proto.Equal(after.sending, before.sending) || !proto.Equal(after.receiving, before.receiving) ||
		after.arrived != before.arrived || after.inRegion != before.inRegion {
		t.Errorf("after the migration %+v\nwant %+v", after, before)
	}
	// The counts go on from the migrated ones: w3 arrives late (closing its discrepancy).
	h.report(t, ev("a3", arrived, "B1", "w3", t0.Add(9*24*time.Hour)))
	for _, s := range summaries(t, h).GetSummaries() {
		if s.GetSendingRegion() == "520000" && (s.GetArrived() != 3 || s.GetOpenDiscrepancies() != pair.GetOpenDiscrepancies()-1) {
			t.Errorf("after w3 arrived: %v, want 3 arrived and one open discrepancy fewer than %d", s, pair.GetOpenDiscrepancies())
		}
	}
}

// A file written with schema version 10 (no replication bucket) opens with version 11: the
// bucket is created empty (no command of a replicated log applied) and the ledger is as it was.
func TestOpenVersion10FileAddsReplication(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	lg := zapLogger(t)
	h := newHarness(t, dir, lg, Config{LoadDefaultPairings: true}, t0)
	h.report(t, ev("d1", departed, "B1", "w1", t0), ev("a1", arrived, "B1", "w1", t0.Add(time.Hour)))
	h.close()
	raw, err := bbolt.Open(filepath.Join(dir, "coordination.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = raw.Update(func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket([]byte("replication")); err != nil {
			return err
		}
		return tx.Bucket(store.BucketMeta).Put([]byte("version"), store.Uint64Key(10))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}
	h = newHarness(t, dir, lg, Config{LoadDefaultPairings: true}, t0)
	t.Cleanup(h.close)
	if seq, err := replicated.Applied(h.db); err != nil || seq != 0 {
		t.Fatalf("applied sequence after the migration: %d, %v", seq, err)
	}
	if err := h.db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket([]byte("replication")) == nil {
			return fmt.Errorf("no replication bucket")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := h.ledger.ListEvents(ctxT(t), &coordinationv1.ListEventsRequest{PageSize: 10})
	if err != nil || len(resp.GetEvents()) != 2 {
		t.Fatalf("events after the migration: %d, %v", len(resp.GetEvents()), err)
	}
}

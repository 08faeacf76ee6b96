package outbox_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/metrics"
	"github.com/eastwest/labourlink/services/platform/outbox"
)

// Depths reads each destination's queue as it is on disk: its entries, the age of the oldest
// (the first queued), and the quarantined entries not yet decided; a destination named but
// empty is listed at zero.
func TestDepthsReadTheQueues(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "sending.db"))
	defer db.Close()
	schemaQuarantine(t, db)
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	putAt := func(dest string, at time.Time, v string) {
		t.Helper()
		if err := db.Update(func(tx *bbolt.Tx) error {
			_, err := outbox.Put(context.Background(), tx, at, dest, "", wrapperspb.String(v))
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 250 { // more than one bbolt page of keys
		putAt("receiving/440000", t0.Add(time.Duration(i)*time.Second), "v")
	}
	putAt("coordination", t0.Add(time.Hour), "poison")
	putAt("coordination", t0.Add(2*time.Hour), "ok")

	// The coordination service refuses "poison" for good: it moves to the quarantine.
	p := newPeer(func(v string, _ int) error {
		if v == "poison" {
			return apierror.Status(apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_NOT_PAIRED, "not paired")).Err()
		}
		return status.Error(codes.Unavailable, "down") // "ok" stays queued
	})
	reg := metrics.New("sending", "520000")
	opts := fast
	opts.Metrics = reg
	r := outbox.NewRelay(db, "coordination", p.deliver(t), zaptest.NewLogger(t), opts)
	stop := run(t, r)
	waitFor(t, "the refused entry to be quarantined and a failure counted", func() bool {
		return r.Status().Quarantined == 1 && r.Status().ConsecutiveFailures > 0
	})
	stop()

	now := t0.Add(3 * time.Hour)
	got, err := outbox.Depths(db, now, "coordination", "receiving/330000")
	if err != nil {
		t.Fatal(err)
	}
	want := []metrics.OutboxDestination{
		{Destination: "coordination", Entries: 1, OldestAge: time.Hour, Quarantined: 1},
		{Destination: "receiving/330000"},
		{Destination: "receiving/440000", Entries: 250, OldestAge: 3 * time.Hour},
	}
	if len(got) != len(want) {
		t.Fatalf("Depths = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Depths[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}

	// The same, exported at scrape time, with the failed deliveries.
	outbox.Observe(reg, db, func() time.Time { return now }, nil, "coordination")
	fams, err := reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += " " + l.GetValue()
			}
			values[key] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	for key, want := range map[string]float64{
		"labourlink_outbox_entries coordination":                      1,
		"labourlink_outbox_entries receiving/440000":                  250,
		"labourlink_outbox_oldest_entry_age_seconds receiving/440000": (3 * time.Hour).Seconds(),
		"labourlink_outbox_quarantined_entries coordination":          1,
		"labourlink_outbox_read_errors":                               0,
	} {
		if got, ok := values[key]; !ok || got != want {
			t.Errorf("%s = %v (present %t), want %v", key, got, ok, want)
		}
	}
	if n := values["labourlink_outbox_delivery_failures_total coordination"]; n < 1 {
		t.Errorf("delivery failures to coordination = %v, want at least 1", n)
	}
}

// A scrape of a closed data file reports the read error instead of stale figures.
func TestDepthsOfClosedFile(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "sending.db"))
	db.Close()
	if _, err := outbox.Depths(db, time.Now()); err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("Depths of a closed file = %v, want an error", err)
	}
}

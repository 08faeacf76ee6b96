package coordination

import (
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/eastwest/labourlink/services/platform/metrics"
)

// metricValue returns the value of the series of family name with the label values want.
func metricValue(t *testing.T, reg *metrics.Registry, name string, want map[string]string) float64 {
	t.Helper()
	fams, err := reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := want[l.GetName()]; ok && v != l.GetValue() {
					continue series
				}
			}
			return value(m)
		}
	}
	t.Fatalf("no series %s%v", name, want)
	return 0
}

func value(m *dto.Metric) float64 {
	if m.GetCounter() != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

// The coordination service's metrics follow its ledger: events recorded by kind and reporter
// role (a duplicate is not counted again), and the open discrepancies by kind as the grace
// deadline opens them and a late arrival closes one; after a restart the open ones are counted
// again from the data file.
func TestMetricsFollowTheLedger(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	reg := metrics.New("coordination", "")
	h := newHarness(t, dir, zapLogger(t), Config{GracePeriod: 72 * time.Hour, LoadDefaultPairings: true, Metrics: reg}, t0)
	defer h.close()
	openOf := func(reg *metrics.Registry, kind string) float64 {
		return metricValue(t, reg, "labourlink_reconciliation_open_discrepancies", map[string]string{"kind": kind})
	}
	events := func(kind, role string) float64 {
		return metricValue(t, reg, "labourlink_ledger_events_ingested_total", map[string]string{"kind": kind, "reporter_role": role})
	}
	if n := events("departed", "sending"); n != 0 {
		t.Fatalf("departed events before any report = %v", n)
	}
	dep := t0.Add(-time.Hour)
	h.report(t,
		ev("d1", departed, "B1", "w1", dep),
		ev("d2", departed, "B1", "w2", dep),
		ev("d3", departed, "B1", "w3", dep),
		ev("a1", arrived, "B1", "w1", t0),
	)
	h.report(t, ev("d1", departed, "B1", "w1", dep)) // a duplicate
	if d, a := events("departed", "sending"), events("arrived", "receiving"); d != 3 || a != 1 {
		t.Fatalf("events departed %v, arrived %v; want 3 and 1", d, a)
	}
	if n := openOf(reg, "unaccounted"); n != 0 {
		t.Fatalf("unaccounted within the grace period = %v", n)
	}

	h.clock.Advance(72 * time.Hour)
	if _, err := h.s.ledger.ExpireDue(); err != nil {
		t.Fatal(err)
	}
	if n := openOf(reg, "unaccounted"); n != 2 {
		t.Fatalf("unaccounted after the deadline = %v, want 2", n)
	}
	h.report(t, ev("a2", arrived, "B1", "w2", h.clock.Now()))
	if n := openOf(reg, "unaccounted"); n != 1 {
		t.Fatalf("unaccounted after the late arrival = %v, want 1", n)
	}
	if n := openOf(reg, "unexpected"); n != 0 {
		t.Fatalf("unexpected = %v, want 0 (every kind is exported)", n)
	}

	h.close()
	again := metrics.New("coordination", "")
	h2 := newHarness(t, dir, zapLogger(t), Config{GracePeriod: 72 * time.Hour, Metrics: again}, h.clock.Now())
	defer h2.close()
	if n := openOf(again, "unaccounted"); n != 1 {
		t.Fatalf("unaccounted after a restart = %v, want 1", n)
	}
}

package receiving

import (
	"testing"

	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/platform/metrics"
)

// importRowsMetric returns labourlink_import_rows_total of the vacancy imports with result.
func importRowsMetric(t *testing.T, reg *metrics.Registry, result string) float64 {
	t.Helper()
	fams, err := reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "labourlink_import_rows_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["import"] == metrics.ImportVacancies && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no labourlink_import_rows_total for vacancies, %s", result)
	return 0
}

// A vacancy import counts its rows once each when they are committed: stored and rejected
// apart; the same import sent again counts nothing more.
func TestVacancyImportCountsRows(t *testing.T) {
	t.Parallel()
	reg := metrics.New("receiving", region)
	e := newEnv(t, func(c *Config) { c.Metrics = reg })
	if n := importRowsMetric(t, reg, metrics.ResultCommitted); n != 0 {
		t.Fatalf("committed before any import = %v", n)
	}
	bad := goodRow(t, 3)
	bad.Occupation = "not an occupation"
	rows := []*receivingv1.VacancyRow{goodRow(t, 2), bad, goodRow(t, 4)}
	sum, err := e.importRows("metrics-vacancies", rows)
	if err != nil {
		t.Fatal(err)
	}
	if sum.GetRejected() != 1 {
		t.Fatalf("summary %v, want one rejected row", sum)
	}
	for range 2 { // and again: a repeat changes nothing
		if c, r := importRowsMetric(t, reg, metrics.ResultCommitted), importRowsMetric(t, reg, metrics.ResultRejected); c != 2 || r != 1 {
			t.Fatalf("rows committed %v, rejected %v; want 2 and 1", c, r)
		}
		if _, err := e.importRows("metrics-vacancies", rows); err != nil {
			t.Fatal(err)
		}
	}
}

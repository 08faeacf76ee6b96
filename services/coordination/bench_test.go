package coordination

import (
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"

	coordinationv1 "github.com/eastwest/labourlink/proto/labour/coordination/v1"
)

// BenchmarkReportEvents reports calls of 1000 new events (45-worker batches, departures and
// arrivals) over gRPC on loopback: the ledger's ingest rate, reconciliation of the touched
// batches included.
func BenchmarkReportEvents(b *testing.B) {
	h := newHarness(b, b.TempDir(), zap.NewNop(), Config{}, t0)
	defer h.close()
	n := 0
	b.ResetTimer()
	for range b.N {
		events := make([]*coordinationv1.LedgerEvent, 0, MaxEventsPerReport)
		for len(events) < MaxEventsPerReport {
			batch, worker := fmt.Sprintf("520000-b%d", n/45), fmt.Sprintf("w%d", n)
			events = append(events,
				ev("d"+worker, departed, batch, worker, t0.Add(-48*time.Hour)),
				ev("a"+worker, arrived, batch, worker, t0.Add(-24*time.Hour)))
			n++
		}
		h.report(b, events...)
	}
	b.ReportMetric(float64(b.N*MaxEventsPerReport)/b.Elapsed().Seconds(), "events/s")
}

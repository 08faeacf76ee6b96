package coordination

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/coordination/ledger"
	"github.com/eastwest/labourlink/services/platform/grpcserver"
)

// benchEvents returns the i-th call's 1000 new events: departures (of registered-poor workers, so
// that the employment dynamics' per-day counts are kept: the costlier path) and arrivals of 500
// workers in 45-worker batches.
func benchEvents(call int) []*coordinationv1.LedgerEvent {
	events := make([]*coordinationv1.LedgerEvent, 0, ledger.MaxEventsPerReport)
	for n := call * ledger.MaxEventsPerReport / 2; len(events) < ledger.MaxEventsPerReport; n++ {
		batch, worker := fmt.Sprintf("520000-b%d", n/45), fmt.Sprintf("w%d", n)
		events = append(events,
			poor(ev("d"+worker, departed, batch, worker, t0.Add(-48*time.Hour))),
			ev("a"+worker, arrived, batch, worker, t0.Add(-24*time.Hour)))
	}
	return events
}

// noopLedger answers ReportEvents without doing anything: the baseline of what gRPC, the
// interceptors and the messages cost on this machine.
type noopLedger struct {
	coordinationv1.UnimplementedLedgerServiceServer
}

// ValidateRequest accepts every request (the server refuses a service without validation).
func (noopLedger) ValidateRequest(string, any) error { return nil }

func (noopLedger) ReportEvents(context.Context, *coordinationv1.ReportEventsRequest) (*coordinationv1.ReportEventsResponse, error) {
	return &coordinationv1.ReportEventsResponse{}, nil
}

// BenchmarkReportEvents reports calls of 1000 new events over gRPC on loopback: the ledger's
// ingest rate (one bbolt commit per call, reconciliation of the touched batches included), and in
// the same run the rate of the same calls to a no-op ledger behind the same server scaffolding,
// with their ratio.
func BenchmarkReportEvents(b *testing.B) {
	// Baseline first, untimed by the framework: the same calls to a no-op server.
	srv := grpcserver.New(grpcserver.Config{}, zap.NewNop())
	coordinationv1.RegisterLedgerServiceServer(srv.GRPC(), noopLedger{})
	lis, dial, err := listenLoopback()
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop(context.Background())
	cc, err := dial()
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	noop := coordinationv1.NewLedgerServiceClient(cc)

	h := newHarnessOn(b, listenLoopback, b.TempDir(), zap.NewNop(), Config{LoadDefaultPairings: true}, t0)
	defer h.close()
	calls := make([][]*coordinationv1.LedgerEvent, b.N)
	for i := range calls {
		calls[i] = benchEvents(i)
	}
	b.StopTimer()
	start := time.Now()
	for i := range b.N {
		if _, err := noop.ReportEvents(context.Background(), &coordinationv1.ReportEventsRequest{Events: calls[i]}); err != nil {
			b.Fatal(err)
		}
	}
	noopRate := float64(b.N*ledger.MaxEventsPerReport) / time.Since(start).Seconds()

	b.ResetTimer()
	b.StartTimer()
	for i := range b.N {
		h.report(b, calls[i]...)
	}
	b.StopTimer()
	rate := float64(b.N*ledger.MaxEventsPerReport) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(noopRate, "noop_events/s")
	b.ReportMetric(rate/noopRate, "ratio_to_noop")
}


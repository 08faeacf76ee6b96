package daemon_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/daemon"
	"github.com/eastwest/labourlink/services/devtools/proctest"
	"github.com/eastwest/labourlink/services/devtools/scenario"
	"github.com/eastwest/labourlink/services/devtools/wait"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/peers"
)

var (
	spansOnce sync.Once
	spans     *tracetest.InMemoryExporter
)

// recordSpans makes the process's global TracerProvider record into an in-memory exporter (once
// per test process: otelgrpc's handlers keep the first provider set), and returns it. The three
// services started in this process by daemon.Run share it, as three processes would share a
// collector.
func recordSpans() *tracetest.InMemoryExporter {
	spansOnce.Do(func() {
		spans = tracetest.NewInMemoryExporter()
		otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans)))
	})
	return spans
}

// span names of the calls the test follows (otelgrpc names a span by its full method).
var (
	recordDeparture      = name(sendingv1.TransportService_RecordDeparture_FullMethodName)
	reportBatchDeparture = name(receivingv1.IntakeService_ReportBatchDeparture_FullMethodName)
	confirmArrivals      = name(receivingv1.IntakeService_ConfirmArrivals_FullMethodName)
	reportEvents         = name(coordinationv1.LedgerService_ReportEvents_FullMethodName)
)

func name(fullMethod string) string { return fullMethod[1:] }

// serverSpans returns the ended server spans named name.
func serverSpans(all tracetest.SpanStubs, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range all {
		if s.Name == name && s.SpanKind == trace.SpanKindServer {
			out = append(out, s)
		}
	}
	return out
}

// reached reports whether a server span named name is in trace tid, or in a trace whose outbox
// delivery span links to a span of tid (a delivery of entries from several traces).
func reached(all tracetest.SpanStubs, tid trace.TraceID, name string) bool {
	linked := map[trace.TraceID]bool{tid: true}
	for _, s := range all {
		if s.Name != outbox.DeliverSpanName {
			continue
		}
		for _, l := range s.Links {
			if l.SpanContext.TraceID() == tid {
				linked[s.SpanContext.TraceID()] = true
			}
		}
	}
	return slices.ContainsFunc(serverSpans(all, name), func(s tracetest.SpanStub) bool {
		return linked[s.SpanContext.TraceID()]
	})
}

// One worker's departure, reported to the sending service, reads as one trace across the three
// services: the outbox entries RecordDeparture commits carry its trace context, and the relays
// deliver them in spans of that trace, so the receiving service's ReportBatchDeparture and the
// coordination service's ReportEvents (the departed events) are spans of the departure's trace.
// The arrival is another operator's call at another time: ConfirmArrivals starts its own trace,
// and the arrived events reach the ledger in it.
func TestDepartureTraceReachesTheLedger(t *testing.T) {
	exp := recordSpans()
	lg := zaptest.NewLogger(t)
	coord := daemon.Config{Kind: daemon.Coordination, Listen: proctest.FreeAddr(t), DataDir: t.TempDir(),
		LoadDefaultPairings: true, LogLevel: "info", ShutdownTimeout: 2 * time.Second}
	start(t, coord, lg.Named("coordination"))
	recv := daemon.Config{Kind: daemon.Receiving, Region: "440000", Listen: proctest.FreeAddr(t), DataDir: t.TempDir(),
		Coordination: coord.Listen, LogLevel: "info", ShutdownTimeout: 2 * time.Second}
	recv.Advertise = recv.Listen
	start(t, recv, lg.Named("receiving"))
	send := daemon.Config{Kind: daemon.Sending, Region: "520000", Listen: proctest.FreeAddr(t), DataDir: t.TempDir(),
		Coordination: coord.Listen, LogLevel: "info", ShutdownTimeout: 2 * time.Second}
	send.Advertise = send.Listen
	start(t, send, lg.Named("sending"))

	conn := func(addr string) *grpc.ClientConn {
		cc, err := peers.Dial(addr, peers.Options{Creds: insecure.NewCredentials()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return cc
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := scenario.Run(ctx, scenario.Conns{Coordination: conn(coord.Listen), Sending: conn(send.Listen), Receiving: conn(recv.Listen)},
		scenario.Options{Workers: 3, Step: func(msg string) { t.Log(msg) }}); err != nil {
		t.Fatal(err)
	}

	// The scenario returns once the ledger holds every event; the last server spans end just
	// after their replies.
	var departure, arrival trace.TraceID
	if !wait.Until(wait.Limit, func() bool {
		all := exp.GetSpans()
		d, a := serverSpans(all, recordDeparture), serverSpans(all, confirmArrivals)
		if len(d) != 1 || len(a) == 0 {
			return false
		}
		departure, arrival = d[0].SpanContext.TraceID(), a[0].SpanContext.TraceID()
		return reached(all, departure, reportBatchDeparture) && reached(all, departure, reportEvents) &&
			reached(all, arrival, reportEvents)
	}) {
		all := exp.GetSpans()
		t.Fatalf("departure trace %s: ReportBatchDeparture %v, ReportEvents %v; arrival trace %s: ReportEvents %v (%d spans, %d RecordDeparture)",
			departure, reached(all, departure, reportBatchDeparture), reached(all, departure, reportEvents),
			arrival, reached(all, arrival, reportEvents), len(all), len(serverSpans(all, recordDeparture)))
	}

	// The departure's ledger events went out in one delivery of that trace alone: the
	// ReportEvents span is its child's child (delivery span, client call), not only linked.
	all := exp.GetSpans()
	if !slices.ContainsFunc(serverSpans(all, reportEvents), func(s tracetest.SpanStub) bool {
		return s.SpanContext.TraceID() == departure
	}) {
		t.Errorf("no ReportEvents server span in the departure's trace %s", departure)
	}
	// Nothing of a request's content is on a span: the attributes are otelgrpc's (rpc.*,
	// network, server address) and the outbox's counts and destination.
	allowed := []string{"rpc.", "network.", "server.", "client.", "labourlink.outbox."}
	for _, s := range all {
		for _, kv := range s.Attributes {
			if !slices.ContainsFunc(allowed, func(p string) bool { return strings.HasPrefix(string(kv.Key), p) }) {
				t.Errorf("span %s has attribute %s=%s", s.Name, kv.Key, kv.Value.Emit())
			}
		}
		for _, ev := range s.Events {
			if ev.Name != "exception" { // a failed delivery's error; otelgrpc adds no message events by default
				t.Errorf("span %s has event %s %v", s.Name, ev.Name, ev.Attributes)
			}
		}
	}
}

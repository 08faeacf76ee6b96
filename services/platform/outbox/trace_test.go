package outbox_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/eastwest/labourlink/services/platform/outbox"
)

var (
	spansOnce sync.Once
	spans     *tracetest.InMemoryExporter
	tp        *sdktrace.TracerProvider
)

// recordSpans makes the global TracerProvider, which the relay's spans use, record into an
// in-memory exporter (once per test process).
func recordSpans() (*tracetest.InMemoryExporter, trace.Tracer) {
	spansOnce.Do(func() {
		spans = tracetest.NewInMemoryExporter()
		tp = sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
		otel.SetTracerProvider(tp)
	})
	return spans, tp.Tracer("test")
}

// An entry carries the trace context of the call that put it, and the relay delivers it in a
// span that continues that trace: a child when every traced entry of the delivery comes from
// one trace, a new trace linked to each entry's span when they come from several. Entries of
// calls that were not traced (and entries stored before trace contexts were kept) are
// delivered the same, untraced.
func TestDeliveryContinuesTheTrace(t *testing.T) {
	exp, tracer := recordSpans()
	tests := []struct {
		name string
		// traces names the trace of each entry's call ("" for a call without a span); entries
		// with the same name come from one trace, each from a span of its own.
		traces []string
		// parent is the trace the delivery span is a child of ("" for a new trace).
		parent string
		links  int
	}{
		{"one call", []string{"a"}, "a", 1},
		{"several spans of one trace", []string{"a", "a", "a"}, "a", 3},
		{"one trace and an untraced call", []string{"a", ""}, "a", 1},
		{"two traces", []string{"a", "b", "a"}, "", 3},
		{"untraced", []string{"", ""}, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openDB(t, filepath.Join(t.TempDir(), "outbox.db"))
			defer db.Close()
			roots := map[string]context.Context{}
			var putSpans []trace.SpanContext // per entry
			for i, name := range tt.traces {
				ctx := context.Background()
				if name != "" {
					if roots[name] == nil {
						var root trace.Span
						roots[name], root = tracer.Start(ctx, "call "+name)
						root.End()
					}
					var s trace.Span
					ctx, s = tracer.Start(roots[name], "handler")
					defer s.End()
				}
				putSpans = append(putSpans, trace.SpanContextFromContext(ctx))
				if err := db.Update(func(tx *bbolt.Tx) error {
					_, err := outbox.Put(ctx, tx, time.Now(), "peer", "", wrapperspb.Int64(int64(i)))
					return err
				}); err != nil {
					t.Fatal(err)
				}
			}

			type delivery struct {
				span    trace.SpanContext
				entries []outbox.Entry
			}
			got := make(chan delivery, 1)
			r := outbox.NewRelay(db, "peer", func(ctx context.Context, entries []outbox.Entry) (outbox.Result, error) {
				got <- delivery{trace.SpanContextFromContext(ctx), entries}
				return outbox.Result{Done: len(entries)}, nil
			}, nil, fast)
			stop := run(t, r)
			d := <-got
			stop()

			if len(d.entries) != len(tt.traces) {
				t.Fatalf("one delivery of %d entries, want all %d", len(d.entries), len(tt.traces))
			}
			for i, e := range d.entries {
				if want := putSpans[i]; e.Trace.TraceID() != want.TraceID() || e.Trace.SpanID() != want.SpanID() {
					t.Errorf("entry %d: Trace %v, want the putting span %v", i, e.Trace, want)
				}
			}
			if !d.span.IsValid() {
				t.Fatal("delivery without a span")
			}
			var stub *tracetest.SpanStub
			for _, s := range exp.GetSpans() {
				if s.SpanContext.SpanID() == d.span.SpanID() {
					stub = &s
				}
			}
			if stub == nil || stub.Name != outbox.DeliverSpanName {
				t.Fatalf("delivery span %v not recorded as %s", d.span, outbox.DeliverSpanName)
			}
			if tt.parent != "" {
				want := trace.SpanContextFromContext(roots[tt.parent]).TraceID()
				if d.span.TraceID() != want || !stub.Parent.IsValid() {
					t.Errorf("delivery in trace %s (parent %v), want a child in %s", d.span.TraceID(), stub.Parent, want)
				}
			} else {
				for name, ctx := range roots {
					if d.span.TraceID() == trace.SpanContextFromContext(ctx).TraceID() {
						t.Errorf("delivery of several traces is in trace %s of call %s, want a trace of its own", d.span.TraceID(), name)
					}
				}
				if stub.Parent.IsValid() {
					t.Errorf("delivery span has parent %v, want a root", stub.Parent)
				}
			}
			linked := map[trace.SpanID]bool{}
			for _, l := range stub.Links {
				linked[l.SpanContext.SpanID()] = true
			}
			if len(stub.Links) != tt.links {
				t.Errorf("%d links, want %d", len(stub.Links), tt.links)
			}
			for i, sc := range putSpans {
				if sc.IsValid() && !linked[sc.SpanID()] {
					t.Errorf("entry %d's span %v not linked", i, sc)
				}
			}
		})
	}
}

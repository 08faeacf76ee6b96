package tracing_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/baggage"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"

	"github.com/eastwest/labourlink/services/platform/tracing"
	"github.com/eastwest/labourlink/services/platform/version"
)

// otelVars are the variables Setup and the exporters read; every test starts with none set.
var otelVars = []string{
	"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
	"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
	"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
}

func clearEnv(t *testing.T) {
	for _, k := range otelVars {
		t.Setenv(k, "")
	}
}

func TestEnabled(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want bool
	}{
		{"nothing set", nil, false},
		{"exporter none", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, false},
		{"otlp endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true},
		{"otlp traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, true},
		{"console", map[string]string{"OTEL_TRACES_EXPORTER": "console"}, true},
		{"otlp without endpoint (the default one)", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true},
		{"sdk disabled", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"}, false},
		{"sample settings alone", map[string]string{"OTEL_TRACES_SAMPLER": "always_on", "OTEL_SERVICE_NAME": "x"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tracing.Enabled(func(k string) string { return tt.env[k] }); got != tt.want {
				t.Errorf("Enabled(%v) = %v, want %v", tt.env, got, tt.want)
			}
		})
	}
}

// collector is an OTLP/HTTP endpoint that counts the requests it gets.
func collector(t *testing.T) (url string, requests *atomic.Int64) {
	requests = &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, requests
}

// With no OTEL_* variable set, Setup leaves the global TracerProvider as it was (OpenTelemetry's
// no-op one in a service), so nothing is recorded; and with OTEL_TRACES_EXPORTER=none nothing is
// sent even to a configured endpoint. The control: the same endpoint alone gets the spans.
func TestSetup(t *testing.T) {
	tests := []struct {
		name   string
		env    map[string]string // "URL" stands for the collector's address
		export bool
	}{
		{"nothing set", nil, false},
		{"exporter none with an endpoint", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "URL"}, false},
		{"sdk disabled with an endpoint", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "URL"}, false},
		{"endpoint alone", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "URL"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			url, requests := collector(t)
			for k, v := range tt.env {
				if v == "URL" {
					v = url
				}
				t.Setenv(k, v)
			}
			before := otel.GetTracerProvider()
			defer otel.SetTracerProvider(before)
			shutdown, err := tracing.Setup(context.Background(), "sending", "520000", nil)
			if err != nil {
				t.Fatal(err)
			}
			_, span := otel.Tracer("test").Start(context.Background(), "work")
			recording := span.IsRecording()
			span.End()
			if err := shutdown(context.Background()); err != nil { // flushes
				t.Fatal(err)
			}
			if tt.export {
				if !recording || requests.Load() == 0 {
					t.Errorf("recording %v, %d export requests; want the span exported", recording, requests.Load())
				}
				return
			}
			if otel.GetTracerProvider() != before {
				t.Errorf("Setup installed a TracerProvider %T", otel.GetTracerProvider())
			}
			if requests.Load() != 0 {
				t.Errorf("%d export requests, want none", requests.Load())
			}
		})
	}
}

func TestSetupRefusesAnUnknownExporter(t *testing.T) {
	clearEnv(t)
	t.Setenv("OTEL_TRACES_EXPORTER", "zipkin-of-my-own")
	if _, err := tracing.Setup(context.Background(), "sending", "520000", nil); err == nil {
		t.Fatal("Setup accepted an unknown OTEL_TRACES_EXPORTER")
	}
}

func TestResource(t *testing.T) {
	tests := []struct {
		name         string
		kind, region string
		env          map[string]string
		want         map[string]string
	}{
		{"defaults", "receiving", "440000", nil, map[string]string{
			"service.name": "labourlink-receiving", "labourlink.service": "receiving", "labourlink.region": "440000",
			"service.version": version.Info().Version,
		}},
		{"coordination has no region", "coordination", "", nil, map[string]string{
			"service.name": "labourlink-coordination", "labourlink.region": "",
		}},
		{"OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win", "sending", "520000",
			map[string]string{"OTEL_SERVICE_NAME": "guizhou-sending", "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=staging"},
			map[string]string{"service.name": "guizhou-sending", "deployment.environment.name": "staging", "labourlink.region": "520000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			res, err := tracing.Resource(context.Background(), tt.kind, tt.region)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, kv := range res.Attributes() {
				got[string(kv.Key)] = kv.Value.Emit()
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
				}
			}
		})
	}
}

// A span context stored by Carrier comes back, remote, from FromCarrier; a context without a
// span stores nothing, and damaged headers read as no span context.
func TestCarrier(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("test").Start(context.Background(), "call")
	defer span.End()
	m := tracing.Carrier(ctx)
	if m["traceparent"] == "" {
		t.Fatalf("Carrier = %v, want a traceparent", m)
	}
	sc := tracing.FromCarrier(m)
	if !sc.IsRemote() || sc.TraceID() != span.SpanContext().TraceID() || sc.SpanID() != span.SpanContext().SpanID() {
		t.Errorf("FromCarrier = %v, want the span %v, remote", sc, span.SpanContext())
	}
	if m := tracing.Carrier(context.Background()); m != nil {
		t.Errorf("Carrier(no span) = %v, want nil", m)
	}
	for _, bad := range []map[string]string{nil, {}, {"traceparent": "00-not-a-trace"}} {
		if sc := tracing.FromCarrier(bad); sc.IsValid() {
			t.Errorf("FromCarrier(%v) = %v, want invalid", bad, sc)
		}
	}
}

// Detached keeps the call's span context on a context that is not cancelled with the call.
func TestDetached(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	call, cancel := context.WithCancel(context.Background())
	call, span := tp.Tracer("test").Start(call, "call")
	span.End()
	bg := context.Background()
	d := tracing.Detached(bg, call)
	cancel()
	if d.Err() != nil {
		t.Error("the detached context was cancelled with the call")
	}
	if got := trace.SpanContextFromContext(d); got.TraceID() != span.SpanContext().TraceID() {
		t.Errorf("detached span context %v, want the call's %v", got, span.SpanContext())
	}
	if tracing.Detached(bg, context.Background()) != bg {
		t.Error("Detached of an untraced call should be bg itself")
	}
}

// setupTracesOff runs Setup (which installs the propagator in every process) with traces off, and
// puts the global provider and propagator back when t ends.
func setupTracesOff(t *testing.T) {
	beforeTP, beforeProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	t.Cleanup(func() {
		otel.SetTracerProvider(beforeTP)
		otel.SetTextMapPropagator(beforeProp)
	})
	if _, err := tracing.Setup(context.Background(), "sending", "520000", nil); err != nil {
		t.Fatal(err)
	}
}

// The server handler passes the caller's trace context and baggage on to the handler's context
// whether traces are off (the propagation-only path, no span) or on (otelgrpc, a server span
// that is a child of the caller's), and a call that carries none gets none.
func TestServerHandlerPassesTraceContextOn(t *testing.T) {
	setupTracesOff(t)
	const (
		traceID  = "4bf92f3577b34da6a3ce929d0e0e4736"
		parent   = "00f067aa0ba902b7"
		method   = "/labourlink.sending.v1.RosterService/GetWorker"
		baggageV = "region=520000"
	)
	for _, tc := range []struct {
		name  string
		spans *tracetest.SpanRecorder // nil: traces off
	}{
		{name: "traces off"},
		{name: "traces on", spans: tracetest.NewSpanRecorder()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.spans != nil {
				otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tc.spans)))
			} else {
				otel.SetTracerProvider(tracenoop.NewTracerProvider())
			}
			h := tracing.ServerHandler()
			info := &stats.RPCTagInfo{FullMethodName: method}
			md := metadata.Pairs("traceparent", "00-"+traceID+"-"+parent+"-01", "baggage", baggageV)
			ctx := h.TagRPC(metadata.NewIncomingContext(context.Background(), md), info)
			sc := trace.SpanContextFromContext(ctx)
			if sc.TraceID().String() != traceID {
				t.Errorf("handler's trace id %s, want the caller's %s", sc.TraceID(), traceID)
			}
			if got := baggage.FromContext(ctx).Member("region").Value(); got != "520000" {
				t.Errorf("handler's baggage region=%q, want 520000", got)
			}
			if got := tracing.Carrier(ctx)["traceparent"]; got == "" || !strings.Contains(got, traceID) {
				t.Errorf("trace context stored with a message %q, want the caller's trace", got)
			}
			now := time.Now()
			h.HandleRPC(ctx, &stats.End{BeginTime: now, EndTime: now})

			bare := h.TagRPC(metadata.NewIncomingContext(context.Background(), metadata.Pairs("x-other", "1")), info)
			if sc := trace.SpanContextFromContext(bare); tc.spans == nil && sc.IsValid() {
				t.Errorf("a call without trace context got %v", sc)
			}
			h.HandleRPC(bare, &stats.End{BeginTime: now, EndTime: now})

			if tc.spans == nil {
				if sc.SpanID().String() != parent {
					t.Errorf("traces off: span id %s, want the caller's %s (no span of its own)", sc.SpanID(), parent)
				}
				return
			}
			ended := tc.spans.Ended()
			if len(ended) != 2 || ended[0].Parent().TraceID().String() != traceID || ended[0].Parent().SpanID().String() != parent {
				t.Fatalf("traces on: %d spans ended, want 2, the first a child of the caller's span", len(ended))
			}
		})
	}
}

// With traces off, a connection made with DialOptions has no stats handler, yet a caller's trace
// context and baggage go with its calls, unary and streaming, in the W3C headers; a call whose
// caller has neither sends none.
func TestDialOptionsSendTheTraceContext(t *testing.T) {
	clearEnv(t)
	setupTracesOff(t)
	got := make(chan metadata.MD, 4)
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			md, _ := metadata.FromIncomingContext(ctx)
			got <- md
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			md, _ := metadata.FromIncomingContext(ss.Context())
			got <- md
			return nil
		}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	opts := tracing.DialOptions()
	if len(opts) != 2 {
		t.Fatalf("traces off: %d dial options, want the two interceptors", len(opts))
	}
	cc, err := grpc.NewClient(lis.Addr().String(), append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := healthpb.NewHealthClient(cc)

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	tid, _ := trace.TraceIDFromHex(traceID)
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	member, _ := baggage.NewMember("region", "520000")
	bag, _ := baggage.New(member)
	traced := baggage.ContextWithBaggage(trace.ContextWithSpanContext(context.Background(),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})), bag)
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		traced bool
	}{{"traced", traced, true}, {"untraced", context.Background(), false}} {
		if _, err := client.Check(tc.ctx, &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
		stream, err := client.Watch(tc.ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = stream.Recv()
		for _, call := range []string{"unary", "stream"} {
			md := <-got
			tp, bg := strings.Join(md.Get("traceparent"), ","), strings.Join(md.Get("baggage"), ",")
			if tc.traced && (!strings.Contains(tp, traceID) || bg != "region=520000") {
				t.Errorf("%s %s call: traceparent %q, baggage %q; want the caller's", tc.name, call, tp, bg)
			}
			if !tc.traced && (tp != "" || bg != "") {
				t.Errorf("%s %s call: traceparent %q, baggage %q; want none", tc.name, call, tp, bg)
			}
		}
	}
}

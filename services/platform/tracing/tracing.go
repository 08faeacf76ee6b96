// Package tracing is the one place labourlink sets up OpenTelemetry traces: the process's
// TracerProvider (configured by the standard OTEL_* variables, off by default), the W3C trace
// context propagation between services, the gRPC options every server and client uses
// (ServerOptions, DialOptions), and the form in which a trace context is stored with a message (the outbox).
//
// Off by default: with none of OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_ENDPOINT and
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set (or OTEL_TRACES_EXPORTER=none, or OTEL_SDK_DISABLED=true),
// Setup installs nothing: the global TracerProvider stays OpenTelemetry's no-op one, no
// exporter is built and nothing is dialled. Spans are then not recorded, but a trace context
// that arrives in a call is still passed on (to the calls it makes, and with the messages it
// puts in the outbox), so a service that does not export does not cut its neighbours' traces.
//
// Otherwise the exporter is go.opentelemetry.io/contrib/exporters/autoexport's:
// OTEL_TRACES_EXPORTER=otlp (the default once an OTLP endpoint is set) or console (spans as JSON
// on standard output); the OTLP exporter honours OTEL_EXPORTER_OTLP_* itself (protocol
// http/protobuf by default, grpc with OTEL_EXPORTER_OTLP_PROTOCOL=grpc). The sampler honours
// OTEL_TRACES_SAMPLER (default parentbased_always_on), the batch processor OTEL_BSP_*.
//
// Span attributes name methods, destinations and counts only: otelgrpc records the method and
// the status code, never a message, and nothing here adds a request's content (identity
// numbers, names, phones never reach a span).
package tracing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"

	"github.com/eastwest/labourlink/services/platform/version"
)

// Attribute keys of labourlink's own resource attributes.
const (
	// RegionKey is the resource attribute of the service's province (GB/T 2260 code); absent
	// for the coordination service.
	RegionKey = attribute.Key("labourlink.region")
	// KindKey is the resource attribute of the kind of service: sending, receiving or
	// coordination.
	KindKey = attribute.Key("labourlink.service")
)

// propagator is how a trace context travels between processes: W3C Trace Context and Baggage
// headers (OTEL_PROPAGATORS is not read: every labourlink service speaks the same).
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Enabled reports whether the environment read through getenv asks for traces to be exported
// (see the package comment).
func Enabled(getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "":
		return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	case "none":
		return false
	default:
		return true
	}
}

// Setup sets up traces for a process of the service kind (sending, receiving, coordination) of
// region ("" for coordination) from the OTEL_* variables, and returns the function that flushes
// and stops them (call it after the graceful stop, with a deadline). It always installs the W3C
// propagator. When traces are off (Enabled) it installs nothing else and the returned function
// does nothing. The resource names the service (OTEL_SERVICE_NAME, default labourlink-<kind>),
// its version (services/platform/version), kind and region; OTEL_RESOURCE_ATTRIBUTES adds to it
// or overrides it.
func Setup(ctx context.Context, kind, region string, lg *zap.Logger) (func(context.Context) error, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	otel.SetTextMapPropagator(propagator)
	if !Enabled(os.Getenv) {
		return func(context.Context) error { return nil }, nil
	}
	exp, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		return nil, fmt.Errorf("traces (OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_*): %w", err)
	}
	res, err := Resource(ctx, kind, region)
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		lg.Warn("traces", zap.Error(err))
	}))
	otel.SetTracerProvider(tp)
	lg.Info("exporting traces", zap.String("exporter", exporterName()),
		zap.String("service_name", serviceName(res)))
	return tp.Shutdown, nil
}

// exporterName is the exporter Setup built, for the log.
func exporterName() string {
	if e := os.Getenv("OTEL_TRACES_EXPORTER"); e != "" {
		return e
	}
	return "otlp"
}

func serviceName(res *resource.Resource) string {
	v, _ := res.Set().Value("service.name")
	return v.AsString()
}

// Resource describes a process of the service kind of region: service.name
// labourlink-<kind>, service.version, labourlink.service and labourlink.region, then what
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES say (which take precedence), and the SDK's
// own attributes.
func Resource(ctx context.Context, kind, region string) (*resource.Resource, error) {
	attrs := []attribute.KeyValue{
		attribute.String("service.name", "labourlink-"+kind),
		attribute.String("service.version", version.Info().Version),
		KindKey.String(kind),
	}
	if region != "" {
		attrs = append(attrs, RegionKey.String(region))
	}
	env, err := resource.New(ctx, resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("traces (OTEL_RESOURCE_ATTRIBUTES): %w", err)
	}
	return resource.Merge(resource.NewSchemaless(attrs...), env)
}

// notTraced leaves out the health checks (probes every few seconds) and reflection.
var notTraced = otelgrpc.WithFilter(filters.None(filters.HealthCheck(), filters.ServicePrefix("grpc.reflection.")))

// ServerOptions are the options of every labourlink gRPC server for traces. When something
// records (a TracerProvider or MeterProvider other than OpenTelemetry's defaults or no-op ones is
// set: Setup sets one when traces are on), the stats handler ServerHandler: a server span per
// call. Otherwise none: no stats handler at all, since grpc-go builds the events of every call
// (its header, payloads, trailer and end: about 15 allocations a call on the read path,
// BENCHMARKS.md "Roster reads under concurrent load") for any handler installed, even one that
// drops them; the server's first interceptor takes the call's trace context (Incoming). The
// choice is made when the server is built; the daemon sets traces up first.
func ServerOptions() []grpc.ServerOption {
	if recording() {
		return []grpc.ServerOption{grpc.StatsHandler(ServerHandler())}
	}
	return nil
}

// Incoming returns ctx with the trace context and baggage its call carries in its metadata, as
// otelgrpc would pass them on, unless ctx has a span already (ServerHandler's); ctx itself when
// the call carries none (nothing is copied then). Every server's first interceptor calls it.
func Incoming(ctx context.Context) context.Context {
	if trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	return extract(ctx)
}

// extract returns ctx with the trace context and baggage of its incoming metadata, if any.
func extract(ctx context.Context) context.Context {
	for _, k := range propagatedFields {
		if len(metadata.ValueFromIncomingContext(ctx, k)) > 0 {
			md, _ := metadata.FromIncomingContext(ctx)
			return otel.GetTextMapPropagator().Extract(ctx, metadataCarrier(md))
		}
	}
	return ctx
}

// ServerHandler is the stats handler of ServerOptions when something records: a server span per
// call, a child of the caller's trace context when the call carries one. It uses the global
// TracerProvider and propagator. Should nothing record any more, a call does not go through
// otelgrpc (whose span of a no-op tracer, attributes and metadata copies cost about 3 µs and 19
// allocations a call) and only takes the trace context it carries, as Incoming does.
func ServerHandler() stats.Handler {
	return &serverHandler{otel: otelgrpc.NewServerHandler(notTraced)}
}

// Defaults of the global providers, before anything sets one.
var (
	defaultTracerProvider = otel.GetTracerProvider()
	defaultMeterProvider  = otel.GetMeterProvider()
)

// recording reports whether a global provider that may record has been set.
func recording() bool {
	switch tp := otel.GetTracerProvider(); tp.(type) {
	case tracenoop.TracerProvider, *tracenoop.TracerProvider:
	default:
		if tp != defaultTracerProvider {
			return true
		}
	}
	switch mp := otel.GetMeterProvider(); mp.(type) {
	case metricnoop.MeterProvider, *metricnoop.MeterProvider:
	default:
		if mp != defaultMeterProvider {
			return true
		}
	}
	return false
}

// serverHandler is otelgrpc's server handler when something records, and a propagation-only
// one otherwise.
type serverHandler struct {
	otel stats.Handler
}

// tracedKey marks the context of a call that otelgrpc tagged, so that its other events go to
// otelgrpc too.
type tracedKey struct{}

// propagatedFields are the metadata keys of the propagator (traceparent, tracestate, baggage).
var propagatedFields = propagator.Fields()

func (h *serverHandler) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	if recording() {
		return context.WithValue(h.otel.TagRPC(ctx, info), tracedKey{}, true)
	}
	return extract(ctx)
}

func (h *serverHandler) HandleRPC(ctx context.Context, rs stats.RPCStats) {
	if ctx.Value(tracedKey{}) != nil {
		h.otel.HandleRPC(ctx, rs)
	}
}

func (h *serverHandler) TagConn(ctx context.Context, info *stats.ConnTagInfo) context.Context {
	return h.otel.TagConn(ctx, info)
}

func (h *serverHandler) HandleConn(ctx context.Context, cs stats.ConnStats) {
	h.otel.HandleConn(ctx, cs)
}

// metadataCarrier reads a trace context from incoming gRPC metadata (keys are lowercase there).
type metadataCarrier metadata.MD

func (c metadataCarrier) Get(key string) string {
	if v := metadata.MD(c).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c metadataCarrier) Set(key, value string) { metadata.MD(c).Set(key, value) }

func (c metadataCarrier) Keys() []string {
	out := make([]string, 0, len(c))
	for k := range c {
		out = append(out, k)
	}
	return out
}

// DialOptions are the options of every connection to another service for traces. When something
// records (see ServerOptions), the stats handler ClientHandler: a client span per call, whose
// trace context goes with the call. Otherwise interceptors that send the caller's trace context
// and baggage, if any, in the call's headers, as otelgrpc's handler of a no-op tracer would, with
// none of the events grpc-go builds for a stats handler. The choice is made when the connection
// is made.
func DialOptions() []grpc.DialOption {
	if recording() {
		return []grpc.DialOption{grpc.WithStatsHandler(ClientHandler())}
	}
	return []grpc.DialOption{grpc.WithChainUnaryInterceptor(injectUnary), grpc.WithChainStreamInterceptor(injectStream)}
}

func injectUnary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return invoker(outgoing(ctx), method, req, reply, cc, opts...)
}

func injectStream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return streamer(outgoing(ctx), desc, cc, method, opts...)
}

// outgoing returns ctx with its trace context and baggage added to its outgoing metadata, or
// ctx itself when it has neither.
func outgoing(ctx context.Context) context.Context {
	if !trace.SpanContextFromContext(ctx).IsValid() && baggage.FromContext(ctx).Len() == 0 {
		return ctx
	}
	c := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, c)
	kv := make([]string, 0, 2*len(c))
	for k, v := range c {
		kv = append(kv, k, v)
	}
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

// ClientHandler is the stats handler of DialOptions when something records: a client span per
// call, whose trace context goes with the call.
func ClientHandler() stats.Handler {
	return otelgrpc.NewClientHandler(notTraced)
}

// Carrier returns the trace context of ctx in the stored form (W3C Trace Context headers:
// "traceparent", maybe "tracestate"), or nil when ctx carries none.
func Carrier(ctx context.Context) map[string]string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return nil
	}
	m := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, m)
	if len(m) == 0 {
		return nil
	}
	return m
}

// FromCarrier returns the span context stored by Carrier (remote), or the zero (invalid)
// SpanContext when m holds none or a malformed one.
func FromCarrier(m map[string]string) trace.SpanContext {
	if len(m) == 0 {
		return trace.SpanContext{}
	}
	return trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier(m)))
}

// Detached returns bg with the span context of ctx: work that goes on in the background after
// the call of ctx returned (bg is not cancelled with it) stays in the call's trace.
func Detached(bg, ctx context.Context) context.Context {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return bg
	}
	return trace.ContextWithSpanContext(bg, sc)
}

package outbox

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Attributes of the delivery span: what it is about in counts and names, never a message's
// content.
const (
	// DestinationKey is the destination ("coordination", "receiving/440000").
	DestinationKey = attribute.Key("labourlink.outbox.destination")
	// EntriesKey is the number of entries given to the delivery.
	EntriesKey = attribute.Key("labourlink.outbox.entries")
	// DeliveredKey and RefusedKey count the entries delivered and refused for good (quarantined).
	DeliveredKey = attribute.Key("labourlink.outbox.delivered")
	RefusedKey   = attribute.Key("labourlink.outbox.refused")
)

// tracer names the spans of the relay.
var tracer = otel.Tracer("github.com/eastwest/labourlink/services/platform/outbox")

// DeliverSpanName is the name of the span in which a relay delivers entries.
const DeliverSpanName = "outbox.Deliver"

// startDelivery starts the span of one delivery of entries to destination (see Traces in the
// package comment): a child of the entries' trace when they all come from one, a new trace
// otherwise; linked to each entry's span either way. ctx keeps its cancellation; its own span
// context, if any (a relay runs in the background, normally none), is replaced.
func startDelivery(ctx context.Context, destination string, entries []Entry) (context.Context, trace.Span) {
	var links []trace.Link
	var parent trace.SpanContext
	seen := map[[2]string]bool{} // trace and span id
	oneTrace := true
	for _, e := range entries {
		sc := e.Trace
		id := [2]string{sc.TraceID().String(), sc.SpanID().String()}
		if !sc.IsValid() || seen[id] {
			continue
		}
		seen[id] = true
		links = append(links, trace.Link{SpanContext: sc})
		switch {
		case !parent.IsValid():
			parent = sc
		case parent.TraceID() != sc.TraceID():
			oneTrace = false
		}
	}
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithLinks(links...),
		trace.WithAttributes(DestinationKey.String(destination), EntriesKey.Int(len(entries))),
	}
	if oneTrace && parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	} else {
		ctx = trace.ContextWithSpanContext(ctx, trace.SpanContext{})
		opts = append(opts, trace.WithNewRoot())
	}
	return tracer.Start(ctx, DeliverSpanName, opts...)
}

// endDelivery records what the delivery did and ends its span: counts and the error, never
// a message's content.
func endDelivery(span trace.Span, res Result, err error) {
	span.SetAttributes(DeliveredKey.Int(res.Done-len(res.Refused)), RefusedKey.Int(len(res.Refused)))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, fmt.Sprintf("delivered %d, then failed", res.Done))
	}
	span.End()
}

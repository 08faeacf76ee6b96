package grpcserver

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
)

// Per-server bounds on calls (see Config.MaxStreams, MaxUnaryCalls, StreamFirstMessageTimeout
// and StreamIdleTimeout). grpc.MaxConcurrentStreams bounds the streams of one connection only,
// and a stream that never sends was held until the client's own deadline: 2,000 idle import
// streams held about 1 GB. These interceptors refuse the excess at once, with
// RESOURCE_EXHAUSTED (reason TOO_MANY_STREAMS or TOO_MANY_CALLS), instead of queueing it, and
// end a stream whose client stops sending.

// healthPrefix is the method prefix of the health service. Its unary Check is not counted
// against MaxUnaryCalls: a probe must see a busy server as alive (it is; restarting it would
// not help), and Check costs nothing. Its Watch streams are counted like every stream.
const healthPrefix = "/grpc.health.v1.Health/"

// newTimer makes the timer of one wait for a message; tests replace it (export_test.go).
type newTimer func(d time.Duration) (c <-chan time.Time, stop func() bool)

func realTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

type limiter struct {
	maxStreams, maxUnary int64
	streams, unary       atomic.Int64
	firstMessage, idle   time.Duration
	timer                newTimer
}

// unaryMapErrorLimit is error mapping (mapError) around the limit of unary calls, in one link
// of the chain.
func (l *limiter) unaryMapErrorLimit(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := l.unaryLimit(ctx, req, info, handler)
	if err != nil {
		return nil, mapError(ctx, err)
	}
	return resp, nil
}

func (l *limiter) unaryLimit(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if strings.HasPrefix(info.FullMethod, healthPrefix) {
		return handler(ctx, req)
	}
	if l.unary.Add(1) > l.maxUnary {
		l.unary.Add(-1)
		return nil, apierror.ResourceExhausted(commonv1.ErrorReason_ERROR_REASON_TOO_MANY_CALLS,
			"too many calls in flight: this server handles at most %d at once; retry with backoff", l.maxUnary).
			WithMetadata("limit", strconv.FormatInt(l.maxUnary, 10))
	}
	defer l.unary.Add(-1)
	return handler(ctx, req)
}

func (l *limiter) streamLimit(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if l.streams.Add(1) > l.maxStreams {
		l.streams.Add(-1)
		return apierror.ResourceExhausted(commonv1.ErrorReason_ERROR_REASON_TOO_MANY_STREAMS,
			"too many open streams: this server holds at most %d at once; retry with backoff", l.maxStreams).
			WithMetadata("limit", strconv.FormatInt(l.maxStreams, 10))
	}
	defer l.streams.Add(-1)
	return handler(srv, &idleStream{ServerStream: ss, l: l})
}

// idleStream ends a wait for a message that lasts longer than the first-message timeout (for
// the first message) or the idle timeout (for later ones) with DEADLINE_EXCEEDED. The time
// counts only while the handler waits in RecvMsg: a handler busy between messages (committing a
// batch) is not idle, and the client's messages wait in flow control meanwhile. It applies to
// every stream: a server-streaming call's one request is its first message.
//
// grpc-go's RecvMsg blocks on the transport until a message, the end of the stream or the
// cancellation of the stream's own context, which only the transport can cancel. So the real
// RecvMsg runs in a goroutine, and on timeout this RecvMsg returns at once; the handler returns
// the error, grpc-go writes the status and cancels the stream (http2Server.finishStream), and
// that ends the goroutine's RecvMsg. The goroutine thus lives exactly as long as the stream. The
// timeout is sticky: later calls return it without touching the stream, so there is never a
// second RecvMsg alongside the abandoned one (grpc-go allows one at a time). After a timeout
// the handler must not read the message passed in (the abandoned RecvMsg may still write it);
// it returns the error, as for any RecvMsg error.
type idleStream struct {
	grpc.ServerStream
	l        *limiter
	received bool
	err      error // the sticky timeout
}

func (s *idleStream) RecvMsg(m any) error {
	if s.err != nil {
		return s.err
	}
	d := s.l.idle
	if !s.received {
		d = s.l.firstMessage
	}
	done := make(chan error, 1) // buffered: the goroutine never blocks on sending
	go func() { done <- s.ServerStream.RecvMsg(m) }()
	c, stop := s.l.timer(d)
	select {
	case err := <-done:
		stop()
		if err == nil {
			s.received = true
		}
		return err
	case <-c:
	}
	msg := "no first message within %s: the server ended the stream; send the first message as soon as the stream is open"
	if s.received {
		msg = "no message for %s: the server ended the idle stream; send again when ready (a repeat with the same id is safe)"
	}
	s.err = apierror.DeadlineExceeded(commonv1.ErrorReason_ERROR_REASON_STREAM_IDLE_TIMEOUT, msg, d).WithMetadata("timeout", d.String())
	return s.err
}

package grpcserver_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/eastwest/labourlink/services/platform/grpcserver"
)

// errorInfo returns the ErrorInfo of err, or nil.
func errorInfo(err error) *errdetails.ErrorInfo {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

// hold opens a Hold stream on cc. held reports whether the server admitted it (its handler
// sent the "held" header); otherwise err is the status that ended it.
func hold(ctx context.Context, cc *grpc.ClientConn) (cs grpc.ClientStream, held bool, err error) {
	cs, err = cc.NewStream(ctx, &testServiceDesc.Streams[1], methodHold)
	if err != nil {
		return nil, false, err
	}
	if md, err := cs.Header(); err == nil && len(md.Get("held")) > 0 {
		return cs, true, nil
	}
	return nil, false, cs.RecvMsg(&wrapperspb.StringValue{})
}

// release ends a held stream cleanly and returns the handler's reply.
func release(cs grpc.ClientStream) (string, error) {
	if err := cs.CloseSend(); err != nil {
		return "", err
	}
	resp := &wrapperspb.StringValue{}
	err := cs.RecvMsg(resp)
	return resp.GetValue(), err
}

// wantRefusal fails unless err is code with the ErrorInfo reason and limit metadata.
func wantRefusal(t *testing.T, err error, code codes.Code, reason, limit string) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("err = %v, want %v", err, code)
	}
	info := errorInfo(err)
	if info.GetReason() != reason || info.GetMetadata()["limit"] != limit {
		t.Errorf("ErrorInfo = %v, want reason %s and limit %s", info, reason, limit)
	}
	if msg := status.Convert(err).Message(); !strings.Contains(msg, "at most "+limit) || !strings.Contains(msg, "retry") {
		t.Errorf("message %q does not say the limit and to retry", msg)
	}
}

// Streams over the server's bound are refused at once with RESOURCE_EXHAUSTED
// TOO_MANY_STREAMS, unary calls are not affected, and a stream that ends frees its slot.
func TestStreamLimit(t *testing.T) {
	f := start(t, grpcserver.Config{ServiceName: "test", MaxStreams: 2, StreamFirstMessageTimeout: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	var held []grpc.ClientStream
	for range 2 {
		cs, ok, err := hold(ctx, f.conn)
		if !ok {
			t.Fatalf("stream under the limit refused: %v", err)
		}
		held = append(held, cs)
	}
	f.logs.TakeAll()
	_, ok, err := hold(ctx, f.conn)
	if ok {
		t.Fatal("third stream held, limit is 2")
	}
	wantRefusal(t, err, codes.ResourceExhausted, "TOO_MANY_STREAMS", "2")
	checkLine(t, rpcLines(f.logs), methodHold, codes.ResourceExhausted, zapcore.WarnLevel, "")

	if _, err := f.do(ctx, "u1", "unary"); err != nil {
		t.Fatalf("unary call while the streams are full: %v", err)
	}
	if got, err := release(held[0]); err != nil || got != "released" {
		t.Fatalf("release: %q, %v", got, err)
	}
	// The handler returned before its status was written: the slot is free now.
	cs, ok, err := hold(ctx, f.conn)
	if !ok {
		t.Fatalf("stream after one ended: %v", err)
	}
	for _, cs := range []grpc.ClientStream{held[1], cs} {
		if _, err := release(cs); err != nil {
			t.Fatal(err)
		}
	}
}

// Unary calls over the bound are refused at once with RESOURCE_EXHAUSTED TOO_MANY_CALLS;
// health checks are not counted.
func TestUnaryCallLimit(t *testing.T) {
	f := start(t, grpcserver.Config{ServiceName: "test", MaxUnaryCalls: 1})
	ctx := t.Context()
	inflight := make(chan error, 1)
	go func() {
		_, err := f.do(ctx, "slow", "block")
		inflight <- err
	}()
	<-f.svc.entered
	calls := f.svc.calls.Load()
	_, err := f.do(ctx, "r2", "second")
	wantRefusal(t, err, codes.ResourceExhausted, "TOO_MANY_CALLS", "1")
	if f.svc.calls.Load() != calls {
		t.Error("handler called for a refused call")
	}
	resp, err := healthpb.NewHealthClient(f.conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health check at the call limit: %v, %v", resp, err)
	}
	close(f.svc.release)
	if err := <-inflight; err != nil {
		t.Fatal(err)
	}
	if _, err := f.do(ctx, "r3", "third"); err != nil {
		t.Fatalf("call after the slow one ended: %v", err)
	}
}

// A stream whose client sends nothing for the first-message timeout, or nothing more for the
// idle timeout, ends with DEADLINE_EXCEEDED and a message saying so; the handler returns (the
// status is written only then, and goleak checks the receiving goroutine ended). The timers are
// fake: the test fires them.
func TestStreamTimeouts(t *testing.T) {
	tests := []struct {
		name        string
		first, idle time.Duration // Config; 0 for the defaults
		send        []string      // messages sent before the client goes quiet
		wantTimeout time.Duration
		wantMsg     string
	}{
		{"no first message", 0, 0, nil, 10 * time.Second, "no first message within 10s"},
		{"quiet after two messages", 0, 0, []string{"a", "b"}, 30 * time.Second, "no message for 30s"},
		{"configured first message", 3 * time.Second, time.Minute, nil, 3 * time.Second, "no first message within 3s"},
		{"configured idle", 3 * time.Second, 5 * time.Second, []string{"a"}, 5 * time.Second, "no message for 5s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, timers := grpcserver.WithFakeTimers(grpcserver.Config{ServiceName: "test",
				StreamFirstMessageTimeout: tt.first, StreamIdleTimeout: tt.idle})
			f := start(t, cfg)
			cs, err := f.conn.NewStream(t.Context(), &testServiceDesc.Streams[0], methodCollect)
			if err != nil {
				t.Fatal(err)
			}
			var waited []*grpcserver.FakeTimer
			for i, v := range tt.send {
				tm := <-timers.Created // the handler waits for message i
				waited = append(waited, tm)
				if err := cs.SendMsg(newReq(fmt.Sprint("req-", i), v)); err != nil {
					t.Fatal(err)
				}
			}
			last := <-timers.Created
			if last.D != tt.wantTimeout {
				t.Errorf("server waits %s, want %s", last.D, tt.wantTimeout)
			}
			last.Fire()
			err = cs.RecvMsg(&wrapperspb.StringValue{})
			if status.Code(err) != codes.DeadlineExceeded {
				t.Fatalf("quiet stream ended with %v, want DeadlineExceeded", err)
			}
			if msg := status.Convert(err).Message(); !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("message %q, want it to say %q", msg, tt.wantMsg)
			}
			if info := errorInfo(err); info.GetReason() != "STREAM_IDLE_TIMEOUT" || info.GetMetadata()["timeout"] != tt.wantTimeout.String() {
				t.Errorf("ErrorInfo = %v", info)
			}
			for i, tm := range waited {
				if !tm.Stopped() {
					t.Errorf("timer of message %d not stopped when it arrived", i)
				}
			}
			var lines []observer.LoggedEntry
			for _, e := range rpcLines(f.logs) {
				if e.ContextMap()["method"] == methodCollect {
					lines = append(lines, e)
				}
			}
			checkLine(t, lines, methodCollect, codes.DeadlineExceeded, zapcore.WarnLevel, "")
		})
	}
}

// A half-close ends the wait for the next message: a stream that is done sending is not idle.
func TestStreamHalfCloseIsNotIdle(t *testing.T) {
	cfg, timers := grpcserver.WithFakeTimers(grpcserver.Config{ServiceName: "test"})
	f := start(t, cfg)
	resp, err := f.collect(t.Context(), newReq("r", "a"), newReq("", "b"))
	if err != nil || resp.GetValue() != "a,b" {
		t.Fatalf("collect = %q, %v", resp.GetValue(), err)
	}
	for range 3 { // a, b, then the end of the stream
		if tm := <-timers.Created; !tm.Stopped() {
			t.Errorf("timer of %s left running", tm.D)
		}
	}
}

// readsSettings reports whether the server speaks on c (sends its HTTP/2 SETTINGS frame) or
// closes it without a byte.
func readsSettings(t *testing.T, c net.Conn) bool {
	t.Helper()
	// Only a guard against a hang of a broken server; nothing here is timed.
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var hdr [9]byte
	_, err := io.ReadFull(c, hdr[:])
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("server neither spoke nor closed the connection")
	}
	return err == nil && hdr[3] == 0x4 // frame type SETTINGS
}

func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Connections over the server's bound are closed as soon as they are accepted; a gRPC client
// sees UNAVAILABLE; a closed connection frees its slot.
func TestConnectionLimit(t *testing.T) {
	freed := make(chan struct{}, 10)
	core, logs := observer.New(zapcore.InfoLevel)
	cfg := grpcserver.WithConnClosed(grpcserver.Config{ServiceName: "test", MaxConnections: 2}, func() { freed <- struct{}{} })
	f := serve(t, cfg, zap.New(core), logs)

	a, b := dialRaw(t, f.addr), dialRaw(t, f.addr)
	if !readsSettings(t, a) || !readsSettings(t, b) {
		t.Fatal("connections under the limit not served")
	}
	if readsSettings(t, dialRaw(t, f.addr)) {
		t.Fatal("third connection served, limit is 2")
	}
	refusals := logs.FilterMessageSnippet("connection refused").All()
	if len(refusals) != 1 || refusals[0].Level != zapcore.WarnLevel || refusals[0].ContextMap()["max_connections"] != int64(2) {
		t.Errorf("refusal log lines: %v, want one warning naming the limit", refusals)
	}

	a.Close()
	<-freed // the server closed its side
	if !readsSettings(t, dialRaw(t, f.addr)) {
		t.Fatal("connection after one closed not served")
	}

	cc, err := grpc.NewClient(f.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if _, err := healthpb.NewHealthClient(cc).Check(t.Context(), &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("grpc client over the connection limit: %v, want Unavailable", err)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC() // twice: sync.Pool's victim cache (grpc-go's buffers) goes at the second
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// 5,000 streams opened at once over 20 connections, none sending a message: the server holds
// exactly MaxStreams of them and refuses the rest at once with RESOURCE_EXHAUSTED, and the heap
// (client and server together: they share this process) grows by an amount bounded by the
// limit, not by the number of attempts.
func TestManyStreamsKeepMemoryBounded(t *testing.T) {
	const (
		attempts = 5000
		conns    = 20  // 250 streams each: under the per-connection limit of 256
		limit    = 200 // MaxStreams
		// perStream is a generous budget for one held stream, both ends: the server's
		// transport stream, handler goroutine's objects and interceptor wrappers, and the
		// client's stream (measured: about 10 KiB together).
		perStream = 64 << 10
		// perConn covers what the connections allocate once they carry streams (buffers of
		// the framers and flow control; measured: well under 100 KiB).
		perConn = 256 << 10
	)
	core, logs := observer.New(zapcore.ErrorLevel) // the 4,800 refusals log at warn: not kept
	f := serve(t, grpcserver.Config{ServiceName: "test", MaxStreams: limit,
		StreamFirstMessageTimeout: time.Hour, StreamIdleTimeout: time.Hour}, zap.New(core), logs)

	ccs := make([]*grpc.ClientConn, conns)
	for i := range ccs {
		cc, err := grpc.NewClient(f.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		if _, err := healthpb.NewHealthClient(cc).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
		ccs[i] = cc
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	before := heapInUse()

	var (
		mu       sync.Mutex
		held     []grpc.ClientStream
		refused  atomic.Int64
		firstBad error
		wg       sync.WaitGroup
	)
	for _, cc := range ccs {
		wg.Go(func() {
			for range attempts / conns {
				cs, ok, err := hold(ctx, cc)
				mu.Lock()
				switch {
				case ok:
					held = append(held, cs)
				case status.Code(err) == codes.ResourceExhausted && errorInfo(err).GetReason() == "TOO_MANY_STREAMS":
					refused.Add(1)
				case firstBad == nil:
					firstBad = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	after := heapInUse()
	if firstBad != nil {
		t.Fatalf("an attempt ended neither held nor refused: %v", firstBad)
	}
	if len(held) != limit || refused.Load() != attempts-limit {
		t.Fatalf("%d held and %d refused of %d, want %d and %d", len(held), refused.Load(), attempts, limit, attempts-limit)
	}
	growth := int64(after) - int64(before)
	budget := int64(limit*perStream + conns*perConn)
	t.Logf("%d attempts, %d held, %d refused: heap grew %d KiB (%d B per held stream), budget %d KiB",
		attempts, len(held), refused.Load(), growth>>10, growth/limit, budget>>10)
	if growth > budget {
		t.Errorf("heap grew %d KiB for %d held streams, budget %d KiB", growth>>10, limit, budget>>10)
	}
	if n := logs.Len(); n != 0 {
		t.Errorf("%d error lines: %v", n, logs.All())
	}

	cancel()
	for _, cs := range held {
		if err := cs.RecvMsg(&wrapperspb.StringValue{}); status.Code(err) != codes.Canceled {
			t.Errorf("held stream after cancel: %v", err)
		}
	}
}

package grpcserver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/grpcserver"
	"github.com/eastwest/labourlink/services/platform/tracing"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The test service uses a request message with a request_id field, built at
// run time, so that the package does not depend on the project's protos.
//
//	message MutateRequest { string request_id = 1; string value = 2; repeated Row rows = 3; }
//	message Row { string full_name = 1; bytes photo = 2; }
//	service TestService {
//	  rpc Do(MutateRequest) returns (google.protobuf.StringValue);
//	  rpc Collect(stream MutateRequest) returns (google.protobuf.StringValue);
//	  // Sends the header "held: 1" at once, then reads until the stream ends.
//	  rpc Hold(stream MutateRequest) returns (google.protobuf.StringValue);
//	}
const (
	serviceName   = "labourlink.grpcservertest.TestService"
	methodDo      = "/" + serviceName + "/Do"
	methodCollect = "/" + serviceName + "/Collect"
	methodHold    = "/" + serviceName + "/Hold"
)

var reqDesc = func() protoreflect.MessageDescriptor {
	str := descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()
	byt := descriptorpb.FieldDescriptorProto_TYPE_BYTES.Enum()
	msg := descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	rep := descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:    proto.String("labourlink/grpcservertest/test.proto"),
		Package: proto.String("labourlink.grpcservertest"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{
			Name: proto.String("MutateRequest"),
			Field: []*descriptorpb.FieldDescriptorProto{
				{Name: proto.String("request_id"), JsonName: proto.String("requestId"), Number: proto.Int32(1), Type: str, Label: opt},
				{Name: proto.String("value"), JsonName: proto.String("value"), Number: proto.Int32(2), Type: str, Label: opt},
				{Name: proto.String("rows"), JsonName: proto.String("rows"), Number: proto.Int32(3), Type: msg, Label: rep,
					TypeName: proto.String(".labourlink.grpcservertest.Row")},
			},
		}, {
			Name: proto.String("Row"),
			Field: []*descriptorpb.FieldDescriptorProto{
				{Name: proto.String("full_name"), JsonName: proto.String("fullName"), Number: proto.Int32(1), Type: str, Label: opt},
				{Name: proto.String("photo"), JsonName: proto.String("photo"), Number: proto.Int32(2), Type: byt, Label: opt},
			},
		}},
	}, nil)
	if err != nil {
		panic(err)
	}
	return fd.Messages().Get(0)
}()

func newReq(requestID, value string) *dynamicpb.Message {
	m := dynamicpb.NewMessage(reqDesc)
	m.Set(reqDesc.Fields().ByName("request_id"), protoreflect.ValueOfString(requestID))
	m.Set(reqDesc.Fields().ByName("value"), protoreflect.ValueOfString(value))
	return m
}

func valueOf(m any) string {
	return m.(proto.Message).ProtoReflect().Get(reqDesc.Fields().ByName("value")).String()
}

type testServer interface {
	Do(ctx context.Context, value string) (*wrapperspb.StringValue, error)
}

var testServiceDesc = grpc.ServiceDesc{
	ServiceName: serviceName,
	HandlerType: (*testServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Do",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := dynamicpb.NewMessage(reqDesc)
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, req any) (any, error) {
				return srv.(testServer).Do(ctx, valueOf(req))
			}
			if interceptor == nil {
				return h(ctx, in)
			}
			return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: methodDo}, h)
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Collect",
		ClientStreams: true,
		Handler: func(srv any, ss grpc.ServerStream) error {
			var vals []string
			for {
				in := dynamicpb.NewMessage(reqDesc)
				err := ss.RecvMsg(in)
				if err == io.EOF {
					return ss.SendMsg(wrapperspb.String(strings.Join(vals, ",")))
				}
				if err != nil {
					return err
				}
				v := valueOf(in)
				switch v {
				case "trace":
					v = "trace:" + traceOf(ss.Context())
				case "panic":
					panic("collect exploded")
				case "fail":
					return errors.New("collect: secret internal cause")
				}
				vals = append(vals, v)
			}
		},
	}, {
		StreamName:    "Hold",
		ClientStreams: true,
		Handler: func(srv any, ss grpc.ServerStream) error {
			if err := ss.SendHeader(metadata.Pairs("held", "1")); err != nil {
				return err
			}
			for {
				in := dynamicpb.NewMessage(reqDesc)
				if err := ss.RecvMsg(in); err == io.EOF {
					return ss.SendMsg(wrapperspb.String("released"))
				} else if err != nil {
					return err
				}
			}
		},
	}},
	Metadata: "labourlink/grpcservertest/test.proto",
}

// traceOf is the trace id of ctx ("" for none).
func traceOf(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		return sc.TraceID().String()
	}
	return ""
}

type testService struct {
	calls   atomic.Int64
	entered chan struct{}
	release chan struct{}
}

func newTestService() *testService {
	return &testService{entered: make(chan struct{}, 1), release: make(chan struct{})}
}

func (s *testService) Do(ctx context.Context, value string) (*wrapperspb.StringValue, error) {
	s.calls.Add(1)
	switch value {
	case "panic":
		panic("handler exploded")
	case "fail":
		return nil, fmt.Errorf("write worker: %w", errors.New("secret internal cause"))
	case "missing":
		return nil, fmt.Errorf("get worker: %w", apierror.NotFound("worker w-1 not found"))
	case "trace":
		return wrapperspb.String("ok:trace:" + traceOf(ctx)), nil
	case "block":
		s.entered <- struct{}{}
		select {
		case <-s.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return wrapperspb.String("ok:" + value), nil
}

// ValidateRequest makes the service a grpcserver.Validator.
func (s *testService) ValidateRequest(fullMethod string, req any) error {
	var v apierror.Violations
	switch val := valueOf(req); val {
	case "":
		v.Add("value", "must not be empty")
	case "bad":
		v.Add("value", "must not be bad")
		v.Add("request_id", "must be set with bad")
	case "plain":
		return errors.New("value plain is not allowed")
	}
	return v.Err()
}

type fixture struct {
	srv  *grpcserver.Server
	conn *grpc.ClientConn
	logs *observer.ObservedLogs
	svc  *testService
	addr string
	// serveErr receives Serve's result.
	serveErr chan error
}

func start(t *testing.T, cfg grpcserver.Config) *fixture {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	return serve(t, cfg, zap.New(zapcore.NewTee(core, zaptest.NewLogger(t).Core())), logs)
}

// serve starts a server with the test service on a loopback listener, logging to lg (and
// logs, where lg writes to it).
func serve(t *testing.T, cfg grpcserver.Config, lg *zap.Logger, logs *observer.ObservedLogs) *fixture {
	t.Helper()
	srv := grpcserver.New(cfg, lg)
	svc := newTestService()
	srv.GRPC().RegisterService(&testServiceDesc, svc)
	srv.SetServing()

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{srv: srv, logs: logs, svc: svc, addr: lis.Addr().String(), serveErr: make(chan error, 1)}
	go func() { f.serveErr <- srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	f.conn = conn
	t.Cleanup(func() {
		conn.Close()
		srv.Stop(context.Background())
		if err := <-f.serveErr; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return f
}

func (f *fixture) do(ctx context.Context, requestID, value string) (*wrapperspb.StringValue, error) {
	resp := &wrapperspb.StringValue{}
	err := f.conn.Invoke(ctx, methodDo, newReq(requestID, value), resp)
	return resp, err
}

func (f *fixture) collect(ctx context.Context, reqs ...*dynamicpb.Message) (*wrapperspb.StringValue, error) {
	cs, err := f.conn.NewStream(ctx, &testServiceDesc.Streams[0], methodCollect)
	if err != nil {
		return nil, err
	}
	for _, r := range reqs {
		if err := cs.SendMsg(r); err != nil {
			break // the server ended the stream; RecvMsg gives the status
		}
	}
	if err := cs.CloseSend(); err != nil {
		return nil, err
	}
	resp := &wrapperspb.StringValue{}
	return resp, cs.RecvMsg(resp)
}

// rpcLines returns and clears the per-RPC log lines seen so far.
func rpcLines(logs *observer.ObservedLogs) []observer.LoggedEntry {
	var out []observer.LoggedEntry
	for _, e := range logs.TakeAll() {
		if e.Message == "rpc" {
			out = append(out, e)
		}
	}
	return out
}

func fieldViolations(t *testing.T, err error) []string {
	t.Helper()
	var fields []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, fv := range br.GetFieldViolations() {
				fields = append(fields, fv.GetField())
			}
		}
	}
	return fields
}

// checkLine checks the single log line of an RPC.
func checkLine(t *testing.T, lines []observer.LoggedEntry, method string, code codes.Code, lvl zapcore.Level, requestID string, secrets ...string) map[string]any {
	t.Helper()
	if len(lines) != 1 {
		t.Fatalf("%d log lines for one rpc, want 1: %v", len(lines), lines)
	}
	e := lines[0]
	fields := e.ContextMap()
	if fields["method"] != method {
		t.Errorf("logged method = %v, want %s", fields["method"], method)
	}
	if fields["code"] != code.String() {
		t.Errorf("logged code = %v, want %s", fields["code"], code)
	}
	if e.Level != lvl {
		t.Errorf("level = %v, want %v", e.Level, lvl)
	}
	if requestID != "" && fields["request_id"] != requestID {
		t.Errorf("logged request_id = %v, want %s", fields["request_id"], requestID)
	}
	if p, _ := fields["peer"].(string); !strings.HasPrefix(p, "127.0.0.1:") {
		t.Errorf("logged peer = %v, want 127.0.0.1:port", fields["peer"])
	}
	if _, ok := fields["duration"]; !ok {
		t.Error("no duration logged")
	}
	if fields["service"] != "test" {
		t.Errorf("logged service = %v, want test", fields["service"])
	}
	line := fmt.Sprint(e.Message, fields)
	for _, s := range secrets {
		if strings.Contains(line, s) {
			t.Errorf("log line contains request body %q: %s", s, line)
		}
	}
	return fields
}

func TestUnary(t *testing.T) {
	f := start(t, grpcserver.Config{ServiceName: "test"})
	ctx := t.Context()
	const phone = "13800138000" // a request body that must never be logged

	tests := []struct {
		name       string
		value      string
		wantCode   codes.Code
		wantMsg    string
		wantFields []string
		wantCalled bool
		wantLevel  zapcore.Level
		wantCause  string // in the log line's error field
	}{
		{"ok", phone, codes.OK, "", nil, true, zapcore.DebugLevel, ""},
		{"validation", "", codes.InvalidArgument, "invalid argument: value: must not be empty", []string{"value"}, false, zapcore.WarnLevel, ""},
		{"two violations", "bad", codes.InvalidArgument, "", []string{"value", "request_id"}, false, zapcore.WarnLevel, ""},
		{"plain validation error", "plain", codes.InvalidArgument, "invalid argument: value plain is not allowed", nil, false, zapcore.WarnLevel, ""},
		{"domain error", "missing", codes.NotFound, "get worker: worker w-1 not found", nil, true, zapcore.WarnLevel, ""},
		{"unknown error", "fail", codes.Internal, "internal error", nil, true, zapcore.ErrorLevel, "secret internal cause"},
		{"panic", "panic", codes.Internal, "internal error", nil, true, zapcore.ErrorLevel, "handler exploded"},
		{"after panic", "again", codes.OK, "", nil, true, zapcore.DebugLevel, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.logs.TakeAll()
			before := f.svc.calls.Load()
			reqID := fmt.Sprintf("req-%d", i)
			resp, err := f.do(ctx, reqID, tt.value)
			st := status.Convert(err)
			if st.Code() != tt.wantCode {
				t.Fatalf("code = %v (%v), want %v", st.Code(), err, tt.wantCode)
			}
			if err == nil && resp.GetValue() != "ok:"+tt.value {
				t.Errorf("response = %q", resp.GetValue())
			}
			if tt.wantMsg != "" && st.Message() != tt.wantMsg {
				t.Errorf("message = %q, want %q", st.Message(), tt.wantMsg)
			}
			if got := fieldViolations(t, err); fmt.Sprint(got) != fmt.Sprint(tt.wantFields) {
				t.Errorf("field violations = %v, want %v", got, tt.wantFields)
			}
			if called := f.svc.calls.Load() > before; called != tt.wantCalled {
				t.Errorf("handler called = %v, want %v", called, tt.wantCalled)
			}
			fields := checkLine(t, rpcLines(f.logs), methodDo, tt.wantCode, tt.wantLevel, reqID, phone)
			if tt.wantCause != "" {
				if e, _ := fields["error"].(string); !strings.Contains(e, tt.wantCause) {
					t.Errorf("logged error = %v, want the cause %q", fields["error"], tt.wantCause)
				}
			}
			if tt.name == "panic" {
				if s, _ := fields["stack"].(string); !strings.Contains(s, "goroutine") {
					t.Errorf("panic logged without stack: %v", fields["stack"])
				}
			}
		})
	}
}

func TestStream(t *testing.T) {
	f := start(t, grpcserver.Config{ServiceName: "test"})
	ctx := t.Context()
	const phone = "13800138000"

	tests := []struct {
		name       string
		values     []string
		wantCode   codes.Code
		wantResp   string
		wantFields []string
		wantLevel  zapcore.Level
	}{
		{"ok", []string{phone, "b"}, codes.OK, phone + ",b", nil, zapcore.DebugLevel},
		{"validation of a later message", []string{"a", ""}, codes.InvalidArgument, "", []string{"value"}, zapcore.WarnLevel},
		{"unknown error", []string{"a", "fail"}, codes.Internal, "", nil, zapcore.ErrorLevel},
		{"panic", []string{"panic"}, codes.Internal, "", nil, zapcore.ErrorLevel},
		{"after panic", []string{"c"}, codes.OK, "c", nil, zapcore.DebugLevel},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.logs.TakeAll()
			reqID := fmt.Sprintf("stream-%d", i)
			var reqs []*dynamicpb.Message
			for j, v := range tt.values {
				id := ""
				if j == 0 {
					id = reqID // only the first message carries the id
				}
				reqs = append(reqs, newReq(id, v))
			}
			resp, err := f.collect(ctx, reqs...)
			st := status.Convert(err)
			if st.Code() != tt.wantCode {
				t.Fatalf("code = %v (%v), want %v", st.Code(), err, tt.wantCode)
			}
			if err == nil && resp.GetValue() != tt.wantResp {
				t.Errorf("response = %q, want %q", resp.GetValue(), tt.wantResp)
			}
			if tt.wantCode == codes.Internal && st.Message() != "internal error" {
				t.Errorf("message = %q, want internal error", st.Message())
			}
			if got := fieldViolations(t, err); fmt.Sprint(got) != fmt.Sprint(tt.wantFields) {
				t.Errorf("field violations = %v, want %v", got, tt.wantFields)
			}
			checkLine(t, rpcLines(f.logs), methodCollect, tt.wantCode, tt.wantLevel, reqID, phone)
		})
	}
}

func TestOversizedMessageRefused(t *testing.T) {
	f := start(t, grpcserver.Config{ServiceName: "test", MaxRecvBytes: 1024})
	ctx := t.Context()
	_, err := f.do(ctx, "big", strings.Repeat("x", 4096))
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("oversized request: %v, want ResourceExhausted", err)
	}
	if f.svc.calls.Load() != 0 {
		t.Error("handler called for an oversized request")
	}
	if _, err := f.do(ctx, "small", "small"); err != nil {
		t.Fatalf("small request after oversized one: %v", err)
	}
}

func TestReflectionListsServices(t *testing.T) {
	f := start(t, grpcserver.Config{ServiceName: "test"})
	stream, err := reflectionpb.NewServerReflectionClient(f.conn).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("end of reflection stream: %v", err)
	}
	got := map[string]bool{}
	for _, s := range resp.GetListServicesResponse().GetService() {
		got[s.GetName()] = true
	}
	for _, want := range []string{serviceName, healthpb.Health_ServiceDesc.ServiceName, "grpc.reflection.v1.ServerReflection"} {
		if !got[want] {
			t.Errorf("reflection does not list %s (got %v)", want, got)
		}
	}
}

func TestHealthAndGracefulStop(t *testing.T) {
	f := start(t, grpcserver.Config{ServiceName: "test"})
	ctx := t.Context()
	hc := healthpb.NewHealthClient(f.conn)

	for _, svc := range []string{"", serviceName} {
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health of %q = %v, want SERVING", svc, resp.GetStatus())
		}
	}
	watchCtx, cancelWatch := context.WithCancel(ctx)
	defer cancelWatch()
	watch, err := hc.Watch(watchCtx, &healthpb.HealthCheckRequest{Service: serviceName})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := watch.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("watch first status = %v, %v; want SERVING", resp, err)
	}

	// An RPC in flight when Stop begins.
	inflight := make(chan error, 1)
	go func() {
		_, err := f.do(ctx, "slow", "block")
		inflight <- err
	}()
	<-f.svc.entered

	stopped := make(chan struct{})
	go func() {
		f.srv.Stop(context.Background())
		close(stopped)
	}()

	if resp, err := watch.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("watch status after Stop began = %v, %v; want NOT_SERVING", resp, err)
	}
	<-f.srv.Draining()
	cancelWatch()

	// Graceful: the in-flight RPC may finish and succeeds.
	close(f.svc.release)
	if err := <-inflight; err != nil {
		t.Fatalf("in-flight rpc during graceful stop: %v", err)
	}
	<-stopped
	if err := <-f.serveErr; err != nil {
		t.Fatalf("Serve after Stop = %v, want nil", err)
	}
	f.serveErr <- nil // for the cleanup

	if _, err := f.do(ctx, "late", "late"); status.Code(err) != codes.Unavailable {
		t.Fatalf("rpc after stop: %v, want Unavailable", err)
	}
}

func TestStopCancelsRPCsAfterShutdownTimeout(t *testing.T) {
	f := start(t, grpcserver.Config{ServiceName: "test", ShutdownTimeout: 50 * time.Millisecond})
	inflight := make(chan error, 1)
	go func() {
		_, err := f.do(t.Context(), "slow", "block")
		inflight <- err
	}()
	<-f.svc.entered
	f.srv.Stop(context.Background()) // returns although the handler never gets released
	if err := <-inflight; err == nil {
		t.Fatal("in-flight rpc succeeded after forced stop")
	}
}

func TestRunStopsWhenContextCancelled(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	srv := grpcserver.New(grpcserver.Config{ServiceName: "test"}, zap.New(core))
	srv.GRPC().RegisterService(&testServiceDesc, newTestService())
	srv.SetServing(serviceName)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- srv.Run(ctx, lis) }()

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{Service: serviceName})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v; want SERVING", resp, err)
	}
	cancel()
	if err := <-ran; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if n := logs.FilterMessage("stopped grpc server").Len(); n != 1 {
		t.Errorf("%d stop log lines, want 1", n)
	}
	if n := logs.FilterMessage("rpc").Len(); n != 0 {
		t.Errorf("successful health check logged at info level %d times, want debug", n)
	}
}

func TestExtraInterceptorsRunAfterBuiltins(t *testing.T) {
	var seen atomic.Int64
	deny := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		seen.Add(1)
		if valueOf(req) == "deny" {
			return nil, apierror.PermissionDenied(commonv1.ErrorReason_ERROR_REASON_NOT_OWNER, "region 440000 cannot change this")
		}
		return handler(ctx, req)
	}
	f := start(t, grpcserver.Config{ServiceName: "test", UnaryInterceptors: []grpc.UnaryServerInterceptor{deny}})
	ctx := t.Context()

	// The error of an extra interceptor is mapped and logged like a handler's.
	_, err := f.do(ctx, "r1", "deny")
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("deny: %v, want PermissionDenied", err)
	}
	checkLine(t, rpcLines(f.logs), methodDo, codes.PermissionDenied, zapcore.WarnLevel, "r1")

	// Validation runs before the extra interceptors.
	before := seen.Load()
	if _, err := f.do(ctx, "r2", ""); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("invalid request: %v, want InvalidArgument", err)
	}
	if seen.Load() != before {
		t.Error("extra interceptor ran for an invalid request")
	}
	if _, err := f.do(ctx, "r3", "fine"); err != nil {
		t.Fatal(err)
	}
	if seen.Load() != before+1 {
		t.Error("extra interceptor did not run for a valid request")
	}
}

func TestRunWithCancelledContext(t *testing.T) {
	srv := grpcserver.New(grpcserver.Config{}, zaptest.NewLogger(t))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := srv.Run(ctx, lis); err != nil {
		t.Fatalf("Run with a cancelled context = %v, want nil", err)
	}
	// The listener is closed either way.
	if _, err := net.Dial("tcp", lis.Addr().String()); err == nil {
		t.Error("listener still accepts after Run returned")
	}
}

// A server logging production JSON at info level, as a daemon does, writes no line for a
// successful call (the metrics count them) and exactly one for a failed one, a panic included.
func TestInfoLevelLogsOnlyFailedCalls(t *testing.T) {
	var out syncBuffer
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	lg := zap.New(zapcore.NewCore(enc, zapcore.AddSync(&out), zapcore.InfoLevel))
	f := serve(t, grpcserver.Config{ServiceName: "test"}, lg, nil)
	ctx := t.Context()
	lines := func() []string {
		var rpc []string
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			if strings.Contains(l, `"msg":"rpc"`) {
				rpc = append(rpc, l)
			}
		}
		return rpc
	}
	for i := range 20 {
		if _, err := f.do(ctx, fmt.Sprintf("ok-%d", i), "fine"); err != nil {
			t.Fatal(err)
		}
	}
	if got := lines(); len(got) != 0 {
		t.Fatalf("%d log lines for 20 successful calls at info level, want none; the first: %s", len(got), got[0])
	}
	for _, value := range []string{"missing", "panic"} {
		if _, err := f.do(ctx, "failed-"+value, value); err == nil {
			t.Fatalf("%s: no error", value)
		}
	}
	got := lines()
	if len(got) != 2 || !strings.Contains(got[0], `"code":"NotFound"`) || !strings.Contains(got[1], `"code":"Internal"`) {
		t.Fatalf("log lines for a failed call and a panic: %q, want one each", got)
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestSetReady: a reason not ready holds the server as a whole ("") NOT_SERVING, its services'
// names stay SERVING, and "" is SERVING again only when every reason is ready; after Stop began
// nothing brings it back.
func TestSetReady(t *testing.T) {
	f := start(t, grpcserver.Config{ServiceName: "test"})
	ctx := t.Context()
	hc := healthpb.NewHealthClient(f.conn)
	check := func(svc string, want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetStatus() != want {
			t.Errorf("health of %q = %v, want %v", svc, resp.GetStatus(), want)
		}
	}
	serving, not := healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_NOT_SERVING
	check("", serving)
	f.srv.SetReady("replication", false)
	check("", not)
	check(serviceName, serving)
	f.srv.SetReady("other", false)
	f.srv.SetReady("replication", true)
	check("", not)
	f.srv.SetReady("other", true)
	check("", serving)
	f.srv.SetReady("replication", false)
	f.srv.SetServing() // a later SetServing keeps the reason
	check("", not)
	f.srv.SetReady("replication", true)
	f.srv.Stop(context.Background())
	f.srv.SetReady("replication", true)
	if resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err == nil && resp.GetStatus() == serving {
		t.Errorf("health of \"\" after Stop = SERVING")
	}
}

// With traces off, the server has no stats handler (grpc-go would build every call's events for
// one), yet a call's and a stream's trace context reach the handler, as otelgrpc would pass them
// on; a call that carries none gets none.
func TestTraceContextReachesTheHandler(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	if _, err := tracing.Setup(context.Background(), "sending", "520000", nil); err != nil {
		t.Fatal(err)
	}
	if opts := tracing.ServerOptions(); len(opts) != 0 {
		t.Fatalf("traces off: %d server options, want none", len(opts))
	}
	f := start(t, grpcserver.Config{ServiceName: "test"})
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	traced := metadata.AppendToOutgoingContext(context.Background(), "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want string
	}{{"traced", traced, traceID}, {"untraced", context.Background(), ""}} {
		resp, err := f.do(tc.ctx, "", "trace")
		if err != nil || resp.GetValue() != "ok:trace:"+tc.want {
			t.Errorf("%s call: %q, %v; want trace %q", tc.name, resp.GetValue(), err, tc.want)
		}
		resp, err = f.collect(tc.ctx, newReq("", "trace"))
		if err != nil || resp.GetValue() != "trace:"+tc.want {
			t.Errorf("%s stream: %q, %v; want trace %q", tc.name, resp.GetValue(), err, tc.want)
		}
	}
}

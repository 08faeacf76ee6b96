package grpcserver

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/text/language"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/i18n"
	"github.com/eastwest/labourlink/services/platform/tracing"
)

// The built-in chain, outermost first: recover -> log -> [Config metrics] -> map error ->
// limits (limits.go) -> [Config auth interceptor] -> privacy guard (privacy.go) -> validate ->
// Config interceptors -> handler. For unary calls, recover and log, map error and limits, and
// privacy and validate each run as one interceptor (unaryRecoverLog, unaryMapErrorLimit,
// unaryGuard), in that order.
//
// Exactly one log line is written per RPC: by the log interceptor when the
// handler returns, or by the recover interceptor when it panicked (the
// panic unwinds past the log interceptor). Request and response bodies are
// never logged: they hold personal data.

// logMessage is the message of the per-RPC log line.
const logMessage = "rpc"

// requestIDFields are the request fields whose string value is logged as
// request_id.
var requestIDFields = []protoreflect.Name{"request_id", "import_id"}

type interceptors struct {
	lg *zap.Logger
}

// rpcRecord carries what inner interceptors learn to the log line.
type rpcRecord struct {
	mu        sync.Mutex
	requestID string
	cause     error // an unknown error hidden from the client as "internal error"
}

func (r *rpcRecord) setRequestID(m any) {
	id := loggableRequestID(requestID(m))
	if id == "" {
		return
	}
	r.mu.Lock()
	if r.requestID == "" {
		r.requestID = id
	}
	r.mu.Unlock()
}

// forgetRequestID drops the logged request id if it is id: the id field was not
// valid UTF-8, and what was read is the codec's repair of a value that is not
// to be logged.
func (r *rpcRecord) forgetRequestID(id string) {
	r.mu.Lock()
	if r.requestID == id {
		r.requestID = ""
	}
	r.mu.Unlock()
}

func (r *rpcRecord) setCause(err error) {
	r.mu.Lock()
	r.cause = err
	r.mu.Unlock()
}

type recordKey struct{}

func recordFrom(ctx context.Context) *rpcRecord {
	r, _ := ctx.Value(recordKey{}).(*rpcRecord)
	return r
}

// recordContext is a context carrying an rpcRecord: context.WithValue and the record in one
// allocation per call.
type recordContext struct {
	context.Context
	rec rpcRecord
}

func (c *recordContext) Value(key any) any {
	if _, ok := key.(recordKey); ok {
		return &c.rec
	}
	return c.Context.Value(key)
}

// withRecord returns ctx with a new record of the call, and the record.
func withRecord(ctx context.Context) (context.Context, *rpcRecord) {
	c := &recordContext{Context: ctx}
	return c, &c.rec
}

// requestID returns the request_id (or import_id) string field of a
// protobuf message, or "".
func requestID(m any) string {
	pm, ok := m.(proto.Message)
	if !ok || pm == nil {
		return ""
	}
	msg := pm.ProtoReflect()
	if !msg.IsValid() {
		return ""
	}
	fields := msg.Descriptor().Fields()
	for _, name := range requestIDFields {
		fd := fields.ByName(name)
		if fd == nil || fd.Kind() != protoreflect.StringKind || fd.IsList() || fd.IsMap() {
			continue
		}
		if id := msg.Get(fd).String(); id != "" {
			return id
		}
	}
	return ""
}

func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

// level chooses the level of the log line for a finished RPC.
func level(method string, code codes.Code) zapcore.Level {
	switch code {
	case codes.OK:
		// Successes are counted by the metrics (labourlink_grpc_server_handled_total); a line
		// per success at info would cost more than the call itself on the read path.
		return zapcore.DebugLevel
	case codes.Internal, codes.Unknown, codes.DataLoss:
		return zapcore.ErrorLevel
	default:
		return zapcore.WarnLevel
	}
}

func (ic *interceptors) logRPC(ctx context.Context, method string, start time.Time, rec *rpcRecord, err error, extra ...zap.Field) {
	st := status.Convert(err)
	ce := ic.lg.Check(level(method, st.Code()), logMessage)
	if ce == nil {
		return // nothing is built for a line that is not written
	}
	fields := []zap.Field{
		zap.String("method", method),
		zap.String("code", st.Code().String()),
		zap.Duration("duration", time.Since(start)),
	}
	rec.mu.Lock()
	id, cause := rec.requestID, rec.cause
	rec.mu.Unlock()
	if id != "" {
		fields = append(fields, zap.String("request_id", id))
	}
	if addr := peerAddr(ctx); addr != "" {
		fields = append(fields, zap.String("peer", addr))
	}
	switch {
	case cause != nil:
		fields = append(fields, zap.NamedError("error", cause))
	case err != nil:
		fields = append(fields, zap.String("error", st.Message()))
	}
	fields = append(fields, extra...)
	ce.Write(fields...)
}

// --- recovery ---

func (ic *interceptors) recovered(ctx context.Context, method string, start time.Time, p any) error {
	rec := recordFrom(ctx)
	if rec == nil {
		rec = &rpcRecord{}
	}
	rec.setCause(fmt.Errorf("panic: %v", p))
	err := status.Error(codes.Internal, apierror.InternalMessage)
	ic.logRPC(ctx, method, start, rec, err, zap.ByteString("stack", debug.Stack()))
	return err
}

// unaryRecoverLog is the outermost unary interceptor: recovery and the log line, in one function
// instead of two links of the chain (grpc-go allocates a closure per link and call). The line
// is written when the handler returns; a panic unwinds past it, and the deferred recovery
// writes the line instead.
func (ic *interceptors) unaryRecoverLog(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	start := time.Now()
	ctx, rec := withRecord(tracing.Incoming(ctx))
	defer func() {
		if p := recover(); p != nil {
			rec.setRequestID(req)
			resp, err = nil, ic.recovered(ctx, info.FullMethod, start, p)
		}
	}()
	rec.setRequestID(req)
	resp, err = handler(ctx, req)
	ic.logRPC(ctx, info.FullMethod, start, rec, err)
	return resp, err
}

func (ic *interceptors) streamRecover(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	start := time.Now()
	ctx, _ := withRecord(tracing.Incoming(ss.Context()))
	defer func() {
		if p := recover(); p != nil {
			err = ic.recovered(ctx, info.FullMethod, start, p)
		}
	}()
	return handler(srv, &stream{ServerStream: ss, ctx: ctx})
}

// --- logging ---

func (ic *interceptors) streamLog(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	rec := recordFrom(ss.Context())
	err := handler(srv, &stream{ServerStream: ss, ctx: ss.Context(), onRecv: rec.setRequestID})
	ic.logRPC(ss.Context(), info.FullMethod, start, rec, err)
	return err
}

// --- error mapping ---

func mapError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if !apierror.IsKnown(err) {
		if rec := recordFrom(ctx); rec != nil {
			rec.setCause(err)
		}
	}
	return apierror.StatusIn(err, callerLanguage(ctx)).Err()
}

// callerLanguage is the language the caller asks for in its accept-language metadata header
// (AIP-193; English when absent): errors carry a google.rpc.LocalizedMessage in it.
func callerLanguage(ctx context.Context) language.Tag {
	md, _ := metadata.FromIncomingContext(ctx)
	return i18n.FromAcceptLanguage(strings.Join(md.Get("accept-language"), ","))
}

func (ic *interceptors) streamMapError(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return mapError(ss.Context(), handler(srv, ss))
}

// --- validation ---

// invalid makes sure a validation error maps to INVALID_ARGUMENT.
func invalid(err error) error {
	if errors.Is(err, apierror.ErrInvalidArgument) {
		return err
	}
	if st, ok := status.FromError(err); ok && st.Code() == codes.InvalidArgument {
		return err
	}
	return fmt.Errorf("%w: %w", apierror.ErrInvalidArgument, err)
}

// validate checks one request message: first the strings the codec found not
// valid UTF-8 (codec.go), for every service, then the service's Validator.
func validate(ctx context.Context, srv any, fullMethod string, req any) error {
	if err := utf8Violations(req); err != nil {
		if rec := recordFrom(ctx); rec != nil {
			if id := requestID(req); id != "" && strings.ContainsRune(id, utf8.RuneError) {
				rec.forgetRequestID(id)
			}
		}
		return err
	}
	v, ok := srv.(Validator)
	if !ok {
		if strings.HasPrefix(fullMethod, "/labourlink.") {
			return notValidated(fullMethod, fmt.Errorf("%w: the service has no ValidateRequest", apierror.ErrNotValidated))
		}
		return nil // health, reflection: not ours
	}
	if err := v.ValidateRequest(fullMethod, req); err != nil {
		if errors.Is(err, apierror.ErrNotValidated) {
			return notValidated(fullMethod, err)
		}
		return invalid(err)
	}
	return nil
}

// notValidated refuses a request of a method that has no validation: a programming error, not
// the caller's, so INTERNAL (logged at error level by the logging interceptor), and the handler
// does not run on unchecked input.
func notValidated(fullMethod string, err error) error {
	return status.Errorf(codes.Internal, "%s has no request validation (%v): the request was not run", fullMethod, err)
}

// unaryGuard is the privacy guard (privacy.go) then validation, in one link of the chain.
func (ic *interceptors) unaryGuard(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := checkPersonalData(info.Server, req); err != nil {
		return nil, err
	}
	if err := validate(ctx, info.Server, info.FullMethod, req); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (ic *interceptors) streamValidate(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &stream{ServerStream: ss, ctx: ss.Context(), validate: func(m any) error {
		return validate(ss.Context(), srv, info.FullMethod, m)
	}})
}

// stream wraps a ServerStream to replace its context and watch received
// messages.
type stream struct {
	grpc.ServerStream
	ctx      context.Context
	onRecv   func(m any)
	validate func(m any) error
}

func (s *stream) Context() context.Context { return s.ctx }

func (s *stream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if s.onRecv != nil {
		s.onRecv(m)
	}
	if s.validate != nil {
		return s.validate(m)
	}
	return nil
}

// Package grpcserver is the one way labourlink builds and runs a gRPC server
// (model: etcd server/etcdserver/api/v3rpc/grpc.go): message size limits,
// per-server bounds on connections, streams and calls, stream idle timeouts,
// keepalive enforcement, the interceptor chain (recovery, one log line per
// RPC, error mapping through apierror.Status, limits, request validation,
// including strings that are not valid UTF-8), a trace span per call
// (services/platform/tracing), health per service and for the data file,
// reflection, and graceful stop.
//
//	srv := grpcserver.New(grpcserver.Config{ServiceName: "sending"}, lg)
//	sendingv1.RegisterSendingServiceServer(srv.GRPC(), impl)
//	srv.SetServing()
//	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
//	defer stop()
//	err := srv.Run(ctx, lis)
package grpcserver

import (
	"context"
	"errors"
	"math"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/eastwest/labourlink/services/platform/metrics"
	"github.com/eastwest/labourlink/services/platform/tracing"
)

// Defaults used for zero Config fields.
const (
	DefaultMaxRecvBytes         = 16 << 20
	DefaultMaxSendBytes         = 16 << 20
	DefaultMaxConcurrentStreams = 256
	DefaultShutdownTimeout      = 10 * time.Second

	// A province's server sees a few peer services (each with a few feed watches), its
	// operators and its import jobs: these bounds leave room for ten times that, and keep
	// the worst case in memory to a few hundred MB (an import stream holding its first
	// batch takes about 0.5 MB).
	DefaultMaxStreams                = 512
	DefaultMaxUnaryCalls             = 1024
	DefaultMaxConnections            = 512
	DefaultStreamFirstMessageTimeout = 10 * time.Second
	DefaultStreamIdleTimeout         = 30 * time.Second
)

// StorageHealthService is the health service name that reports the data file
// (Config.Storage): NOT_SERVING while writes fail because the disk is full,
// SERVING otherwise. The services' own names stay SERVING meanwhile: reads
// still work and each write is refused quickly with UNAVAILABLE (reason
// STORAGE_FULL), which clients retry, and a service runs as one instance per
// province, so a load balancer that took it out of rotation would only cut the
// reads too, and a probe that restarted it would not free any space. Monitoring
// should alert on this name (grpc-health-probe -service labourlink.storage).
const StorageHealthService = "labourlink.storage"

// StorageState is what the server reads of the service's data file
// (*store.DB): whether writes fail for want of space, and its changes.
type StorageState interface {
	Full() bool
	NotifyFull(fn func(full bool))
}

// DefaultKeepaliveEnforcement is the keepalive policy clients must follow
// when Config.KeepaliveEnforcement is nil: pings at most every 10s, allowed
// without active streams.
var DefaultKeepaliveEnforcement = keepalive.EnforcementPolicy{
	MinTime:             10 * time.Second,
	PermitWithoutStream: true,
}

// DefaultKeepaliveParams are the server-side keepalive parameters used when
// Config.KeepaliveParams is nil: ping an idle client after 1 minute, drop it
// if it does not answer within 20s.
var DefaultKeepaliveParams = keepalive.ServerParameters{
	Time:    time.Minute,
	Timeout: 20 * time.Second,
}

// Config configures a Server. Zero fields take the defaults above.
type Config struct {
	// ServiceName names the server in its logs, e.g. "sending".
	ServiceName string
	// MaxRecvBytes is the largest request message accepted; larger ones get
	// RESOURCE_EXHAUSTED. Default 16 MiB.
	MaxRecvBytes int
	// MaxSendBytes is the largest response message sent. Default 16 MiB.
	MaxSendBytes int
	// MaxConcurrentStreams per client connection. Default 256.
	MaxConcurrentStreams uint32
	// MaxStreams bounds the streaming RPCs open at once on the whole server,
	// all connections and streaming methods together (health Watch included).
	// One more is refused at once with RESOURCE_EXHAUSTED, reason
	// TOO_MANY_STREAMS; it does not wait. Default 512.
	MaxStreams int
	// MaxUnaryCalls bounds the unary calls being handled at once on the whole
	// server; one more is refused at once with RESOURCE_EXHAUSTED, reason
	// TOO_MANY_CALLS. Health checks are not counted. Default 1024.
	MaxUnaryCalls int
	// MaxConnections bounds the client connections open at once. A connection
	// over it is closed as soon as it is accepted (the client sees UNAVAILABLE
	// and retries with backoff); see connLimitListener. Default 512.
	MaxConnections int
	// StreamFirstMessageTimeout ends a stream whose first message has not
	// arrived this long after the handler began waiting for it, with
	// DEADLINE_EXCEEDED, reason STREAM_IDLE_TIMEOUT. Default 10s.
	StreamFirstMessageTimeout time.Duration
	// StreamIdleTimeout ends a stream whose next message (or half-close) has
	// not arrived this long after the handler began waiting for it, likewise
	// ("no message for 30s"). Time the handler spends between messages does
	// not count. Default 30s.
	StreamIdleTimeout time.Duration
	// Storage, when set, is the service's data file: its state is reported as
	// the health of StorageHealthService.
	Storage StorageState
	// KeepaliveEnforcement is the policy clients' pings must follow.
	// Default DefaultKeepaliveEnforcement.
	KeepaliveEnforcement *keepalive.EnforcementPolicy
	// KeepaliveParams are the server's own keepalive parameters.
	// Default DefaultKeepaliveParams.
	KeepaliveParams *keepalive.ServerParameters
	// ShutdownTimeout bounds the graceful part of Stop; in-flight RPCs still
	// running after it are cancelled. Default 10s.
	ShutdownTimeout time.Duration
	// ServerOptions are added after the built-in options (e.g. TLS
	// credentials). Do not pass interceptors here: use the fields below.
	ServerOptions []grpc.ServerOption
	// UnaryInterceptors and StreamInterceptors run after the built-in ones
	// (recovery, logging, error mapping, validation), nearest the handler.
	// ReflectionDescriptors, when set, is where server reflection looks descriptors up first
	// (falling back to the descriptors linked into the binary): give it descriptors with source
	// information so that `grpcurl describe` shows the API's doc comments.
	ReflectionDescriptors protodesc.Resolver
	UnaryInterceptors     []grpc.UnaryServerInterceptor
	StreamInterceptors    []grpc.StreamServerInterceptor
	// AuthUnaryInterceptor and AuthStreamInterceptor, when set, authorise
	// every call (services/platform/authz). They run after error mapping, so a refusal
	// is mapped by apierror and logged once by the log interceptor, and before
	// validation, so a caller who may not call a method learns nothing from
	// the validity of its request. A stream interceptor that checks request
	// messages wraps the stream's RecvMsg; validation then sees only
	// authorised messages.
	AuthUnaryInterceptor  grpc.UnaryServerInterceptor
	AuthStreamInterceptor grpc.StreamServerInterceptor
	// Metrics, when set, counts every call by method and code, with its latency
	// (services/platform/metrics). Its interceptors run after the log line and before error
	// mapping returns, so a call is counted with the code the client sees, refusals by the
	// limits and authorisation included.
	Metrics *metrics.Registry

	// Test hooks (export_test.go): the timers of stream timeouts, and a call
	// each time a connection's slot is freed.
	timer      newTimer
	connClosed func()
}

func (c Config) withDefaults() Config {
	if c.MaxRecvBytes <= 0 {
		c.MaxRecvBytes = DefaultMaxRecvBytes
	}
	if c.MaxSendBytes <= 0 {
		c.MaxSendBytes = DefaultMaxSendBytes
	}
	if c.MaxConcurrentStreams == 0 {
		c.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
	if c.KeepaliveEnforcement == nil {
		kep := DefaultKeepaliveEnforcement
		c.KeepaliveEnforcement = &kep
	}
	if c.KeepaliveParams == nil {
		kp := DefaultKeepaliveParams
		c.KeepaliveParams = &kp
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = DefaultMaxStreams
	}
	if c.MaxUnaryCalls <= 0 {
		c.MaxUnaryCalls = DefaultMaxUnaryCalls
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.StreamFirstMessageTimeout <= 0 {
		c.StreamFirstMessageTimeout = DefaultStreamFirstMessageTimeout
	}
	if c.StreamIdleTimeout <= 0 {
		c.StreamIdleTimeout = DefaultStreamIdleTimeout
	}
	if c.timer == nil {
		c.timer = realTimer
	}
	return c
}

// Validator is implemented by a service implementation that checks requests
// before its handlers run. The returned error (normally from
// apierror.Violations.Err) is sent as INVALID_ARGUMENT with its field
// violations, and the handler is not called. For streams, every received
// message is checked and the error is returned from RecvMsg.
type Validator interface {
	ValidateRequest(fullMethod string, req any) error
}

// Server is a gRPC server with health and reflection registered.
type Server struct {
	cfg      Config
	lg       *zap.Logger
	grpc     *grpc.Server
	health   *health.Server
	draining chan struct{}
	stopOnce sync.Once

	// mu orders the health of StorageHealthService and of the server as a
	// whole (""): SetServing, changes of the storage state and SetReady.
	mu      sync.Mutex
	serving bool
	unready map[string]bool // the reasons SetReady holds "" NOT_SERVING for
}

// New builds a server. Register services on GRPC(), then call SetServing
// and Run (or Serve and Stop).
func New(cfg Config, lg *zap.Logger) *Server {
	if lg == nil {
		lg = zap.NewNop()
	}
	cfg = cfg.withDefaults()
	if cfg.ServiceName != "" {
		lg = lg.With(zap.String("service", cfg.ServiceName))
	}
	s := &Server{
		cfg:      cfg,
		lg:       lg,
		health:   health.NewServer(),
		draining: make(chan struct{}),
	}
	ic := &interceptors{lg: lg}
	lim := &limiter{
		maxStreams:   int64(cfg.MaxStreams),
		maxUnary:     int64(cfg.MaxUnaryCalls),
		firstMessage: cfg.StreamFirstMessageTimeout,
		idle:         cfg.StreamIdleTimeout,
		timer:        cfg.timer,
	}
	// Limits come after error mapping (a refusal carries its ErrorInfo and is
	// logged once, like any failed RPC) and before everything that costs.
	// Unary calls: the same chain, with neighbouring built-ins run by one interceptor each
	// (recover and log, map error and limits, privacy and validation): grpc-go allocates a
	// closure per link of the chain and call.
	unary := []grpc.UnaryServerInterceptor{ic.unaryRecoverLog}
	streams := []grpc.StreamServerInterceptor{ic.streamRecover, ic.streamLog}
	if mu, ms := cfg.Metrics.ServerInterceptors(); mu != nil {
		unary, streams = append(unary, mu), append(streams, ms)
	}
	unary = append(unary, lim.unaryMapErrorLimit)
	if cfg.AuthUnaryInterceptor != nil {
		unary = append(unary, cfg.AuthUnaryInterceptor)
	}
	unary = append(append(unary, ic.unaryGuard), cfg.UnaryInterceptors...)
	streams = append(streams, ic.streamMapError, lim.streamLimit)
	if cfg.AuthStreamInterceptor != nil {
		streams = append(streams, cfg.AuthStreamInterceptor)
	}
	streams = append(append(streams, ic.streamPrivacy, ic.streamValidate), cfg.StreamInterceptors...)
	// A span per call, in the caller's trace, when traces are on; the caller's trace context
	// (unaryRecoverLog, streamRecover: tracing.Incoming) in any case.
	opts := append(tracing.ServerOptions(),
		grpc.MaxRecvMsgSize(cfg.MaxRecvBytes),
		grpc.MaxSendMsgSize(cfg.MaxSendBytes),
		grpc.MaxConcurrentStreams(cfg.MaxConcurrentStreams),
		grpc.KeepaliveEnforcementPolicy(*cfg.KeepaliveEnforcement),
		grpc.KeepaliveParams(*cfg.KeepaliveParams),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(streams...),
		// The proto codec, but a string that is not valid UTF-8 reaches the
		// validation interceptor instead of failing as INTERNAL (codec.go).
		grpc.ForceServerCodecV2(newServerCodec()),
	)
	opts = append(opts, cfg.ServerOptions...)
	s.grpc = grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	registerReflection(s.grpc, cfg.ReflectionDescriptors)
	if cfg.Storage != nil {
		cfg.Storage.NotifyFull(s.storageChanged)
	}
	return s
}

func storageStatus(full bool) healthpb.HealthCheckResponse_ServingStatus {
	if full {
		return healthpb.HealthCheckResponse_NOT_SERVING
	}
	return healthpb.HealthCheckResponse_SERVING
}

// storageChanged reports a change of the storage state, once SetServing was called.
func (s *Server) storageChanged(full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.serving {
		s.health.SetServingStatus(StorageHealthService, storageStatus(full))
	}
}

// GRPC returns the underlying server, to register services on.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// Health returns the server's health service, to serve it on a second
// listener as well (Kubernetes gRPC probes cannot present a client
// certificate to an mTLS port). It follows SetServing and Stop.
func (s *Server) Health() *health.Server { return s.health }

// SetServing marks the given services, and the whole server (""), SERVING
// in the health service. With no arguments it marks every service
// registered on GRPC(). With Config.Storage it also starts reporting
// StorageHealthService. It has no effect once Stop has begun.
func (s *Server) SetServing(services ...string) {
	if len(services) == 0 {
		for name := range s.grpc.GetServiceInfo() {
			services = append(services, name)
		}
	}
	for _, name := range services {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serving = true
	s.health.SetServingStatus("", s.wholeLocked())
	if s.cfg.Storage != nil {
		s.health.SetServingStatus(StorageHealthService, storageStatus(s.cfg.Storage.Full()))
	}
}

// SetReady holds the server as a whole ("") NOT_SERVING while ready is false
// for some reason, and lets it be SERVING again (once SetServing was called)
// when every reason given is ready again: a coordination node behind its
// replicated log still answers, but clients balancing over several nodes by
// their health (peers.Dial with a list) and readiness probes move to the
// others. The services' own names are not touched. No effect once Stop has
// begun.
func (s *Server) SetReady(reason string, ready bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ready {
		delete(s.unready, reason)
	} else {
		if s.unready == nil {
			s.unready = map[string]bool{}
		}
		s.unready[reason] = true
	}
	if s.serving {
		s.health.SetServingStatus("", s.wholeLocked())
	}
}

// wholeLocked is the status of "" once serving; s.mu is held.
func (s *Server) wholeLocked() healthpb.HealthCheckResponse_ServingStatus {
	if len(s.unready) > 0 {
		return healthpb.HealthCheckResponse_NOT_SERVING
	}
	return healthpb.HealthCheckResponse_SERVING
}

// Draining is closed when Stop begins. Long-lived streaming handlers should
// select on it and return (e.g. UNAVAILABLE), so that the graceful stop does
// not wait for them until ShutdownTimeout.
func (s *Server) Draining() <-chan struct{} { return s.draining }

// Serve accepts connections on lis, at most Config.MaxConnections at once,
// until Stop. It returns nil after Stop.
func (s *Server) Serve(lis net.Listener) error {
	s.lg.Info("serving grpc", zap.String("address", lis.Addr().String()),
		zap.Int("max_connections", s.cfg.MaxConnections), zap.Int("max_streams", s.cfg.MaxStreams),
		zap.Int("max_unary_calls", s.cfg.MaxUnaryCalls))
	return s.grpc.Serve(&connLimitListener{
		Listener:    lis,
		max:         int64(s.cfg.MaxConnections),
		userTimeout: userTimeout(*s.cfg.KeepaliveParams),
		lg:          s.lg,
		closed:      s.cfg.connClosed,
	})
}

// userTimeout is the TCP_USER_TIMEOUT grpc-go gives its connections for kp
// (http2_server.go: the keepalive timeout, default 20s, unless keepalive is off).
func userTimeout(kp keepalive.ServerParameters) time.Duration {
	if kp.Time == time.Duration(math.MaxInt64) {
		return 0
	}
	if kp.Timeout == 0 {
		return 20 * time.Second
	}
	return kp.Timeout
}

// Stop stops the server: health turns NOT_SERVING for every service (so
// load balancers and watchers move away), Draining is closed, no new RPCs
// are accepted and in-flight ones may finish until ctx is done or
// ShutdownTimeout passes, whichever is first; then remaining RPCs are
// cancelled and connections closed. Stop is safe to call more than once and
// concurrently; later calls wait for the first to finish.
func (s *Server) Stop(ctx context.Context) {
	s.stopOnce.Do(func() {
		start := time.Now()
		s.health.Shutdown()
		close(s.draining)
		ctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownTimeout)
		defer cancel()
		done := make(chan struct{})
		go func() {
			s.grpc.GracefulStop()
			close(done)
		}()
		select {
		case <-done:
			s.lg.Info("stopped grpc server", zap.Duration("duration", time.Since(start)))
		case <-ctx.Done():
			s.grpc.Stop()
			<-done
			s.lg.Warn("graceful stop timed out, cancelled remaining rpcs",
				zap.Duration("duration", time.Since(start)))
		}
	})
}

// Run serves on lis until ctx is cancelled, then stops gracefully (see Stop)
// and returns nil. If serving fails first, Run returns that error.
func (s *Server) Run(ctx context.Context, lis net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(lis) }()
	select {
	case err := <-errc:
		s.Stop(context.Background())
		return err
	case <-ctx.Done():
	}
	s.Stop(context.WithoutCancel(ctx))
	if err := <-errc; !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	// Stopped before Serve started: not a failure.
	return nil
}

// registerReflection registers server reflection (v1 and v1alpha). With docs, descriptors are
// looked up there first, then in those linked into the binary (health, reflection itself).
func registerReflection(s *grpc.Server, docs protodesc.Resolver) {
	if docs == nil {
		reflection.Register(s)
		return
	}
	opts := reflection.ServerOptions{Services: s, DescriptorResolver: fallbackResolver{docs, protoregistry.GlobalFiles}}
	reflectionv1.RegisterServerReflectionServer(s, reflection.NewServerV1(opts))
	reflectionv1alpha.RegisterServerReflectionServer(s, reflection.NewServer(opts))
}

// fallbackResolver looks a descriptor up in first, then in second.
type fallbackResolver struct{ first, second protodesc.Resolver }

func (r fallbackResolver) FindFileByPath(path string) (protoreflect.FileDescriptor, error) {
	if fd, err := r.first.FindFileByPath(path); err == nil {
		return fd, nil
	}
	return r.second.FindFileByPath(path)
}

func (r fallbackResolver) FindDescriptorByName(name protoreflect.FullName) (protoreflect.Descriptor, error) {
	if d, err := r.first.FindDescriptorByName(name); err == nil {
		return d, nil
	}
	return r.second.FindDescriptorByName(name)
}

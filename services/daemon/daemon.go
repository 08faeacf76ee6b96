// Package daemon runs one labourlink service as a process: it reads the configuration (flags
// and LABOURLINK_* environment variables), opens the service's bbolt file, builds the gRPC
// server, registers the region with the coordination service, and stops gracefully when its
// context ends (SIGINT/SIGTERM in the binaries). The three binaries in cmd/ and
// `labourlink serve` are thin wrappers around Main.
package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/eastwest/labourlink/services/platform/i18n"
	"golang.org/x/text/language"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/eastwest/labourlink/proto/labourlink"
	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/coordination"
	"github.com/eastwest/labourlink/services/coordination/eligibility"
	"github.com/eastwest/labourlink/services/coordination/ledger"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/platform/backup"
	"github.com/eastwest/labourlink/services/platform/grpcserver"
	"github.com/eastwest/labourlink/services/platform/identity"
	"github.com/eastwest/labourlink/services/platform/metrics"
	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/platform/readiness"
	"github.com/eastwest/labourlink/services/platform/replog"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/platform/tracing"
	"github.com/eastwest/labourlink/services/platform/version"
	"github.com/eastwest/labourlink/services/receiving"
	"github.com/eastwest/labourlink/services/sending"
)

// service is what the three service packages provide to the daemon.
type service interface {
	// ServiceNames are the gRPC service names, for health.
	ServiceNames() []string
	// Register registers the gRPC services.
	Register(gs *grpc.Server)
	// Run does background work until ctx ends.
	Run(ctx context.Context) error
}

// Main parses args for a service of kind k and runs it until ctx ends. Logs go to logOut as
// JSON lines.
func Main(ctx context.Context, k Kind, program string, args []string, logOut io.Writer) error {
	return MainIn(ctx, i18n.FromEnv(os.Getenv), k, program, args, logOut)
}

// MainIn is Main with the help of -h in lang (ParseFlagsIn).
func MainIn(ctx context.Context, lang language.Tag, k Kind, program string, args []string, logOut io.Writer) error {
	cfg, err := ParseFlagsIn(lang, k, program, args, logOut)
	if err != nil {
		return err
	}
	lg, err := NewLogger(cfg.LogLevel, logOut)
	if err != nil {
		return err
	}
	defer func() { _ = lg.Sync() }()
	return Run(ctx, cfg, lg)
}

// NewLogger returns a JSON logger at level writing to w.
func NewLogger(level string, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(zapcore.AddSync(w)), lvl)
	return zap.New(core, zap.AddCaller()), nil
}

// traceFlushTimeout bounds the flush of the traces at the end of Run.
const traceFlushTimeout = 5 * time.Second

// Run runs the service described by cfg until ctx ends, then stops it gracefully.
func Run(ctx context.Context, cfg Config, lg *zap.Logger) error {
	lg = lg.With(zap.String("service", string(cfg.Kind)))
	if cfg.Region != "" {
		lg = lg.With(zap.String("region", cfg.Region))
	}
	// Traces (OTEL_* variables; off by default) are flushed last, after the graceful stop.
	stopTraces, err := tracing.Setup(ctx, string(cfg.Kind), cfg.Region, lg)
	if err != nil {
		return err
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), traceFlushTimeout)
		defer cancel()
		if err := stopTraces(fctx); err != nil {
			lg.Warn("flush traces", zap.Error(err))
		}
	}()
	sec, err := transportSecurity(cfg, lg)
	if err != nil {
		return err
	}
	defer sec.close()
	reg := newMetrics(cfg)
	peerOpts := sec.peers
	peerOpts.Metrics = reg // the calls to other services are counted too

	// lg already names the service; grpcserver.Config.ServiceName stays empty so that log lines
	// do not carry the field twice.
	docs, err := labourlink.Files()
	if err != nil {
		return err
	}
	db, err := openStore(cfg, lg)
	if err != nil {
		return err
	}
	defer func() {
		if err := db.Close(); err != nil {
			lg.Error("close data file", zap.Error(err))
		}
	}()
	srv := grpcserver.New(cfg.withLimits(grpcserver.Config{
		ReflectionDescriptors: docs,
		ShutdownTimeout:       cfg.ShutdownTimeout,
		ServerOptions:         sec.serverOptions,
		AuthUnaryInterceptor:  sec.unary,
		AuthStreamInterceptor: sec.stream,
		UnaryInterceptors:     []grpc.UnaryServerInterceptor{readiness.Interceptor(db.InstanceID())},
		Storage:               db, // health "labourlink.storage" follows a full disk
		Metrics:               reg,
	}), lg)
	db.Observe(reg)
	// The service is told when the graceful stop begins (srv.Draining), so that streams waiting
	// for their clients (imports) end at once instead of holding the stop until its timeout, and
	// publishes the health of its links in srv's health service.
	var replLog *replog.Log
	if cfg.Kind == Coordination && cfg.Replication == ReplicationNATS {
		node, l, err := startReplication(ctx, cfg, lg)
		if err != nil {
			return err
		}
		// Deferred before the server's stop: they run after it.
		defer node.Shutdown()
		defer l.Close()
		replLog = l
	}
	ready := func(ok bool) { srv.SetReady(coordination.ReplicationHealthName, ok) }
	svc, err := newService(db, cfg, peerOpts, reg, linkHealth(srv), ready, srv.Draining(), replLog, lg)
	if err != nil {
		return err
	}
	svc.Register(srv.GRPC())
	backup.NewServer(db, lg).Register(srv.GRPC())
	reg.InitializeServer(srv.GRPC())
	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	stopHealth, err := serveHealth(cfg, srv, lg)
	if err != nil {
		_ = lis.Close()
		return err
	}
	defer stopHealth()
	metricsAddr, stopMetrics, err := serveMetrics(cfg, reg, lg)
	if err != nil {
		_ = lis.Close()
		return err
	}
	// Stopped after the gRPC server (deferred): the last scrape sees the graceful stop.
	defer stopMetrics()
	// After every registration: the transcoder serves the methods registered so far.
	httpSrv, err := serveHTTP(cfg, srv, svc, sec.httpTLS, lg)
	if err != nil {
		_ = lis.Close()
		return err
	}
	defer httpSrv.drain() // after a failed start; a no-op after the drain below
	if cfg.Advertise == cfg.Listen && portZero(cfg.Listen) {
		cfg.Advertise = lis.Addr().String() // register the port the kernel chose
	}
	srv.SetServing(append(svc.ServiceNames(), backup.ServiceName)...)
	lg.Info("serving", zap.String("listen", lis.Addr().String()), zap.String("data_file", db.Path()),
		zap.String("instance", db.InstanceID()), zap.String("version", version.String()))
	if cfg.ReadyFile != "" {
		if err := readiness.Write(cfg.ReadyFile, readiness.Ready{PID: os.Getpid(), Kind: string(cfg.Kind), Listen: lis.Addr().String(),
			Instance: db.InstanceID(), DataFile: db.Path(), Metrics: metricsAddr, HTTP: httpSrv.Addr()}); err != nil {
			_ = lis.Close()
			return err
		}
		defer os.Remove(cfg.ReadyFile)
	}

	// Background work ends with ctx too, at the same time as the server begins its graceful
	// stop: long-lived streams (feed watches) that select on the service's context end at once
	// instead of holding the stop until its timeout.
	bgCtx, cancelBG := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := svc.Run(bgCtx); err != nil && !errors.Is(err, context.Canceled) {
			lg.Error("background work stopped", zap.Error(err))
		}
	}()
	if cfg.RequestIDRetention > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pruneLoop(bgCtx, db, cfg.RequestIDRetention, lg)
		}()
	}
	if cfg.Kind != Coordination && cfg.Coordination != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			registerLoop(bgCtx, cfg, peerOpts, lg)
		}()
	}
	// The HTTP listener drains first, then the gRPC server stops gracefully (httpServer.drain).
	grpcCtx, stopGRPC := context.WithCancel(context.WithoutCancel(ctx))
	defer stopGRPC()
	go func() {
		select {
		case <-ctx.Done():
			httpSrv.drain()
			stopGRPC()
		case <-grpcCtx.Done():
		}
	}()
	err = srv.Run(grpcCtx, lis)
	cancelBG()
	wg.Wait()
	lg.Info("stopped")
	return err
}

// portZero reports whether addr asks the kernel for a port (host:0).
func portZero(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port == "0"
}

// linkHealth returns the function with which background loops publish the health of a link
// to another service under its own name (peers.LinkHealthName) in the health service of srv.
// The service's own names are not touched: a service whose peer is down still serves, and a
// load balancer must not take it out (the link names are for operators' alerts). After Stop
// begins, the health service ignores the updates: everything stays NOT_SERVING.
func linkHealth(srv *grpcserver.Server) func(name string, serving bool) {
	return func(name string, serving bool) {
		st := healthpb.HealthCheckResponse_NOT_SERVING
		if serving {
			st = healthpb.HealthCheckResponse_SERVING
		}
		srv.Health().SetServingStatus(name, st)
	}
}

// openStore opens the data file of the service of cfg.Kind.
func openStore(cfg Config, lg *zap.Logger) (*store.DB, error) {
	var schema store.Schema
	switch cfg.Kind {
	case Sending:
		schema = sending.Schema
	case Receiving:
		schema = receiving.Schema
	case Coordination:
		schema = coordination.Schema
	default:
		return nil, fmt.Errorf("unknown service kind %q", cfg.Kind)
	}
	return store.Open(cfg.DataFile(), schema, lg)
}

// newService builds the service of cfg.Kind over db; health publishes the health of its links
// (sending); ready holds the server as a whole out of balancing (a replicated coordination
// node not current: coordination.Config.Ready); draining is closed when the gRPC server begins
// its graceful stop.
func newService(db *store.DB, cfg Config, peerOpts peers.Options, reg *metrics.Registry, health func(name string, serving bool), ready func(bool), draining <-chan struct{}, replLog *replog.Log, lg *zap.Logger) (service, error) {
	switch cfg.Kind {
	case Sending:
		return sending.New(db, lg, sending.Config{Region: cfg.Region, Coordination: cfg.Coordination, Receiving: cfg.Receiving, Peers: peerOpts,
			Seats: sending.Seats{Bus: cfg.SeatsBus, Train: cfg.SeatsTrain, Flight: cfg.SeatsFlight}, Health: health, Draining: draining,
			Metrics: reg, LedgerWatch: watchConfig(cfg)})
	case Receiving:
		return receiving.New(db, lg, receiving.Config{Region: cfg.Region, Coordination: cfg.Coordination, Peers: peerOpts, FeedRetention: cfg.FeedRetention,
			Draining: draining, Metrics: reg, Health: health, LedgerWatch: watchConfig(cfg)})
	case Coordination:
		keyFile := cfg.LedgerKey
		if keyFile == "" {
			keyFile = filepath.Join(cfg.DataDir, ledger.KeyFileName)
		}
		key, err := ledger.LoadOrCreateKey(keyFile)
		if err != nil {
			return nil, err
		}
		var rules *eligibility.Rules // nil: the project's rules
		if cfg.SubsidyRules != "" {
			if rules, err = eligibility.Load(cfg.SubsidyRules); err != nil {
				return nil, fmt.Errorf("-subsidy-rules: %w", err)
			}
			lg.Info("subsidy rules", zap.String("file", cfg.SubsidyRules), zap.Strings("rules", rules.IDs()))
		}
		return coordination.New(db, lg, coordination.Config{GracePeriod: cfg.GracePeriod, LoadDefaultPairings: cfg.LoadDefaultPairings,
			Metrics: reg, LedgerKey: key, SubsidyRules: rules, Health: health, Log: replLog, Replica: cfg.ReplicaName, Ready: ready})
	}
	return nil, fmt.Errorf("unknown service kind %q", cfg.Kind)
}

// ReplicationStream is the JetStream stream of the replicated coordination's commands.
const ReplicationStream = "LABOURLINK_COORDINATION"

// startReplication starts this coordination node's embedded NATS server (its files in the data
// directory's nats/) and opens the replicated log on it; Open waits until the cluster has a
// quorum.
func startReplication(ctx context.Context, cfg Config, lg *zap.Logger) (*replog.Node, *replog.Log, error) {
	clusterName := ""
	if cfg.NATSCluster != "" {
		clusterName = "labourlink-coordination"
	}
	// With TLS the routes are mTLS too: the node's own certificate both ways, and the other end
	// must present the coordination service's certificate of the same CA.
	var routeTLS *tls.Config
	if cfg.TLS.Enabled() && clusterName != "" {
		var err error
		if routeTLS, err = identity.PeerTLS(cfg.TLS.CAFile, cfg.TLS.CertFile, cfg.TLS.KeyFile, identity.Coordination()); err != nil {
			return nil, nil, fmt.Errorf("the replicated log's routes: %w", err)
		}
	} else if clusterName != "" {
		lg.Warn("the routes between the coordination nodes are plaintext (they are mTLS with -tls-ca, -tls-cert and -tls-key): keep them on a private network")
	}
	node, err := replog.StartNode(replog.NodeOptions{
		Name: cfg.ReplicaName, StoreDir: filepath.Join(cfg.DataDir, "nats"), ClientListen: cfg.NATSListen,
		ClusterName: clusterName, ClusterListen: cfg.NATSCluster, Routes: cfg.NATSRoutes, ClusterTLS: routeTLS, Logger: lg.Named("nats"),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("start the replicated log's node: %w", err)
	}
	lg.Info("replicated log node started", zap.String("replica", cfg.ReplicaName), zap.String("nats", node.ClientURL()),
		zap.Strings("routes", cfg.NATSRoutes), zap.Bool("routes_mtls", routeTLS != nil), zap.Int("replicas", cfg.NATSReplicas))
	l, err := replog.Open(ctx, []string{node.ClientURL()}, ReplicationStream, cfg.NATSReplicas,
		replog.WithLogger(lg), replog.WithName(cfg.ReplicaName))
	if err != nil {
		node.Shutdown()
		return nil, nil, fmt.Errorf("open the replicated log: %w", err)
	}
	return node, l, nil
}

// watchConfig is the ledger watch of a regional service (ledgerclient.WatchConfig) from cfg.
func watchConfig(cfg Config) ledgerclient.WatchConfig {
	return ledgerclient.WatchConfig{PublicKey: cfg.LedgerPublicKey, Interval: cfg.LedgerCheckInterval, LeavesPerCheck: cfg.LedgerCheckEvents}
}

// pruneInterval is how often the remembered responses of old request ids are pruned.
const pruneInterval = time.Hour

// pruneLoop deletes the responses remembered for request ids older than retention, at start and
// every pruneInterval, until ctx ends.
func pruneLoop(ctx context.Context, db *store.DB, retention time.Duration, lg *zap.Logger) {
	for {
		n, err := store.PruneIdempotency(db, time.Now().Add(-retention))
		switch {
		case err != nil:
			lg.Error("prune request ids", zap.Error(err))
		case n > 0:
			lg.Info("pruned request ids", zap.Int("count", n), zap.Duration("retention", retention))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pruneInterval):
		}
	}
}

// registerInterval is how often a regional service refreshes its registry entry.
const registerInterval = time.Minute

// registerLoop registers the region's endpoint with the coordination service at start (retrying
// until it succeeds) and refreshes it every registerInterval.
func registerLoop(ctx context.Context, cfg Config, po peers.Options, lg *zap.Logger) {
	cc, err := peers.Dial(cfg.Coordination, po.Expecting(identity.Coordination()))
	if err != nil {
		lg.Error("cannot reach the coordination service", zap.Error(err))
		return
	}
	defer cc.Close()
	client := coordinationv1.NewRegistryServiceClient(cc)
	role := commonv1.RegionRole_REGION_ROLE_SENDING
	if cfg.Kind == Receiving {
		role = commonv1.RegionRole_REGION_ROLE_RECEIVING
	}
	backoff := 200 * time.Millisecond
	registered := false
	for {
		callCtx, cancel := po.WithTimeoutFor(ctx, 1)
		_, err := client.RegisterRegion(callCtx, &coordinationv1.RegisterRegionRequest{
			Region: &coordinationv1.Region{Code: cfg.Region, Role: role, Endpoint: cfg.Advertise},
		})
		cancel()
		wait := registerInterval
		switch {
		case err == nil && !registered:
			registered = true
			lg.Info("registered with the coordination service", zap.String("endpoint", cfg.Advertise))
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			lg.Warn("register with the coordination service failed; retrying", zap.Error(err), zap.Duration("retry_in", backoff))
			wait = backoff
			backoff = min(backoff*2, 30*time.Second)
		}
		if err == nil {
			backoff = 200 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

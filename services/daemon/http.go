package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"connectrpc.com/vanguard"
	"connectrpc.com/vanguard/vanguardgrpc"
	"go.uber.org/zap"

	"github.com/eastwest/labourlink/services/platform/grpcserver"
)

// DashboardPath is where the HTTP listener mounts a service's dashboard (a service that
// implements Dashboarder).
const DashboardPath = "/dashboard/"

// Dashboarder is implemented by a service that serves a web page on the HTTP listener, at
// DashboardPath. The handler authorises its callers itself, from r.TLS (with mTLS on, the
// listener has already verified the client certificate against the federation CA).
type Dashboarder interface {
	Dashboard() http.Handler
}

// httpShutdownTimeout bounds the drain of the HTTP listener when ShutdownTimeout is not set.
const httpShutdownTimeout = 10 * time.Second

// httpServer is the HTTP/JSON listener of a service (-http-addr): every gRPC method of the
// service's gRPC server in the Connect protocol (JSON or binary; unary calls as plain POSTs
// of JSON), gRPC-Web and gRPC, through connectrpc.com/vanguard, which hands each call to
// grpc.Server.ServeHTTP. The calls go through the same interceptors as on the gRPC port
// (recovery, logging, limits, validation, authorisation, metrics, error details); with mTLS
// the listener requires and verifies a client certificate of the federation CA, and grpc-go
// takes the caller's identity from r.TLS as it does from the gRPC connection.
type httpServer struct {
	hs      *http.Server
	addr    string
	timeout time.Duration
	lg      *zap.Logger
}

// serveHTTP serves srv's methods (and svc's dashboard, when it has one) over HTTP on
// cfg.HTTPAddr, with TLS when tlsConfig is set. Call it after every service is registered on
// srv. Without HTTPAddr it does nothing and returns nil.
func serveHTTP(cfg Config, srv *grpcserver.Server, svc any, tlsConfig *tls.Config, lg *zap.Logger) (*httpServer, error) {
	if cfg.HTTPAddr == "" {
		return nil, nil
	}
	maxBytes := uint32(grpcserver.DefaultMaxRecvBytes)
	transcoder, err := vanguardgrpc.NewTranscoder(srv.GRPC(), vanguard.WithDefaultServiceOptions(
		vanguard.WithMaxMessageBufferBytes(maxBytes),
	))
	if err != nil {
		return nil, fmt.Errorf("http listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", transcoder)
	if d, ok := svc.(Dashboarder); ok {
		mux.Handle(DashboardPath, d.Dashboard())
	}
	lis, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (-http-addr): %w", cfg.HTTPAddr, err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: 64 << 10, ErrorLog: zap.NewStdLog(lg.Named("http"))}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
		c := tlsConfig.Clone()
		c.NextProtos = []string{"h2", "http/1.1"}
		hs.TLSConfig = c
		protocols.SetHTTP2(true)
		lis = tls.NewListener(lis, c)
	} else {
		protocols.SetUnencryptedHTTP2(true) // h2c, for gRPC clients and Connect over HTTP/2
	}
	hs.Protocols = &protocols
	h := &httpServer{hs: hs, addr: lis.Addr().String(), timeout: cfg.ShutdownTimeout, lg: lg}
	if h.timeout <= 0 {
		h.timeout = httpShutdownTimeout
	}
	go func() {
		if err := hs.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			lg.Error("http listener stopped", zap.Error(err))
		}
	}()
	lg.Info("serving http", zap.String("http_addr", h.addr), zap.String("scheme", scheme),
		zap.Bool("dashboard", hasDashboard(svc)))
	return h, nil
}

func hasDashboard(svc any) bool {
	_, ok := svc.(Dashboarder)
	return ok
}

// Addr is the address the listener holds ("" for a nil server).
func (h *httpServer) Addr() string {
	if h == nil {
		return ""
	}
	return h.addr
}

// drain stops accepting connections and waits, at most the shutdown timeout, for the calls in
// flight to end; then it closes what is left. It runs BEFORE the gRPC server's graceful stop:
// grpc-go's GracefulStop closes the transports of ServeHTTP at once (cancelling their calls),
// so the HTTP calls are let finish first.
func (h *httpServer) drain() {
	if h == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	if err := h.hs.Shutdown(ctx); err != nil {
		h.lg.Warn("http listener: graceful stop timed out, closing open calls", zap.Error(err))
		_ = h.hs.Close()
	}
}

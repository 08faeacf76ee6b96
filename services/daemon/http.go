package daemon

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
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

// The bounds of the HTTP listener: a client has httpReadHeaderTimeout to send a request's
// headers (httpMaxHeaderBytes at most, or 431), and an idle keep-alive connection is closed after
// httpIdleTimeout. The connections open at once are bounded by -max-connections (the gRPC
// port's flag, a separate budget), the streams of one HTTP/2 connection as on the gRPC port, and
// a unary request's body by the gRPC port's message limit (limitUnaryBody).
const (
	httpReadHeaderTimeout = 10 * time.Second
	httpIdleTimeout       = 2 * time.Minute
	httpMaxHeaderBytes    = 64 << 10
)

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
	mux.Handle("/", limitUnaryBody(connectUnaryByDefault(transcoder), int64(maxBytes)))
	if d, ok := svc.(Dashboarder); ok {
		mux.Handle(DashboardPath, d.Dashboard())
	}
	lis, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (-http-addr): %w", cfg.HTTPAddr, err)
	}
	lis = grpcserver.LimitConnections(lis, cfg.MaxConnections, lg.Named("http"))
	// No ReadTimeout or WriteTimeout: they would cut the long streams (feed watches, imports)
	// the listener also carries; a stream's idleness is bounded by the gRPC server's stream
	// timeouts, its count by MaxStreams, as on the gRPC port.
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: httpReadHeaderTimeout, IdleTimeout: httpIdleTimeout,
		MaxHeaderBytes: httpMaxHeaderBytes, ErrorLog: zap.NewStdLog(lg.Named("http")),
		HTTP2: &http.HTTP2Config{MaxConcurrentStreams: grpcserver.DefaultMaxConcurrentStreams}}
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

// connectUnaryByDefault marks a POST of JSON or protobuf without a Connect-Protocol-Version
// header as a Connect unary call (version 1), so that `curl -d '{...}' URL/pkg.Service/Method`
// works without the header: vanguard would take it for a REST call, and the services have no
// REST routes.
func connectUnaryByDefault(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.Header.Get("Connect-Protocol-Version") == "" {
			switch ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); strings.TrimSpace(ct) {
			case "application/json", "application/proto":
				r.Header.Set("Connect-Protocol-Version", "1")
			}
		}
		next.ServeHTTP(w, r)
	})
}

// limitUnaryBody refuses a unary call (a POST of application/json or application/proto,
// Connect's unary form) whose body is larger than max, the gRPC port's message limit: with
// HTTP 413 and a Connect error resource_exhausted when its Content-Length says so, before
// reading it; a body of unknown length is cut at max (the call then fails). Streams are bounded
// message by message (each envelope at most the message limit) by vanguard and grpc-go.
func limitUnaryBody(next http.Handler, max int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			switch ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); strings.TrimSpace(ct) {
			case "application/json", "application/proto":
				if r.ContentLength > max {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusRequestEntityTooLarge)
					msg, _ := json.Marshal(fmt.Sprintf("the request body is %d bytes; this server takes at most %d in one message (send a large import as a stream of smaller messages)", r.ContentLength, max))
					fmt.Fprintf(w, `{"code":"resource_exhausted","message":%s}`, msg)
					return
				}
				r.Body = http.MaxBytesReader(w, r.Body, max)
			}
		}
		next.ServeHTTP(w, r)
	})
}

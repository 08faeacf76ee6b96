package daemon

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/eastwest/labourlink/services/coordination/registryclient"
	"github.com/eastwest/labourlink/services/platform/authz"
	"github.com/eastwest/labourlink/services/platform/grpcserver"
	"github.com/eastwest/labourlink/services/platform/identity"
	"github.com/eastwest/labourlink/services/platform/peers"
)

// security is what the TLS configuration gives a process: credentials for its server and for
// its calls to other services, and the authorisation interceptors.
type security struct {
	// peers are the options of outgoing calls (client certificate, CA).
	peers peers.Options
	// serverOptions carry the server's credentials.
	serverOptions []grpc.ServerOption
	// unary and stream authorise every call; nil without TLS.
	unary  grpc.UnaryServerInterceptor
	stream grpc.StreamServerInterceptor
	// httpTLS is the server TLS configuration of the HTTP listener (the gRPC port's: client
	// certificates of the federation CA required); nil without TLS.
	httpTLS *tls.Config
	// close releases what the authoriser holds (its registry connection).
	close func()
}

// Self is the identity a service of cfg presents: its certificate must name it.
func Self(cfg Config) identity.Identity {
	switch cfg.Kind {
	case Sending:
		return identity.Sending(cfg.Region)
	case Receiving:
		return identity.Receiving(cfg.Region)
	default:
		return identity.Coordination()
	}
}

// transportSecurity returns the credentials and authorisation of cfg. Without TLS everything
// is plaintext and authorisation is off, which it says in the log. With TLS the server
// requires a client certificate of the federation's CA (TLS 1.3), outgoing calls present the
// service's own certificate, and every call is authorised by services/platform/authz; the certificate
// must name this service (`labourlink://region/520000/sending` for the sending service of
// 520000), so that a service cannot start with another party's identity.
func transportSecurity(cfg Config, lg *zap.Logger) (security, error) {
	if !cfg.TLS.Enabled() {
		lg.Warn("tls is off: every caller may call every method (authorisation needs -tls-ca, -tls-cert and -tls-key)")
		return security{peers: peers.Options{Deadlines: cfg.Deadlines()}, close: func() {}}, nil
	}
	t := cfg.TLS
	self := Self(cfg)
	own, err := identity.ParseFile(t.CertFile)
	if err != nil {
		return security{}, fmt.Errorf("-tls-cert: %w", err)
	}
	if own != self {
		return security{}, fmt.Errorf("-tls-cert %s is the certificate of %s, not of this service (%s)", t.CertFile, own, self)
	}
	serverTLS, err := identity.ServerTLS(t.CAFile, t.CertFile, t.KeyFile)
	if err != nil {
		return security{}, err
	}
	clientTLS, err := identity.ClientTLS(t.CAFile, t.CertFile, t.KeyFile)
	if err != nil {
		return security{}, err
	}
	sec := security{
		peers:         peers.Options{TLS: clientTLS, Deadlines: cfg.Deadlines()},
		serverOptions: []grpc.ServerOption{grpc.Creds(credentials.NewTLS(serverTLS))},
		httpTLS:       serverTLS.Clone(),
		close:         func() {},
	}
	var pairings authz.Pairings
	source := "default pairing table"
	if cfg.Kind == Receiving && cfg.Coordination != "" {
		cc, err := peers.Dial(cfg.Coordination, sec.peers.Expecting(identity.Coordination()))
		if err != nil {
			return security{}, err
		}
		sec.close = func() { _ = cc.Close() }
		pairings = registryclient.New(cc).WithDeadlines(sec.peers.Deadlines)
		source = "coordination registry"
	}
	az, err := authz.New(self, pairings)
	if err != nil {
		sec.close()
		return security{}, err
	}
	sec.unary, sec.stream = az.UnaryInterceptor(), az.StreamInterceptor()
	fields := []zap.Field{zap.Stringer("identity", self)}
	if cfg.Kind == Receiving {
		fields = append(fields, zap.String("pairings", source))
	}
	lg.Info("mtls on: callers need a certificate of the federation ca; authorisation on", fields...)
	return sec, nil
}

// serveHealth serves the health service of srv alone, in plaintext, on cfg.HealthListen (for
// Kubernetes gRPC probes, which cannot present a client certificate). It returns a function
// that stops it; without HealthListen it does nothing.
func serveHealth(cfg Config, srv *grpcserver.Server, lg *zap.Logger) (stop func(), err error) {
	if cfg.HealthListen == "" {
		return func() {}, nil
	}
	lis, err := net.Listen("tcp", cfg.HealthListen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (-health-listen): %w", cfg.HealthListen, err)
	}
	hs := grpc.NewServer()
	healthpb.RegisterHealthServer(hs, srv.Health())
	go func() {
		if err := hs.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			lg.Error("health listener stopped", zap.Error(err))
		}
	}()
	lg.Info("serving health checks", zap.String("health_listen", lis.Addr().String()))
	return hs.Stop, nil
}

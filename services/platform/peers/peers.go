// Package peers is the one way a labourlink service (or the CLI) opens a connection to another
// service: grpc.NewClient (no blocking dial), keepalive, message limits, a retry policy for
// UNAVAILABLE, a trace span per call that carries the trace context to the peer
// (services/platform/tracing), and the transport credentials of the federation.
//
// With TLS a service says which party it means to reach (Options.Expect, or Expecting): the
// handshake then fails unless the server's certificate names that identity, so that a
// certificate of the federation at the dialled address is not enough (see
// identity.ExpectServer). The call fails UNAVAILABLE, naming the expected and the presented
// identity, and is retried like any unavailability.
//
// Retrying is safe for every labourlink RPC: reads are idempotent and every mutation carries a
// request id (or, for ledger reports, event ids), so a repeat returns the first result.
//
// Two mechanisms bound a call, and they do different jobs:
//
//   - Keepalive finds a dead peer. A connection that has read nothing for KeepaliveTime (10 s)
//     sends a ping; unanswered within KeepaliveTimeout (5 s) the connection is closed and every
//     call and stream on it fails UNAVAILABLE (calls are then retried on a new connection). A
//     blackholed link is therefore seen within about 15 s, whatever the calls' deadlines.
//   - The deadline (Deadlines, CallTimeout, WithTimeoutFor) bounds a call to a peer that is alive
//     but slow. It must fit the link and the work: Base allows for the link's round trips (a new
//     TLS connection over a link with 5 s latency each way costs about four round trips of 10 s
//     before the request is answered), PerItem for each item the call carries or asks for (the
//     candidates of a submission, the events of a report, the page size of a listing). A fixed
//     short deadline fails every call of a slow link although the peer answers.
package peers

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	// The client side of grpc.health.v1, which healthCheckConfig (multiServiceConfig) uses.
	_ "google.golang.org/grpc/health"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/eastwest/labourlink/services/platform/identity"
	"github.com/eastwest/labourlink/services/platform/metrics"
	"github.com/eastwest/labourlink/services/platform/tracing"
)

// Defaults of Deadlines and of the client keepalive.
const (
	// DefaultCallBase is the deadline of a call that carries no items: six round trips of a link
	// with 5 s latency each way.
	DefaultCallBase = 60 * time.Second
	// DefaultCallPerItem is added for each item a call carries or asks for.
	DefaultCallPerItem = 10 * time.Millisecond
	// DefaultCallMax caps any call's deadline.
	DefaultCallMax = 5 * time.Minute
	// DefaultCallTimeout is the deadline of a call without items (DefaultCallBase); kept for
	// callers that name it.
	DefaultCallTimeout = DefaultCallBase

	// DefaultKeepaliveTime is how long a connection may read nothing before it pings the peer.
	// grpc-go does not ping more often than every 10 s; the servers allow pings every 10 s
	// (grpcserver.DefaultKeepaliveEnforcement), also without streams.
	DefaultKeepaliveTime = 10 * time.Second
	// DefaultKeepaliveTimeout is how long a ping may go unanswered before the connection is
	// closed as dead.
	DefaultKeepaliveTimeout = 5 * time.Second
)

// Deadlines says how long a call between services may take: Base plus PerItem for each item
// the call carries or asks for, at most Max. Zero fields take the defaults above.
type Deadlines struct {
	// Base allows for the link's round trips and the peer's fixed cost. Default 60 s.
	Base time.Duration
	// PerItem is added for each item. Default 10 ms (1000 candidates: 10 s more).
	PerItem time.Duration
	// Max caps the deadline however many items. Default 5 min (never below Base).
	Max time.Duration
}

func (d Deadlines) withDefaults() Deadlines {
	if d.Base <= 0 {
		d.Base = DefaultCallBase
	}
	if d.PerItem <= 0 {
		d.PerItem = DefaultCallPerItem
	}
	if d.Max <= 0 {
		d.Max = DefaultCallMax
	}
	d.Max = max(d.Max, d.Base)
	return d
}

// For returns the deadline of a call with the given number of items (0 or less: none).
func (d Deadlines) For(items int) time.Duration {
	d = d.withDefaults()
	if items <= 0 {
		return d.Base
	}
	extra := d.Max - d.Base
	if int64(items) >= int64(extra/d.PerItem) {
		return d.Max
	}
	return d.Base + time.Duration(items)*d.PerItem
}

// WithTimeoutFor returns ctx with the deadline of a call of items items (For), unless ctx
// already has a deadline: the caller's own deadline is kept.
func (d Deadlines) WithTimeoutFor(ctx context.Context, items int) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d.For(items))
}

// CallTimeout returns the default deadline of a call with the given number of items
// (DefaultCallBase + items × DefaultCallPerItem, at most DefaultCallMax). Code that has the
// process's Options uses Options.CallTimeout, which follows its configured Deadlines.
func CallTimeout(items int) time.Duration { return Deadlines{}.For(items) }

// WithTimeoutFor returns ctx with CallTimeout(items) unless it already has a deadline.
//
//	callCtx, cancel := peers.WithTimeoutFor(ctx, len(req.GetCandidates()))
//	defer cancel()
func WithTimeoutFor(ctx context.Context, items int) (context.Context, context.CancelFunc) {
	return Deadlines{}.WithTimeoutFor(ctx, items)
}

// WithTimeout returns ctx with the deadline of a call without items (DefaultCallBase) unless it
// already has a deadline.
func WithTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return WithTimeoutFor(ctx, 0)
}

// MaxMessageBytes is the largest message a client sends or receives (the servers' limit).
const MaxMessageBytes = 16 << 20

// retryServiceConfig retries UNAVAILABLE with backoff on every method (see the package comment).
const retryServiceConfig = `{
  "methodConfig": [{
    "name": [{}],
    "retryPolicy": {
      "maxAttempts": 5,
      "initialBackoff": "0.2s",
      "maxBackoff": "3s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`

// LinkHealthPrefix starts the health service names of links (LinkHealthName).
const LinkHealthPrefix = "labourlink.link."

// LinkHealthName is the health service name under which a service reports its link to peer:
// labourlink.link.<role>[.<province>], such as labourlink.link.receiving.440000 (a sending
// service's link to Guangdong's receiving service) or labourlink.link.coordination. It is
// SERVING while the link answers and NOT_SERVING once it has been down for a few seconds; the
// service's own names (labourlink.sending.v1.MatchingService, ...) stay SERVING meanwhile, because
// the service itself still answers. Load balancers check the service names, operators' alerts
// the link names.
func LinkHealthName(peer identity.Identity) string {
	if peer.Region == "" {
		return LinkHealthPrefix + string(peer.Role)
	}
	return LinkHealthPrefix + string(peer.Role) + "." + peer.Region
}

// Options says how to reach peers.
type Options struct {
	// TLS is the client configuration of the federation (identity.ClientTLS): the way services
	// call each other with mTLS. TLS and Creds nil means plaintext (the local federation
	// default).
	TLS *tls.Config
	// Expect is the party the server must be when TLS is set: the handshake fails unless the
	// server's certificate names it. The zero Identity checks only the CA and the address (the
	// CLI, which calls whatever service it is pointed at). Ignored in plaintext.
	Expect identity.Identity
	// Creds are other transport credentials (the CLI's); only when TLS is nil, and not with
	// Expect.
	Creds credentials.TransportCredentials
	// Deadlines are the deadlines of calls between services (Options.WithTimeoutFor); zero
	// fields take the defaults.
	Deadlines Deadlines
	// KeepaliveTime and KeepaliveTimeout tune the detection of a dead peer (see the package
	// comment); zero takes DefaultKeepaliveTime and DefaultKeepaliveTimeout. grpc-go raises a
	// KeepaliveTime below 10 s to 10 s.
	KeepaliveTime, KeepaliveTimeout time.Duration
	// Metrics, when set, counts the calls made on the connections Dial returns (grpc_client_*,
	// services/platform/metrics).
	Metrics *metrics.Registry
}

// CallTimeout returns the deadline of a call with the given number of items under o.Deadlines.
func (o Options) CallTimeout(items int) time.Duration { return o.Deadlines.For(items) }

// WithTimeoutFor returns ctx with o.CallTimeout(items) unless it already has a deadline.
func (o Options) WithTimeoutFor(ctx context.Context, items int) (context.Context, context.CancelFunc) {
	return o.Deadlines.WithTimeoutFor(ctx, items)
}

// keepalive returns the client keepalive parameters of o.
func (o Options) keepalive() keepalive.ClientParameters {
	kp := keepalive.ClientParameters{Time: o.KeepaliveTime, Timeout: o.KeepaliveTimeout, PermitWithoutStream: true}
	if kp.Time <= 0 {
		kp.Time = DefaultKeepaliveTime
	}
	if kp.Timeout <= 0 {
		kp.Timeout = DefaultKeepaliveTimeout
	}
	return kp
}

// Expecting returns o with Expect set to id: `peers.Dial(addr, o.Expecting(identity.Coordination()))`.
func (o Options) Expecting(id identity.Identity) Options {
	o.Expect = id
	return o
}

// transportCredentials returns the credentials of o.
func (o Options) transportCredentials() (credentials.TransportCredentials, error) {
	expect := o.Expect != identity.Identity{}
	if expect {
		if err := o.Expect.Validate(); err != nil {
			return nil, fmt.Errorf("expected identity: %w", err)
		}
	}
	switch {
	case o.TLS != nil && o.Creds != nil:
		return nil, errors.New("peers: give TLS or Creds, not both")
	case o.TLS != nil:
		cfg := o.TLS
		if expect {
			cfg = identity.ExpectServer(cfg, o.Expect)
		}
		return credentials.NewTLS(cfg), nil
	case o.Creds != nil:
		if expect {
			return nil, fmt.Errorf("peers: cannot check that the server is %s with opaque credentials; give Options.TLS", o.Expect)
		}
		return o.Creds, nil
	default:
		return insecure.NewCredentials(), nil
	}
}

// multiServiceConfig is the service config of a connection to several replicas (Dial with a
// list): round_robin over the replicas whose health service ("", the server as a whole) says
// SERVING, and the retries of retryServiceConfig.
const multiServiceConfig = `{
  "loadBalancingConfig": [{"round_robin": {}}],
  "healthCheckConfig": {"serviceName": ""},
  "methodConfig": [{
    "name": [{}],
    "retryPolicy": {
      "maxAttempts": 5,
      "initialBackoff": "0.2s",
      "maxBackoff": "3s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`

// multiScheme is the resolver scheme of a connection to several replicas. Each connection has
// its own resolver (grpc.WithResolvers), so one scheme serves them all.
const multiScheme = "labourlink-replicas"

// SplitTargets returns the addresses of a target: `host:port`, or a comma-separated list
// `host:port,host:port,...` of the replicas of one service (the replicated coordination,
// docs/replication.md). Spaces around the commas are ignored; an empty element is an error.
func SplitTargets(target string) ([]string, error) {
	parts := strings.Split(target, ",")
	addrs := make([]string, 0, len(parts))
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, fmt.Errorf("empty address in %q (give host:port or host:port,host:port,...)", target)
		}
		addrs = append(addrs, p)
	}
	return addrs, nil
}

// Dial returns a client connection to target (`host:port`). It does not block: the connection is
// made on the first call, and calls fail with UNAVAILABLE (and are retried) while the peer is
// down or, with TLS and Expect, is not the expected party.
//
// A target of several addresses (`host:port,host:port,...`, SplitTargets) is one service on
// several replicas, each of which answers every call: the connection keeps a subchannel to each
// (grpc-go's manual resolver and round_robin policy) and checks each one's health (the standard
// grpc.health.v1 client health check on the service name ""), so calls go only to replicas
// that are up and SERVING. A call that fails UNAVAILABLE on a replica that just died is retried
// by the retry policy on another one. With TLS each address is verified under its own host name.
func Dial(target string, o Options) (*grpc.ClientConn, error) {
	creds, err := o.transportCredentials()
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", target, err)
	}
	addrs, err := SplitTargets(target)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", target, err)
	}
	serviceConfig := retryServiceConfig
	var extra []grpc.DialOption
	if len(addrs) > 1 {
		state := resolver.State{}
		for _, a := range addrs {
			host, _, err := net.SplitHostPort(a)
			if err != nil {
				return nil, fmt.Errorf("connect to %s: %w", target, err)
			}
			state.Addresses = append(state.Addresses, resolver.Address{Addr: a, ServerName: host})
		}
		r := manual.NewBuilderWithScheme(multiScheme)
		r.InitialState(state)
		extra = append(extra, grpc.WithResolvers(r))
		serviceConfig = multiServiceConfig
		target = multiScheme + ":///" + strings.Join(addrs, ",")
	}
	// The trace context goes with each call, in a span of its own when traces are on
	// (services/platform/tracing).
	cc, err := grpc.NewClient(target, append(append(append(tracing.DialOptions(),
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultServiceConfig(serviceConfig),
		grpc.WithKeepaliveParams(o.keepalive()),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(MaxMessageBytes),
			grpc.MaxCallSendMsgSize(MaxMessageBytes),
		),
	), extra...), o.Metrics.ClientDialOptions()...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", target, err)
	}
	return cc, nil
}

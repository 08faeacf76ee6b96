// Package peers is the one way a labourlink service (or the CLI) opens a connection to another
// service: grpc.NewClient (no blocking dial), keepalive, message limits, a retry policy for
// UNAVAILABLE, and the transport credentials of the federation.
//
// With TLS a service says which party it means to reach (Options.Expect, or Expecting): the
// handshake then fails unless the server's certificate names that identity, so that a
// certificate of the federation at the dialled address is not enough (see
// identity.ExpectServer). The call fails UNAVAILABLE, naming the expected and the presented
// identity, and is retried like any unavailability.
//
// Retrying is safe for every labourlink RPC: reads are idempotent and every mutation carries a
// request id (or, for ledger reports, event ids), so a repeat returns the first result.
package peers

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/eastwest/labourlink/services/identity"
)

// DefaultCallTimeout bounds one call between services when the caller gives no deadline.
const DefaultCallTimeout = 10 * time.Second

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

// Dial returns a client connection to target (`host:port`). It does not block: the connection is
// made on the first call, and calls fail with UNAVAILABLE (and are retried) while the peer is
// down or, with TLS and Expect, is not the expected party.
func Dial(target string, o Options) (*grpc.ClientConn, error) {
	creds, err := o.transportCredentials()
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", target, err)
	}
	cc, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultServiceConfig(retryServiceConfig),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                30 * time.Second,
			Timeout:             10 * time.Second,
			PermitWithoutStream: true,
		}),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(MaxMessageBytes),
			grpc.MaxCallSendMsgSize(MaxMessageBytes),
		),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", target, err)
	}
	return cc, nil
}

// WithTimeout returns ctx with DefaultCallTimeout unless it already has a deadline.
func WithTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultCallTimeout)
}

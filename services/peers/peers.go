// Package peers is the one way a labourlink service (or the CLI) opens a connection to another
// service: grpc.NewClient (no blocking dial), keepalive, message limits, a retry policy for
// UNAVAILABLE, and the transport credentials of the federation.
//
// Retrying is safe for every labourlink RPC: reads are idempotent and every mutation carries a
// request id (or, for ledger reports, event ids), so a repeat returns the first result.
package peers

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
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
	// Creds are the transport credentials; nil means plaintext (the local federation default).
	Creds credentials.TransportCredentials
}

// Dial returns a client connection to target (`host:port`). It does not block: the connection is
// made on the first call, and calls fail with UNAVAILABLE (and are retried) while the peer is
// down.
func Dial(target string, o Options) (*grpc.ClientConn, error) {
	creds := o.Creds
	if creds == nil {
		creds = insecure.NewCredentials()
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

package identity

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// ServerTLS is the TLS configuration of a labourlink server: TLS 1.3 only, the server's
// certificate from certFile and keyFile, and a client certificate required and verified
// against the federation CA in caFile. A client without a certificate, or with one from
// another CA, fails the handshake.
//
// The key pair is read again when either file changes (a renewed certificate is used for new
// connections without a restart); the CA is read once.
func ServerTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	pool, err := loadPool(caFile)
	if err != nil {
		return nil, err
	}
	kp, err := newKeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs:  pool,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return kp.get()
		},
	}, nil
}

// ClientTLS is the TLS configuration of a labourlink client (a service calling another, a
// provincial system, an operator's CLI): TLS 1.3 only, the server verified against the
// federation CA in caFile (its name or address as dialled must be in its certificate), and the
// client's certificate from certFile and keyFile, re-read when either file changes.
func ClientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	pool, err := loadPool(caFile)
	if err != nil {
		return nil, err
	}
	kp, err := newKeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    pool,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return kp.get()
		},
	}, nil
}

func loadPool(caFile string) (*x509.CertPool, error) {
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("federation CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	return pool, nil
}

// keyPair is a certificate and key read from files, read again when a file's modification time
// or size changes. A failed re-read keeps the pair read before (a half-written renewal must not
// take a service down).
type keyPair struct {
	certFile, keyFile string

	mu      sync.Mutex
	pair    *tls.Certificate
	stamp   [2]fileStamp
	checked time.Time
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// recheckEvery bounds how often the files are looked at.
const recheckEvery = time.Second

func newKeyPair(certFile, keyFile string) (*keyPair, error) {
	kp := &keyPair{certFile: certFile, keyFile: keyFile}
	if err := kp.load(); err != nil {
		return nil, err
	}
	return kp, nil
}

func (kp *keyPair) stamps() ([2]fileStamp, error) {
	var s [2]fileStamp
	for i, name := range []string{kp.certFile, kp.keyFile} {
		fi, err := os.Stat(name)
		if err != nil {
			return s, err
		}
		s[i] = fileStamp{mod: fi.ModTime(), size: fi.Size()}
	}
	return s, nil
}

func (kp *keyPair) load() error {
	st, err := kp.stamps()
	if err != nil {
		return err
	}
	pair, err := tls.LoadX509KeyPair(kp.certFile, kp.keyFile)
	if err != nil {
		return fmt.Errorf("load %s and %s: %w", kp.certFile, kp.keyFile, err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return err
		}
	}
	if _, err := Parse(pair.Leaf); err != nil {
		return fmt.Errorf("%s: %w", kp.certFile, err)
	}
	kp.pair, kp.stamp, kp.checked = &pair, st, time.Now()
	return nil
}

func (kp *keyPair) get() (*tls.Certificate, error) {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	if time.Since(kp.checked) >= recheckEvery {
		kp.checked = time.Now()
		if st, err := kp.stamps(); err == nil && st != kp.stamp {
			_ = kp.load() // on failure keep the old pair; the next check tries again
		}
	}
	return kp.pair, nil
}

// Peer returns the verified identity of the caller of an RPC: the labourlink URI of the
// first certificate of the chain the TLS handshake verified. It fails when the connection is
// not TLS, when no client certificate was verified, or when the certificate names no identity.
func Peer(ctx context.Context) (Identity, error) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return Identity{}, fmt.Errorf("%w: the connection is not TLS", ErrNoIdentity)
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return Identity{}, fmt.Errorf("%w: the connection is not TLS", ErrNoIdentity)
	}
	if len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return Identity{}, fmt.Errorf("%w: no verified client certificate", ErrNoIdentity)
	}
	return Parse(info.State.VerifiedChains[0][0])
}

// ErrUnexpectedServer is the error of a connection whose server presents a certificate of the
// federation that names another party than the one the client meant to reach.
var ErrUnexpectedServer = errors.New("the server is not the expected party")

// ExpectServer returns a copy of the client configuration cfg (see ClientTLS) whose handshake
// also checks that the server's verified certificate names want (CheckServer). Without it a
// client accepts any certificate of the federation's CA for the address it dials: another
// province's service, or a misused operator certificate. The check runs before the client
// presents its own certificate.
func ExpectServer(cfg *tls.Config, want Identity) *tls.Config {
	c := cfg.Clone()
	verify := c.VerifyConnection
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if verify != nil {
			if err := verify(cs); err != nil {
				return err
			}
		}
		return CheckServer(cs, want)
	}
	return c
}

// CheckServer checks, on the client side of a TLS connection, that the server's verified
// certificate names want. The error (ErrUnexpectedServer) names the expected and the
// presented identity.
func CheckServer(cs tls.ConnectionState, want Identity) error {
	who := "the server"
	if cs.ServerName != "" {
		who += " at " + cs.ServerName
	}
	return checkVerified(cs, want, who)
}

// checkVerified checks that the verified certificate of the other side (who) names want.
func checkVerified(cs tls.ConnectionState, want Identity, who string) error {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return fmt.Errorf("%w: expected %s, but the certificate of %s was not verified", ErrUnexpectedServer, want, who)
	}
	got, err := Parse(cs.VerifiedChains[0][0])
	if err != nil {
		return fmt.Errorf("%w: expected %s, but %s presents no valid identity: %v", ErrUnexpectedServer, want, who, err)
	}
	if got != want {
		return fmt.Errorf("%w: expected %s, but %s presents %s", ErrUnexpectedServer, want, who, got)
	}
	return nil
}

// PeerTLS is the TLS configuration of a link between peers of one party that each accept and
// dial (the routes between the nodes of a replicated coordination service): ServerTLS and
// ClientTLS in one (this peer's certificate both ways, re-read when either file changes; the
// other side's certificate required and verified against the federation CA in caFile, a
// dialled peer's name or address in its certificate), and the other side's verified certificate
// naming want on both sides. A node of another service, or a certificate of another CA, fails
// the handshake.
func PeerTLS(caFile, certFile, keyFile string, want Identity) (*tls.Config, error) {
	c, err := ServerTLS(caFile, certFile, keyFile)
	if err != nil {
		return nil, err
	}
	c.RootCAs = c.ClientCAs
	c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return c.GetCertificate(nil) }
	c.VerifyConnection = func(cs tls.ConnectionState) error { return checkVerified(cs, want, "the peer") }
	return c, nil
}

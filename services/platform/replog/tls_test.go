package replog

import (
	"context"
	"crypto/tls"
	"path/filepath"
	"testing"
	"time"

	"github.com/eastwest/labourlink/services/platform/identity"
)

// TestRoutesOverTLS: three nodes whose routes are mTLS (identity.PeerTLS, each with the
// coordination service's certificate) form the cluster and take a command on a stream of three
// replicas; with one of them presenting a certificate of another CA, the two others never
// admit it, and a stream of three replicas cannot be made.
func TestRoutesOverTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts NATS clusters")
	}
	good, other := t.TempDir(), t.TempDir()
	for _, dir := range []string{good, other} {
		if _, err := identity.Init(dir, identity.LocalFederation()); err != nil {
			t.Fatal(err)
		}
	}
	peer := func(dir string) *tls.Config {
		t.Helper()
		cert, key := identity.Paths(dir, identity.Coordination())
		c, err := identity.PeerTLS(filepath.Join(dir, identity.CAFile), cert, key, identity.Coordination())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	cluster := func(third string, wait time.Duration) error {
		spec := newClusterSpec(t, 3)
		for i := range 3 {
			o := spec.options(i)
			o.ClusterTLS = peer(good)
			if i == 2 {
				o.ClusterTLS = peer(third)
			}
			n, err := StartNode(o)
			if err != nil {
				t.Fatal(err)
			}
			defer n.Shutdown()
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		l, err := Open(ctx, []string{spec.url(0)}, "TLS", 3)
		if err != nil {
			return err
		}
		defer l.Close()
		_, err = l.Append(ctx, command("tls", 1))
		return err
	}
	if err := cluster(good, time.Minute); err != nil {
		t.Fatalf("three nodes of the same CA: %v", err)
	}
	if err := cluster(other, 8*time.Second); err == nil {
		t.Fatal("a stream of three replicas was made with one node of another CA")
	}
}

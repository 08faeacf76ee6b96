package identity

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestIssuedCertificates(t *testing.T) {
	now := time.Now()
	ca, err := NewCA("", now, 0)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id       Identity
		server   bool
		hosts    []string
		wantDNS  []string
		wantIPs  []string
		notHosts bool
	}{
		{id: Sending("520000"), server: true, hosts: []string{"{name}.labourlink.svc", "10.0.0.7", "localhost"},
			wantDNS: []string{"localhost", "sending-520000.labourlink.svc"}, wantIPs: []string{"127.0.0.1", "::1", "10.0.0.7"}},
		{id: Coordination(), server: true, hosts: []string{"{name}.labourlink.svc", "{name}.labourlink.svc.cluster.local"},
			wantDNS: []string{"localhost", "coordination.labourlink.svc", "coordination.labourlink.svc.cluster.local"}, wantIPs: []string{"127.0.0.1", "::1"}},
		{id: Receiving("440000"), server: true, wantDNS: []string{"localhost"}, wantIPs: []string{"127.0.0.1", "::1"}},
		{id: Coordination(), server: true, wantDNS: []string{"localhost"}, wantIPs: []string{"127.0.0.1", "::1"}},
		{id: System("520000"), hosts: []string{"ignored.example"}, notHosts: true},
		{id: Operator("", true), notHosts: true},
	}
	for _, tt := range tests {
		t.Run(tt.id.FileBase(), func(t *testing.T) {
			certPEM, keyPEM, err := ca.Issue(tt.id, IssueOptions{Hosts: tt.hosts, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			cert, err := parseCertPEM(certPEM)
			if err != nil {
				t.Fatal(err)
			}
			key, err := parseKeyPEM(keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			if !key.PublicKey.Equal(cert.PublicKey) {
				t.Fatal("key does not match certificate")
			}
			if key.Curve.Params().Name != "P-256" {
				t.Errorf("curve %s, want P-256", key.Curve.Params().Name)
			}
			got, err := Parse(cert)
			if err != nil || got != tt.id {
				t.Fatalf("Parse = %+v, %v; want %+v", got, err, tt.id)
			}
			if err := ca.Verify(cert, now); err != nil {
				t.Errorf("Verify: %v", err)
			}
			hasServer := slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
			hasClient := slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
			if hasServer != tt.server || !hasClient {
				t.Errorf("ext key usage %v: server %v client %v, want server %v client true", cert.ExtKeyUsage, hasServer, hasClient, tt.server)
			}
			if tt.notHosts {
				if len(cert.DNSNames)+len(cert.IPAddresses) > 0 {
					t.Errorf("client certificate has host SANs %v %v", cert.DNSNames, cert.IPAddresses)
				}
				return
			}
			if !slices.Equal(cert.DNSNames, tt.wantDNS) {
				t.Errorf("DNS SANs %v, want %v", cert.DNSNames, tt.wantDNS)
			}
			var ips []string
			for _, ip := range cert.IPAddresses {
				ips = append(ips, ip.String())
			}
			if !slices.Equal(ips, tt.wantIPs) {
				t.Errorf("IP SANs %v, want %v", ips, tt.wantIPs)
			}
			if err := cert.VerifyHostname("127.0.0.1"); err != nil {
				t.Errorf("VerifyHostname(127.0.0.1): %v", err)
			}
		})
	}
	if _, _, err := ca.Issue(Identity{Role: RoleSending}, IssueOptions{}); err == nil {
		t.Error("Issue accepted a sending identity without a region")
	}
}

func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	rep, err := Init(dir, LocalFederation())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.CACreated || len(rep.Kept) != 0 {
		t.Errorf("first run: %+v", rep)
	}
	want := []string{"coordination", "sending-520000", "system-520000", "receiving-440000", "system-440000",
		"operator-national-read", "operator-national-full", "operator-520000-read", "operator-520000-full",
		"operator-440000-read", "operator-440000-full"}
	if !slices.Equal(rep.Created, want) {
		t.Errorf("created %v, want %v", rep.Created, want)
	}
	ca, err := LoadCA(filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, base := range want {
		cert, err := ReadCertFile(filepath.Join(dir, base+".pem"))
		if err != nil {
			t.Fatal(err)
		}
		if err := ca.Verify(cert, time.Now()); err != nil {
			t.Errorf("%s: %v", base, err)
		}
		fi, err := os.Stat(filepath.Join(dir, base+"-key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s-key.pem mode %v, want 0600", base, fi.Mode().Perm())
		}
	}
	before, err := os.ReadFile(filepath.Join(dir, "sending-520000.pem"))
	if err != nil {
		t.Fatal(err)
	}

	// Again with one more region: the CA and the existing certificates are kept.
	p := LocalFederation()
	p.Regions = append(p.Regions, RegionRole{Code: "510000", Role: RoleSending})
	rep, err = Init(dir, p)
	if err != nil {
		t.Fatal(err)
	}
	if rep.CACreated || !slices.Equal(rep.Created, []string{"sending-510000", "system-510000"}) || len(rep.Kept) != len(want) {
		t.Errorf("second run: %+v", rep)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "sending-520000.pem"))
	if string(after) != string(before) {
		t.Error("an existing certificate was reissued")
	}

	// Force reissues every certificate, with the same CA.
	p.Force = true
	rep, err = Init(dir, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Kept) != 0 || len(rep.Created) != len(want)+2 || rep.CACreated {
		t.Errorf("forced run: %+v", rep)
	}
	cert, _ := ReadCertFile(filepath.Join(dir, "sending-520000.pem"))
	if err := ca.Verify(cert, time.Now()); err != nil {
		t.Errorf("reissued certificate not from the same CA: %v", err)
	}

	// A certificate from another CA in the folder is refused, not overwritten.
	other, err := NewCA("other", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	c, k, err := other.Issue(Sending("520000"), IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := Paths(dir, Sending("520000"))
	if err := WriteFiles(certFile, c, keyFile, k); err != nil {
		t.Fatal(err)
	}
	p.Force = false
	if _, err := Init(dir, p); err == nil || !strings.Contains(err.Error(), "not issued by this folder's CA") {
		t.Errorf("Init with a foreign certificate: %v", err)
	}
	// And a file holding another identity's certificate too.
	c, k, _ = ca.Issue(Receiving("440000"), IssueOptions{})
	_ = WriteFiles(certFile, c, keyFile, k)
	if _, err := Init(dir, p); err == nil || !strings.Contains(err.Error(), "not the certificate of") {
		t.Errorf("Init with a misplaced certificate: %v", err)
	}
}

func TestInitRejectsBadPlans(t *testing.T) {
	for _, p := range []Plan{
		{Regions: []RegionRole{{Code: "520000", Role: RoleSystem}}},
		{Regions: []RegionRole{{Code: "520100", Role: RoleSending}}},
		{Operators: []Identity{{Role: RoleOperatorRead, Region: "x"}}},
	} {
		if _, err := Init(t.TempDir(), p); err == nil {
			t.Errorf("Init(%+v) succeeded", p)
		}
	}
}

// pki is a CA folder for the TLS tests.
func pki(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := Init(dir, LocalFederation()); err != nil {
		t.Fatal(err)
	}
	return dir
}

// handshake runs a TLS handshake between the two configurations over a real loopback TCP
// connection and returns the identity the server saw and the client's and server's errors.
func handshake(t *testing.T, server, client *tls.Config) (Identity, error, error) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	type result struct {
		id  Identity
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := lis.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		sc := tls.Server(c, server)
		if err := sc.Handshake(); err != nil {
			done <- result{err: err}
			return
		}
		// TLS 1.3 sends the client's certificate after the client's handshake finished: read
		// to see the server's verdict reach the client.
		_, _ = sc.Write([]byte("ok"))
		st := sc.ConnectionState()
		if len(st.VerifiedChains) == 0 {
			done <- result{err: errors.New("no verified chain")}
			return
		}
		id, err := Parse(st.VerifiedChains[0][0])
		done <- result{id: id, err: err}
	}()
	c, err := tls.Dial("tcp", lis.Addr().String(), client)
	var clientErr error
	if err != nil {
		clientErr = err
	} else {
		buf := make([]byte, 2)
		_, clientErr = io.ReadFull(c, buf)
		c.Close()
	}
	r := <-done
	return r.id, clientErr, r.err
}

func TestMutualTLS(t *testing.T) {
	dir := pki(t)
	ca := filepath.Join(dir, CAFile)
	srvCert, srvKey := Paths(dir, Sending("520000"))
	server, err := ServerTLS(ca, srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	if server.MinVersion != tls.VersionTLS13 || server.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Fatalf("server config: min version %x, client auth %v", server.MinVersion, server.ClientAuth)
	}

	t.Run("client with a certificate of the CA", func(t *testing.T) {
		c, k := Paths(dir, System("520000"))
		client, err := ClientTLS(ca, c, k)
		if err != nil {
			t.Fatal(err)
		}
		id, cerr, serr := handshake(t, server, client)
		if cerr != nil || serr != nil {
			t.Fatalf("client %v, server %v", cerr, serr)
		}
		if id != System("520000") {
			t.Errorf("server saw %v", id)
		}
	})
	t.Run("client without a certificate", func(t *testing.T) {
		pool := x509.NewCertPool()
		b, _ := os.ReadFile(ca)
		pool.AppendCertsFromPEM(b)
		_, cerr, serr := handshake(t, server, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13})
		if cerr == nil || serr == nil {
			t.Fatalf("handshake without a client certificate: client %v, server %v", cerr, serr)
		}
	})
	t.Run("client with a certificate of another CA", func(t *testing.T) {
		otherDir := pki(t)
		c, k := Paths(otherDir, System("520000"))
		client, err := ClientTLS(ca, c, k) // trusts our CA, presents the other one's certificate
		if err != nil {
			t.Fatal(err)
		}
		_, cerr, serr := handshake(t, server, client)
		if cerr == nil || serr == nil {
			t.Fatalf("handshake with a foreign certificate: client %v, server %v", cerr, serr)
		}
	})
	t.Run("server of another CA", func(t *testing.T) {
		otherDir := pki(t)
		sc, sk := Paths(otherDir, Sending("520000"))
		other, err := ServerTLS(filepath.Join(otherDir, CAFile), sc, sk)
		if err != nil {
			t.Fatal(err)
		}
		c, k := Paths(dir, System("520000"))
		client, _ := ClientTLS(ca, c, k)
		if _, cerr, _ := handshake(t, other, client); cerr == nil {
			t.Fatal("client accepted a server of another CA")
		}
	})
	t.Run("TLS 1.2 is refused", func(t *testing.T) {
		c, k := Paths(dir, System("520000"))
		client, _ := ClientTLS(ca, c, k)
		client.MinVersion, client.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
		if _, cerr, serr := handshake(t, server, client); cerr == nil || serr == nil {
			t.Fatalf("TLS 1.2 handshake: client %v, server %v", cerr, serr)
		}
	})
}

func TestTLSConfigErrors(t *testing.T) {
	dir := pki(t)
	ca := filepath.Join(dir, CAFile)
	c, k := Paths(dir, Sending("520000"))
	for name, f := range map[string]func() error{
		"missing CA":       func() error { _, err := ServerTLS(filepath.Join(dir, "nope.pem"), c, k); return err },
		"CA is not PEM":    func() error { _, err := ClientTLS(k+".x", c, k); return err },
		"key of another":   func() error { _, err := ServerTLS(ca, c, filepath.Join(dir, "receiving-440000-key.pem")); return err },
		"missing cert":     func() error { _, err := ClientTLS(ca, filepath.Join(dir, "x.pem"), k); return err },
		"no identity (CA)": func() error { _, err := ServerTLS(ca, ca, filepath.Join(dir, CAKeyFile)); return err },
	} {
		if name == "CA is not PEM" {
			if err := os.WriteFile(k+".x", []byte("not pem"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := f(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// A renewed certificate written over the files is used for new connections; a broken one is
// ignored and the old pair kept.
func TestKeyPairReload(t *testing.T) {
	dir := pki(t)
	c, k := Paths(dir, Sending("520000"))
	kp, err := newKeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := kp.get()
	ca, err := LoadCA(filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue(Sending("520000"), IssueOptions{Hosts: []string{"renewed.example"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteFiles(c, certPEM, k, keyPEM); err != nil {
		t.Fatal(err)
	}
	kp.mu.Lock()
	kp.checked = time.Time{}
	kp.mu.Unlock()
	second, _ := kp.get()
	if second == first || !slices.Contains(second.Leaf.DNSNames, "renewed.example") {
		t.Fatalf("renewed certificate not loaded: %v", second.Leaf.DNSNames)
	}

	if err := os.WriteFile(c, []byte("half written"), 0o644); err != nil {
		t.Fatal(err)
	}
	kp.mu.Lock()
	kp.checked = time.Time{}
	kp.mu.Unlock()
	third, _ := kp.get()
	if third != second {
		t.Fatal("a broken certificate file replaced the loaded pair")
	}
}

// TestPeerTLS: two nodes of the coordination service link with PeerTLS, either side dialling;
// a peer presenting another service's certificate, or one of another CA, is refused.
func TestPeerTLS(t *testing.T) {
	dir := pki(t)
	ca := filepath.Join(dir, CAFile)
	coordCert, coordKey := Paths(dir, Coordination())
	node := func(caFile, cert, key string) *tls.Config {
		t.Helper()
		c, err := PeerTLS(caFile, cert, key, Coordination())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := node(ca, coordCert, coordKey), node(ca, coordCert, coordKey)
	id, cerr, serr := handshake(t, a, b)
	if cerr != nil || serr != nil || id != Coordination() {
		t.Fatalf("two coordination nodes: accepting side saw %v, dialling %v, accepting %v", id, cerr, serr)
	}
	sendCert, sendKey := Paths(dir, Sending("520000"))
	other := pki(t)
	otherCert, otherKey := Paths(other, Coordination())
	for name, intruder := range map[string]*tls.Config{
		"another service's certificate": node(ca, sendCert, sendKey),
		"another CA's coordination":     node(filepath.Join(other, CAFile), otherCert, otherKey),
	} {
		t.Run(name+" dialling", func(t *testing.T) {
			if _, cerr, serr := handshake(t, a, intruder); serr == nil && cerr == nil {
				t.Error("the intruder was admitted")
			}
		})
		t.Run(name+" accepting", func(t *testing.T) {
			_, cerr, _ := handshake(t, intruder, a)
			if cerr == nil {
				t.Error("a node dialled the intruder and kept the link")
			} else if name == "another service's certificate" && !errors.Is(cerr, ErrUnexpectedServer) && !strings.Contains(cerr.Error(), "expected") {
				t.Errorf("refused with %v, want the identity named", cerr)
			}
		})
	}
}

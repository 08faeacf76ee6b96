package identity

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Validity defaults of the development CA and of the certificates it issues.
const (
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour
	DefaultCertValidity = 825 * 24 * time.Hour
)

// File names of the CA in a certificate folder.
const (
	CAFile    = "ca.pem"
	CAKeyFile = "ca-key.pem"
)

// CA is a certificate authority of the federation: its certificate and private key.
type CA struct {
	cert    *x509.Certificate
	certPEM []byte
	key     *ecdsa.PrivateKey
}

// NewCA makes a self-signed CA valid from now for validity (0 for DefaultCAValidity).
func NewCA(name string, now time.Time, validity time.Duration) (*CA, error) {
	if validity <= 0 {
		validity = DefaultCAValidity
	}
	if name == "" {
		name = "labourlink federation CA"
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"labourlink"}},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // the subject key id is derived from the key by x509
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{cert: cert, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key: key}, nil
}

// LoadCA reads a CA's certificate and private key (PEM).
func LoadCA(certFile, keyFile string) (*CA, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certFile, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s is not a CA certificate", certFile)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyFile, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%s is not the key of %s", keyFile, certFile)
	}
	return &CA{cert: cert, certPEM: certPEM, key: key}, nil
}

// Certificate returns the CA certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertPEM returns the CA certificate in PEM.
func (ca *CA) CertPEM() []byte { return ca.certPEM }

// KeyPEM returns the CA's private key in PEM (PKCS #8).
func (ca *CA) KeyPEM() ([]byte, error) { return marshalKey(ca.key) }

// Pool returns a pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// IssueOptions are the optional settings of an issued certificate.
type IssueOptions struct {
	// Hosts are extra DNS names or IP addresses for a service certificate, besides localhost,
	// 127.0.0.1 and ::1 (for example the Kubernetes service name the peers dial). `{name}` in
	// a host is replaced by the identity's FileBase, so that one pattern serves every service:
	// `{name}.labourlink.svc` gives `sending-520000.labourlink.svc` for Guizhou's sending
	// service and `coordination.labourlink.svc` for the coordination service.
	Hosts []string
	// Now is the start of validity; zero for time.Now.
	Now time.Time
	// Validity is how long the certificate is valid; 0 for DefaultCertValidity.
	Validity time.Duration
}

// Issue makes a certificate and private key for id, both in PEM. Service certificates are
// for TLS servers and clients (services call each other) and carry the host SANs; the other
// parties' certificates are for TLS clients only.
func (ca *CA) Issue(id Identity, o IssueOptions) (certPEM, keyPEM []byte, err error) {
	if err := id.Validate(); err != nil {
		return nil, nil, err
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Validity <= 0 {
		o.Validity = DefaultCertValidity
	}
	notAfter := o.Now.Add(o.Validity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: id.String(), Organization: []string{"labourlink"}},
		NotBefore:    o.Now.Add(-5 * time.Minute),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{id.URI()},
	}
	if id.IsService() {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		hosts := append([]string{"localhost", "127.0.0.1", "::1"}, o.Hosts...)
		seen := map[string]bool{}
		for _, h := range hosts {
			h = strings.ReplaceAll(h, "{name}", id.FileBase())
			if h == "" || seen[h] {
				continue
			}
			seen[h] = true
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = marshalKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// Verify checks that cert was issued by this CA and is valid at now.
func (ca *CA) Verify(cert *x509.Certificate, now time.Time) error {
	_, err := cert.Verify(x509.VerifyOptions{
		Roots:       ca.Pool(),
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	return err
}

// Paths returns the certificate and key file of id in folder dir.
func Paths(dir string, id Identity) (certFile, keyFile string) {
	base := id.FileBase()
	return filepath.Join(dir, base+".pem"), filepath.Join(dir, base+"-key.pem")
}

// RegionRole is a province taking part in the federation with the role of its service
// (RoleSending or RoleReceiving).
type RegionRole struct {
	Code string
	Role Role
}

// Plan says which certificates a folder should hold.
type Plan struct {
	// Regions get a service certificate and a system certificate each.
	Regions []RegionRole
	// Operators get a client certificate each.
	Operators []Identity
	// Hosts are extra DNS names or IPs for every service certificate.
	Hosts []string
	// Validity of the issued certificates; 0 for DefaultCertValidity.
	Validity time.Duration
	// Force reissues certificates that already exist (the CA is kept).
	Force bool
	// Now is the clock; zero for time.Now.
	Now time.Time
}

// Identities lists the parties of the plan: the coordination service, each region's service
// and system, and the operators, without duplicates, in that order.
func (p Plan) Identities() []Identity {
	out := []Identity{Coordination()}
	seen := map[Identity]bool{Coordination(): true}
	add := func(id Identity) {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	for _, r := range p.Regions {
		add(Identity{Role: r.Role, Region: r.Code})
		add(System(r.Code))
	}
	for _, op := range p.Operators {
		add(op)
	}
	return out
}

// LocalFederation is the plan of `labourlink certs init` without flags: what the local
// federation (`labourlink dev -tls`) needs — Guizhou (520000) sending, Guangdong (440000)
// receiving, and operators with read and full rights for each of them and for the nation.
func LocalFederation() Plan {
	p := Plan{Regions: []RegionRole{{Code: "520000", Role: RoleSending}, {Code: "440000", Role: RoleReceiving}}}
	p.Operators = DefaultOperators(p.Regions)
	return p
}

// DefaultOperators are national read and full operators and read and full operators of each
// region.
func DefaultOperators(rs []RegionRole) []Identity {
	ops := []Identity{Operator("", false), Operator("", true)}
	for _, r := range rs {
		ops = append(ops, Operator(r.Code, false), Operator(r.Code, true))
	}
	return ops
}

// Report says what Init did, by file base name.
type Report struct {
	// CACreated is true when Init made a new CA.
	CACreated bool
	// Created and Kept list the identities' file base names.
	Created, Kept []string
}

// Init makes the certificates of plan in folder dir (created if missing): the CA (ca.pem and
// ca-key.pem) unless it exists, and for each identity BASE.pem and BASE-key.pem (see
// Identity.FileBase) unless they exist and were issued by this CA for that identity (or
// p.Force). Running it again with more regions adds only their certificates, which is how a
// new region is rolled out with the same CA.
func Init(dir string, p Plan) (Report, error) {
	var rep Report
	if p.Now.IsZero() {
		p.Now = time.Now()
	}
	for _, r := range p.Regions {
		if r.Role != RoleSending && r.Role != RoleReceiving {
			return rep, fmt.Errorf("region %s: the role must be sending or receiving, not %q", r.Code, r.Role)
		}
	}
	ids := p.Identities()
	for _, id := range ids {
		if err := id.Validate(); err != nil {
			return rep, err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return rep, err
	}
	caCert, caKey := filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	var ca *CA
	switch _, err := os.Stat(caCert); {
	case err == nil:
		if ca, err = LoadCA(caCert, caKey); err != nil {
			return rep, fmt.Errorf("existing CA: %w", err)
		}
	case errors.Is(err, os.ErrNotExist):
		if ca, err = NewCA("", p.Now, 0); err != nil {
			return rep, err
		}
		keyPEM, err := ca.KeyPEM()
		if err != nil {
			return rep, err
		}
		if err := writeFile(caKey, keyPEM, 0o600); err != nil {
			return rep, err
		}
		if err := writeFile(caCert, ca.CertPEM(), 0o644); err != nil {
			return rep, err
		}
		rep.CACreated = true
	default:
		return rep, err
	}
	for _, id := range ids {
		certFile, keyFile := Paths(dir, id)
		if !p.Force && !rep.CACreated {
			ok, err := holds(ca, id, certFile, keyFile, p.Now)
			if err != nil {
				return rep, err
			}
			if ok {
				rep.Kept = append(rep.Kept, id.FileBase())
				continue
			}
		}
		certPEM, keyPEM, err := ca.Issue(id, IssueOptions{Hosts: p.Hosts, Now: p.Now, Validity: p.Validity})
		if err != nil {
			return rep, fmt.Errorf("%s: %w", id, err)
		}
		if err := writeFile(keyFile, keyPEM, 0o600); err != nil {
			return rep, err
		}
		if err := writeFile(certFile, certPEM, 0o644); err != nil {
			return rep, err
		}
		rep.Created = append(rep.Created, id.FileBase())
	}
	return rep, nil
}

// holds reports whether certFile and keyFile exist and hold a valid certificate of ca for id
// with its key. Files that exist but do not fit are an error (Init does not overwrite them
// without Force).
func holds(ca *CA, id Identity, certFile, keyFile string, now time.Time) (bool, error) {
	certPEM, err := os.ReadFile(certFile)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("%s exists without its key %s; remove it or use -force", certFile, keyFile)
	}
	if err != nil {
		return false, err
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return false, fmt.Errorf("%s: %w", certFile, err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return false, fmt.Errorf("%s: %w", keyFile, err)
	}
	if got, err := Parse(cert); err != nil || got != id {
		return false, fmt.Errorf("%s is not the certificate of %s; remove it or use -force", certFile, id)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return false, fmt.Errorf("%s is not the key of %s; remove them or use -force", keyFile, certFile)
	}
	if err := ca.Verify(cert, now); err != nil {
		return false, fmt.Errorf("%s was not issued by this folder's CA or has expired (%v); remove it or use -force", certFile, err)
	}
	return true, nil
}

// ReadCertFile reads the first certificate of a PEM file.
func ReadCertFile(name string) (*x509.Certificate, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	c, err := parseCertPEM(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// ParseFile reads the identity of the certificate in a PEM file.
func ParseFile(certFile string) (Identity, error) {
	c, err := ReadCertFile(certFile)
	if err != nil {
		return Identity{}, err
	}
	id, err := Parse(c)
	if err != nil {
		return Identity{}, fmt.Errorf("%s: %w", certFile, err)
	}
	return id, nil
}

// WriteFiles writes a certificate and key pair (certificate 0644, key 0600).
func WriteFiles(certFile string, certPEM []byte, keyFile string, keyPEM []byte) error {
	if err := writeFile(keyFile, keyPEM, 0o600); err != nil {
		return err
	}
	return writeFile(certFile, certPEM, 0o644)
}

// SortedBases returns the base names sorted, for stable output.
func SortedBases(names []string) []string {
	out := append([]string(nil), names...)
	sort.Strings(out)
	return out
}

func parseCertPEM(b []byte) (*x509.Certificate, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no PEM certificate found")
		}
		if blk.Type == "CERTIFICATE" {
			return x509.ParseCertificate(blk.Bytes)
		}
	}
}

func parseKeyPEM(b []byte) (*ecdsa.PrivateKey, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no PEM private key found")
		}
		switch blk.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if err != nil {
				return nil, err
			}
			ek, ok := k.(*ecdsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("the private key is %T, not ECDSA", k)
			}
			return ek, nil
		case "EC PRIVATE KEY":
			return x509.ParseECPrivateKey(blk.Bytes)
		}
	}
}

func marshalKey(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func randomSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// writeFile writes data to name through a temporary file and a rename, so that a reader never
// sees half a key.
func writeFile(name string, data []byte, perm os.FileMode) error {
	if old, err := os.ReadFile(name); err == nil && bytes.Equal(old, data) {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), ".tmp-"+filepath.Base(name))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}

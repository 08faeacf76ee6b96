// Package identity names the parties of the labourlink federation and carries their names in
// X.509 certificates: a development CA and certificates (ECDSA P-256), parsing a peer's
// certificate into an Identity, and the TLS configurations of servers and clients (mTLS,
// TLS 1.3).
//
// # The identity scheme
//
// Every certificate the federation's CA issues carries exactly one URI SAN with the scheme
// `labourlink`. It names the party, never a person:
//
//	labourlink://coordination                the coordination service (one for the nation)
//	labourlink://region/520000/sending       the sending service of province 520000 (Guizhou)
//	labourlink://region/440000/receiving     the receiving service of province 440000 (Guangdong)
//	labourlink://region/520000/system        province 520000's own system (a client: imports,
//	                                         vacancies, intake, the full worker view)
//	labourlink://operator/520000/read        an operator of province 520000 with read-only rights
//	labourlink://operator/520000/full        an operator of province 520000 with full rights
//	labourlink://operator/national/read      a national operator, read-only, every province
//	labourlink://operator/national/full      a national operator with full rights
//
// Region codes are GB/T 2260 province codes. Service certificates also carry DNS and IP SANs
// (localhost, 127.0.0.1, ::1 and the hosts given when issuing) so that clients verify the
// server's address as usual; the URI says who the party is, and services/platform/authz decides what
// it may do.
package identity

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/eastwest/labourlink/services/codes/regions"
)

// Scheme is the URI scheme of labourlink identities.
const Scheme = "labourlink"

// National is the scope word of a national operator in URIs and file names.
const National = "national"

// Role is what a party does in the federation.
type Role string

// The roles.
const (
	// RoleSending is the sending service of a province.
	RoleSending Role = "sending"
	// RoleReceiving is the receiving service of a province.
	RoleReceiving Role = "receiving"
	// RoleCoordination is the coordination service.
	RoleCoordination Role = "coordination"
	// RoleSystem is a province's own system: the client that imports its roster or publishes
	// its vacancies and records its intake.
	RoleSystem Role = "system"
	// RoleOperatorRead is an operator with read-only rights.
	RoleOperatorRead Role = "operator-read"
	// RoleOperatorFull is an operator with full rights (mutations, the full identity-number view).
	RoleOperatorFull Role = "operator-full"
)

// Identity is a party of the federation as named in its certificate.
type Identity struct {
	// Role is what the party does.
	Role Role
	// Region is the party's province code; empty for the coordination service and for
	// national operators.
	Region string
}

// Constructors of the identities.

// Coordination is the coordination service.
func Coordination() Identity { return Identity{Role: RoleCoordination} }

// Sending is the sending service of province code.
func Sending(code string) Identity { return Identity{Role: RoleSending, Region: code} }

// Receiving is the receiving service of province code.
func Receiving(code string) Identity { return Identity{Role: RoleReceiving, Region: code} }

// System is province code's own system.
func System(code string) Identity { return Identity{Role: RoleSystem, Region: code} }

// Operator is an operator of province code ("" or National for a national operator) with
// full rights or read-only rights.
func Operator(code string, full bool) Identity {
	if code == National {
		code = ""
	}
	if full {
		return Identity{Role: RoleOperatorFull, Region: code}
	}
	return Identity{Role: RoleOperatorRead, Region: code}
}

// IsService reports whether the identity is one of the three kinds of service.
func (id Identity) IsService() bool {
	return id.Role == RoleSending || id.Role == RoleReceiving || id.Role == RoleCoordination
}

// IsOperator reports whether the identity is an operator (read or full).
func (id Identity) IsOperator() bool {
	return id.Role == RoleOperatorRead || id.Role == RoleOperatorFull
}

// IsNational reports whether the identity is a national operator.
func (id Identity) IsNational() bool { return id.IsOperator() && id.Region == "" }

// Validate checks that the role is known and the region fits it.
func (id Identity) Validate() error {
	switch id.Role {
	case RoleCoordination:
		if id.Region != "" {
			return fmt.Errorf("the coordination service has no region (got %q)", id.Region)
		}
		return nil
	case RoleOperatorRead, RoleOperatorFull:
		if id.Region == "" {
			return nil
		}
	case RoleSending, RoleReceiving, RoleSystem:
		if id.Region == "" {
			return fmt.Errorf("a %s identity needs a province code", id.Role)
		}
	default:
		return fmt.Errorf("unknown role %q", id.Role)
	}
	if !regions.Default().IsProvince(id.Region) {
		return fmt.Errorf("%q is not a GB/T 2260 province code", id.Region)
	}
	return nil
}

// String returns the identity's URI, such as `labourlink://region/520000/sending`.
func (id Identity) String() string { return id.URI().String() }

// URI returns the identity's URI (the certificate's URI SAN).
func (id Identity) URI() *url.URL {
	u := &url.URL{Scheme: Scheme}
	switch id.Role {
	case RoleCoordination:
		u.Host = "coordination"
	case RoleSending, RoleReceiving, RoleSystem:
		u.Host = "region"
		u.Path = "/" + id.Region + "/" + string(id.Role)
	case RoleOperatorRead, RoleOperatorFull:
		scope := id.Region
		if scope == "" {
			scope = National
		}
		rights := "read"
		if id.Role == RoleOperatorFull {
			rights = "full"
		}
		u.Host = "operator"
		u.Path = "/" + scope + "/" + rights
	default:
		u.Host = "unknown"
		u.Path = "/" + string(id.Role)
	}
	return u
}

// FileBase is the base name of the identity's certificate and key files: `coordination`,
// `sending-520000`, `receiving-440000`, `system-520000`, `operator-520000-read`,
// `operator-national-full`. The certificate is BASE.pem and the key BASE-key.pem.
func (id Identity) FileBase() string {
	switch id.Role {
	case RoleCoordination:
		return "coordination"
	case RoleOperatorRead, RoleOperatorFull:
		scope := id.Region
		if scope == "" {
			scope = National
		}
		return "operator-" + scope + "-" + strings.TrimPrefix(string(id.Role), "operator-")
	default:
		return string(id.Role) + "-" + id.Region
	}
}

// ErrNoIdentity is returned by Parse for a certificate without a labourlink URI SAN.
var ErrNoIdentity = errors.New("the certificate names no labourlink identity")

// ParseURI parses an identity URI (see the package comment).
func ParseURI(s string) (Identity, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Identity{}, fmt.Errorf("identity %q: %w", s, err)
	}
	return fromURL(u)
}

func fromURL(u *url.URL) (Identity, error) {
	bad := func(why string) (Identity, error) {
		return Identity{}, fmt.Errorf("identity %q: %s", u.String(), why)
	}
	if u.Scheme != Scheme {
		return bad("the scheme is not " + Scheme)
	}
	if u.User != nil || u.Port() != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return bad("unexpected user, port, query or fragment")
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if u.Path == "" {
		parts = nil
	}
	var id Identity
	switch u.Hostname() {
	case "coordination":
		if len(parts) != 0 {
			return bad("the coordination identity has no path")
		}
		id = Coordination()
	case "region":
		if len(parts) != 2 {
			return bad("want labourlink://region/CODE/sending|receiving|system")
		}
		switch Role(parts[1]) {
		case RoleSending, RoleReceiving, RoleSystem:
			id = Identity{Role: Role(parts[1]), Region: parts[0]}
		default:
			return bad("the role must be sending, receiving or system")
		}
	case "operator":
		if len(parts) != 2 || parts[0] == "" {
			return bad("want labourlink://operator/CODE|national/read|full")
		}
		switch parts[1] {
		case "read", "full":
			id = Operator(parts[0], parts[1] == "full")
		default:
			return bad("operator rights must be read or full")
		}
	default:
		return bad("unknown kind of party " + u.Hostname())
	}
	if err := id.Validate(); err != nil {
		return bad(err.Error())
	}
	return id, nil
}

// Parse reads the identity of a certificate: its one labourlink URI SAN. A certificate with
// none returns ErrNoIdentity; one with several, or a malformed one, is an error too (a
// certificate names exactly one party).
func Parse(cert *x509.Certificate) (Identity, error) {
	if cert == nil {
		return Identity{}, ErrNoIdentity
	}
	var found []*url.URL
	for _, u := range cert.URIs {
		if u.Scheme == Scheme {
			found = append(found, u)
		}
	}
	switch len(found) {
	case 0:
		return Identity{}, ErrNoIdentity
	case 1:
		return fromURL(found[0])
	default:
		return Identity{}, fmt.Errorf("the certificate names %d labourlink identities; it must name one", len(found))
	}
}

// ParseSpec reads the short forms used on the command line: `520000:sending`,
// `440000:receiving`, `520000:system`, `coordination`, `national:read`, `520000:full`
// (operators), or a full identity URI.
func ParseSpec(s string) (Identity, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, Scheme+"://") {
		return ParseURI(s)
	}
	if s == "coordination" {
		return Coordination(), nil
	}
	code, what, ok := strings.Cut(s, ":")
	if !ok {
		return Identity{}, fmt.Errorf("%q: want CODE:ROLE (e.g. 520000:sending, national:read) or a %s:// URI", s, Scheme)
	}
	var id Identity
	switch what {
	case "sending", "receiving", "system":
		id = Identity{Role: Role(what), Region: code}
	case "read", "full":
		id = Operator(code, what == "full")
	default:
		return Identity{}, fmt.Errorf("%q: the role must be sending, receiving, system, read or full", s)
	}
	if err := id.Validate(); err != nil {
		return Identity{}, fmt.Errorf("%q: %w", s, err)
	}
	return id, nil
}

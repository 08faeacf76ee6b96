package main

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/identity"
)

func init() {
	register(&command{
		name:    "certs init",
		summary: "create a development CA and the certificates of a federation (mTLS identities)",
		run:     runCertsInit,
	})
	register(&command{
		name:    "certs issue",
		summary: "issue one certificate with the CA of a certificate folder (e.g. for a new region)",
		run:     runCertsIssue,
	})
	register(&command{
		name:    "certs show",
		summary: "show the labourlink identity, names and validity of certificate files",
		run:     runCertsShow,
	})
}

// parseList splits a comma- or space-separated flag value.
func parseList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}

func parseRegions(s string) ([]identity.RegionRole, error) {
	var out []identity.RegionRole
	for _, part := range parseList(s) {
		code, role, ok := strings.Cut(part, ":")
		if !ok || (role != "sending" && role != "receiving") {
			return nil, fmt.Errorf("-regions: %q is not CODE:sending or CODE:receiving", part)
		}
		if !regions.Default().IsProvince(code) {
			return nil, fmt.Errorf("-regions: %s is not a province code", code)
		}
		out = append(out, identity.RegionRole{Code: code, Role: identity.Role(role)})
	}
	return out, nil
}

func parseIdentities(flagName, s string) ([]identity.Identity, error) {
	var out []identity.Identity
	for _, part := range parseList(s) {
		id, err := identity.ParseSpec(part)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", flagName, err)
		}
		out = append(out, id)
	}
	return out, nil
}

func runCertsInit(_ context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("labourlink certs init")
	fs.SetOutput(env.stderr)
	dir := fs.String("dir", "certs", "folder for the CA and the certificates")
	regionsFlag := fs.String("regions", "520000:sending,440000:receiving", "provinces and the role of their service, `CODE:sending|receiving,...`; each gets a service and a system certificate")
	operators := fs.String("operators", "", "operator certificates, `SCOPE:read|full,...` with SCOPE a province code or national (default: national and every region, read and full; \"none\" for none)")
	hosts := fs.String("hosts", "", "extra DNS names or IPs for every service certificate, `host,...`; {name} stands for the service (sending-520000, coordination, ...); localhost, 127.0.0.1 and ::1 are always in")
	days := fs.Int("days", int(identity.DefaultCertValidity/(24*time.Hour)), "validity of the certificates in days")
	force := fs.Bool("force", false, "reissue certificates that already exist (the CA is kept)")
	fs.Usage = func() {
		fmt.Fprint(env.stderr, tr(`Usage: labourlink certs init [flags]

Creates a development CA (ca.pem, ca-key.pem) in -dir unless one is there, and a certificate and
key for every party of the federation: the coordination service, each region's service and
system, and the operators. Existing certificates of the same CA are kept, so running it again
with one more region adds just that region. Each certificate names its party in a URI SAN:

  labourlink://coordination                 labourlink://region/520000/sending
  labourlink://region/440000/receiving      labourlink://region/520000/system
  labourlink://operator/520000/read|full    labourlink://operator/national/read|full

Without flags it makes what the local federation needs ('labourlink dev -tls').

Flags:
`))
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	rs, err := parseRegions(*regionsFlag)
	if err != nil {
		return err
	}
	plan := identity.Plan{Regions: rs, Hosts: parseList(*hosts), Validity: time.Duration(*days) * 24 * time.Hour, Force: *force}
	switch strings.TrimSpace(*operators) {
	case "":
		plan.Operators = identity.DefaultOperators(rs)
	case "none":
	default:
		if plan.Operators, err = parseIdentities("-operators", *operators); err != nil {
			return err
		}
		for _, op := range plan.Operators {
			if !op.IsOperator() {
				return fmt.Errorf("-operators: %v is not an operator", op)
			}
		}
	}
	rep, err := identity.Init(*dir, plan)
	if err != nil {
		return err
	}
	w := env.stdout
	if rep.CACreated {
		fmt.Fprint(w, tr("created the CA %s (keep %s secret)\n", filepath.Join(*dir, identity.CAFile), filepath.Join(*dir, identity.CAKeyFile)))
	} else {
		fmt.Fprint(w, tr("using the CA in %s\n", filepath.Join(*dir, identity.CAFile)))
	}
	created := map[string]bool{}
	for _, b := range rep.Created {
		created[b] = true
	}
	tb := newTable("identity", "certificate", "key", "")
	for _, id := range plan.Identities() {
		cert, key := identity.Paths(*dir, id)
		state := "kept"
		if created[id.FileBase()] {
			state = "created"
		}
		tb.add(false, id, cert, key, state)
	}
	tb.render(w, false)
	return nil
}

func runCertsIssue(_ context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("labourlink certs issue")
	fs.SetOutput(env.stderr)
	dir := fs.String("dir", "certs", "folder holding the CA (ca.pem, ca-key.pem); the certificate is written there")
	spec := fs.String("identity", "", "the party: `CODE:sending|receiving|system`, SCOPE:read|full, coordination, or a labourlink:// URI (required)")
	hosts := fs.String("hosts", "", "extra DNS names or IPs of a service certificate, `host,...`")
	days := fs.Int("days", int(identity.DefaultCertValidity/(24*time.Hour)), "validity in days")
	force := fs.Bool("force", false, "overwrite an existing certificate")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, tr("Usage: labourlink certs issue -identity SPEC [flags]\n\nIssues one certificate and key (BASE.pem, BASE-key.pem in -dir) with the folder's CA, for\nexample a service certificate with the DNS name its peers dial:\n\n  labourlink certs issue -dir certs -identity 510000:sending -hosts sending-510000.labourlink.svc\n\nFlags:"))
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *spec == "" {
		fs.Usage()
		return errors.New("-identity is required")
	}
	id, err := identity.ParseSpec(*spec)
	if err != nil {
		return err
	}
	ca, err := identity.LoadCA(filepath.Join(*dir, identity.CAFile), filepath.Join(*dir, identity.CAKeyFile))
	if err != nil {
		return err
	}
	certFile, keyFile := identity.Paths(*dir, id)
	if _, err := os.Stat(certFile); err == nil && !*force {
		return fmt.Errorf("%s exists; use -force to replace it", certFile)
	}
	certPEM, keyPEM, err := ca.Issue(id, identity.IssueOptions{Hosts: parseList(*hosts), Validity: time.Duration(*days) * 24 * time.Hour})
	if err != nil {
		return err
	}
	if err := identity.WriteFiles(certFile, certPEM, keyFile, keyPEM); err != nil {
		return err
	}
	fmt.Fprint(env.stdout, tr("issued %s\n  certificate %s\n  key         %s\n", id, certFile, keyFile))
	return nil
}

func runCertsShow(_ context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("labourlink certs show")
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, tr("Usage: labourlink certs show FILE.pem..."))
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("no certificate file given")
	}
	tb := newTable("file", "identity", "hosts", "valid until", "issuer")
	var failed error
	for _, name := range fs.Args() {
		if onlyPrivateKey(name) {
			continue // the key next to a certificate: `certs show DIR/*.pem` shows the certificates
		}
		c, err := identity.ReadCertFile(name)
		if err != nil {
			failed = err
			fmt.Fprintln(env.stderr, err)
			continue
		}
		who := "(CA)"
		if !c.IsCA {
			if id, err := identity.Parse(c); err != nil {
				who = "(" + err.Error() + ")"
			} else {
				who = id.String()
			}
		}
		hostNames := append([]string(nil), c.DNSNames...)
		for _, ip := range c.IPAddresses {
			hostNames = append(hostNames, ip.String())
		}
		expired := time.Now().After(c.NotAfter)
		until := c.NotAfter.Format("2006-01-02")
		if expired {
			until += " EXPIRED"
		}
		tb.add(expired, name, who, strings.Join(hostNames, ","), until, c.Issuer.CommonName)
	}
	tb.render(env.stdout, env.colour)
	return failed
}

// onlyPrivateKey reports whether file is a PEM file of a private key and no certificate (such as
// the -key.pem files `certs init` writes next to the certificates).
func onlyPrivateKey(file string) bool {
	b, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	key := false
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			return key
		}
		if blk.Type == "CERTIFICATE" {
			return false
		}
		key = key || strings.HasSuffix(blk.Type, "PRIVATE KEY")
	}
}

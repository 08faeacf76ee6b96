package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/eastwest/labourlink/services/daemon"
	"github.com/eastwest/labourlink/services/platform/identity"
)

// cli runs `labourlink ARGS...` and returns the exit code, stdout and stderr.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := runCLI(context.Background(), &cliEnv{stdout: &out, stderr: &errOut}, args)
	return code, out.String(), errOut.String()
}

// checkOutput fails t for each of want that text lacks and each of unwanted it has.
func checkOutput(t *testing.T, text string, want, unwanted []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("no %q in:\n%s", w, text)
		}
	}
	for _, u := range unwanted {
		if strings.Contains(text, u) {
			t.Errorf("%q in:\n%s", u, text)
		}
	}
}

func TestCertsInitIssueShow(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	code, out, errOut := cli(t, "certs", "init", "-dir", dir)
	if code != 0 {
		t.Fatalf("certs init: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(out, "created the CA") || !strings.Contains(out, "labourlink://region/520000/sending") ||
		!strings.Contains(out, "labourlink://operator/national/full") {
		t.Errorf("certs init output:\n%s", out)
	}
	// Everything `labourlink dev -tls` needs is there.
	for _, id := range identity.LocalFederation().Identities() {
		cert, key := identity.Paths(dir, id)
		for _, f := range []string{cert, key} {
			if _, err := os.Stat(f); err != nil {
				t.Errorf("%v: %v", id, err)
			}
		}
	}

	// A new region with the same CA; the others are kept.
	code, out, errOut = cli(t, "certs", "init", "-dir", dir, "-regions", "510000:sending", "-operators", "none",
		"-hosts", "{name}.labourlink.svc")
	if code != 0 {
		t.Fatalf("certs init (one more region): exit %d\n%s", code, errOut)
	}
	if !strings.Contains(out, "using the CA") || strings.Count(out, "created") != 2 || !strings.Contains(out, "kept") {
		t.Errorf("second certs init output:\n%s", out)
	}
	c, err := identity.ReadCertFile(filepath.Join(dir, "sending-510000.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(c.DNSNames, "sending-510000.labourlink.svc") {
		t.Errorf("host pattern not applied: %v", c.DNSNames)
	}

	code, _, errOut = cli(t, "certs", "issue", "-dir", dir, "-identity", "330000:receiving", "-hosts", "zj.example,10.1.2.3")
	if code != 0 {
		t.Fatalf("certs issue: exit %d\n%s", code, errOut)
	}
	if code, _, errOut = cli(t, "certs", "issue", "-dir", dir, "-identity", "330000:receiving"); code == 0 || !strings.Contains(errOut, "-force") {
		t.Errorf("certs issue over an existing certificate: exit %d %s", code, errOut)
	}
	code, out, _ = cli(t, "certs", "show", filepath.Join(dir, "ca.pem"), filepath.Join(dir, "receiving-330000.pem"))
	if code != 0 || !strings.Contains(out, "(CA)") || !strings.Contains(out, "labourlink://region/330000/receiving") ||
		!strings.Contains(out, "zj.example") || !strings.Contains(out, "10.1.2.3") {
		t.Errorf("certs show: exit %d\n%s", code, out)
	}
	// A folder's *.pem: the certificates are shown, the private keys beside them left out.
	keys, _ := filepath.Glob(filepath.Join(dir, "*-key.pem"))
	all, _ := filepath.Glob(filepath.Join(dir, "*.pem"))
	code, out, errOut = cli(t, append([]string{"certs", "show"}, all...)...)
	if code != 0 || len(keys) == 0 || strings.Contains(out, "-key.pem") || !strings.Contains(out, "receiving-330000.pem") {
		t.Errorf("certs show DIR/*.pem: exit %d\n%s\n%s", code, out, errOut)
	}
	notPEM := filepath.Join(dir, "notes.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := cli(t, "certs", "show", notPEM); code == 0 {
		t.Errorf("certs show of a file with no certificate succeeded")
	}

	for _, bad := range [][]string{
		{"certs", "init", "-dir", dir, "-regions", "520000:system"},
		{"certs", "init", "-dir", dir, "-regions", "520100:sending"},
		{"certs", "init", "-dir", dir, "-operators", "520000:sending"},
		{"certs", "issue", "-dir", dir, "-identity", "nobody"},
		{"certs", "issue", "-dir", t.TempDir(), "-identity", "520000:system"}, // no CA there
		{"certs", "show"},
	} {
		if code, _, _ := cli(t, bad...); code == 0 {
			t.Errorf("%v succeeded", bad)
		}
	}
}

// The CLI's -tls-ca/-tls-cert/-tls-key (and LABOURLINK_TLS_*) work against a service running
// with mTLS: a province's own system certificate lists its roster, another province's is
// refused, and without certificates the CLI cannot connect.
func TestClientTLSFlagsAgainstAnMTLSService(t *testing.T) {
	dir := t.TempDir()
	if _, err := identity.Init(dir, identity.LocalFederation()); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cert, key := identity.Paths(dir, identity.Sending("520000"))
	cfg := daemon.Config{Kind: daemon.Sending, Region: "520000", Listen: addr, DataDir: t.TempDir(), LogLevel: "info",
		ShutdownTimeout: 2 * time.Second, TLS: daemon.TLSConfig{CAFile: filepath.Join(dir, identity.CAFile), CertFile: cert, KeyFile: key}}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- daemon.Run(ctx, cfg, zaptest.NewLogger(t)) }()
	t.Cleanup(func() { cancel(); <-errc })

	as := func(id identity.Identity) []string {
		c, k := identity.Paths(dir, id)
		return []string{"-addr", addr, "-tls-ca", filepath.Join(dir, identity.CAFile), "-tls-cert", c, "-tls-key", k}
	}
	// The service may still be starting: the client retries UNAVAILABLE, and so does this loop.
	var code int
	var errOut string
	for i := 0; i < 50; i++ {
		if code, _, errOut = cli(t, append([]string{"roster", "list"}, as(identity.System("520000"))...)...); code == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code != 0 {
		t.Fatalf("roster list as Guizhou's system: exit %d\n%s", code, errOut)
	}
	code, _, errOut = cli(t, append([]string{"roster", "list"}, as(identity.System("440000"))...)...)
	if code == 0 || !strings.Contains(errOut, "PermissionDenied") || !strings.Contains(errOut, "CALLER_NOT_ALLOWED") {
		t.Errorf("roster list as Guangdong's system: exit %d\n%s", code, errOut)
	}
	code, _, errOut = cli(t, append([]string{"roster", "get", "workers/none", "-full"}, as(identity.Operator("520000", false))...)...)
	if code == 0 || !strings.Contains(errOut, "FULL_VIEW_NOT_ALLOWED") {
		t.Errorf("roster get -full as a read-only operator: exit %d\n%s", code, errOut)
	}
	if code, _, errOut = cli(t, "roster", "list", "-addr", addr, "-tls-ca", filepath.Join(dir, identity.CAFile)); code == 0 || !strings.Contains(errOut, "mTLS needs") {
		t.Errorf("roster list with only -tls-ca: exit %d\n%s", code, errOut)
	}
	c, k := identity.Paths(dir, identity.System("520000"))
	t.Setenv("LABOURLINK_TLS_CA", filepath.Join(dir, identity.CAFile))
	t.Setenv("LABOURLINK_TLS_CERT", c)
	t.Setenv("LABOURLINK_TLS_KEY", k)
	if code, _, errOut = cli(t, "roster", "list", "-addr", addr); code != 0 {
		t.Errorf("roster list with LABOURLINK_TLS_*: exit %d\n%s", code, errOut)
	}
}

package dashboard_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/platform/dashboard"
	"github.com/eastwest/labourlink/services/platform/identity"
)

// loader asks to call ListPairingSummaries about the requested region, as the coordination
// service's loader does, and shows the region it was asked for.
var loader = dashboard.LoaderFunc(func(ctx context.Context, r dashboard.Request) (*dashboard.Page, error) {
	req := &coordinationv1.ListPairingSummariesRequest{Region: r.Region}
	if err := r.Allow(ctx, coordinationv1.ReconciliationService_ListPairingSummaries_FullMethodName, proto.Message(req)); err != nil {
		return nil, err
	}
	return &dashboard.Page{Service: "coordination", Region: r.Region, ShowPairings: true,
		Pairings: []dashboard.PairingRow{{Receiving: "440000", Sending: "520000", Departed: 6}}}, nil
})

// TestDashboardAuthorisesLikeTheAPI serves the dashboard over mTLS and checks each identity
// gets the page exactly when the API's policy lets it read the figures.
func TestDashboardAuthorisesLikeTheAPI(t *testing.T) {
	now := time.Now()
	ca, err := identity.NewCA("test", now.Add(-time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	h, err := dashboard.Handler(dashboard.Config{Self: identity.Coordination(), Loader: loader})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{ClientCAs: ca.Pool(), ClientAuth: tls.VerifyClientCertIfGiven}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	client := func(t *testing.T, id *identity.Identity) *http.Client {
		cfg := &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
		if id != nil {
			certPEM, keyPEM, err := ca.Issue(*id, identity.IssueOptions{Now: now, Validity: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			pair, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	id := func(i identity.Identity) *identity.Identity { return &i }
	for _, tc := range []struct {
		name   string
		caller *identity.Identity
		query  string
		want   int
		region string
	}{
		{"national operator reads the nation", id(identity.Operator("", false)), "", http.StatusOK, ""},
		{"national operator reads a province", id(identity.Operator("", false)), "?region=520000", http.StatusOK, "520000"},
		{"province's system reads its own by default", id(identity.System("520000")), "", http.StatusOK, "520000"},
		{"province's operator reads its own", id(identity.Operator("440000", true)), "?region=440000", http.StatusOK, "440000"},
		{"province's system may not read another", id(identity.System("520000")), "?region=440000", http.StatusForbidden, ""},
		{"a service certificate may not read", id(identity.Sending("520000")), "", http.StatusForbidden, ""},
		{"no client certificate", nil, "", http.StatusForbidden, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := client(t, tc.caller).Get(srv.URL + "/dashboard/" + tc.query)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, body)
			}
			if tc.want == http.StatusOK && !strings.Contains(string(body), `data-region="`+tc.region+`"`) {
				t.Fatalf("page not about %q: %s", tc.region, body)
			}
			if tc.want == http.StatusOK && !strings.Contains(string(body), `data-departed="6"`) {
				t.Fatalf("page without the figures: %s", body)
			}
		})
	}
}

// TestDashboardWithoutTLSIsOpen: the local federation (plaintext) serves everyone; the page
// is read-only.
func TestDashboardWithoutTLSIsOpen(t *testing.T) {
	h, err := dashboard.Handler(dashboard.Config{Self: identity.Coordination(), Loader: loader})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method string
		want   int
	}{{http.MethodGet, http.StatusOK}, {http.MethodPost, http.StatusMethodNotAllowed}} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, "/dashboard/", nil))
		if rec.Code != tc.want {
			t.Errorf("%s: status %d, want %d", tc.method, rec.Code, tc.want)
		}
	}
}

func TestLang(t *testing.T) {
	for _, tc := range []struct{ query, accept, want string }{
		{"", "", "en"},
		{"", "zh-CN,zh;q=0.9,en;q=0.8", "zh"},
		{"", "zh-TW", "zh"},
		{"", "en-US,en;q=0.9,zh;q=0.5", "en"},
		{"", "fr-FR", "en"},
		{"?lang=zh", "en-US", "zh"},
		{"?lang=en", "zh-CN", "en"},
		{"?lang=de", "zh-CN", "zh"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/dashboard/"+tc.query, nil)
		if tc.accept != "" {
			r.Header.Set("Accept-Language", tc.accept)
		}
		if got := dashboard.Lang(r); got != tc.want {
			t.Errorf("Lang(%q, Accept-Language %q) = %q, want %q", tc.query, tc.accept, got, tc.want)
		}
	}
}

package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/eastwest/labourlink/services/platform/metrics"
)

// A nil registry (a subsystem built without metrics) takes every call and does nothing.
func TestNilRegistryDoesNothing(t *testing.T) {
	var r *metrics.Registry
	r.DeliveryFailed("coordination")
	r.InitializeDestination("coordination")
	r.InitializeImport(metrics.ImportRoster)
	r.ImportRows(metrics.ImportRoster, 1, 2)
	r.InitializeLedgerEvent("departed", "sending")
	r.LedgerEventsIngested("departed", "sending", 1)
	r.InitializeServer(nil)
	r.ObserveOutbox(nil)
	r.ObserveFollowers(nil)
	r.ObserveDiscrepancies(nil)
	r.ObserveStore(nil)
	if u, s := r.ServerInterceptors(); u != nil || s != nil {
		t.Error("a nil registry gave interceptors")
	}
	if opts := r.ClientDialOptions(); len(opts) != 0 {
		t.Error("a nil registry gave dial options")
	}
}

// scrape returns the text the registry's handler serves.
func scrape(t *testing.T, r *metrics.Registry) string {
	t.Helper()
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %v", resp.Status, err)
	}
	return string(b)
}

// Two registries in one process (two services in a test) count apart; each counts only what
// its own service did, and the gauges read at scrape time show what their functions read.
func TestRegistriesCountApart(t *testing.T) {
	a, b := metrics.New("sending", "520000"), metrics.New("receiving", "440000")
	a.InitializeImport(metrics.ImportRoster)
	a.ImportRows(metrics.ImportRoster, 5, 2)
	a.ImportRows(metrics.ImportRoster, 1, 0)
	b.InitializeImport(metrics.ImportVacancies)
	a.DeliveryFailed("receiving/440000")
	a.ObserveFollowers(func() []metrics.FollowerLag {
		return []metrics.FollowerLag{{Peer: "440000", Feed: "demand", RevisionsBehind: 12}}
	})
	b.ObserveDiscrepancies(func() map[string]int64 { return map[string]int64{"unaccounted": 3} })

	sa, sb := scrape(t, a), scrape(t, b)
	for _, line := range []string{
		`labourlink_build_info{region="520000",service="sending",`,
		`labourlink_import_rows_total{import="roster",result="committed"} 6`,
		`labourlink_import_rows_total{import="roster",result="rejected"} 2`,
		`labourlink_outbox_delivery_failures_total{destination="receiving/440000"} 1`,
		`labourlink_feed_follower_revisions_behind{feed="demand",peer="440000"} 12`,
		`labourlink_feed_follower_caught_up{feed="demand",peer="440000"} 0`,
		"go_goroutines ",
	} {
		if !strings.Contains(sa, line) {
			t.Errorf("sending's scrape lacks %s", line)
		}
	}
	for _, line := range []string{
		`labourlink_import_rows_total{import="vacancies",result="committed"} 0`,
		`labourlink_reconciliation_open_discrepancies{kind="unaccounted"} 3`,
	} {
		if !strings.Contains(sb, line) {
			t.Errorf("receiving's scrape lacks %s", line)
		}
	}
	if strings.Contains(sb, `import="roster"`) || strings.Contains(sb, "delivery_failures_total{") {
		t.Error("the receiving registry shows the sending registry's counts")
	}
}

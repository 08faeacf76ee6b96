package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"go.etcd.io/bbolt"
	"go.yaml.in/yaml/v3"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/daemon"
	"github.com/eastwest/labourlink/services/devtools/proctest"
	"github.com/eastwest/labourlink/services/devtools/wait"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending"
	"github.com/eastwest/labourlink/services/sending/roster/rostertest"
)

// --- monitoring: the alert rules and the dashboard against the metrics the services export ---

// ruleFile is a Prometheus rule file, decoded strictly (an unknown field is an error).
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// generated are the series Prometheus makes itself for each target; rules may use them.
var generated = []string{"up", "scrape_duration_seconds", "scrape_samples_scraped"}

// metricNames returns the metric names expr selects, parsed by Prometheus's own PromQL parser.
func metricNames(expr string) ([]string, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel {
				name = m.Value
			}
		}
		names = append(names, name)
		return nil
	})
	return names, nil
}

// ruleExprs reads the alert rules: alert name -> expression.
func ruleExprs(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("monitoring", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f ruleFile
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("monitoring/alerts.yaml: %v", err)
	}
	out := map[string]string{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			where := fmt.Sprintf("monitoring/alerts.yaml: group %s, alert %q", g.Name, r.Alert)
			if r.Alert == "" || r.Expr == "" {
				t.Errorf("%s: every rule needs an alert name and an expr", where)
				continue
			}
			if _, dup := out[r.Alert]; dup {
				t.Errorf("%s: alert named twice", where)
			}
			if _, err := model.ParseDuration(r.For); err != nil {
				t.Errorf("%s: for %q: %v", where, r.For, err)
			}
			if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
				t.Errorf("%s: labels.severity must be critical, warning or info, not %q", where, r.Labels["severity"])
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: needs annotations summary and description", where)
			}
			out[r.Alert] = r.Expr
		}
	}
	return out
}

// labelValues matches a Grafana variable query label_values(SELECTOR, label).
var labelValues = regexp.MustCompile(`^label_values\((.*),\s*\w+\)$`)

// dashboardExprs reads the dashboard's queries: "panel title: refId" -> expression, and the
// selectors of its variables' label_values queries.
func dashboardExprs(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("monitoring", "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID        string            `json:"uid"`
		Title      string            `json:"title"`
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("monitoring/dashboard.json: %v", err)
	}
	if d.UID == "" || d.Title == "" {
		t.Error("monitoring/dashboard.json: needs a uid and a title (Grafana's import keys on the uid)")
	}
	out := map[string]string{}
	type panel struct {
		Title   string            `json:"title"`
		Type    string            `json:"type"`
		Panels  []json.RawMessage `json:"panels"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	}
	var walk func(raw []json.RawMessage)
	walk = func(raw []json.RawMessage) {
		for _, r := range raw {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatalf("monitoring/dashboard.json: panel: %v", err)
			}
			walk(p.Panels) // a collapsed row holds its panels
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("monitoring/dashboard.json: panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				out[p.Title+": "+tg.RefID] = tg.Expr
			}
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("monitoring/dashboard.json: variable %s: %v", v.Name, err)
		}
		m := labelValues.FindStringSubmatch(q.Query)
		if m == nil {
			t.Errorf("monitoring/dashboard.json: variable %s: %q is not label_values(selector, label)", v.Name, q.Query)
			continue
		}
		out["variable "+v.Name] = m[1]
	}
	return out
}

// grafanaVars are the dashboard's variables as Grafana substitutes them, so that the queries
// parse as PromQL.
var grafanaVars = strings.NewReplacer("$job", "labourlink-sending", "$instance", "127.0.0.1:9090", "${datasource}", "prometheus")

// running is three services of the suite as processes, each with its metrics listener.
type running struct {
	coordination, sending, receiving *proctest.Process
}

// startFederation starts coordination, Guangdong (receiving) and Guizhou (sending), paired by
// the default pairings, each serving metrics on a port of the kernel's choice.
func startFederation(t *testing.T) running {
	t.Helper()
	var f running
	f.coordination = proctest.Start(t, "coordination", "", "-data", t.TempDir(), "-metrics-addr", "127.0.0.1:0")
	f.receiving = proctest.Start(t, "receiving", "", "-region", "440000", "-coordination", f.coordination.Addr,
		"-data", t.TempDir(), "-metrics-addr", "127.0.0.1:0")
	f.sending = proctest.Start(t, "sending", "", "-region", "520000", "-coordination", f.coordination.Addr,
		"-data", t.TempDir(), "-metrics-addr", "127.0.0.1:0")
	return f
}

// scrape reads the process's /metrics over HTTP.
func scrape(t *testing.T, p *proctest.Process) map[string]*dto.MetricFamily {
	t.Helper()
	if p.Ready.Metrics == "" {
		t.Fatalf("the %s service's ready file names no metrics listener", p.Ready.Kind)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Ready.Metrics+daemon.MetricsPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape the %s service: %v", p.Ready.Kind, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape the %s service: %s %v\n%s", p.Ready.Kind, resp.Status, err, body)
	}
	tp := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := tp.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the %s service's metrics do not parse: %v", p.Ready.Kind, err)
	}
	return fams
}

// seriesNames adds to names the series names of the families: a histogram's or summary's
// _bucket, _sum and _count too.
func seriesNames(names map[string]bool, fams map[string]*dto.MetricFamily) {
	for name, f := range fams {
		names[name] = true
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			names[name+"_sum"], names[name+"_count"] = true, true
		}
	}
}

// The alert rules and the dashboard name only metrics the services export: every metric in
// their expressions is among those a running federation of the three services serves on its
// metrics listeners (or one Prometheus makes itself, such as up). The labourlink_* metrics the
// services export are each documented in docs/operations.md.
func TestMonitoringNamesExportedMetrics(t *testing.T) {
	t.Parallel()
	exprs := map[string]string{}
	for name, e := range ruleExprs(t) {
		exprs["monitoring/alerts.yaml: "+name] = e
	}
	for name, e := range dashboardExprs(t) {
		exprs["monitoring/dashboard.json: "+name] = grafanaVars.Replace(e)
	}
	used := map[string][]string{} // metric -> where
	for where, e := range exprs {
		names, err := metricNames(e)
		if err != nil {
			t.Errorf("%s: %q does not parse: %v", where, e, err)
			continue
		}
		if len(names) == 0 {
			t.Errorf("%s: %q selects no metric", where, e)
		}
		for _, n := range names {
			used[n] = append(used[n], where)
		}
	}

	f := startFederation(t)
	exported := map[string]bool{}
	for _, n := range generated {
		exported[n] = true
	}
	var mu sync.Mutex
	family := func(p *proctest.Process, name string) bool {
		fams := scrape(t, p)
		mu.Lock()
		defer mu.Unlock()
		seriesNames(exported, fams)
		return fams[name] != nil
	}
	// The follower's lag is known once the receiving province's feeds have answered.
	wait.For(t, "the sending service's follower lag", func() bool {
		return family(f.sending, "labourlink_feed_follower_revisions_behind")
	})
	family(f.coordination, "")
	family(f.receiving, "")

	for name, where := range used {
		if !exported[name] {
			sort.Strings(where)
			t.Errorf("metric %s is not exported by any service; used in:\n  %s", name, strings.Join(where, "\n  "))
		}
	}
	docs, err := os.ReadFile(filepath.Join("..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	for name := range exported {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if strings.HasPrefix(name, "labourlink_") && !bytes.Contains(docs, []byte("`"+base+"`")) {
			t.Errorf("docs/operations.md does not document `%s`", base)
		}
	}
}

// sample returns the value of the family's series whose labels include want, and whether
// there is one.
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			if labels[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// A running sending service counts on its metrics listener what it did: the RPCs it served, by
// method and code (a GetImport of an unknown import is NotFound), the import rows it committed
// (here all rejected), and its outbox as it is on disk: the ledger events queued for a
// coordination service that does not answer, their age, and the failed deliveries.
func TestScrapeCountsWhatTheServiceDid(t *testing.T) {
	t.Parallel()
	// The outbox is filled before the service starts, as a service that had queued these
	// events and been restarted would find it.
	const queued = 7
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "sending.db"), sending.Schema, nil)
	if err != nil {
		t.Fatal(err)
	}
	queuedAt := time.Now().Add(-time.Hour)
	err = db.Update(func(tx *bbolt.Tx) error {
		for i := range queued {
			ev := &coordinationv1.LedgerEvent{EventId: fmt.Sprintf("metrics-test-%d", i), Kind: coordinationv1.EventKind_EVENT_KIND_DEPARTED}
			if _, err := outbox.Put(context.Background(), tx, queuedAt, ledgerclient.Destination, "", ev); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// No coordination service listens at this address: every delivery fails and is retried.
	p := proctest.Start(t, "sending", "", "-region", "520000", "-coordination", proctest.FreeAddr(t),
		"-data", dir, "-metrics-addr", "127.0.0.1:0")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	roster := sendingv1.NewRosterServiceClient(p.Conn())
	rows := []*sendingv1.WorkerRow{{RowNumber: 2}, {RowNumber: 3}, {RowNumber: 4}} // empty: rejected
	if _, err := rostertest.ImportRows(ctx, roster, "metrics-import", rows, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := roster.GetImport(ctx, &sendingv1.GetImportRequest{ImportId: "no-such-import"}); err == nil {
		t.Fatal("GetImport of an unknown import succeeded")
	}

	var fams map[string]*dto.MetricFamily
	wait.For(t, "a failed delivery to the coordination service", func() bool {
		fams = scrape(t, p)
		n, _ := sample(fams, "labourlink_outbox_delivery_failures_total", map[string]string{"destination": ledgerclient.Destination})
		return n >= 1
	})
	checks := []struct {
		name   string
		labels map[string]string
		want   func(float64) bool
		says   string
	}{
		{"grpc_server_handled_total", map[string]string{"grpc_service": "labourlink.sending.v1.RosterService", "grpc_method": "GetImport", "grpc_code": "NotFound"},
			func(v float64) bool { return v == 1 }, "1 (the GetImport of an unknown import)"},
		{"grpc_server_handled_total", map[string]string{"grpc_method": "ImportWorkers", "grpc_code": "OK"},
			func(v float64) bool { return v == 1 }, "1 (the import stream)"},
		{"grpc_server_handled_total", map[string]string{"grpc_method": "ListWorkers", "grpc_code": "OK"},
			func(v float64) bool { return v == 0 }, "0 (exported before the first call)"},
		{"labourlink_import_rows_total", map[string]string{"import": "roster", "result": "rejected"},
			func(v float64) bool { return v == float64(len(rows)) }, fmt.Sprint(len(rows))},
		{"labourlink_import_rows_total", map[string]string{"import": "roster", "result": "committed"},
			func(v float64) bool { return v == 0 }, "0"},
		{"labourlink_outbox_entries", map[string]string{"destination": ledgerclient.Destination},
			func(v float64) bool { return v == queued }, fmt.Sprint(queued)},
		{"labourlink_outbox_oldest_entry_age_seconds", map[string]string{"destination": ledgerclient.Destination},
			func(v float64) bool { return v >= time.Hour.Seconds() }, "at least 3600 (queued an hour ago)"},
		{"labourlink_outbox_quarantined_entries", map[string]string{"destination": ledgerclient.Destination},
			func(v float64) bool { return v == 0 }, "0"},
		{"labourlink_store_file_size_bytes", nil, func(v float64) bool { return v > 0 }, "above 0"},
		{"labourlink_build_info", map[string]string{"service": "sending", "region": "520000"}, func(v float64) bool { return v == 1 }, "1"},
	}
	for _, c := range checks {
		v, ok := sample(fams, c.name, c.labels)
		if !ok || !c.want(v) {
			t.Errorf("%s%v = %v (present %t), want %s", c.name, c.labels, v, ok, c.says)
		}
	}
}

// metricNames finds every metric an expression selects, in functions, binary operations and
// {__name__="..."} selectors, so that a rule naming a metric the services lack is caught.
func TestMetricNamesOfExpressions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr string
		want []string
	}{
		{`up == 0`, []string{"up"}},
		{`sum by (x) (rate(a_total{job="j"}[5m])) / sum by (x) (rate(b_total[5m])) > 0.05`, []string{"a_total", "b_total"}},
		{`histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))`, []string{"h_bucket"}},
		{`{__name__="c"} or d offset 1h`, []string{"c", "d"}},
	}
	for _, tt := range tests {
		got, err := metricNames(tt.expr)
		if err != nil {
			t.Fatalf("%s: %v", tt.expr, err)
		}
		sort.Strings(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("metricNames(%s) = %v, want %v", tt.expr, got, tt.want)
		}
	}
	if _, err := metricNames(`rate(x[5m]`); err == nil {
		t.Error("an expression that does not parse gave no error")
	}
}

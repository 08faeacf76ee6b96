package federation_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/devtools/federation"
	"github.com/eastwest/labourlink/services/platform/dashboard"
)

// pageFigures is what a dashboard page shows, read from its data-* attributes in the browser.
type pageFigures struct {
	Lang     string              `json:"lang"`
	Service  string              `json:"service"`
	Title    string              `json:"title"`
	Pairings []map[string]string `json:"pairings"`
	Discreps []map[string]string `json:"discrepancies"`
	Assess   []map[string]string `json:"assessments"`
	Points   []map[string]string `json:"points"`
	Recovery map[string]string   `json:"recovery"`
	Intake   []map[string]string `json:"intake"`
}

const readPage = `(() => {
  const all = (sel) => Array.from(document.querySelectorAll(sel)).map(e => Object.assign({}, e.dataset));
  const rec = document.querySelector('#recovery');
  return JSON.stringify({lang: document.body.dataset.lang, service: document.body.dataset.service,
    title: document.querySelector('#title').textContent,
    pairings: all('tr.pairing'), discrepancies: all('tr.discrepancy'), assessments: all('g.assessment'),
    points: all('g.point'), recovery: rec ? Object.assign({}, rec.dataset) : null, intake: all('tr.intake')});
})()`

// chromium is Debian's chromium; without it the caller is skipped, except in CI (CI=true),
// where it fails: .ci/run installs it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (CI=true): .ci/run installs the Debian package chromium")
	}
	t.Skip("chromium is not installed, so the dashboards are not checked in a browser: apt-get install -y --no-install-recommends chromium (CI fails instead of skipping)")
	return ""
}

// checkDashboards loads, in a real headless Chromium, the coordination service's national
// dashboard, the sending province's and the receiving province's own views, each in Chinese and
// in English, from the HTTP listeners of the running federation d, and checks every figure on
// each page equals the API's answer over gRPC (conns). It saves a screenshot of each page in a
// temporary folder and in $LABOURLINK_SCREENSHOTS when set.
func checkDashboards(t *testing.T, ctx context.Context, d *devProcess, c federationConns, year int32, today *commonv1.Date, outAtWork int64) {
	t.Run("dashboards in chromium", func(t *testing.T) {
		browser := chromium(t)
		opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.WindowSize(1200, 1600))
		actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
		t.Cleanup(cancel)
		bctx, cancel := chromedp.NewContext(actx)
		t.Cleanup(cancel)
		bctx, cancel = context.WithTimeout(bctx, 3*time.Minute)
		t.Cleanup(cancel)
		shots := t.TempDir()
		for _, tc := range []struct{ kind, lang, title string }{
			{"coordination", "zh", "对账看板 · 全国"}, {"coordination", "en", "reconciliation dashboard"},
			{"sending", "zh", "贵州省 520000"}, {"sending", "en", "520000"},
			{"receiving", "zh", "广东省 440000"}, {"receiving", "en", "440000"},
		} {
			t.Run(tc.kind+","+tc.lang, func(t *testing.T) {
				url := "http://" + federation.HTTPAddr(d.addrs[tc.kind]) + "/dashboard/?lang=" + tc.lang
				if err := chromedp.Do(bctx, chromedp.Navigate(url), chromedp.WaitVisible("#title")); err != nil {
					t.Fatalf("load %s: %v", url, err)
				}
				raw, err := chromedp.Run(bctx, chromedp.Evaluate[string](readPage))
				if err != nil {
					t.Fatal(err)
				}
				png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
				if err != nil {
					t.Fatal(err)
				}
				var got pageFigures
				if err := json.Unmarshal([]byte(raw), &got); err != nil {
					t.Fatal(err)
				}
				if got.Lang != tc.lang || got.Service != tc.kind || !strings.Contains(got.Title, tc.title) {
					t.Errorf("%s: lang %q service %q title %q, want %q, %q and a title with %q", url, got.Lang, got.Service, got.Title, tc.lang, tc.kind, tc.title)
				}
				switch tc.kind {
				case "coordination":
					coordinationFigures(t, ctx, c, year, today, outAtWork, got)
				case "sending":
					sendingFigures(t, ctx, c, today, outAtWork, got)
				case "receiving":
					receivingFigures(t, ctx, c, got)
				}
				savePNG(t, shots, fmt.Sprintf("scenario-%s-%s.png", tc.kind, tc.lang), png)
			})
		}
	})
}

// coordinationFigures compares the national dashboard with the coordination API.
func coordinationFigures(t *testing.T, ctx context.Context, c federationConns, year int32, today *commonv1.Date, outAtWork int64, got pageFigures) {
	t.Helper()
	recon := coordinationv1.NewReconciliationServiceClient(c.coord)
	sums, err := recon.ListPairingSummaries(ctx, &coordinationv1.ListPairingSummariesRequest{PageSize: 1000,
		PeriodStart: &commonv1.Date{Year: year, Month: 1, Day: 1}, PeriodEnd: today})
	if err != nil {
		t.Fatal(err)
	}
	var want []map[string]string
	departed := false
	for _, s := range sums.GetSummaries() {
		want = append(want, map[string]string{"receiving": s.GetReceivingRegion(), "sending": s.GetSendingRegion(),
			"departed": fmt.Sprint(s.GetDeparted()), "arrived": fmt.Sprint(s.GetArrived()), "noShow": fmt.Sprint(s.GetNoShow()),
			"countOnboarded": fmt.Sprint(s.GetOnboarded()), "leftJob": fmt.Sprint(s.GetLeftJob()), "returnedHome": fmt.Sprint(s.GetReturnedHome()),
			"openDiscrepancies": fmt.Sprint(s.GetOpenDiscrepancies())})
		departed = departed || s.GetDeparted() > 0
	}
	sameFigures(t, "pairings", got.Pairings, want)
	if !departed {
		t.Errorf("the API's pairing summaries have no departure: the scenario is missing")
	}

	dis, err := recon.ListDiscrepancies(ctx, &coordinationv1.ListDiscrepanciesRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	want = nil
	for _, d := range dis.GetDiscrepancies() {
		want = append(want, map[string]string{"name": d.GetName(), "kind": strings.TrimPrefix(d.GetKind().String(), "DISCREPANCY_KIND_"),
			"worker": d.GetWorkerId(), "batch": d.GetBatchId(), "since": civil.FormatTime(d.GetOpenTime().AsTime())})
	}
	sameFigures(t, "discrepancies", got.Discreps, want)
	if len(want) != 2 {
		t.Errorf("the API lists %d open discrepancies, want the scenario's no-show and unaccounted worker", len(want))
	}

	as, err := coordinationv1.NewAssessmentServiceClient(c.coord).ListAssessments(ctx, &coordinationv1.ListAssessmentsRequest{Year: year, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	want = nil
	for _, a := range as.GetAssessments() {
		row := map[string]string{"region": a.GetRegion(), "numerator": fmt.Sprint(a.GetNumerator()), "denominator": "", "percentage": ""}
		if a.Denominator != nil {
			row["denominator"] = fmt.Sprint(a.GetDenominator())
		}
		if a.Percentage != nil {
			row["percentage"] = fmt.Sprintf("%.1f", a.GetPercentage())
		}
		want = append(want, row)
	}
	sameFigures(t, "assessments", got.Assess, want)

	dyn := coordinationv1.NewDynamicsServiceClient(c.coord)
	want = nil
	var last *coordinationv1.GetNationalEmploymentDynamicsResponse
	for i := dashboard.SeriesPoints - 1; i >= 0; i-- {
		resp, err := dyn.GetNationalEmploymentDynamics(ctx, &coordinationv1.GetNationalEmploymentDynamicsRequest{AsOf: civil.AddDays(today, -i*dashboard.SeriesDays)})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, pointRow(resp.GetAsOf(), resp.GetTotal()))
		last = resp
	}
	sameFigures(t, "dynamics points", got.Points, want)
	if got := want[len(want)-1]["outAtWork"]; got != fmt.Sprint(outAtWork) {
		t.Errorf("the API's national dynamics today: %s out at work, want the scenario's %d", got, outAtWork)
	}
	sameFigures(t, "recovery", []map[string]string{got.Recovery}, []map[string]string{recoveryRow(last.GetRecoveryTotal())})
}

// sendingFigures compares the sending province's own view with its DynamicsService.
func sendingFigures(t *testing.T, ctx context.Context, c federationConns, today *commonv1.Date, outAtWork int64, got pageFigures) {
	t.Helper()
	dyn := sendingv1.NewDynamicsServiceClient(c.sending)
	var want []map[string]string
	var last *sendingv1.GetEmploymentDynamicsResponse
	for i := dashboard.SeriesPoints - 1; i >= 0; i-- {
		resp, err := dyn.GetEmploymentDynamics(ctx, &sendingv1.GetEmploymentDynamicsRequest{AsOf: civil.AddDays(today, -i*dashboard.SeriesDays)})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, pointRow(resp.GetAsOf(), resp.GetTotal()))
		last = resp
	}
	sameFigures(t, "dynamics points", got.Points, want)
	if got := want[len(want)-1]["outAtWork"]; got != fmt.Sprint(outAtWork) {
		t.Errorf("the sending API's dynamics today: %s out at work, want the scenario's %d", got, outAtWork)
	}
	sameFigures(t, "recovery", []map[string]string{got.Recovery}, []map[string]string{recoveryRow(last.GetRecoveryTotal())})
	if len(got.Pairings)+len(got.Discreps)+len(got.Intake) != 0 {
		t.Errorf("the sending view shows coordination or intake tables: %v", got)
	}
}

// receivingFigures compares the receiving province's own view with its IntakeService.
func receivingFigures(t *testing.T, ctx context.Context, c federationConns, got pageFigures) {
	t.Helper()
	resp, err := receivingv1.NewIntakeServiceClient(c.receiving).ListIntakeBatches(ctx, &receivingv1.ListIntakeBatchesRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var want []map[string]string
	for _, b := range resp.GetBatches() {
		var workers, departed, arrived, noShow int
		for _, e := range b.GetEntries() {
			workers++
			if e.GetDeparted() {
				departed++
			}
			switch e.GetOutcome() {
			case receivingv1.ArrivalOutcome_ARRIVAL_OUTCOME_ARRIVED:
				arrived++
			case receivingv1.ArrivalOutcome_ARRIVAL_OUTCOME_NO_SHOW:
				noShow++
			}
		}
		want = append(want, map[string]string{"batch": b.GetBatchId(), "sending": b.GetSendingRegion(), "workers": fmt.Sprint(workers),
			"departed": fmt.Sprint(departed), "arrived": fmt.Sprint(arrived), "noShow": fmt.Sprint(noShow)})
	}
	sameFigures(t, "intake batches", got.Intake, want)
	if len(want) != 1 || want[0]["noShow"] != "1" {
		t.Errorf("the receiving API's intake batches %v: want the scenario's batch with its no-show", want)
	}
}

func pointRow(asOf *commonv1.Date, row *commonv1.DynamicsRow) map[string]string {
	return map[string]string{"date": civil.Format(asOf), "outAtWork": fmt.Sprint(row.GetOutAtWork()),
		"sameDayLastYear": fmt.Sprint(row.GetSameDayLastYear()), "lastYearTotal": fmt.Sprint(row.GetLastYearTotal())}
}

func recoveryRow(total *sendingv1.LocalRecovery) map[string]string {
	rt := total.GetRecoveryRate()
	row := map[string]string{"resumed": fmt.Sprint(rt.GetNumerator()), "registered": fmt.Sprint(rt.GetDenominator()), "percentage": ""}
	if rt.Percentage != nil {
		row["percentage"] = fmt.Sprintf("%.1f", rt.GetPercentage())
	}
	return row
}

// sameFigures compares rows read from the page with rows from the API, on the API rows' keys.
func sameFigures(t *testing.T, what string, got, want []map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: the page shows %d rows %v, the API %d %v", what, len(got), got, len(want), want)
		return
	}
	for i := range want {
		for k, v := range want[i] {
			if got[i][k] != v {
				t.Errorf("%s row %d: %s is %q on the page, %q from the API (page row %v)", what, i, k, got[i][k], v, got[i])
			}
		}
	}
}

// savePNG writes the screenshot to dir and to $LABOURLINK_SCREENSHOTS when set, and logs where.
func savePNG(t *testing.T, dir, name string, png []byte) {
	t.Helper()
	if len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Fatalf("screenshot is not a PNG (%d bytes)", len(png))
	}
	dirs := []string{dir}
	if d := os.Getenv("LABOURLINK_SCREENSHOTS"); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}
}

package coordination

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/dashboard"
)

// domFigures is what the page shows, read from its data-* attributes in the browser.
type domFigures struct {
	Lang     string              `json:"lang"`
	Title    string              `json:"title"`
	Pairings []map[string]string `json:"pairings"`
	Discreps []map[string]string `json:"discrepancies"`
	Assess   []map[string]string `json:"assessments"`
	Points   []map[string]string `json:"points"`
	Recovery map[string]string   `json:"recovery"`
}

const readDOM = `(() => {
  const all = (sel) => Array.from(document.querySelectorAll(sel)).map(e => Object.assign({}, e.dataset));
  const rec = document.querySelector('#recovery');
  return JSON.stringify({lang: document.body.dataset.lang, title: document.querySelector('#title').textContent,
    pairings: all('tr.pairing'), discrepancies: all('tr.discrepancy'), assessments: all('g.assessment'),
    points: all('g.point'), recovery: rec ? Object.assign({}, rec.dataset) : null});
})()`

// chromiumPath is Debian's chromium; the test is skipped without it, except in CI.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (CI=true): .ci/run installs the Debian package chromium")
	}
	t.Skip("chromium is not installed: apt-get install -y --no-install-recommends chromium (CI fails instead of skipping)")
	return ""
}

// TestDashboardInChromiumShowsTheAPIFigures loads the dashboard in a real headless Chromium,
// for the nation and for Guizhou, in Chinese and in English, after a batch with arrivals, a
// no-show and a worker never confirmed, and checks every figure on the page (pairings, open
// discrepancies, assessment bars, dynamics points, recovery) equals what the gRPC API answers.
// It saves a screenshot of each page.
func TestDashboardInChromiumShowsTheAPIFigures(t *testing.T) {
	browser := chromiumPath(t)
	h := startHarness(t, Config{})
	h.pair(t, regions.Pairing{Receiving: "440000", Sending: "520000"})
	dep := t0.Add(-24 * time.Hour)
	var events []*coordinationv1.LedgerEvent
	for i := 1; i <= 4; i++ {
		e := ev(fmt.Sprintf("d%d", i), coordinationv1.EventKind_EVENT_KIND_DEPARTED, "520000-B1", fmt.Sprintf("520000-w%d", i), dep)
		e.RegisteredPoor = true
		events = append(events, e)
	}
	events = append(events,
		ev("a1", coordinationv1.EventKind_EVENT_KIND_ARRIVED, "520000-B1", "520000-w1", dep.Add(10*time.Hour)),
		ev("a2", coordinationv1.EventKind_EVENT_KIND_ARRIVED, "520000-B1", "520000-w2", dep.Add(10*time.Hour)),
		ev("n3", coordinationv1.EventKind_EVENT_KIND_NO_SHOW, "520000-B1", "520000-w3", dep.Add(10*time.Hour)),
		ev("o1", coordinationv1.EventKind_EVENT_KIND_ONBOARDED, "520000-B1", "520000-w1", dep.Add(20*time.Hour)))
	h.report(t, events...)
	h.clock.Advance(72 * time.Hour)
	if _, err := h.s.ledger.ExpireDue(); err != nil {
		t.Fatal(err)
	}
	year := int32(civil.Year(h.clock.Now()))
	if _, err := h.assess.SetBaseline(ctxT(t), &coordinationv1.SetBaselineRequest{Region: "520000", Year: year, Count: 3}); err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(h.s.Dashboard())
	t.Cleanup(srv.Close)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.WindowSize(1200, 1600))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	bctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	bctx, cancel = context.WithTimeout(bctx, 2*time.Minute)
	t.Cleanup(cancel)

	shots := t.TempDir()
	for _, tc := range []struct{ region, lang, title string }{
		{"", "zh", "对账看板"}, {"", "en", "reconciliation dashboard"},
		{"520000", "zh", "贵州省"}, {"520000", "en", "520000"},
	} {
		t.Run(fmt.Sprintf("region=%s,lang=%s", tc.region, tc.lang), func(t *testing.T) {
			url := srv.URL + "/dashboard/?lang=" + tc.lang
			if tc.region != "" {
				url += "&region=" + tc.region
			}
			if err := chromedp.Do(bctx, chromedp.Navigate(url), chromedp.WaitVisible("#title")); err != nil {
				t.Fatal(err)
			}
			raw, err := chromedp.Run(bctx, chromedp.Evaluate[string](readDOM))
			if err != nil {
				t.Fatal(err)
			}
			png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatal(err)
			}
			var got domFigures
			if err := json.Unmarshal([]byte(raw), &got); err != nil {
				t.Fatal(err)
			}
			if got.Lang != tc.lang || !containsText(got.Title, tc.title) {
				t.Errorf("lang %q title %q, want %q with %q", got.Lang, got.Title, tc.lang, tc.title)
			}
			checkAgainstAPI(t, h, tc.region, year, got)
			saveShot(t, shots, fmt.Sprintf("dashboard-%s-%s.png", orNation(tc.region), tc.lang), png)
		})
	}
}

func orNation(r string) string {
	if r == "" {
		return "nation"
	}
	return r
}

func containsText(s, sub string) bool { return strings.Contains(s, sub) }

// saveShot writes the screenshot to dir and to $LABOURLINK_SCREENSHOTS when set, and logs where.
func saveShot(t *testing.T, dir, name string, png []byte) {
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

// checkAgainstAPI compares the page's figures with the API's answers over gRPC.
func checkAgainstAPI(t *testing.T, h *harness, region string, year int32, got domFigures) {
	t.Helper()
	ctx := ctxT(t)
	today := civil.Today(h.clock.Now())
	sums, err := h.recon.ListPairingSummaries(ctx, &coordinationv1.ListPairingSummariesRequest{Region: region, PageSize: 1000,
		PeriodStart: &commonv1.Date{Year: year, Month: 1, Day: 1}, PeriodEnd: today})
	if err != nil {
		t.Fatal(err)
	}
	var want []map[string]string
	for _, s := range sums.GetSummaries() {
		want = append(want, map[string]string{"receiving": s.GetReceivingRegion(), "sending": s.GetSendingRegion(),
			"departed": fmt.Sprint(s.GetDeparted()), "arrived": fmt.Sprint(s.GetArrived()), "noShow": fmt.Sprint(s.GetNoShow()),
			"countOnboarded": fmt.Sprint(s.GetOnboarded()), "leftJob": fmt.Sprint(s.GetLeftJob()), "returnedHome": fmt.Sprint(s.GetReturnedHome()),
			"openDiscrepancies": fmt.Sprint(s.GetOpenDiscrepancies())})
	}
	sameRows(t, "pairings", got.Pairings, want)
	if len(want) == 0 || want[0]["departed"] != "4" {
		t.Errorf("the API's pairings %v: the scenario's batch is missing", want)
	}

	dis, err := h.recon.ListDiscrepancies(ctx, &coordinationv1.ListDiscrepanciesRequest{Region: region, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	want = nil
	for _, d := range dis.GetDiscrepancies() {
		want = append(want, map[string]string{"name": d.GetName(), "kind": d.GetKind().String()[len("DISCREPANCY_KIND_"):],
			"worker": d.GetWorkerId(), "batch": d.GetBatchId(), "since": civil.FormatTime(d.GetOpenTime().AsTime())})
	}
	sameRows(t, "discrepancies", got.Discreps, want)
	if len(want) != 2 {
		t.Errorf("the API lists %d open discrepancies, want the no-show and the unaccounted worker", len(want))
	}

	var as []*coordinationv1.Assessment
	if region == "" {
		resp, err := h.assess.ListAssessments(ctx, &coordinationv1.ListAssessmentsRequest{Year: year, PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		as = resp.GetAssessments()
	} else {
		resp, err := h.assess.GetAssessment(ctx, &coordinationv1.GetAssessmentRequest{Region: region, Year: year})
		if err != nil {
			t.Fatal(err)
		}
		as = []*coordinationv1.Assessment{resp.GetAssessment()}
	}
	want = nil
	for _, a := range as {
		row := map[string]string{"region": a.GetRegion(), "numerator": fmt.Sprint(a.GetNumerator()), "denominator": "", "percentage": ""}
		if a.Denominator != nil {
			row["denominator"] = fmt.Sprint(a.GetDenominator())
		}
		if a.Percentage != nil {
			row["percentage"] = fmt.Sprintf("%.1f", a.GetPercentage())
		}
		want = append(want, row)
	}
	sameRows(t, "assessments", got.Assess, want, "region", "numerator", "denominator", "percentage")

	want = nil
	var last *coordinationv1.GetNationalEmploymentDynamicsResponse
	for i := dashboard.SeriesPoints - 1; i >= 0; i-- {
		resp, err := h.dynamics.GetNationalEmploymentDynamics(ctx, &coordinationv1.GetNationalEmploymentDynamicsRequest{
			AsOf: civil.AddDays(today, -i*dashboard.SeriesDays), SendingRegion: region})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, map[string]string{"date": civil.Format(resp.GetAsOf()), "outAtWork": fmt.Sprint(resp.GetTotal().GetOutAtWork()),
			"sameDayLastYear": fmt.Sprint(resp.GetTotal().GetSameDayLastYear()), "lastYearTotal": fmt.Sprint(resp.GetTotal().GetLastYearTotal())})
		last = resp
	}
	sameRows(t, "dynamics points", got.Points, want)
	if want[len(want)-1]["outAtWork"] == "0" {
		t.Errorf("the API's dynamics today %v: the scenario's workers are not out at work", want[len(want)-1])
	}
	rt := last.GetRecoveryTotal().GetRecoveryRate()
	wantRec := map[string]string{"resumed": fmt.Sprint(rt.GetNumerator()), "registered": fmt.Sprint(rt.GetDenominator()), "percentage": ""}
	if rt.Percentage != nil {
		wantRec["percentage"] = fmt.Sprintf("%.1f", rt.GetPercentage())
	}
	sameRows(t, "recovery", []map[string]string{got.Recovery}, []map[string]string{wantRec})
}

// sameRows compares rows of the page with rows of the API, on the keys of the API's rows (or
// on keys when given).
func sameRows(t *testing.T, what string, got, want []map[string]string, keys ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: the page shows %d rows %v, the API %d %v", what, len(got), got, len(want), want)
		return
	}
	for i := range want {
		ks := keys
		if len(ks) == 0 {
			for k := range want[i] {
				ks = append(ks, k)
			}
		}
		for _, k := range ks {
			if got[i][k] != want[i][k] {
				t.Errorf("%s row %d: %s is %q on the page, %q from the API (page row %v)", what, i, k, got[i][k], want[i][k], got[i])
			}
		}
	}
}

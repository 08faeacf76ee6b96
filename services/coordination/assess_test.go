package coordination

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
)

func poor(e *coordinationv1.LedgerEvent) *coordinationv1.LedgerEvent {
	e.RegisteredPoor = true
	return e
}

func (h *harness) assessment(t *testing.T, region string, year int32) *coordinationv1.Assessment {
	t.Helper()
	resp, err := h.assess.GetAssessment(ctxT(t), &coordinationv1.GetAssessmentRequest{Region: region, Year: year})
	if err != nil {
		t.Fatalf("GetAssessment(%s, %d): %v", region, year, err)
	}
	return resp.GetAssessment()
}

func TestWorkerOutTwiceInYearCountsOnce(t *testing.T) {
	t.Parallel()
	h := startHarness(t, Config{LoadDefaultPairings: true})
	jan := time.Date(2025, 1, 10, 9, 0, 0, 0, civil.Zone)
	feb := time.Date(2025, 2, 10, 9, 0, 0, 0, civil.Zone)
	h.report(t,
		// w1 goes out twice (two batches) and is onboarded twice; w2 is not registered-poor; w3
		// goes out once.
		poor(ev("d1", departed, "B1", "w1", jan)),
		poor(ev("o1", onboarded, "B1", "w1", jan.Add(48*time.Hour))),
		poor(ev("d2", departed, "B2", "w1", feb)),
		poor(ev("o2", onboarded, "B2", "w1", feb.Add(48*time.Hour))),
		ev("d3", departed, "B1", "w2", jan),
		poor(ev("d4", departed, "B2", "w3", feb)),
		// The first minutes of 2025 in China are still 2024 in UTC.
		poor(ev("d5", departed, "B3", "w4", time.Date(2024, 12, 31, 16, 30, 0, 0, time.UTC))),
		// Last year (CST): one worker.
		poor(ev("d6", departed, "B0", "w5", time.Date(2024, 12, 31, 15, 30, 0, 0, time.UTC))),
	)
	a := h.assessment(t, "520000", 2025)
	if a.GetNumerator() != 3 || a.GetRole() != sendingRole || a.GetDisplayName() != "贵州省" || a.GetYear() != 2025 {
		t.Fatalf("520000 2025: %v", a)
	}
	if r := h.assessment(t, "440000", 2025); r.GetNumerator() != 1 || r.GetRole() != receivingRole {
		t.Fatalf("440000 2025: %v", r)
	}
	if a := h.assessment(t, "520000", 2024); a.GetNumerator() != 1 || a.GetBaselineSource() != coordinationv1.BaselineSource_BASELINE_SOURCE_NONE {
		t.Fatalf("520000 2024: %v", a)
	}
}

func TestBaselineFromPreviousYearOrOperator(t *testing.T) {
	t.Parallel()
	h := startHarness(t, Config{LoadDefaultPairings: true})
	if _, err := h.registry.RegisterRegion(ctxT(t), &coordinationv1.RegisterRegionRequest{
		Region: &coordinationv1.Region{Code: "520000", Role: sendingRole, Endpoint: "127.0.0.1:50052"},
	}); err != nil {
		t.Fatal(err)
	}
	var events []*coordinationv1.LedgerEvent
	for i := range 4 {
		events = append(events, poor(ev(fmt.Sprintf("a%d", i), departed, "B2024", fmt.Sprintf("w%d", i), time.Date(2024, 6, 1, 0, 0, 0, 0, civil.Zone))))
	}
	for i := range 3 {
		events = append(events, poor(ev(fmt.Sprintf("b%d", i), departed, "B2025", fmt.Sprintf("w%d", i), time.Date(2025, 2, 1, 0, 0, 0, 0, civil.Zone))))
	}
	h.report(t, events...)

	a := h.assessment(t, "520000", 2025)
	if a.GetNumerator() != 3 || a.GetDenominator() != 4 || a.GetBaselineSource() != coordinationv1.BaselineSource_BASELINE_SOURCE_LEDGER_PREVIOUS_YEAR ||
		a.Percentage == nil || a.GetPercentage() != 75 {
		t.Fatalf("from the ledger: %v", a)
	}
	if a := h.assessment(t, "520000", 2024); a.Denominator != nil || a.Percentage != nil ||
		a.GetBaselineSource() != coordinationv1.BaselineSource_BASELINE_SOURCE_NONE {
		t.Fatalf("no previous year: %v", a)
	}

	// The operator's baseline wins over the ledger's.
	set, err := h.assess.SetBaseline(ctxT(t), &coordinationv1.SetBaselineRequest{Region: "520000", Year: 2025, Count: 7, RequestId: "b1"})
	if err != nil {
		t.Fatal(err)
	}
	if a := set.GetAssessment(); a.GetDenominator() != 7 || a.GetBaselineSource() != coordinationv1.BaselineSource_BASELINE_SOURCE_OPERATOR || a.GetPercentage() != 42.9 {
		t.Fatalf("operator: %v", a)
	}
	if a := h.assessment(t, "520000", 2025); a.GetDenominator() != 7 || a.GetBaselineSource() != coordinationv1.BaselineSource_BASELINE_SOURCE_OPERATOR {
		t.Fatalf("operator, read back: %v", a)
	}
	// Replaced by a new value; a retry of the first request id returns the first response.
	if _, err := h.assess.SetBaseline(ctxT(t), &coordinationv1.SetBaselineRequest{Region: "520000", Year: 2025, Count: 3}); err != nil {
		t.Fatal(err)
	}
	if a := h.assessment(t, "520000", 2025); a.GetPercentage() != 100 {
		t.Fatalf("replaced: %v", a)
	}
	again, err := h.assess.SetBaseline(ctxT(t), &coordinationv1.SetBaselineRequest{Region: "520000", Year: 2025, Count: 7, RequestId: "b1"})
	if err != nil || again.GetAssessment().GetDenominator() != 7 {
		t.Fatalf("retry: %v, %v", again, err)
	}

	for _, tt := range []struct {
		name  string
		req   *coordinationv1.SetBaselineRequest
		field string
	}{
		{"zero count", &coordinationv1.SetBaselineRequest{Region: "520000", Year: 2025}, "count"},
		{"old year", &coordinationv1.SetBaselineRequest{Region: "520000", Year: 1999, Count: 1}, "year"},
		{"county", &coordinationv1.SetBaselineRequest{Region: "520102", Year: 2025, Count: 1}, "region"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.assess.SetBaseline(ctxT(t), tt.req)
			if _, ok := fieldViolations(t, err)[tt.field]; !ok {
				t.Fatalf("error %v, want a violation of %s", err, tt.field)
			}
		})
	}
}

func TestAssessmentRoles(t *testing.T) {
	t.Parallel()
	h := startHarness(t, Config{})
	// Hebei is in no default pairing: no role until it registers.
	_, err := h.assess.GetAssessment(ctxT(t), &coordinationv1.GetAssessmentRequest{Region: "130000", Year: 2025})
	wantCode(t, err, codes.FailedPrecondition)
	if errorInfo(err).GetReason() != "ROLE_UNKNOWN" {
		t.Fatalf("reason %v", errorInfo(err))
	}
	// Guangdong is a receiving side in the default pairing table.
	if a := h.assessment(t, "440000", 2025); a.GetRole() != receivingRole {
		t.Fatalf("440000: %v", a)
	}
	for _, r := range []*coordinationv1.Region{
		{Code: "520000", Role: sendingRole, Endpoint: "h:1"},
		{Code: "130000", Role: sendingRole, Endpoint: "h:2"},
	} {
		if _, err := h.registry.RegisterRegion(ctxT(t), &coordinationv1.RegisterRegionRequest{Region: r}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.registry.CreatePairing(ctxT(t), &coordinationv1.CreatePairingRequest{
		Pairing: &coordinationv1.Pairing{ReceivingRegion: "440000", SendingRegion: "520000"},
	}); err != nil {
		t.Fatal(err)
	}
	list, err := h.assess.ListAssessments(ctxT(t), &coordinationv1.ListAssessmentsRequest{Year: 2025})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range list.GetAssessments() {
		got = append(got, fmt.Sprintf("%s:%s", a.GetRegion(), strings.ToLower(strings.TrimPrefix(a.GetRole().String(), "REGION_ROLE_"))))
	}
	if fmt.Sprint(got) != "[130000:sending 440000:receiving 520000:sending]" {
		t.Fatalf("ListAssessments = %v", got)
	}
	_, err = h.assess.ListAssessments(ctxT(t), &coordinationv1.ListAssessmentsRequest{})
	wantCode(t, err, codes.InvalidArgument)
}

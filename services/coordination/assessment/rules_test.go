package assessment

import (
	"testing"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
)

func TestPercentage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		num, den int64
		want     float64
	}{
		{954, 1000, 95.4},
		{2, 3, 66.7},
		{1, 3, 33.3},
		{1, 8, 12.5},
		{1, 16, 6.3}, // 6.25 rounds half up
		{0, 5, 0},
		{5, 4, 125},
		{1_000_000, 1, 100_000_000},
	}
	for _, tt := range tests {
		if got := Percentage(tt.num, tt.den); got != tt.want {
			t.Errorf("Percentage(%d, %d) = %v, want %v", tt.num, tt.den, got, tt.want)
		}
	}
}

// The denominator: the operator's baseline when set, else last year's numerator when at least 1,
// else none.
func TestAssessmentOf(t *testing.T) {
	t.Parallel()
	const (
		none     = coordinationv1.BaselineSource_BASELINE_SOURCE_NONE
		operator = coordinationv1.BaselineSource_BASELINE_SOURCE_OPERATOR
		previous = coordinationv1.BaselineSource_BASELINE_SOURCE_LEDGER_PREVIOUS_YEAR
	)
	tests := []struct {
		name                string
		num, prev, baseline int64
		den                 int64
		source              coordinationv1.BaselineSource
		hasBaseline         bool
		percentage          float64
	}{
		{"operator baseline", 954, 10, 1000, 1000, operator, true, 95.4},
		{"previous year", 3, 2, 0, 2, previous, true, 150},
		{"none", 3, 0, 0, 0, none, false, 0},
		{"operator baseline over an empty previous year", 0, 0, 5, 5, operator, true, 0},
	}
	for _, tt := range tests {
		a := assessmentOf("520000", "贵州省", commonv1.RegionRole_REGION_ROLE_SENDING, 2025, tt.num, tt.prev, tt.baseline)
		if a.GetNumerator() != tt.num || a.GetDenominator() != tt.den || a.GetBaselineSource() != tt.source ||
			(a.Denominator != nil) != tt.hasBaseline || (a.Percentage != nil) != tt.hasBaseline || a.GetPercentage() != tt.percentage {
			t.Errorf("%s: %v", tt.name, a)
		}
		if a.GetRegion() != "520000" || a.GetDisplayName() != "贵州省" || a.GetYear() != 2025 || a.GetRole() != commonv1.RegionRole_REGION_ROLE_SENDING {
			t.Errorf("%s: %v", tt.name, a)
		}
	}
	if countedKind(commonv1.RegionRole_REGION_ROLE_RECEIVING) != coordinationv1.EventKind_EVENT_KIND_ONBOARDED ||
		countedKind(commonv1.RegionRole_REGION_ROLE_SENDING) != coordinationv1.EventKind_EVENT_KIND_DEPARTED {
		t.Error("counted kinds")
	}
}

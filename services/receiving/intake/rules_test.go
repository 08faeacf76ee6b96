package intake

import (
	"testing"

	commonv1 "github.com/eastwest/labourlink/proto/labour/common/v1"
)

func date(y, m, d int32) *commonv1.Date { return &commonv1.Date{Year: y, Month: m, Day: d} }

func TestWholeMonths(t *testing.T) {
	tests := []struct {
		a, b [3]int32
		want int32
	}{
		{[3]int32{2025, 1, 31}, [3]int32{2025, 4, 30}, 2},
		{[3]int32{2025, 1, 15}, [3]int32{2025, 4, 15}, 3},
		{[3]int32{2024, 11, 1}, [3]int32{2025, 5, 1}, 6},
		{[3]int32{2025, 3, 1}, [3]int32{2025, 3, 1}, 0},
	}
	for _, tt := range tests {
		if got := wholeMonths(date(tt.a[0], tt.a[1], tt.a[2]), date(tt.b[0], tt.b[1], tt.b[2])); got != tt.want {
			t.Errorf("wholeMonths(%v, %v) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

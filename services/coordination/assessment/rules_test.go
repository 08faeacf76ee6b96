package assessment

import "testing"

func TestPercentage(t *testing.T) {
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

package vacancies

import (
	"testing"

	"github.com/eastwest/labourlink/services/codes/civil"
)

// The dates of import rows are read with civil.Parse.
func TestParseDate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"2025-04-01", "2025-04-01"}, {"2025/4/1", "2025-04-01"}, {"2025.12.31", "2025-12-31"},
		{"2024-02-29", "2024-02-29"}, {"2025-02-29", ""}, {"2025-4-1x", ""}, {"25-04-01", ""},
		{"2025-04/01", ""}, {"", ""}, {"2025-13-01", ""}, {"20250401", ""},
	}
	for _, tt := range tests {
		d, err := civil.Parse(tt.in)
		got := ""
		if err == nil {
			got = civil.Format(d)
		}
		if got != tt.want {
			t.Errorf("civil.Parse(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

package receiving

import (
	"strings"
	"testing"
)

func TestPersonName(t *testing.T) {
	for _, ok := range []string{"王小明", "阿依古丽·买买提", "Li Wei", "O'Neil", "张　三"} {
		if p := personNameProblem(ok); p != "" {
			t.Errorf("%q: %s", ok, p)
		}
	}
	for _, bad := range []string{"", "  ", "王2", "a\tb", "name@x", strings.Repeat("王", 51)} {
		if personNameProblem(bad) == "" {
			t.Errorf("%q accepted as a name", bad)
		}
	}
}

func TestParseDate(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"2025-04-01", "2025-04-01"}, {"2025/4/1", "2025-04-01"}, {"2025.12.31", "2025-12-31"},
		{"2024-02-29", "2024-02-29"}, {"2025-02-29", ""}, {"2025-4-1x", ""}, {"25-04-01", ""},
		{"2025-04/01", ""}, {"", ""}, {"2025-13-01", ""}, {"20250401", ""},
	}
	for _, tt := range tests {
		d, err := parseDate(tt.in)
		got := ""
		if err == nil {
			got = formatDate(d)
		}
		if got != tt.want {
			t.Errorf("parseDate(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

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

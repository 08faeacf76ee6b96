package civil_test

import (
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
)

func TestTodayIsJudgedInChina(t *testing.T) {
	// 2025-12-31 16:30 UTC is already 2026-01-01 in China.
	got := civil.Today(time.Date(2025, 12, 31, 16, 30, 0, 0, time.UTC))
	if civil.Format(got) != "2026-01-01" || civil.Year(time.Date(2025, 12, 31, 16, 30, 0, 0, time.UTC)) != 2026 {
		t.Fatalf("Today = %s, want 2026-01-01 (China is UTC+8)", civil.Format(got))
	}
}

func TestProblem(t *testing.T) {
	for _, c := range []struct {
		d    *commonv1.Date
		want string
	}{
		{&commonv1.Date{Year: 2024, Month: 2, Day: 29}, ""},
		{&commonv1.Date{Year: 2026, Month: 2, Day: 29}, "2026-02-29 is not a real date"},
		{&commonv1.Date{Year: 2026, Month: 13, Day: 1}, "2026-13-01 is not a real date"},
		{&commonv1.Date{Year: 2026, Month: 1, Day: 0}, "2026-01-00 is not a real date"},
		{&commonv1.Date{Year: 1899, Month: 12, Day: 31}, "year 1899 is out of range 1900..9999"},
		{nil, "is required"},
	} {
		if got := civil.Problem(c.d); got != c.want {
			t.Errorf("Problem(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}

func TestParse(t *testing.T) {
	for in, want := range map[string]string{"2026-3-7": "2026-03-07", "2026/03/07": "2026-03-07", "2026.3.07": "2026-03-07"} {
		d, err := civil.Parse(in)
		if err != nil || civil.Format(d) != want {
			t.Errorf("Parse(%q) = %s, %v; want %s", in, civil.Format(d), err, want)
		}
	}
	for _, in := range []string{"2026-03/07", "07-03-2026", "2026-02-30", "", "２０２６-03-07"} {
		if _, err := civil.Parse(in); err == nil {
			t.Errorf("Parse(%q) succeeded", in)
		}
	}
}

// FuzzParse: whatever Parse accepts is a real date that formats back to a string Parse reads
// as the same date.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"2026-03-07", "2026/3/7", "9999.12.31", "1900-01-01", "2026-02-29"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := civil.Parse(s)
		if err != nil {
			return
		}
		if p := civil.Problem(d); p != "" {
			t.Fatalf("Parse(%q) accepted %v: %s", s, d, p)
		}
		again, err := civil.Parse(civil.Format(d))
		if err != nil || civil.Compare(d, again) != 0 {
			t.Fatalf("Format(Parse(%q)) = %q does not read back: %v", s, civil.Format(d), err)
		}
	})
}

// TestDateArithmetic: Compare agrees with the order of Start, and AddDays moves by whole days
// in China whatever the date.
func TestDateArithmetic(t *testing.T) {
	date := rapid.Custom(func(t *rapid.T) *commonv1.Date {
		return civil.Today(time.Unix(rapid.Int64Range(-2e9, 4e9).Draw(t, "unix"), 0))
	})
	rapid.Check(t, func(rt *rapid.T) {
		a, b := date.Draw(rt, "a"), date.Draw(rt, "b")
		if got, want := civil.Compare(a, b), civil.Start(a).Compare(civil.Start(b)); got != want {
			rt.Fatalf("Compare(%s, %s) = %d, Start order %d", civil.Format(a), civil.Format(b), got, want)
		}
		n := rapid.IntRange(-800, 800).Draw(rt, "n")
		c := civil.AddDays(a, n)
		if hours := civil.Start(c).Sub(civil.Start(a)).Hours(); hours != float64(24*n) {
			rt.Fatalf("AddDays(%s, %d) = %s, %v hours later", civil.Format(a), n, civil.Format(c), hours)
		}
	})
	if !strings.HasSuffix(civil.FormatTime(time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)), "08:00 CST") {
		t.Error("FormatTime does not show China time")
	}
}

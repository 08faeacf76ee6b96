// Package civil is the one place for the calendar of the programme: dates are civil dates in
// China Standard Time (UTC+8; China has no daylight saving, so a fixed zone needs no time zone
// database), carried on the wire as labourlink.common.v1.Date.
//
//	today := civil.Today(now)                  // the date in China at now
//	if p := civil.Problem(d); p != "" { ... }  // "2026-02-30 is not a real date"
//	start := civil.Start(d)                    // midnight of d in China
package civil

import (
	"fmt"
	"regexp"
	"strconv"
	"time"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
)

// Zone is China Standard Time, UTC+8.
var Zone = time.FixedZone("CST", 8*60*60)

// MinYear and MaxYear bound the years of a valid date.
const (
	MinYear = 1900
	MaxYear = 9999
)

// Today returns the date of t in China.
func Today(t time.Time) *commonv1.Date {
	y, m, d := t.In(Zone).Date()
	return &commonv1.Date{Year: int32(y), Month: int32(m), Day: int32(d)}
}

// Year returns the calendar year of t in China.
func Year(t time.Time) int { return t.In(Zone).Year() }

// Problem returns why d is not a real calendar date from MinYear to MaxYear ("is required" for
// nil), or "" when it is one.
func Problem(d *commonv1.Date) string {
	if d == nil {
		return "is required"
	}
	if d.GetYear() < MinYear || d.GetYear() > MaxYear {
		return fmt.Sprintf("year %d is out of range %d..%d", d.GetYear(), MinYear, MaxYear)
	}
	t := time.Date(int(d.GetYear()), time.Month(d.GetMonth()), int(d.GetDay()), 0, 0, 0, 0, time.UTC)
	if d.GetMonth() < 1 || d.GetMonth() > 12 || d.GetDay() < 1 || t.Day() != int(d.GetDay()) {
		return fmt.Sprintf("%04d-%02d-%02d is not a real date", d.GetYear(), d.GetMonth(), d.GetDay())
	}
	return ""
}

// Compare compares two valid dates: -1 when a is earlier, 0 when the same day, +1 when later.
func Compare(a, b *commonv1.Date) int {
	for _, p := range [][2]int32{{a.GetYear(), b.GetYear()}, {a.GetMonth(), b.GetMonth()}, {a.GetDay(), b.GetDay()}} {
		switch {
		case p[0] < p[1]:
			return -1
		case p[0] > p[1]:
			return 1
		}
	}
	return 0
}

// Start returns midnight of d in China (d must be valid).
func Start(d *commonv1.Date) time.Time {
	return time.Date(int(d.GetYear()), time.Month(d.GetMonth()), int(d.GetDay()), 0, 0, 0, 0, Zone)
}

// AddDays returns the date n days after d (before it when n < 0).
func AddDays(d *commonv1.Date, n int) *commonv1.Date {
	return Today(Start(d).AddDate(0, 0, n))
}

// Format renders d as YYYY-MM-DD ("" for nil).
func Format(d *commonv1.Date) string {
	if d == nil {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.GetYear(), d.GetMonth(), d.GetDay())
}

// FormatTime renders t in China to the minute, as "2025-03-01 08:00 CST".
func FormatTime(t time.Time) string { return t.In(Zone).Format("2006-01-02 15:04 MST") }

// Parse reads YYYY-MM-DD, also YYYY/MM/DD and YYYY.MM.DD and single-digit months and days as
// spreadsheets write them; the date must be real (Problem).
func Parse(s string) (*commonv1.Date, error) {
	m := dateRE.FindStringSubmatch(s)
	if m == nil || m[2] != m[4] {
		return nil, fmt.Errorf("%q is not a date in the form YYYY-MM-DD", s)
	}
	y, _ := strconv.Atoi(m[1])
	mo, _ := strconv.Atoi(m[3])
	d, _ := strconv.Atoi(m[5])
	date := &commonv1.Date{Year: int32(y), Month: int32(mo), Day: int32(d)}
	if p := Problem(date); p != "" {
		return nil, fmt.Errorf("%q: %s", s, p)
	}
	return date, nil
}

var dateRE = regexp.MustCompile(`^(\d{4})([-/.])(\d{1,2})([-/.])(\d{1,2})$`)

// WholeMonths returns the whole months from a to b (b not before a): 2025-01-31 to 2025-02-28
// is 0, to 2025-03-31 is 2.
func WholeMonths(a, b *commonv1.Date) int32 {
	m := (b.GetYear()-a.GetYear())*12 + b.GetMonth() - a.GetMonth()
	if b.GetDay() < a.GetDay() {
		m--
	}
	return m
}

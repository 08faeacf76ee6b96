package receiving

import (
	"fmt"
	"regexp"
	"strconv"
	"time"

	commonv1 "github.com/eastwest/labourlink/proto/labour/common/v1"
)

// chinaTime is UTC+8, the zone of every date in labourlink (China has no daylight saving).
var chinaTime = time.FixedZone("UTC+8", 8*60*60)

// today returns the date of t in China.
func today(t time.Time) *commonv1.Date {
	y, m, d := t.In(chinaTime).Date()
	return &commonv1.Date{Year: int32(y), Month: int32(m), Day: int32(d)}
}

// dateProblem returns why d is not a valid calendar date, or "".
func dateProblem(d *commonv1.Date) string {
	if d == nil {
		return "is required"
	}
	if d.GetYear() < 1900 || d.GetYear() > 9999 {
		return fmt.Sprintf("year %d is out of range 1900..9999", d.GetYear())
	}
	if d.GetMonth() < 1 || d.GetMonth() > 12 {
		return fmt.Sprintf("month %d is out of range 1..12", d.GetMonth())
	}
	t := time.Date(int(d.GetYear()), time.Month(d.GetMonth()), int(d.GetDay()), 0, 0, 0, 0, time.UTC)
	if d.GetDay() < 1 || t.Day() != int(d.GetDay()) {
		return fmt.Sprintf("day %d does not exist in %04d-%02d", d.GetDay(), d.GetYear(), d.GetMonth())
	}
	return ""
}

// dateCmp compares two valid dates.
func dateCmp(a, b *commonv1.Date) int {
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

// dateStart returns midnight of d in China.
func dateStart(d *commonv1.Date) time.Time {
	return time.Date(int(d.GetYear()), time.Month(d.GetMonth()), int(d.GetDay()), 0, 0, 0, 0, chinaTime)
}

// formatDate renders d as YYYY-MM-DD ("" for nil).
func formatDate(d *commonv1.Date) string {
	if d == nil {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.GetYear(), d.GetMonth(), d.GetDay())
}

// parseDate reads YYYY-MM-DD (also YYYY/MM/DD and YYYY.MM.DD, and single-digit months and
// days, as spreadsheets write them).
func parseDate(s string) (*commonv1.Date, error) {
	m := dateRE.FindStringSubmatch(s)
	if m == nil || m[2] != m[4] {
		return nil, fmt.Errorf("%q is not a date in the form YYYY-MM-DD", s)
	}
	y, _ := strconv.Atoi(m[1])
	mo, _ := strconv.Atoi(m[3])
	d, _ := strconv.Atoi(m[5])
	date := &commonv1.Date{Year: int32(y), Month: int32(mo), Day: int32(d)}
	if p := dateProblem(date); p != "" {
		return nil, fmt.Errorf("%q: %s", s, p)
	}
	return date, nil
}

var dateRE = regexp.MustCompile(`^(\d{4})([-/.])(\d{1,2})([-/.])(\d{1,2})$`)

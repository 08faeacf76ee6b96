// Package workcalendar provides China's working days: Monday to Friday, less the public holidays,
// plus the adjusted working weekends (调休上班), from the State Council General Office's yearly
// notices kept in holidays-cn.csv (README.md says how to add a year).
//
// Days are civil dates in China Standard Time (civil.Zone); a time.Time stands for its date
// there. A date of a year the file does not cover follows the plain week, and the answers say so
// (Covers, Counted.Covered) so that a caller can warn instead of being silently wrong.
package workcalendar

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/eastwest/labourlink/services/codes/civil"
)

//go:embed holidays-cn.csv
var holidaysCN []byte

// day is a civil date as days since 1970-01-01.
type day int64

func dayOf(t time.Time) day {
	y, m, d := t.In(civil.Zone).Date()
	return day(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

func (d day) time() time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// start is 00:00 China time of d.
func (d day) start() time.Time {
	y, m, dd := d.time().Date()
	return time.Date(y, m, dd, 0, 0, 0, 0, civil.Zone)
}

// Calendar is a set of exceptions to the plain week for the years it covers.
type Calendar struct {
	// working holds the days that differ from the plain week: true a worked weekend day, false a
	// weekday off.
	working map[day]bool
	years   map[int]bool
}

// Parse reads a calendar in the format of holidays-cn.csv: lines date,kind,name with kind
// "holiday" or "workday", '#' comments, a header line "date,kind,name".
func Parse(r io.Reader) (*Calendar, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = 3
	c := &Calendar{working: map[day]bool{}, years: map[int]bool{}}
	header := true
	for line := 1; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if header {
			header = false
			if strings.Join(rec, ",") != "date,kind,name" {
				return nil, fmt.Errorf("workcalendar: the header must be date,kind,name, got %q", strings.Join(rec, ","))
			}
			continue
		}
		t, err := time.ParseInLocation(time.DateOnly, rec[0], civil.Zone)
		if err != nil {
			return nil, fmt.Errorf("workcalendar: record %d: date %q: want YYYY-MM-DD", line, rec[0])
		}
		d := dayOf(t)
		if _, dup := c.working[d]; dup {
			return nil, fmt.Errorf("workcalendar: record %d: %s listed twice", line, rec[0])
		}
		weekend := t.Weekday() == time.Saturday || t.Weekday() == time.Sunday
		switch rec[1] {
		case "holiday":
			if !weekend {
				c.working[d] = false
			}
		case "workday":
			if !weekend {
				return nil, fmt.Errorf("workcalendar: record %d: %s is a weekday: only a weekend day can be an adjusted working day", line, rec[0])
			}
			c.working[d] = true
		default:
			return nil, fmt.Errorf("workcalendar: record %d: kind %q: want holiday or workday", line, rec[1])
		}
		if strings.TrimSpace(rec[2]) == "" {
			return nil, fmt.Errorf("workcalendar: record %d: the name is required", line)
		}
		c.years[t.Year()] = true
	}
	return c, nil
}

var (
	chinaOnce sync.Once
	china     *Calendar
)

// China is the calendar of holidays-cn.csv.
func China() *Calendar {
	chinaOnce.Do(func() {
		c, err := Parse(bytes.NewReader(holidaysCN))
		if err != nil {
			// The embedded file is checked by the tests; a broken one is a build defect.
			panic(err)
		}
		china = c
	})
	return china
}

// Covers reports whether the calendar has the notice of year.
func (c *Calendar) Covers(year int) bool { return c.years[year] }

// Years returns the covered years in order.
func (c *Calendar) Years() []int {
	out := make([]int, 0, len(c.years))
	for y := range c.years {
		out = append(out, y)
	}
	sort.Ints(out)
	return out
}

// IsWorkingDay reports whether t's date (China time) is a working day, and whether the calendar
// covers its year (when not, the answer is the plain week's).
func (c *Calendar) IsWorkingDay(t time.Time) (working, covered bool) {
	return c.isWorking(dayOf(t)), c.Covers(t.In(civil.Zone).Year())
}

func (c *Calendar) isWorking(d day) bool {
	if w, ok := c.working[d]; ok {
		return w
	}
	wd := d.time().Weekday()
	return wd != time.Saturday && wd != time.Sunday
}

func (c *Calendar) coveredDay(d day) bool { return c.Covers(d.time().Year()) }

// Counted is a date found by counting working days, with whether every day counted was in a
// covered year (false: some were counted on the plain week only).
type Counted struct {
	// Day is 00:00 China time of the date.
	Day     time.Time
	Covered bool
}

// AddWorkingDays returns the n-th working day after t's date (n >= 1; n <= 0 returns t's date).
// AddWorkingDays(Friday, 1) is the next Monday that is a working day.
func (c *Calendar) AddWorkingDays(t time.Time, n int) Counted {
	d := dayOf(t)
	if n <= 0 {
		return Counted{Day: d.start(), Covered: c.coveredDay(d)}
	}
	covered := true // only the days looked at after t's date count
	for ; n > 0; n-- {
		d++
		covered = covered && c.coveredDay(d)
		for !c.isWorking(d) {
			d++
			covered = covered && c.coveredDay(d)
		}
	}
	return Counted{Day: d.start(), Covered: covered}
}

// WorkingDaysBetween counts the working days after a's date up to and including b's date (0 when
// b is not after a), and whether every day counted was in a covered year.
func (c *Calendar) WorkingDaysBetween(a, b time.Time) (int, bool) {
	n, covered := 0, true
	for d, end := dayOf(a)+1, dayOf(b); d <= end; d++ {
		covered = covered && c.coveredDay(d)
		if c.isWorking(d) {
			n++
		}
	}
	return n, covered
}

// NthWorkingDayFrom returns the n-th working day counting t's date as the first if it is a
// working day (n >= 1): the day a spell of n consecutive working days that starts on t's date
// is complete.
func (c *Calendar) NthWorkingDayFrom(t time.Time, n int) Counted {
	return c.AddWorkingDays(dayOf(t).start().AddDate(0, 0, -1), n)
}

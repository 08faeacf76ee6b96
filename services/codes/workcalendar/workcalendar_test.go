package workcalendar

import (
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/eastwest/labourlink/services/codes/civil"
)

func date(s string) time.Time {
	t, err := time.ParseInLocation(time.DateOnly, s, civil.Zone)
	if err != nil {
		panic(err)
	}
	return t
}

func TestKnownDates(t *testing.T) {
	c := China()
	for _, tc := range []struct {
		date             string
		working, covered bool
	}{
		{"2025-01-01", false, true}, // 元旦, Wednesday
		{"2025-01-26", true, true},  // Sunday worked before the Spring Festival
		{"2025-01-28", false, true}, // 除夕, Tuesday
		{"2025-02-04", false, true}, // last day of the Spring Festival, Tuesday
		{"2025-02-05", true, true},  // Wednesday after it
		{"2025-02-08", true, true},  // Saturday worked
		{"2025-04-27", true, true},  // Sunday worked before Labour Day
		{"2025-10-08", false, true}, // National Day and Mid-Autumn, Wednesday
		{"2025-10-11", true, true},  // Saturday worked
		{"2025-10-12", false, true}, // a plain Sunday
		{"2026-01-02", false, true}, // 元旦, Friday
		{"2026-01-04", true, true},  // Sunday worked
		{"2026-02-13", true, true},  // Friday before the Spring Festival
		{"2026-02-14", true, true},  // Saturday worked
		{"2026-02-16", false, true}, // Spring Festival, Monday
		{"2026-02-23", false, true}, // Spring Festival, Monday (正月初七)
		{"2026-02-24", true, true},  // Tuesday after it
		{"2026-02-28", true, true},  // Saturday worked
		{"2026-05-05", false, true}, // Labour Day, Tuesday
		{"2026-05-09", true, true},  // Saturday worked
		{"2026-06-19", false, true}, // Dragon Boat, Friday
		{"2026-09-20", true, true},  // Sunday worked
		{"2026-09-25", false, true}, // Mid-Autumn, Friday
		{"2026-10-07", false, true}, // National Day, Wednesday
		{"2026-10-10", true, true},  // Saturday worked
		{"2026-12-02", true, true},  // a plain Wednesday
		{"2027-01-01", true, false}, // not covered: the plain week (a Friday)
		{"2027-01-02", false, false},
		{"2024-12-31", true, false},
	} {
		w, cov := c.IsWorkingDay(date(tc.date))
		if w != tc.working || cov != tc.covered {
			t.Errorf("IsWorkingDay(%s) = %v, covered %v; want %v, %v", tc.date, w, cov, tc.working, tc.covered)
		}
	}
}

func TestAddWorkingDays(t *testing.T) {
	c := China()
	for _, tc := range []struct {
		from    string
		n       int
		want    string
		covered bool
	}{
		{"2026-02-13", 1, "2026-02-14", true}, // Friday -> the Saturday worked
		{"2026-02-14", 1, "2026-02-24", true}, // over the Spring Festival
		{"2026-02-12", 5, "2026-02-26", true}, // Fri 13, Sat 14, Tue 24, Wed 25, Thu 26
		{"2026-12-02", 1, "2026-12-03", true},
		{"2026-12-31", 1, "2027-01-01", false}, // into a year not covered
		{"2026-12-30", 0, "2026-12-30", true},
	} {
		got := c.AddWorkingDays(date(tc.from).Add(15*time.Hour), tc.n)
		if !got.Day.Equal(date(tc.want)) || got.Covered != tc.covered {
			t.Errorf("AddWorkingDays(%s, %d) = %s covered %v; want %s covered %v", tc.from, tc.n, got.Day, got.Covered, tc.want, tc.covered)
		}
	}
	// Five consecutive working days from the Thursday before the Spring Festival.
	if got := c.NthWorkingDayFrom(date("2026-02-12"), 5); !got.Day.Equal(date("2026-02-25")) {
		t.Errorf("NthWorkingDayFrom(2026-02-12, 5) = %s, want 2026-02-25", got.Day)
	}
}

func TestParseRefuses(t *testing.T) {
	for name, text := range map[string]string{
		"header":         "day,kind,name\n",
		"kind":           "date,kind,name\n2026-01-01,off,元旦\n",
		"weekday worked": "date,kind,name\n2026-01-05,workday,x\n",
		"date":           "date,kind,name\n2026-13-01,holiday,x\n",
		"twice":          "date,kind,name\n2026-01-01,holiday,x\n2026-01-01,holiday,x\n",
		"no name":        "date,kind,name\n2026-01-01,holiday, \n",
	} {
		if _, err := Parse(strings.NewReader(text)); err == nil {
			t.Errorf("%s: Parse accepted %q", name, text)
		}
	}
}

func TestCoveredYears(t *testing.T) {
	got := China().Years()
	if len(got) != 2 || got[0] != 2025 || got[1] != 2026 {
		t.Errorf("Years() = %v, want [2025 2026]", got)
	}
}

// Counting n working days forward and then counting the working days between gives n back,
// and the day reached is a working day.
func TestAddThenCountProperty(t *testing.T) {
	c := China()
	rapid.Check(t, func(t *rapid.T) {
		from := date("2024-10-01").AddDate(0, 0, rapid.IntRange(0, 900).Draw(t, "offset"))
		n := rapid.IntRange(1, 60).Draw(t, "n")
		got := c.AddWorkingDays(from, n)
		if back, _ := c.WorkingDaysBetween(from, got.Day); back != n {
			t.Fatalf("AddWorkingDays(%s, %d) = %s, but %d working days between", from, n, got.Day, back)
		}
		if w, _ := c.IsWorkingDay(got.Day); !w {
			t.Fatalf("AddWorkingDays(%s, %d) = %s, not a working day", from, n, got.Day)
		}
		if prev, _ := c.WorkingDaysBetween(from, got.Day.AddDate(0, 0, -1)); prev != n-1 {
			t.Fatalf("the day before %s has %d working days after %s, want %d", got.Day, prev, from, n-1)
		}
	})
}

// Package outatwork is the one definition of "out at work on a day" of employment dynamics
// (就业动态), shared by the sending province's figures (from its roster's trips,
// services/sending/dynamics) and the national ones (from the ledger, services/coordination/
// ledger): the days a worker's trips keep the worker out at work, the three figures asked of a
// day (that day, the same day a year before, the year before), and the rows and ratios of the
// answers (labourlink.common.v1.DynamicsRow, Ratio); and the local employers' recovery rate as of
// a day (recovery.go: StateOn, Recovery). Pure functions, no storage.
//
// A trip keeps its worker out at work from its departure day up to, not including, its end day:
// the first of its own end (return home, left the job) and the departure of the worker's next
// trip (the worker cannot be on two trips at once). A no-show trip (the worker never turned up)
// keeps nobody out, but still ends the trip before it. So a worker's spells are disjoint, and
// a worker is counted at most once on any day.
package outatwork

import (
	"cmp"
	"maps"
	"math"
	"slices"
	"time"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/platform/apierror"
)

// MinAsOf is the first day the figures may be asked of.
var MinAsOf = &commonv1.Date{Year: 2000, Month: 1, Day: 1}

// CheckAsOf adds a violation on field to v unless d is a real date from MinAsOf to the day of
// now in China (the figures of a day that has not come are not known).
func CheckAsOf(v *apierror.Violations, field string, d *commonv1.Date, now time.Time) {
	if p := civil.Problem(d); p != "" {
		v.Add(field, p)
		return
	}
	switch today := civil.Today(now); {
	case civil.Compare(d, MinAsOf) < 0:
		v.Addf(field, "%s is before %s: the figures start then", civil.Format(d), civil.Format(MinAsOf))
	case civil.Compare(d, today) > 0:
		v.Addf(field, "%s is after today (%s in China): the figures of a day that has not come are not known", civil.Format(d), civil.Format(today))
	}
}

// Day is a civil date (China time) as days since 1970-01-01. 0 means "none" where a Day is
// optional: the programme's dates are after 2000.
type Day int32

// epoch is 1970-01-01 at midnight, UTC: days are counted on the UTC calendar of the civil date.
var epoch = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

// DayOf returns the Day of the civil date d.
func DayOf(d *commonv1.Date) Day {
	t := time.Date(int(d.GetYear()), time.Month(d.GetMonth()), int(d.GetDay()), 0, 0, 0, 0, time.UTC)
	return Day(t.Sub(epoch) / (24 * time.Hour))
}

// DayOfTime returns the Day of the date of t in China.
func DayOfTime(t time.Time) Day { return DayOf(civil.Today(t)) }

// Date returns d as a civil date.
func (d Day) Date() *commonv1.Date {
	y, m, dd := epoch.AddDate(0, 0, int(d)).Date()
	return &commonv1.Date{Year: int32(y), Month: int32(m), Day: int32(dd)}
}

// YearStart returns 1 January of year y.
func YearStart(y int) Day { return DayOf(&commonv1.Date{Year: int32(y), Month: 1, Day: 1}) }

// SameDayLastYear returns the same day a year before d: 28 February for 29 February.
func SameDayLastYear(d *commonv1.Date) *commonv1.Date {
	out := &commonv1.Date{Year: d.GetYear() - 1, Month: d.GetMonth(), Day: d.GetDay()}
	if out.Month == 2 && out.Day == 29 && civil.Problem(out) != "" {
		out.Day = 28
	}
	return out
}

// Trip is what the figures need of one trip.
type Trip struct {
	// Depart is the departure day; 0: not known (the trip keeps nobody out).
	Depart Day
	// End is the first day of the trip's own end (return home, left the job); 0: none.
	End Day
	// NoShow: the worker never turned up; the trip keeps nobody out.
	NoShow bool
}

// Spell is a stretch of days a trip keeps its worker out at work: From up to, not including, To.
type Spell struct {
	// From is the first day out.
	From Day
	// To is the first day no longer out; 0: still out.
	To Day
	// Trip is the index of the trip in the slice given to Spells.
	Trip int
}

// Covers reports whether the spell keeps the worker out on day d.
func (s Spell) Covers(d Day) bool { return s.From <= d && (s.To == 0 || d < s.To) }

// Touches reports whether the spell keeps the worker out on some day of the calendar year y.
func (s Spell) Touches(y int) bool {
	return s.From < YearStart(y+1) && (s.To == 0 || s.To > YearStart(y))
}

// Spells returns the disjoint spells of a worker's trips, in time order (the package comment
// says how). Trips departing on the same day are taken in the order given, except that a trip
// that ended the day it departed comes before the others of its day: the worker went on from it
// to another trip that day (the ledger, which keeps trips in the order their events arrived,
// gets the same spells whatever that order).
func Spells(trips []Trip) []Spell {
	idx := make([]int, 0, len(trips))
	for i, t := range trips {
		if t.Depart != 0 {
			idx = append(idx, i)
		}
	}
	endedSameDay := func(t Trip) bool { return t.End != 0 && t.End <= t.Depart }
	slices.SortStableFunc(idx, func(a, b int) int {
		if c := cmp.Compare(trips[a].Depart, trips[b].Depart); c != 0 {
			return c
		}
		switch ea, eb := endedSameDay(trips[a]), endedSameDay(trips[b]); {
		case ea && !eb:
			return -1
		case eb && !ea:
			return 1
		}
		return 0
	})
	var out []Spell
	for n, i := range idx {
		t := trips[i]
		if t.NoShow {
			continue
		}
		s := Spell{From: t.Depart, To: t.End, Trip: i}
		if n+1 < len(idx) {
			if next := trips[idx[n+1]].Depart; s.To == 0 || next < s.To {
				s.To = next
			}
		}
		if s.To != 0 && s.To <= s.From {
			continue // ended the day it began: never out at the end of a day
		}
		out = append(out, s)
	}
	return out
}

// Covering returns the spell that keeps the worker out on day d (at most one does).
func Covering(spells []Spell, d Day) (Spell, bool) {
	for _, s := range spells {
		if s.Covers(d) {
			return s, true
		}
	}
	return Spell{}, false
}

// Figures are the three figures asked of a day: that day, the same day a year before, and the
// calendar year before.
type Figures struct {
	AsOf, SameDay Day
	LastYear      int
}

// FiguresOf returns the figures of day asOf.
func FiguresOf(asOf *commonv1.Date) Figures {
	return Figures{AsOf: DayOf(asOf), SameDay: DayOf(SameDayLastYear(asOf)), LastYear: int(asOf.GetYear()) - 1}
}

// Counts are the three counts of one row.
type Counts struct {
	AsOf, SameDay, LastYear int64
}

// Tally counts workers under keys of named dimensions, each worker once per key and figure.
type Tally struct {
	f    Figures
	dims map[string]map[string]*Counts
}

// NewTally returns an empty tally of the figures f.
func NewTally(f Figures) *Tally { return &Tally{f: f, dims: map[string]map[string]*Counts{}} }

// Add counts one worker with spells under dimension dim: keyOf names the key each spell counts
// under (for a dimension of the worker, such as the home county, the same key for every spell).
func (t *Tally) Add(dim string, spells []Spell, keyOf func(Spell) string) {
	rows := t.dims[dim]
	if rows == nil {
		rows = map[string]*Counts{}
		t.dims[dim] = rows
	}
	row := func(k string) *Counts {
		c := rows[k]
		if c == nil {
			c = &Counts{}
			rows[k] = c
		}
		return c
	}
	if s, ok := Covering(spells, t.f.AsOf); ok {
		row(keyOf(s)).AsOf++
	}
	if s, ok := Covering(spells, t.f.SameDay); ok {
		row(keyOf(s)).SameDay++
	}
	seen := map[string]bool{}
	for _, s := range spells {
		if k := keyOf(s); s.Touches(t.f.LastYear) && !seen[k] {
			seen[k] = true
			row(k).LastYear++
		}
	}
}

// Counts returns the counts of dimension dim by key.
func (t *Tally) Counts(dim string) map[string]*Counts { return t.dims[dim] }

// Rows returns the rows of dimension dim in key order, named by name (nil: no names).
func (t *Tally) Rows(dim string, name func(string) string) []*commonv1.DynamicsRow {
	return Rows(t.dims[dim], name)
}

// Rows returns the rows of counts by key in key order, named by name (nil: no names); keys
// with all three counts 0 are left out.
func Rows(byKey map[string]*Counts, name func(string) string) []*commonv1.DynamicsRow {
	var out []*commonv1.DynamicsRow
	for _, k := range slices.Sorted(maps.Keys(byKey)) {
		c := byKey[k]
		if *c == (Counts{}) {
			continue
		}
		r := Row(k, *c)
		if name != nil && k != "" {
			r.DisplayName = name(k)
		}
		out = append(out, r)
	}
	return out
}

// Row returns the row of counts c under key.
func Row(key string, c Counts) *commonv1.DynamicsRow {
	return &commonv1.DynamicsRow{
		Key: key, OutAtWork: c.AsOf, SameDayLastYear: c.SameDay, LastYearTotal: c.LastYear,
		AgainstSameDayLastYear: Ratio(c.AsOf, c.SameDay), AgainstLastYearTotal: Ratio(c.AsOf, c.LastYear),
	}
}

// Ratio returns n / d with its percentage rounded to one decimal (none when d is 0).
func Ratio(n, d int64) *commonv1.Ratio {
	r := &commonv1.Ratio{Numerator: n, Denominator: d}
	if d != 0 {
		p := math.Round(1000*float64(n)/float64(d)) / 10
		r.Percentage = &p
	}
	return r
}

// Package outatworktest generates random journeys of workers for the property tests of
// employment dynamics (the sending province's from its roster, the nation's from the ledger),
// and counts their figures by the plain definition, day by day, independently of
// services/platform/outatwork's spells: on day D a worker's current trip is the one that departed
// last on or before D; the worker is out at work on D if that trip is not a no-show and had not
// ended (returned home, left the job) on or before D.
package outatworktest

import (
	"fmt"
	"time"

	"pgregory.net/rapid"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
)

// Worker is one generated worker.
type Worker struct {
	ID, Sending, HomeCounty string
	Poor                    bool
	Trips                   []Trip // in departure order (same-day departures in this order)
}

// Trip is one generated trip.
type Trip struct {
	Batch, Dest, Occupation string
	Depart                  time.Time
	NoShow                  bool
	Returned                *time.Time // the return home, if any
	LeftJob                 *time.Time // the day the job was left (its start, China time), if any
}

// Base is the first possible departure: 2024-01-01 in China.
var Base = time.Date(2024, 1, 1, 9, 0, 0, 0, civil.Zone)

// Now is the clock of the tests: every generated fact is before it.
var Now = time.Date(2026, 12, 1, 12, 0, 0, 0, civil.Zone)

// Sending are the sending provinces and their counties the workers come from.
var Sending = map[string][]string{"520000": {"520102", "520424"}, "450000": {"450102"}}

// Dests are the destinations.
var Dests = []string{"440000", "330000"}

// Occupations are the trips' occupations ("" : not recorded).
var Occupations = []string{"8212", "9313", ""}

// Journeys draws up to max workers, their ids numbered from 1 under their sending province.
func Journeys(t *rapid.T, max int) []Worker {
	n := rapid.IntRange(1, max).Draw(t, "workers")
	out := make([]Worker, n)
	for i := range out {
		s := rapid.SampledFrom([]string{"520000", "450000"}).Draw(t, "sending")
		w := Worker{
			ID: fmt.Sprintf("%s-W%06d", s, i+1), Sending: s, HomeCounty: rapid.SampledFrom(Sending[s]).Draw(t, "county"),
			Poor: rapid.IntRange(0, 3).Draw(t, "poor") > 0,
		}
		at := Base.AddDate(0, 0, rapid.IntRange(0, 500).Draw(t, "start"))
		for j := range rapid.IntRange(0, 4).Draw(t, "trips") {
			tr := Trip{
				Batch: fmt.Sprintf("%s-B%06d-%d", s, i+1, j), Dest: rapid.SampledFrom(Dests).Draw(t, "dest"),
				Occupation: rapid.SampledFrom(Occupations).Draw(t, "occupation"), Depart: at,
			}
			switch rapid.IntRange(0, 4).Draw(t, "outcome") {
			case 0: // still out (or boarded again without a return)
			case 1:
				tr.NoShow = true
			case 2:
				r := at.AddDate(0, 0, rapid.IntRange(0, 300).Draw(t, "away"))
				tr.Returned = &r
			case 3, 4:
				l := civil.Start(civil.Today(at.AddDate(0, 0, rapid.IntRange(0, 300).Draw(t, "worked"))))
				tr.LeftJob = &l
				if rapid.Bool().Draw(t, "cameHome") {
					r := l.AddDate(0, 0, rapid.IntRange(0, 30).Draw(t, "travel")).Add(10 * time.Hour)
					tr.Returned = &r
				}
			}
			if last(tr).After(Now) {
				break
			}
			w.Trips = append(w.Trips, tr)
			at = last(tr).AddDate(0, 0, rapid.IntRange(0, 120).Draw(t, "gap"))
			if tr.Returned == nil && tr.LeftJob == nil {
				at = tr.Depart.AddDate(0, 0, rapid.IntRange(1, 200).Draw(t, "reboard"))
			}
			if at.After(Now) {
				break
			}
		}
		out[i] = w
	}
	return out
}

// last is the time of the trip's last fact.
func last(t Trip) time.Time {
	at := t.Depart
	for _, x := range []*time.Time{t.LeftJob, t.Returned} {
		if x != nil && x.After(at) {
			at = *x
		}
	}
	return at
}

// day is the China date of t as "YYYY-MM-DD" (ordered as text).
func day(t time.Time) string { return civil.Format(civil.Today(t)) }

// OutOn returns whether w is out at work on date d ("YYYY-MM-DD"), and on which trip.
func OutOn(w Worker, d string) (Trip, bool) {
	cur := -1
	for i, t := range w.Trips {
		if day(t.Depart) <= d {
			cur = i
		}
	}
	if cur < 0 {
		return Trip{}, false
	}
	t := w.Trips[cur]
	if t.NoShow || (t.Returned != nil && day(*t.Returned) <= d) || (t.LeftJob != nil && day(*t.LeftJob) <= d) {
		return Trip{}, false
	}
	return t, true
}

// Counts are the three figures of a row.
type Counts struct{ AsOf, SameDay, LastYear int64 }

// Figures are the expected figures by dimension ("total", "county", "destination",
// "occupation", "sending") and key.
type Figures map[string]map[string]*Counts

// Expected counts the registered-poor workers of ws (keep: which workers) as of asOf, with the
// same day a year before sameDay and the calendar year lastYear, day by day.
func Expected(ws []Worker, keep func(Worker) bool, asOf, sameDay *commonv1.Date, lastYear int) Figures {
	f := Figures{}
	add := func(dim, key string, fn func(*Counts)) {
		if f[dim] == nil {
			f[dim] = map[string]*Counts{}
		}
		if f[dim][key] == nil {
			f[dim][key] = &Counts{}
		}
		fn(f[dim][key])
	}
	keys := func(w Worker, t Trip) map[string]string {
		return map[string]string{"total": "", "county": w.HomeCounty, "destination": t.Dest, "occupation": t.Occupation, "sending": w.Sending}
	}
	for _, w := range ws {
		if !w.Poor || !keep(w) {
			continue
		}
		if t, ok := OutOn(w, civil.Format(asOf)); ok {
			for dim, k := range keys(w, t) {
				add(dim, k, func(c *Counts) { c.AsOf++ })
			}
		}
		if t, ok := OutOn(w, civil.Format(sameDay)); ok {
			for dim, k := range keys(w, t) {
				add(dim, k, func(c *Counts) { c.SameDay++ })
			}
		}
		seen := map[string]bool{}
		for d := civil.Start(&commonv1.Date{Year: int32(lastYear), Month: 1, Day: 1}); civil.Year(d) == lastYear; d = d.AddDate(0, 0, 1) {
			if t, ok := OutOn(w, day(d)); ok {
				for dim, k := range keys(w, t) {
					if !seen[dim+"/"+k] {
						seen[dim+"/"+k] = true
						add(dim, k, func(c *Counts) { c.LastYear++ })
					}
				}
			}
		}
	}
	return f
}

// Get returns the counts of dim and key (zero when none).
func (f Figures) Get(dim, key string) Counts {
	if c := f[dim][key]; c != nil {
		return *c
	}
	return Counts{}
}

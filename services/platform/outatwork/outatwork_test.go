package outatwork

import (
	"slices"
	"testing"
	"time"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
)

func d(s string) Day {
	day, err := civil.Parse(s)
	if err != nil {
		panic(err)
	}
	return DayOf(day)
}

func TestSpells(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		trips []Trip
		want  []Spell
	}{
		{"no trip", nil, nil},
		{"still out", []Trip{{Depart: d("2026-03-01")}}, []Spell{{From: d("2026-03-01")}}},
		{"back home", []Trip{{Depart: d("2026-03-01"), End: d("2026-06-01")}}, []Spell{{From: d("2026-03-01"), To: d("2026-06-01")}}},
		{"home the day it left", []Trip{{Depart: d("2026-03-01"), End: d("2026-03-01")}}, nil},
		{"a no-show keeps nobody out", []Trip{{Depart: d("2026-03-01"), NoShow: true}}, nil},
		{"no departure known", []Trip{{End: d("2026-03-01")}}, nil},
		{"boarded again without a return: the next departure ends the trip", []Trip{{Depart: d("2026-03-01")}, {Depart: d("2026-05-01")}},
			[]Spell{{From: d("2026-03-01"), To: d("2026-05-01")}, {From: d("2026-05-01"), Trip: 1}}},
		{"a no-show after a trip still ends it", []Trip{{Depart: d("2026-03-01")}, {Depart: d("2026-05-01"), NoShow: true}},
			[]Spell{{From: d("2026-03-01"), To: d("2026-05-01")}}},
		{"left the job, out again: disjoint", []Trip{{Depart: d("2026-05-01"), End: d("2026-09-01"), NoShow: false}, {Depart: d("2026-01-01"), End: d("2026-02-01")}},
			[]Spell{{From: d("2026-01-01"), To: d("2026-02-01"), Trip: 1}, {From: d("2026-05-01"), To: d("2026-09-01")}}},
		{"two departures the same day: the later in order counts", []Trip{{Depart: d("2026-03-01")}, {Depart: d("2026-03-01")}},
			[]Spell{{From: d("2026-03-01"), Trip: 1}}},
		// The ledger keeps trips in the order their events arrived: a trip that ended the day it
		// departed is the one the worker went on from, in either order.
		{"left the job the day it departed, out again that day", []Trip{{Depart: d("2026-03-01"), End: d("2026-03-01")}, {Depart: d("2026-03-01"), End: d("2026-03-05")}},
			[]Spell{{From: d("2026-03-01"), To: d("2026-03-05"), Trip: 1}}},
		{"the same, recorded the other way round", []Trip{{Depart: d("2026-03-01"), End: d("2026-03-05")}, {Depart: d("2026-03-01"), End: d("2026-03-01")}},
			[]Spell{{From: d("2026-03-01"), To: d("2026-03-05")}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Spells(tt.trips); !slices.Equal(got, tt.want) {
				t.Fatalf("Spells = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDaysAndYears(t *testing.T) {
	t.Parallel()
	if got := SameDayLastYear(&commonv1.Date{Year: 2028, Month: 2, Day: 29}); civil.Format(got) != "2027-02-28" {
		t.Errorf("same day last year of 2028-02-29 = %s", civil.Format(got))
	}
	if got := SameDayLastYear(&commonv1.Date{Year: 2026, Month: 4, Day: 30}); civil.Format(got) != "2025-04-30" {
		t.Errorf("same day last year of 2026-04-30 = %s", civil.Format(got))
	}
	if got := d("2026-04-30").Date(); civil.Format(got) != "2026-04-30" {
		t.Errorf("Day round trip = %s", civil.Format(got))
	}
	// 23:30 UTC on 29 April is 30 April in China.
	if got := DayOfTime(time.Date(2026, 4, 29, 23, 30, 0, 0, time.UTC)); got != d("2026-04-30") {
		t.Errorf("DayOfTime = %s", civil.Format(got.Date()))
	}
	s := Spell{From: d("2025-12-31"), To: d("2026-01-01")}
	if !s.Touches(2025) || s.Touches(2026) {
		t.Errorf("a spell of 31 December 2025 touches 2025 only")
	}
	if open := (Spell{From: d("2024-06-01")}); !open.Touches(2026) || open.Touches(2023) {
		t.Errorf("an open spell touches every year from its start")
	}
}

func TestRatio(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		n, d int64
		want float64
		none bool
	}{{1234, 1293, 95.4, false}, {97, 100, 97, false}, {2, 3, 66.7, false}, {1, 0, 0, true}, {0, 5, 0, false}} {
		r := Ratio(tt.n, tt.d)
		if r.GetNumerator() != tt.n || r.GetDenominator() != tt.d || (r.Percentage == nil) != tt.none || r.GetPercentage() != tt.want {
			t.Errorf("Ratio(%d, %d) = %v, want %v%%", tt.n, tt.d, r, tt.want)
		}
	}
}

package coordination

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/workcalendar"
)

// CalendarHealthName is the health service name under which the coordination service says
// whether its work calendar (services/codes/workcalendar, the State Council's holiday notices)
// covers the current year: SERVING when it does. When it does not, the deadlines counted in
// working days (an incident reported within one working day, abandonment after five working
// days of absence) count weekends only, and may be wrong by the holidays and adjusted working
// days (调休) of the year; the service still serves, and the operator updates the calendar.
const CalendarHealthName = "labourlink.calendar"

// calendarLead is how long before a new year the service warns that its calendar does not
// cover it yet (the notice for a year is published in its November before).
const calendarLead = 31 * 24 * time.Hour

// watchCalendar reports whether cal covers the current year (Health, and an error log line when
// it does not) at start and whenever that changes, and warns from calendarLead before a year the
// calendar does not cover, until ctx is done.
func (s *Service) watchCalendar(ctx context.Context, cal *workcalendar.Calendar) {
	reported, warned := 0, 0 // the years last reported and warned of
	for {
		now := s.now()
		year := civil.Year(now)
		if year != reported {
			covered := cal.Covers(year)
			if s.health != nil {
				s.health(CalendarHealthName, covered)
			}
			if !covered {
				s.lg.Error("the work calendar does not cover this year: working-day deadlines count weekends only; add the year's holidays to services/codes/workcalendar/holidays-cn.csv",
					zap.Int("year", year), zap.Ints("covered_years", cal.Years()))
			}
			reported = year
		}
		if next := year + 1; next != warned && !cal.Covers(next) && civil.Year(now.Add(calendarLead)) == next {
			s.lg.Warn("the work calendar does not cover next year yet: add its holidays before it begins",
				zap.Int("year", next), zap.Ints("covered_years", cal.Years()))
			warned = next
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(max(s.interval, time.Millisecond)):
		}
	}
}

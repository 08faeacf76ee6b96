package ledgerclient

import (
	"fmt"
	"time"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
)

// The time order of a trip's facts, as the ledger checks it (services/coordination/ledger) and
// as the regional services check it before they record a fact: a departure, then the arrival,
// then onboarding, then checkpoints and the job left. Facts of two provinces are dated by two
// clocks, so a fact may be dated up to ClockSkew before the one it follows.

// ClockSkew is how far the clocks of two provinces' services may disagree: an arrival may be
// dated up to this much before the departure it follows (confirmed at 09:40 by the receiving
// province's clock for a bus that left at 10:20 by the sending province's), and a day is judged
// on the instant less ClockSkew (an arrival at 00:30 by a fast clock may be onboarded the day
// before).
const ClockSkew = time.Hour

// NotBefore reports whether an instant later may follow the instant earlier: not more than
// ClockSkew before it.
func NotBefore(later, earlier time.Time) bool { return !later.Before(earlier.Add(-ClockSkew)) }

// DayNotBefore reports whether day may follow the instant earlier: not before the China day of
// earlier less ClockSkew. A same-day departure, arrival and onboarding are in order.
func DayNotBefore(day *commonv1.Date, earlier time.Time) bool {
	return civil.Compare(day, civil.Today(earlier.Add(-ClockSkew))) >= 0
}

// StartWindowDays is the start-window tolerance: how many days before its vacancy's start_date
// a worker may depart, arrive or be onboarded (employers take workers ahead of the planned
// start, and workers travel early, right after the Spring Festival). A fact dated earlier
// contradicts the vacancy and is refused: by the sending service at departure, by the receiving
// service at arrival and onboarding. The start window of a vacancy opens StartWindowDays before
// its start_date.
const StartWindowDays = 92

// StartWindowProblem says why a fact (what, such as "arrival") of day is too early for the
// vacancy named name that starts on start, or "" when it is not (or start is unknown).
func StartWindowProblem(what string, day *commonv1.Date, name string, start *commonv1.Date) string {
	if start == nil {
		return ""
	}
	opens := civil.AddDays(start, -StartWindowDays)
	if civil.Compare(day, opens) >= 0 {
		return ""
	}
	return fmt.Sprintf("%s %s is before the start window of %s opens (%s: %d days before its start date %s)",
		what, civil.Format(day), name, civil.Format(opens), StartWindowDays, civil.Format(start))
}

package ledgerclient

import (
	"time"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
)

// The time order of a trip's facts, as the ledger checks it (services/coordination/ledger) and
// as the receiving service checks it before it records a fact: a departure, then the arrival,
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

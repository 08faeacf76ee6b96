package ledger

import (
	"fmt"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/platform/apierror"
)

// The time order of a trip (a worker on a batch): departure, then arrival, then onboarding,
// then checkpoints and the job left. A reported event is checked against the events of the same
// worker on the same batch the ledger already has (those of the same report before it too):
//
//   - an arrival not before the departure, less ledgerclient.ClockSkew (two provinces' clocks);
//   - onboarding, a checkpoint or the job left not on a China day before the departure's or
//     the arrival's (judged on the instant less ClockSkew), nor before onboarding's day;
//   - a checkpoint at N months at least N whole months after onboarding's day.
//
// Whichever of two contradicting events comes second is refused (INVALID_ARGUMENT on its
// occur_time, or on employment_checkpoint.months), on its own: the events that came with it are
// taken. Events of other kinds (no-show, incident, returned home) and events without a batch
// are not ordered. The ledger does not know vacancies: the start window of a vacancy
// (ledgerclient.StartWindowDays) is the regional services' check: at departure and arrival.

// tripStage is the place of events of kind k in a trip's time order; 0: not ordered.
func tripStage(k coordinationv1.EventKind) int {
	switch k {
	case coordinationv1.EventKind_EVENT_KIND_DEPARTED:
		return 1
	case coordinationv1.EventKind_EVENT_KIND_ARRIVED:
		return 2
	case coordinationv1.EventKind_EVENT_KIND_ONBOARDED:
		return 3
	case coordinationv1.EventKind_EVENT_KIND_EMPLOYMENT_CHECKPOINT, coordinationv1.EventKind_EVENT_KIND_LEFT_JOB:
		return 4
	}
	return 0
}

// instant reports whether events of kind k are dated to the minute by a clock (departure,
// arrival) rather than to the day (onboarding, checkpoints, the job left: reported at the start
// of their day).
func instant(k coordinationv1.EventKind) bool { return tripStage(k) == 1 || tripStage(k) == 2 }

// timeOrderProblem says why ev contradicts other, an event of the same worker on the same batch,
// in time: the field of ev at fault ("occur_time" or "employment_checkpoint.months") and why;
// "", "" when they are in order.
func timeOrderProblem(ev, other *coordinationv1.LedgerEvent) (field, problem string) {
	se, so := tripStage(ev.GetKind()), tripStage(other.GetKind())
	if se == 0 || so == 0 || se == so {
		return "", ""
	}
	first, then := other, ev
	if se < so {
		first, then = ev, other
	}
	ft, tt := first.GetOccurTime().AsTime(), then.GetOccurTime().AsTime()
	var ok bool
	switch {
	case instant(first.GetKind()) && instant(then.GetKind()):
		ok = ledgerclient.NotBefore(tt, ft)
	case instant(first.GetKind()):
		ok = ledgerclient.DayNotBefore(civil.Today(tt), ft)
	default:
		ok = civil.Compare(civil.Today(tt), civil.Today(ft)) >= 0
	}
	what := func(e *coordinationv1.LedgerEvent) string {
		return fmt.Sprintf("%s at %s (event %s)", kindWord(e.GetKind()), civil.FormatTime(e.GetOccurTime().AsTime()), e.GetEventId())
	}
	if !ok {
		return "occur_time", fmt.Sprintf("%s is before %s of the same worker on batch %s, more than the clock-skew tolerance (%s)",
			what(then), what(first), ev.GetBatchId(), ledgerclient.ClockSkew)
	}
	if first.GetKind() == coordinationv1.EventKind_EVENT_KIND_ONBOARDED && then.GetKind() == coordinationv1.EventKind_EVENT_KIND_EMPLOYMENT_CHECKPOINT {
		n := then.GetEmploymentCheckpoint().GetMonths()
		if m := civil.WholeMonths(civil.Today(ft), civil.Today(tt)); m < n {
			field = "occur_time"
			if ev == then {
				field = "employment_checkpoint.months"
			}
			return field, fmt.Sprintf("the %d-month checkpoint at %s is only %d whole months after onboarding on %s (event %s)",
				n, civil.Format(civil.Today(tt)), m, civil.Format(civil.Today(ft)), first.GetEventId())
		}
	}
	return "", ""
}

// checkTimeOrder refuses ev, the i-th event of its report (INVALID_ARGUMENT, paths from
// events[i]), if it contradicts in time an
// event of the same worker on the same batch in the ledger (timeOrderProblem); recorded are the
// worker's events in the ledger (the byWorker index: a few per worker, not the batch's
// thousands).
func checkTimeOrder(recorded []*coordinationv1.LedgerEvent, i int, ev *coordinationv1.LedgerEvent) error {
	if ev.GetBatchId() == "" || tripStage(ev.GetKind()) == 0 {
		return nil
	}
	for _, other := range recorded {
		if other.GetBatchId() != ev.GetBatchId() {
			continue
		}
		if field, problem := timeOrderProblem(ev, other); problem != "" {
			var v apierror.Violations
			v.Add(eventPrefix(i)+"."+field, problem)
			return v.Err()
		}
	}
	return nil
}

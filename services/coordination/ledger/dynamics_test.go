package ledger

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"pgregory.net/rapid"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	storagev1 "github.com/eastwest/labourlink/proto/labourlink/storage/v1"
)

// applyDynamics reports a change exactly when the worker's trips record differs from what it was
// (with the trip of a new batch, if any, already in it), whatever events come in whatever order:
// the record is written and the counts moved only then.
func TestApplyDynamicsReportsEveryChange(t *testing.T) {
	kinds := []coordinationv1.EventKind{
		coordinationv1.EventKind_EVENT_KIND_DEPARTED, coordinationv1.EventKind_EVENT_KIND_ARRIVED,
		coordinationv1.EventKind_EVENT_KIND_RETURNED_HOME, coordinationv1.EventKind_EVENT_KIND_LEFT_JOB,
		coordinationv1.EventKind_EVENT_KIND_NO_SHOW, coordinationv1.EventKind_EVENT_KIND_ONBOARDED,
	}
	day0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	rapid.Check(t, func(t *rapid.T) {
		rec := &storagev1.DynamicsTrips{}
		for i := range rapid.IntRange(1, 12).Draw(t, "events") {
			ev := &coordinationv1.LedgerEvent{
				Kind:            rapid.SampledFrom(kinds).Draw(t, "kind"),
				BatchId:         rapid.SampledFrom([]string{"", "B1", "B2"}).Draw(t, "batch"),
				SendingRegion:   "520000",
				ReceivingRegion: "440000",
				RegisteredPoor:  rapid.Bool().Draw(t, "poor"),
				OccurTime:       timestamppb.New(day0.Add(time.Duration(rapid.IntRange(0, 5).Draw(t, "day")) * 24 * time.Hour)),
			}
			if ev.Kind == coordinationv1.EventKind_EVENT_KIND_DEPARTED {
				ev.Details = &coordinationv1.LedgerEvent_Departed{Departed: &coordinationv1.DepartedDetails{
					HomeCounty: rapid.SampledFrom([]string{"", "520102", "520103"}).Draw(t, "county"),
					Occupation: rapid.SampledFrom([]string{"", "8212", "7411"}).Draw(t, "occupation"),
				}}
			}
			before := proto.Clone(rec).(*storagev1.DynamicsTrips)
			changed := applyDynamics(rec, ev)
			// The trip of a batch new to the record is added before the event is applied.
			if n := len(rec.GetTrips()); n > len(before.GetTrips()) {
				before.Trips = append(before.Trips, proto.Clone(rec.GetTrips()[n-1]).(*storagev1.DynamicsTrip))
				before.Trips[n-1].DepartureDay, before.Trips[n-1].EndDay, before.Trips[n-1].NoShow = 0, 0, false
				before.Trips[n-1].RegisteredPoor, before.Trips[n-1].Occupation = false, ""
			}
			if differs := !proto.Equal(before, rec); changed != differs {
				t.Fatalf("event %d (%v): applyDynamics says changed=%v, the record differs=%v", i, ev, changed, differs)
			}
		}
	})
}

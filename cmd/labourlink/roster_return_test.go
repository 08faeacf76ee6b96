package main

import (
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending/roster"
)

// `roster return-home` ends the worker's trip (the day form is noon China time) and says the
// return goes to the ledger; `roster get` then shows the journey as a table, with what the
// receiving province reported on its employment feed (a no-show told apart). A worker with no
// trip on record is told apart: nothing goes to the ledger.
func TestRosterReturnHome(t *testing.T) {
	addr, db := rosterTestService(t)
	const away, noTrip, noShow = "520000-AAAAAAAAAAAAAAAA", "520000-BBBBBBBBBBBBBBBB", "520000-CCCCCCCCCCCCCCCC"
	const unboarded = "520000-DDDDDDDDDDDDDDDD"
	left := time.Date(2026, 2, 27, 8, 5, 0, 0, civil.Zone)
	err := db.Update(func(tx *bbolt.Tx) error {
		for _, w := range []*sendingv1.Worker{
			{WorkerId: away, Status: sendingv1.WorkerStatus_WORKER_STATUS_DEPARTED, Trips: []*sendingv1.Trip{{
				BatchId: "520000-B00000007", ReceivingRegion: "440000", Vacancy: "vacancies/440000-V0000000003", DepartureTime: timestamppb.New(left),
				EmployerName: "深圳市南山电子有限公司", WorkCounty: "440305", ArrivalTime: timestamppb.New(left.Add(30 * time.Hour)),
				OnboardDate: &commonv1.Date{Year: 2026, Month: 3, Day: 1},
				Checkpoints: []*sendingv1.TripCheckpoint{{Months: 3, StillEmployed: true, CheckDate: &commonv1.Date{Year: 2026, Month: 6, Day: 1}}},
				LeftJobDate: &commonv1.Date{Year: 2026, Month: 6, Day: 20}, LeftJobReason: "合同期满", Incidents: 1,
			}}},
			{WorkerId: noShow, Status: sendingv1.WorkerStatus_WORKER_STATUS_DEPARTED, Trips: []*sendingv1.Trip{{
				BatchId: "520000-B00000007", ReceivingRegion: "440000", DepartureTime: timestamppb.New(left), NoShow: true,
			}}},
			{WorkerId: noTrip, Status: sendingv1.WorkerStatus_WORKER_STATUS_EMPLOYED},
			{WorkerId: unboarded, Status: sendingv1.WorkerStatus_WORKER_STATUS_ARRIVED, Trips: []*sendingv1.Trip{{
				BatchId: "520000-B00000007", ReceivingRegion: "440000", DepartureTime: timestamppb.New(left), ArrivedWithoutDeparture: true,
				ArrivalTime: timestamppb.New(left.Add(30 * time.Hour)),
			}}},
		} {
			if err := store.PutProto(tx.Bucket(roster.BucketWorkers), []byte(w.WorkerId), w); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runRoster(t, addr, "roster", "return-home", away, "-time", "2026-07-01", "-note", "合同到期")
	if code != 0 || !strings.Contains(out, "trip on 520000-B00000007 ended") || !strings.Contains(out, "RETURNED_HOME queued") {
		t.Fatalf("return-home: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = runRoster(t, addr, "roster", "get", away)
	for _, want := range []string{"journey (1 trips)", "520000-B00000007", "440000 广东省", "2026-02-27 08:05", "2026-07-01 12:00", "合同到期"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("roster get after the return: exit %d, no %q in\n%s", code, want, out)
		}
	}
	// What the receiving province reported: employer, county, arrival, onboarding, leaving.
	for _, want := range []string{"深圳市南山电子有限公司", "440305 南山区", "2026-02-28 14:05", "2026-03-01", "2026-06-20 (合同期满)", "3m: employed", "1 incidents"} {
		if !strings.Contains(out, want) {
			t.Fatalf("roster get: no %q in\n%s", want, out)
		}
	}
	if code, out, _ = runRoster(t, addr, "roster", "get", noShow); code != 0 || !strings.Contains(out, "no-show") {
		t.Fatalf("roster get of a no-show: exit %d\n%s", code, out)
	}
	if code, out, _ = runRoster(t, addr, "roster", "get", unboarded); code != 0 || !strings.Contains(out, "2026-02-27 08:05 (not boarded here)") {
		t.Fatalf("roster get of a worker arrived without a recorded departure: exit %d\n%s", code, out)
	}
	code, out, errOut = runRoster(t, addr, "roster", "return-home", noTrip)
	if code != 0 || !strings.Contains(out, "No trip on record") {
		t.Fatalf("return-home of a worker without a trip: exit %d\n%s\n%s", code, out, errOut)
	}
	code, _, errOut = runRoster(t, addr, "roster", "return-home", away, "-time", "yesterday")
	if code == 0 || !strings.Contains(errOut, "-time") {
		t.Fatalf("bad -time: exit %d\n%s", code, errOut)
	}
}

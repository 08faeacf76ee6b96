package main

import (
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/types/known/timestamppb"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending/roster"
)

// `roster return-home` ends the worker's trip (the day form is noon China time) and says the
// return goes to the ledger; `roster get` then shows the journey as a table. A worker with no
// trip on record is told apart: nothing goes to the ledger.
func TestRosterReturnHome(t *testing.T) {
	addr, db := rosterTestService(t)
	const away, noTrip = "520000-AAAAAAAAAAAAAAAA", "520000-BBBBBBBBBBBBBBBB"
	left := time.Date(2026, 2, 27, 8, 5, 0, 0, civil.Zone)
	err := db.Update(func(tx *bbolt.Tx) error {
		for _, w := range []*sendingv1.Worker{
			{WorkerId: away, Status: sendingv1.WorkerStatus_WORKER_STATUS_DEPARTED, Trips: []*sendingv1.Trip{{
				BatchId: "520000-B00000007", ReceivingRegion: "440000", Vacancy: "vacancies/440000-V0000000003", DepartureTime: timestamppb.New(left),
			}}},
			{WorkerId: noTrip, Status: sendingv1.WorkerStatus_WORKER_STATUS_EMPLOYED},
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
	code, out, errOut = runRoster(t, addr, "roster", "return-home", noTrip)
	if code != 0 || !strings.Contains(out, "No trip on record") {
		t.Fatalf("return-home of a worker without a trip: exit %d\n%s\n%s", code, out, errOut)
	}
	code, _, errOut = runRoster(t, addr, "roster", "return-home", away, "-time", "yesterday")
	if code == 0 || !strings.Contains(errOut, "-time") {
		t.Fatalf("bad -time: exit %d\n%s", code, errOut)
	}
}

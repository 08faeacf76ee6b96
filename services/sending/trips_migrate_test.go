package sending

import (
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/types/known/timestamppb"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending/roster"
	"github.com/eastwest/labourlink/services/sending/transport"
)

// A file of sending schema 4 (no trips kept) opens with version 5: each worker gets a trip per
// departed batch it boarded, oldest first; a planned batch and a worker left on the platform
// give none; a worker set RETURNED_HOME by hand has its last trip ended at that change.
func TestOpenVersion4FileBuildsTrips(t *testing.T) {
	t.Parallel()
	const twice, home, stayed = "520000-AAAAAAAAAAAAAAAA", "520000-BBBBBBBBBBBBBBBB", "520000-CCCCCCCCCCCCCCCC"
	first := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	second := time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC)
	returned := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	batch := func(id, dest string, state sendingv1.BatchState, at time.Time, boarded ...string) *sendingv1.Batch {
		b := &sendingv1.Batch{BatchId: id, ReceivingRegion: dest, State: state, BoardedWorkerIds: boarded}
		for _, w := range []string{twice, home, stayed} {
			b.Manifest = append(b.Manifest, &sendingv1.ManifestEntry{WorkerId: w, Vacancy: "vacancies/" + dest + "-V" + id[len(id)-1:]})
		}
		if state == sendingv1.BatchState_BATCH_STATE_DEPARTED {
			b.ActualDepartureTime = timestamppb.New(at)
		}
		return b
	}
	db := openUpgraded(t, 4, func(tx *bbolt.Tx) error {
		for _, w := range []*sendingv1.Worker{
			{WorkerId: twice, Status: stDeparted},
			{WorkerId: home, Status: sendingv1.WorkerStatus_WORKER_STATUS_RETURNED_HOME, StatusChangeTime: timestamppb.New(returned)},
			{WorkerId: stayed, Status: stAvailable},
		} {
			if err := store.PutProto(tx.Bucket(roster.BucketWorkers), []byte(w.WorkerId), w); err != nil {
				return err
			}
		}
		// Batch ids do not sort in departure order here: trips must follow the departure times.
		for _, b := range []*sendingv1.Batch{
			batch("520000-B00000001", "440000", sendingv1.BatchState_BATCH_STATE_DEPARTED, second, twice),
			batch("520000-B00000002", "330000", sendingv1.BatchState_BATCH_STATE_DEPARTED, first, twice, home),
			batch("520000-B00000003", "440000", sendingv1.BatchState_BATCH_STATE_PLANNED, time.Time{}),
		} {
			if err := transport.PutBatch(tx, b); err != nil {
				return err
			}
		}
		return nil
	})
	want := map[string][]*sendingv1.Trip{
		twice: {
			{BatchId: "520000-B00000002", ReceivingRegion: "330000", Vacancy: "vacancies/330000-V2", DepartureTime: timestamppb.New(first)},
			{BatchId: "520000-B00000001", ReceivingRegion: "440000", Vacancy: "vacancies/440000-V1", DepartureTime: timestamppb.New(second)},
		},
		home: {
			{BatchId: "520000-B00000002", ReceivingRegion: "330000", Vacancy: "vacancies/330000-V2", DepartureTime: timestamppb.New(first), ReturnTime: timestamppb.New(returned)},
		},
		stayed: nil,
	}
	checkTrips(t, db, want)
}

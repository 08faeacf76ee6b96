package sending

import (
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/types/known/timestamppb"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending/roster"
)

// A file of sending schema 6 (incidents counted, not kept) opens with version 7: each trip gets
// one incident report without details per incident counted, so that `incidents` is the number of
// reports; a trip without incidents and a worker without trips are unchanged.
func TestOpenVersion6FileKeepsIncidentReports(t *testing.T) {
	t.Parallel()
	const twice, none = "520000-AAAAAAAAAAAAAAAA", "520000-BBBBBBBBBBBBBBBB"
	dep := timestamppb.New(time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC))
	trip := func(batch string, incidents int32) *sendingv1.Trip {
		return &sendingv1.Trip{BatchId: batch, ReceivingRegion: "440000", DepartureTime: dep, Incidents: incidents}
	}
	db := openUpgraded(t, 6, func(tx *bbolt.Tx) error {
		for _, w := range []*sendingv1.Worker{
			{WorkerId: twice, Status: stDeparted, Trips: []*sendingv1.Trip{trip("520000-B1", 2), trip("520000-B2", 0)}},
			{WorkerId: none, Status: stAvailable},
		} {
			if err := store.PutProto(tx.Bucket(roster.BucketWorkers), []byte(w.WorkerId), w); err != nil {
				return err
			}
		}
		return nil
	})
	first := trip("520000-B1", 2)
	first.IncidentReports = []*sendingv1.TripIncident{{}, {}}
	want := map[string][]*sendingv1.Trip{twice: {first, trip("520000-B2", 0)}, none: nil}
	checkTrips(t, db, want)
}

// openUpgraded writes a data file of sending schema version with fill, closes it and opens it
// with the current Schema (upgrading it); the file is closed when the test ends.
func openUpgraded(t *testing.T, version uint64, fill func(tx *bbolt.Tx) error) *store.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sending.db")
	old := Schema
	old.Version, old.Migrate = version, nil
	db, err := store.Open(path, old, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fill); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = store.Open(path, Schema, zaptest.NewLogger(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// checkTrips checks that each worker of want has exactly its trips in db.
func checkTrips(t *testing.T, db *store.DB, want map[string][]*sendingv1.Trip) {
	t.Helper()
	err := db.View(func(tx *bbolt.Tx) error {
		for id, trips := range want {
			w, err := roster.Read(tx, id)
			if err != nil {
				return err
			}
			if !tripsEqual(w.GetTrips(), trips) {
				t.Errorf("trips of %s after the upgrade = %v, want %v", id, w.GetTrips(), trips)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

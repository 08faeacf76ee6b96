package dynamics_test

import (
	"fmt"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/types/known/timestamppb"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending/roster"
)

// benchWorkers is the size of the benchmark's roster.
const benchWorkers = 200_000

// BenchmarkEmploymentDynamics reads the figures of a province of benchWorkers registered-poor
// workers with two trips each (one ended, one going on), through gRPC in process: the scan of the
// roster in one read transaction, one worker decoded at a time. It reports workers scanned per
// second.
func BenchmarkEmploymentDynamics(b *testing.B) {
	n := startNode(b, b.TempDir())
	start := time.Date(2025, 1, 1, 9, 0, 0, 0, civil.Zone)
	for lo := 0; lo < benchWorkers; lo += 10_000 {
		err := n.db.Update(func(tx *bbolt.Tx) error {
			for i := lo; i < lo+10_000; i++ {
				dep := start.AddDate(0, 0, i%365)
				w := &sendingv1.Worker{WorkerId: fmt.Sprintf("520000-W%08d", i), HomeCounty: []string{"520102", "520424"}[i%2], RegisteredPoor: true,
					Trips: []*sendingv1.Trip{
						{BatchId: "520000-B1", ReceivingRegion: "440000", Occupation: "8212", DepartureTime: timestamppb.New(dep), ReturnTime: timestamppb.New(dep.AddDate(0, 3, 0))},
						{BatchId: "520000-B2", ReceivingRegion: "330000", Occupation: "9313", DepartureTime: timestamppb.New(dep.AddDate(0, 5, 0))},
					}}
				if err := store.PutProto(tx.Bucket(roster.BucketWorkers), []byte(w.GetWorkerId()), w); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	req := &sendingv1.GetEmploymentDynamicsRequest{AsOf: civil.Today(time.Date(2026, 4, 30, 12, 0, 0, 0, civil.Zone))}
	b.ResetTimer()
	for range b.N {
		resp, err := n.dynamics.GetEmploymentDynamics(ctxT(b), req)
		if err != nil {
			b.Fatal(err)
		}
		if resp.GetTotal().GetLastYearTotal() != benchWorkers {
			b.Fatalf("last year's total %d, want %d", resp.GetTotal().GetLastYearTotal(), benchWorkers)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(benchWorkers*b.N)/b.Elapsed().Seconds(), "workers/s")
}

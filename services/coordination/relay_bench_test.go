package coordination

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/platform/store"
)

// relayProvinceSchema is a regional service's file as far as the ledger relay uses it: the outbox
// and the verifiable ledger's acknowledgements.
var relayProvinceSchema = store.Schema{Name: "sending", Version: 1, Buckets: append([][]byte{store.BucketOutbox}, ledgerclient.WatchBuckets()...)}

// BenchmarkOutboxRelay is a province's ledger relay end to end: a real bbolt file whose outbox
// receives, in five transactions back to back, the ledger events of five confirmations of 1,000
// workers (as ConfirmArrivals commits them, outbox.Put in the confirming transaction), while the
// relay delivers them through ledgerclient.DeliverWatched (ReportEvents, the acknowledgement
// checked and kept) to the real coordination service over gRPC on loopback. It reports the rate
// the events were produced at (the outbox transactions alone: the real confirmations do more
// work, so this production rate is an upper bound and the ratio a floor), the rate the ledger
// received them at (first production to the last delivery), their ratio and the lag (last
// production to the last delivery). The relay's batch size of 100 (the outbox default) and the
// ledger's call size are interleaved round by round; run with -count 1:
//
//	go test ./services/coordination -run '^$' -bench OutboxRelay -benchtime 3x
func BenchmarkOutboxRelay(b *testing.B) {
	const confirmations, perConfirmation = 5, 1000
	for round := 1; round <= 3; round++ {
		for _, batch := range []int{100, ledgerclient.RelayBatchSize} {
			b.Run(fmt.Sprintf("round%d/batch=%d", round, batch), func(b *testing.B) {
				b.StopTimer()
				dir := b.TempDir()
				h := newHarnessOn(b, listenLoopback, dir, zap.NewNop(), Config{LoadDefaultPairings: true}, t0)
				defer h.close()
				db, err := store.Open(filepath.Join(dir, "province.db"), relayProvinceSchema, zap.NewNop())
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				watch := ledgerclient.NewWatch(db, zap.NewNop(), ledgerclient.WatchConfig{Region: "520000"})
				var delivered atomic.Int64
				target := int64(b.N * confirmations * perConfirmation)
				inner := ledgerclient.DeliverWatched(h.ledger, peers.Deadlines{}, watch)
				deliver := func(ctx context.Context, es []outbox.Entry) (outbox.Result, error) {
					res, err := inner(ctx, es)
					delivered.Add(int64(res.Done))
					return res, err
				}
				relay := outbox.NewRelay(db, ledgerclient.Destination, deliver, zap.NewNop(), outbox.Options{BatchSize: batch})
				ctx, cancel := context.WithCancel(context.Background())
				stopped := make(chan error, 1)
				go func() { stopped <- relay.Run(ctx) }()
				defer func() { cancel(); <-stopped }()

				var produced time.Duration
				var lag, total []time.Duration
				for i := range b.N {
					// Each confirmation's 1,000 events, built before the clock starts.
					var work [][]*coordinationv1.LedgerEvent
					for c := range confirmations {
						work = append(work, benchEvents(i*confirmations+c))
					}
					b.StartTimer()
					start := time.Now()
					for _, w := range work {
						if err := db.Update(func(tx *bbolt.Tx) error {
							for _, ev := range w {
								if _, err := outbox.Put(ctx, tx, start, ledgerclient.Destination, "", ev); err != nil {
									return err
								}
							}
							return nil
						}); err != nil {
							b.Fatal(err)
						}
						relay.Notify()
					}
					last := time.Now()
					produced += last.Sub(start)
					for delivered.Load() < int64((i+1)*confirmations*perConfirmation) {
						time.Sleep(time.Millisecond)
					}
					end := time.Now()
					b.StopTimer()
					lag = append(lag, end.Sub(last))
					total = append(total, end.Sub(start))
				}
				n := float64(confirmations * perConfirmation)
				var sum time.Duration
				for _, d := range total {
					sum += d
				}
				prodRate := n * float64(b.N) / produced.Seconds()
				recvRate := n * float64(b.N) / sum.Seconds()
				b.ReportMetric(prodRate, "produced-events/s")
				b.ReportMetric(recvRate, "received-events/s")
				b.ReportMetric(recvRate/prodRate, "ratio")
				b.ReportMetric(slices.Max(lag).Seconds(), "max-lag-s")
				// The last delivery is settled (removed from the outbox) just after it returns.
				for wait := time.Now(); ; time.Sleep(time.Millisecond) {
					got, err := outbox.Pending(db, ledgerclient.Destination)
					if err != nil {
						b.Fatal(err)
					}
					if got == 0 {
						break
					}
					if time.Since(wait) > 30*time.Second {
						b.Fatalf("outbox holds %d entries after the run", got)
					}
				}
				if got := countEvents(b, h); got != target {
					b.Fatalf("ledger holds %d events, %d were produced", got, target)
				}
			})
		}
	}
}

// countEvents returns the number of events in h's ledger (the ledgerEvents bucket's keys).
func countEvents(b *testing.B, h *harness) int64 {
	b.Helper()
	var n int
	if err := h.db.View(func(tx *bbolt.Tx) error {
		n = tx.Bucket([]byte("ledgerEvents")).Stats().KeyN
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	return int64(n)
}

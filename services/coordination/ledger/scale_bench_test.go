package ledger

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/coordination/registry"
	"github.com/eastwest/labourlink/services/platform/store"
)

// The reads a national operator runs, on a ledger generated straight into a bbolt file (going
// through gRPC would take hours at 10M): LABOURLINK_BENCH_EVENTS events (default 1,000,000), a
// year of 15 sending and 8 receiving provinces' workers (departed, arrived, onboarded, still
// employed at 3 months; one in twenty goes out twice). The file is kept in
// LABOURLINK_BENCH_DIR (default the system's temporary directory) and reused by later runs of
// the same size.
//
//	LABOURLINK_BENCH_EVENTS=1000000 go test -run '^$' -bench LedgerReadsAtScale -benchtime 200x ./services/coordination/ledger/

var (
	scaleSending   = []string{"520000", "510000", "530000", "620000", "630000", "640000", "650000", "450000", "500000", "610000", "360000", "430000", "420000", "410000", "340000"}
	scaleReceiving = []string{"440000", "330000", "320000", "310000", "350000", "370000", "110000", "120000"}
	scaleStart     = time.Date(2025, 1, 1, 8, 0, 0, 0, civil.Zone)
)

type scaleFile struct {
	db       *store.DB
	events   int
	size     int64
	generate time.Duration
	err      error
}

var (
	scaleOnce sync.Once
	scale     scaleFile
)

// scaleLedger opens (generating it the first time) the benchmarks' ledger file.
func scaleLedger(b *testing.B) scaleFile {
	scaleOnce.Do(func() {
		n := 1_000_000
		if s := os.Getenv("LABOURLINK_BENCH_EVENTS"); s != "" {
			var err error
			if n, err = strconv.Atoi(s); err != nil || n < 1000 {
				scale.err = fmt.Errorf("LABOURLINK_BENCH_EVENTS=%q: want a number of events, at least 1000", s)
				return
			}
		}
		dir := os.Getenv("LABOURLINK_BENCH_DIR")
		if dir == "" {
			dir = os.TempDir()
		}
		path := filepath.Join(dir, fmt.Sprintf("labourlink-ledger-bench-%d.db", n))
		done := path + ".complete"
		if _, err := os.Stat(done); err != nil {
			os.Remove(path)
		}
		db, err := store.Open(path, store.Schema{Name: "ledger-bench", Version: 1, Buckets: append(slices.Clone(Buckets), registry.Buckets...)}, zap.NewNop())
		if err != nil {
			scale.err = err
			return
		}
		scale.db, scale.events = db, n
		if _, err := os.Stat(done); err != nil {
			start := time.Now()
			if scale.err = generateScale(db, n); scale.err != nil {
				return
			}
			scale.generate = time.Since(start)
			scale.err = os.WriteFile(done, nil, 0o600)
		}
		if fi, err := os.Stat(path); err == nil {
			scale.size = fi.Size()
		}
	})
	if scale.err != nil {
		b.Fatal(scale.err)
	}
	if scale.generate > 0 {
		b.Logf("generated %d events in %s", scale.events, scale.generate.Round(time.Millisecond))
	}
	return scale
}

// generateScale records n events, 20,000 per write transaction.
func generateScale(db *store.DB, n int) error {
	kinds := []coordinationv1.EventKind{
		coordinationv1.EventKind_EVENT_KIND_DEPARTED, coordinationv1.EventKind_EVENT_KIND_ARRIVED,
		coordinationv1.EventKind_EVENT_KIND_ONBOARDED, coordinationv1.EventKind_EVENT_KIND_EMPLOYMENT_CHECKPOINT,
	}
	const perTx = 20_000
	for done := 0; done < n; {
		err := db.Update(func(tx *bbolt.Tx) error {
			c := newCounts(tx)
			for i := 0; i < perTx && done < n; i, done = i+1, done+1 {
				w, k := done/4, done%4
				worker := w
				trip := 0
				if w%20 == 19 { // goes out again: the same worker as the one before, a second trip
					worker, trip = w-1, 1
				}
				// Departures spread over the year, a worker's trip two months after the first.
				dep := scaleStart.Add(time.Duration(w%360)*24*time.Hour+time.Duration(w%600)*time.Minute).AddDate(0, 2*trip, 0)
				at := []time.Time{dep, dep.Add(30 * time.Hour), dep.Add(72 * time.Hour), dep.AddDate(0, 3, 3)}[k]
				ev := &coordinationv1.LedgerEvent{
					EventId:         fmt.Sprintf("e%09d", done),
					Kind:            kinds[k],
					WorkerId:        fmt.Sprintf("w%08d", worker),
					BatchId:         fmt.Sprintf("b%06d-%d", w/45, trip),
					ReceivingRegion: scaleReceiving[worker%len(scaleReceiving)],
					SendingRegion:   scaleSending[worker%len(scaleSending)],
					OccurTime:       timestamppb.New(at),
					RegisteredPoor:  worker%3 == 0,
					RecordTime:      timestamppb.New(at.Add(time.Minute)),
				}
				if k == 3 {
					ev.Details = &coordinationv1.LedgerEvent_EmploymentCheckpoint{EmploymentCheckpoint: &coordinationv1.EmploymentCheckpointDetails{Months: 3, StillEmployed: true}}
				}
				if _, err := putEvent(tx, c, ev); err != nil {
					return err
				}
			}
			return c.flush()
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkLedgerReadsAtScale times the reads of a national operator on the generated ledger.
// Each "scan" sub-benchmark is the way the same figure was computed before the counts and
// indexes (coordination schema version 10), on the same file in the same run: the baseline.
func BenchmarkLedgerReadsAtScale(b *testing.B) {
	f := scaleLedger(b)
	year := civil.Year(scaleStart)
	from, until := civil.Start(civil.Today(scaleStart)), time.Date(year+1, 1, 1, 0, 0, 0, 0, civil.Zone)
	one := regions.Pairing{Receiving: scaleReceiving[0], Sending: scaleSending[0]}
	view := func(b *testing.B, fn func(tx *bbolt.Tx) error) {
		b.Helper()
		b.ReportMetric(float64(f.events), "events")
		b.ReportMetric(float64(f.size)/(1<<20), "file-MiB")
		b.ReportAllocs()
		for b.Loop() {
			if err := f.db.View(fn); err != nil {
				b.Fatal(err)
			}
		}
	}
	list := func(req *coordinationv1.ListEventsRequest) func(tx *bbolt.Tx) error {
		return func(tx *bbolt.Tx) error {
			_, _, err := listEvents(tx, req, 0, 100)
			return err
		}
	}
	b.Run("ListEvents/kind-matching-nothing", func(b *testing.B) {
		view(b, list(&coordinationv1.ListEventsRequest{Kind: coordinationv1.EventKind_EVENT_KIND_INCIDENT}))
	})
	b.Run("ListEvents/region-page", func(b *testing.B) {
		view(b, list(&coordinationv1.ListEventsRequest{Region: scaleSending[3]}))
	})
	b.Run("ListEvents/time-range-matching-nothing-one-call", func(b *testing.B) {
		view(b, list(&coordinationv1.ListEventsRequest{OccurTimeFrom: timestamppb.New(until.AddDate(5, 0, 0))}))
	})
	b.Run("PairingSummary/one-pairing-year/counts", func(b *testing.B) {
		view(b, func(tx *bbolt.Tx) error {
			s, _, err := pairingSummaries(tx, one.Sending, from, until, "", 1)
			if err == nil && s[0].GetDeparted() == 0 {
				err = fmt.Errorf("no departures counted: %v", s[0])
			}
			return err
		})
	})
	b.Run("PairingSummary/one-pairing-year/scan", func(b *testing.B) {
		view(b, func(tx *bbolt.Tx) error {
			for _, cat := range summaryCategories {
				if _, err := scanWorkers(tx, one, cat, from, until); err != nil {
					return err
				}
			}
			return nil
		})
	})
	b.Run("Assessment/province-year/counts", func(b *testing.B) {
		view(b, func(tx *bbolt.Tx) error {
			_, err := CountRegisteredPoor(tx, one.Sending, year, coordinationv1.EventKind_EVENT_KIND_DEPARTED)
			return err
		})
	})
	b.Run("Assessment/province-year/scan", func(b *testing.B) {
		view(b, func(tx *bbolt.Tx) error {
			_, err := assessed.count(tx, assessmentPrefix(one.Sending, year, catDeparted))
			return err
		})
	})
}

package coordination

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/coordination/ledger"
)

// benchEvents returns the i-th call's 1000 new events: departures (of registered-poor workers, so
// that the employment dynamics' per-day counts are kept: the costlier path) and arrivals of 500
// workers in 45-worker batches.
func benchEvents(call int) []*coordinationv1.LedgerEvent {
	events := make([]*coordinationv1.LedgerEvent, 0, ledger.MaxEventsPerReport)
	for n := call * ledger.MaxEventsPerReport / 2; len(events) < ledger.MaxEventsPerReport; n++ {
		batch, worker := fmt.Sprintf("520000-b%d", n/45), fmt.Sprintf("w%d", n)
		events = append(events,
			poor(ev("d"+worker, departed, batch, worker, t0.Add(-48*time.Hour))),
			ev("a"+worker, arrived, batch, worker, t0.Add(-24*time.Hour)))
	}
	return events
}

// boltWrite is one key written by the ledger: its bucket path, key and value.
type boltWrite struct {
	bucket [][]byte
	key    []byte
	value  []byte
}

// boltEntries returns every key of every bucket (nested ones included) of tx, by bucket path.
func boltEntries(tx *bbolt.Tx) map[string]boltWrite {
	out := map[string]boltWrite{}
	var walk func(path [][]byte, b *bbolt.Bucket)
	walk = func(path [][]byte, b *bbolt.Bucket) {
		_ = b.ForEach(func(k, v []byte) error {
			if v == nil {
				walk(append(slices.Clone(path), slices.Clone(k)), b.Bucket(k))
				return nil
			}
			id := string(bytes.Join(path, []byte{0})) + "\x00\x00" + string(k)
			out[id] = boltWrite{bucket: path, key: slices.Clone(k), value: slices.Clone(v)}
			return nil
		})
	}
	_ = tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
		walk([][]byte{slices.Clone(name)}, b)
		return nil
	})
	return out
}

// benchProofForm is the proof form BenchmarkReportEvents asks for: the ledger relays' (leaf
// ranges), or LABOURLINK_BENCH_PROOF_FORM (PROOF_FORM_INCLUSIONS: an inclusion per event).
var benchProofForm = coordinationv1.ProofForm_PROOF_FORM_RANGES

// BenchmarkReportEvents reports calls of 1000 new events over gRPC on loopback into the real
// coordination ledger (one bbolt commit per call, idempotency by event id, reconciliation of the
// touched batches included) and compares it with raw bbolt doing the same writes: every key the
// calls added or changed (found by comparing the file before and after them: the same buckets,
// keys and values), written into a fresh bbolt file holding the ledger's state before the calls,
// in as many transactions as there were calls (each key in its bucket-and-key order, so the
// batches of one call stay together). A counter updated by several events of a call is one put
// there, so the raw side does at most the ledger's puts: the ratio is a floor. A third side,
// bare, sends the same requests to a bare grpc-go server (grpc.NewServer without interceptors)
// whose ReportEvents returns the very answer the ledger gave to each: what the call's transport
// and codec alone cost. The rounds are interleaved inside (round1/ledger, round1/rawbolt,
// round1/bare, ...), with a fourth, bare-counts, whose answers carry only the counts (no
// checkpoint, no proofs); run with -count 1:
//
//	go test ./services/coordination -run '^$' -bench ReportEvents -benchtime 20x
//
// Metrics: events/s on every side; on rawbolt also puts/event (distinct keys written per event)
// and ratio (ledger events/s over raw events/s of the round); on bare and bare-counts also
// ceiling, the ratio to raw that a ledger doing nothing but the same writes behind the same call
// would reach (the call and the transaction run one after the other: raw time / (raw time +
// bare time)).
func BenchmarkReportEvents(b *testing.B) {
	if f := os.Getenv("LABOURLINK_BENCH_PROOF_FORM"); f != "" {
		benchProofForm = coordinationv1.ProofForm(coordinationv1.ProofForm_value[f])
	}
	keep := b.TempDir() // the ledger's file before the calls, for the raw side
	for round := 1; round <= 3; round++ {
		var (
			writes    []boltWrite
			before    string
			calls     int
			ledgerES  float64
			rawES     float64
			batches   [][]*coordinationv1.LedgerEvent
			responses []*coordinationv1.ReportEventsResponse
		)
		b.Run(fmt.Sprintf("round%d/ledger", round), func(b *testing.B) {
			b.StopTimer()
			dir := b.TempDir()
			h := newHarnessOn(b, listenLoopback, dir, zap.NewNop(), Config{LoadDefaultPairings: true}, t0)
			defer h.close()
			batches = make([][]*coordinationv1.LedgerEvent, b.N)
			responses = make([]*coordinationv1.ReportEventsResponse, b.N)
			for i := range batches {
				batches[i] = benchEvents(i)
			}
			var old map[string]boltWrite
			_ = os.Remove(filepath.Join(keep, fmt.Sprintf("before%d.db", round)))
			before = filepath.Join(keep, fmt.Sprintf("before%d.db", round))
			if err := h.db.View(func(tx *bbolt.Tx) error {
				old = boltEntries(tx)
				return tx.CopyFile(before, 0o600)
			}); err != nil {
				b.Fatal(err)
			}
			statsBefore := h.db.Stats().TxStats
			b.StartTimer()
			start := time.Now()
			for i := range b.N {
				resp, err := h.ledger.ReportEvents(ctxT(b), &coordinationv1.ReportEventsRequest{Events: batches[i], ProofForm: benchProofForm})
				if err != nil || len(resp.GetRefusals()) > 0 {
					b.Fatalf("ReportEvents: %v, refusals %v", err, resp.GetRefusals())
				}
				responses[i] = resp
			}
			elapsed := time.Since(start)
			b.StopTimer()
			reportBoltWork(b, h.db.Stats().TxStats, statsBefore, b.N*ledger.MaxEventsPerReport)
			writes = writes[:0]
			if err := h.db.View(func(tx *bbolt.Tx) error {
				for id, w := range boltEntries(tx) {
					if o, ok := old[id]; !ok || !bytes.Equal(o.value, w.value) {
						writes = append(writes, w)
					}
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			slices.SortFunc(writes, func(x, y boltWrite) int {
				if c := slices.CompareFunc(x.bucket, y.bucket, bytes.Compare); c != 0 {
					return c
				}
				return bytes.Compare(x.key, y.key)
			})
			calls = b.N
			ledgerES = float64(b.N*ledger.MaxEventsPerReport) / elapsed.Seconds()
			b.ReportMetric(ledgerES, "events/s")
		})
		b.Run(fmt.Sprintf("round%d/rawbolt", round), func(b *testing.B) {
			b.StopTimer()
			var total time.Duration
			var work bbolt.TxStats
			for range b.N {
				d, w := rawLedgerWrites(b, before, writes, calls)
				total += d
				work.CursorCount += w.CursorCount
				work.NodeCount += w.NodeCount
			}
			reportBoltWork(b, work, bbolt.TxStats{}, b.N*calls*ledger.MaxEventsPerReport)
			rate := float64(b.N*calls*ledger.MaxEventsPerReport) / total.Seconds()
			b.ReportMetric(rate, "events/s")
			b.ReportMetric(float64(len(writes))/float64(calls*ledger.MaxEventsPerReport), "puts/event")
			b.ReportMetric(ledgerES/rate, "ratio")
			rawES = rate
		})
		// bare answers what the ledger answered; bare-counts only the counts (no checkpoint, no
		// proofs): the least any answer costs.
		for _, side := range []string{"bare", "bare-counts"} {
			b.Run(fmt.Sprintf("round%d/%s", round, side), func(b *testing.B) {
				b.StopTimer()
				answers := responses
				if side == "bare-counts" {
					answers = make([]*coordinationv1.ReportEventsResponse, len(responses))
					for i, r := range responses {
						answers[i] = &coordinationv1.ReportEventsResponse{Recorded: r.GetRecorded(), Duplicates: r.GetDuplicates()}
					}
				}
				client := bareLedger(b, batches, answers)
				var total time.Duration
				for range b.N {
					start := time.Now()
					for _, batch := range batches {
						if _, err := client.ReportEvents(ctxT(b), &coordinationv1.ReportEventsRequest{Events: batch, ProofForm: benchProofForm}); err != nil {
							b.Fatal(err)
						}
					}
					total += time.Since(start)
				}
				rate := float64(b.N*len(batches)*ledger.MaxEventsPerReport) / total.Seconds()
				b.ReportMetric(rate, "events/s")
				b.ReportMetric((1/rawES)/(1/rawES+1/rate), "ceiling")
			})
		}
	}
}

// bareLedgerServer answers each ReportEvents with the answer the ledger gave to the same
// request (found by its first event's id): what grpc-go alone costs for the same messages.
type bareLedgerServer struct {
	coordinationv1.UnimplementedLedgerServiceServer
	answers map[string]*coordinationv1.ReportEventsResponse
}

func (s *bareLedgerServer) ReportEvents(_ context.Context, req *coordinationv1.ReportEventsRequest) (*coordinationv1.ReportEventsResponse, error) {
	return s.answers[req.GetEvents()[0].GetEventId()], nil
}

// bareLedger serves bareLedgerServer for the requests of batches and their responses on
// loopback, until the benchmark ends, and returns a client of it.
func bareLedger(b *testing.B, batches [][]*coordinationv1.LedgerEvent, responses []*coordinationv1.ReportEventsResponse) coordinationv1.LedgerServiceClient {
	srv := &bareLedgerServer{answers: map[string]*coordinationv1.ReportEventsResponse{}}
	for i, batch := range batches {
		srv.answers[batch[0].GetEventId()] = responses[i]
	}
	bare := grpc.NewServer()
	coordinationv1.RegisterLedgerServiceServer(bare, srv)
	lis, dial, err := listenLoopback()
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = bare.Serve(lis) }()
	b.Cleanup(bare.Stop)
	cc, err := dial()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cc.Close() })
	return coordinationv1.NewLedgerServiceClient(cc)
}

// reportBoltWork reports bbolt's work per event between two readings of its statistics: the
// cursors its transactions opened (every Get, Put, Delete and Seek opens one) and the nodes they
// materialised (B+tree pages read into memory to be changed).
func reportBoltWork(b *testing.B, after, before bbolt.TxStats, events int) {
	b.ReportMetric(float64(after.GetCursorCount()-before.GetCursorCount())/float64(events), "cursors/event")
	b.ReportMetric(float64(after.GetNodeCount()-before.GetNodeCount())/float64(events), "nodes/event")
}

// rawLedgerWrites copies the file at before, writes writes into the copy in calls transactions
// of equal size and returns the time spent in them and bbolt's statistics of them.
func rawLedgerWrites(b *testing.B, before string, writes []boltWrite, calls int) (time.Duration, bbolt.TxStats) {
	path := filepath.Join(b.TempDir(), "raw.db")
	src, err := bbolt.Open(before, 0o600, &bbolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	err = src.View(func(tx *bbolt.Tx) error { return tx.CopyFile(path, 0o600) })
	src.Close()
	if err != nil {
		b.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	// Each transaction takes its share of every bucket's keys, as each call writes to every
	// bucket.
	byBucket := [][]boltWrite{}
	for i := 0; i < len(writes); {
		j := i + 1
		for j < len(writes) && slices.EqualFunc(writes[j].bucket, writes[i].bucket, bytes.Equal) {
			j++
		}
		byBucket = append(byBucket, writes[i:j])
		i = j
	}
	statsBefore := db.Stats().TxStats
	start := time.Now()
	for c := range calls {
		if err := db.Update(func(tx *bbolt.Tx) error {
			for _, ws := range byBucket {
				lo, hi := len(ws)*c/calls, len(ws)*(c+1)/calls
				if lo == hi {
					continue
				}
				bk, err := tx.CreateBucketIfNotExists(ws[0].bucket[0])
				if err != nil {
					return err
				}
				for _, name := range ws[0].bucket[1:] {
					if bk, err = bk.CreateBucketIfNotExists(name); err != nil {
						return err
					}
				}
				for _, w := range ws[lo:hi] {
					if err := bk.Put(w.key, w.value); err != nil {
						return err
					}
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	after := db.Stats().TxStats
	return elapsed, after.Sub(&statsBefore)
}

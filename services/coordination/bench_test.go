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
	"github.com/eastwest/labourlink/services/platform/store"
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
// touched batches included) and compares it with raw bbolt doing the same writes: call by call,
// every key the call added, changed or deleted (found by a second ledger taking the same calls,
// its file compared before and after each: the same buckets, keys and values), written into a
// copy of that ledger's file before the calls, one transaction per call, in bucket-and-key
// order, with the options the store opens its files with. A counter updated by several events of
// a call is one put there, and a key written then deleted within a call is not written at all,
// so the raw side does at most the ledger's puts: the ratio is a floor (the nodes/event of the
// two sides, the B+tree pages each changed, are equal). A third side, bare, sends the same
// requests to a bare grpc-go server (grpc.NewServer without interceptors) whose ReportEvents
// returns the very answer the ledger gave to each: what the call's transport and codec alone
// cost. The rounds are interleaved inside (round1/ledger, round1/rawbolt, round1/bare, ...), with
// a fourth, bare-counts, whose answers carry only the counts (no checkpoint, no proofs); run with
// -count 1:
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
			callWrites [][]boltWrite
			before     string
			ledgerES   float64
			rawES      float64
			batches    [][]*coordinationv1.LedgerEvent
			responses  []*coordinationv1.ReportEventsResponse
		)
		b.Run(fmt.Sprintf("round%d/ledger", round), func(b *testing.B) {
			b.StopTimer()
			batches = make([][]*coordinationv1.LedgerEvent, b.N)
			responses = make([]*coordinationv1.ReportEventsResponse, b.N)
			for i := range batches {
				batches[i] = benchEvents(i)
			}
			// The raw side's writes come from a second ledger taking the same calls, whose file
			// is read between them: the measured one is not disturbed.
			_ = os.Remove(filepath.Join(keep, fmt.Sprintf("before%d.db", round)))
			before = filepath.Join(keep, fmt.Sprintf("before%d.db", round))
			callWrites = recordCallWrites(b, before, batches)
			h := newHarnessOn(b, listenLoopback, b.TempDir(), zap.NewNop(), Config{LoadDefaultPairings: true}, t0)
			defer h.close()
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
			ledgerES = float64(b.N*ledger.MaxEventsPerReport) / elapsed.Seconds()
			b.ReportMetric(ledgerES, "events/s")
		})
		b.Run(fmt.Sprintf("round%d/rawbolt", round), func(b *testing.B) {
			b.StopTimer()
			var total time.Duration
			var work bbolt.TxStats
			for range b.N {
				d, w := rawLedgerWrites(b, before, callWrites)
				total += d
				work.CursorCount += w.CursorCount
				work.NodeCount += w.NodeCount
			}
			events, puts := len(callWrites)*ledger.MaxEventsPerReport, 0
			for _, ws := range callWrites {
				puts += len(ws)
			}
			reportBoltWork(b, work, bbolt.TxStats{}, b.N*events)
			rate := float64(b.N*events) / total.Seconds()
			b.ReportMetric(rate, "events/s")
			b.ReportMetric(float64(puts)/float64(events), "puts/event")
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

// recordCallWrites has a fresh ledger (on the benchmark's configuration) take the calls of
// batches, copies its file before them to before, and returns what each call changed in it: the
// keys added or given another value (each with its new value) and the keys deleted (with a nil
// value), in bucket-and-key order.
func recordCallWrites(b *testing.B, before string, batches [][]*coordinationv1.LedgerEvent) [][]boltWrite {
	h := newHarnessOn(b, listenLoopback, b.TempDir(), zap.NewNop(), Config{LoadDefaultPairings: true}, t0)
	defer h.close()
	state := boltState{}
	if err := h.db.View(func(tx *bbolt.Tx) error {
		state.changes(tx)
		return tx.CopyFile(before, 0o600)
	}); err != nil {
		b.Fatal(err)
	}
	out := make([][]boltWrite, len(batches))
	for i, batch := range batches {
		if _, err := h.ledger.ReportEvents(ctxT(b), &coordinationv1.ReportEventsRequest{Events: batch, ProofForm: benchProofForm}); err != nil {
			b.Fatal(err)
		}
		if err := h.db.View(func(tx *bbolt.Tx) error {
			out[i] = state.changes(tx)
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	return out
}

// boltState is a bbolt file's keys (by bucket path and key) as last read by changes.
type boltState map[string]*stateEntry

type stateEntry struct {
	write boltWrite
	seen  bool
}

// changes reads every key of tx and returns the writes that turn the state last read into tx's
// (the keys added or changed, with their values, and the keys gone, with nil values), in
// bucket-and-key order; the state becomes tx's.
func (s boltState) changes(tx *bbolt.Tx) []boltWrite {
	var out []boltWrite
	var id []byte
	var walk func(path [][]byte, b *bbolt.Bucket)
	walk = func(path [][]byte, b *bbolt.Bucket) {
		prefix := append(bytes.Join(path, []byte{0}), 0, 0)
		_ = b.ForEach(func(k, v []byte) error {
			if v == nil {
				walk(append(slices.Clone(path), slices.Clone(k)), b.Bucket(k))
				return nil
			}
			id = append(append(id[:0], prefix...), k...)
			if e, ok := s[string(id)]; ok {
				e.seen = true
				if bytes.Equal(e.write.value, v) {
					return nil
				}
				e.write.value = slices.Clone(v)
				out = append(out, e.write)
				return nil
			}
			w := boltWrite{bucket: path, key: slices.Clone(k), value: slices.Clone(v)}
			s[string(id)] = &stateEntry{write: w, seen: true}
			out = append(out, w)
			return nil
		})
	}
	_ = tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
		walk([][]byte{slices.Clone(name)}, b)
		return nil
	})
	for id, e := range s {
		if !e.seen {
			out = append(out, boltWrite{bucket: e.write.bucket, key: e.write.key})
			delete(s, id)
		}
		e.seen = false
	}
	slices.SortFunc(out, func(x, y boltWrite) int {
		if c := slices.CompareFunc(x.bucket, y.bucket, bytes.Compare); c != 0 {
			return c
		}
		return bytes.Compare(x.key, y.key)
	})
	return out
}

// rawLedgerWrites copies the file at before and makes, in the copy, each call's writes of
// callWrites in a transaction of its own (a nil value deletes its key), and returns the time
// spent in them and bbolt's statistics of them.
func rawLedgerWrites(b *testing.B, before string, callWrites [][]boltWrite) (time.Duration, bbolt.TxStats) {
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
	db, err := bbolt.Open(path, 0o600, store.BoltOptions(2*time.Second))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	statsBefore := db.Stats().TxStats
	start := time.Now()
	for _, writes := range callWrites {
		if err := db.Update(func(tx *bbolt.Tx) error {
			var bk *bbolt.Bucket
			for i, w := range writes {
				if i == 0 || !slices.EqualFunc(w.bucket, writes[i-1].bucket, bytes.Equal) {
					var err error
					if bk, err = tx.CreateBucketIfNotExists(w.bucket[0]); err != nil {
						return err
					}
					for _, name := range w.bucket[1:] {
						if bk, err = bk.CreateBucketIfNotExists(name); err != nil {
							return err
						}
					}
				}
				var err error
				if w.value == nil {
					err = bk.Delete(w.key)
				} else {
					err = bk.Put(w.key, w.value)
				}
				if err != nil {
					return err
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

package roster

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
)

// BenchmarkImportWorkers imports N generated workers through the real gRPC stream (client and
// server in this process, on a loopback TCP listener, with the real grpcserver) into a real bbolt
// file, in chunks of 5000 rows. Then, in the same run, it writes the same keys and values (read
// back from the imported file, in the import's order) into a fresh bbolt file with plain Puts,
// 5000 rows per transaction plus the import record, as the raw rate.
//
// N is fixed, not b.N: run with -benchtime 1x.
//
//	go test ./services/sending -run '^$' -bench ImportWorkers -benchtime 1x -timeout 60m
//
// Metrics: workers/s (import), raw-workers/s (bbolt alone), ratio (import/raw), peak-heap-MB
// (in-use heap spans sampled every 20 ms during the import, client and server together; it must
// not grow with N) and raw-peak-heap-MB (the same during the raw writes: what bbolt itself holds
// for a transaction of 5000 random inserts, which grows with the tree's depth); import-B/worker
// and import-allocs/worker (everything allocated during the import, client and server), net-B/
// worker and net-allocs/worker (the same less what generating the rows alone allocates, measured
// apart before the import), raw-B/worker and raw-allocs/worker (the raw writes).
func BenchmarkImportWorkers(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			if n > 100_000 && testing.Short() {
				b.Skip("1,000,000 workers: not in -short")
			}
			for range b.N {
				benchImport(b, n)
			}
		})
	}
}

const benchChunk = 5000

func benchImport(b *testing.B, n int) {
	b.StopTimer()
	dir := b.TempDir()
	path := filepath.Join(dir, "sending.db")
	env := startRoster(b, zap.NewNop(), path)

	// What generating the rows alone allocates (the client's input, not the import's work): the
	// same rows made the same way, counted apart and taken off the import's figures.
	var g0, g1 runtime.MemStats
	runtime.ReadMemStats(&g0)
	for i := 0; i < n; i += benchChunk {
		rows := make([]*sendingv1.WorkerRow, 0, benchChunk)
		for j := i; j < min(i+benchChunk, n); j++ {
			rows = append(rows, genRow(j))
		}
	}
	runtime.ReadMemStats(&g1)

	runtime.GC()
	peak := startHeapSampler()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	b.StartTimer()
	start := time.Now()
	stream, err := env.client.ImportWorkers(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	rows := make([]*sendingv1.WorkerRow, 0, benchChunk)
	for i := 0; i < n; i++ {
		rows = append(rows, genRow(i))
		if len(rows) == benchChunk || i == n-1 {
			req := &sendingv1.ImportWorkersRequest{ImportId: "bench", Rows: rows}
			if i == n-1 {
				req.Final, req.TotalRows = true, int64(n)
			}
			if err := stream.Send(req); err != nil {
				b.Fatal(err)
			}
			rows = make([]*sendingv1.WorkerRow, 0, benchChunk)
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		b.Fatal(err)
	}
	importTime := time.Since(start)
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	peakHeap := peak()
	if resp.GetSummary().GetCreated() != int64(n) {
		b.Fatalf("summary %v", resp.GetSummary())
	}
	env.stop()

	runtime.GC()
	rawPeak := startHeapSampler()
	rawTime, rawBytes, rawMallocs := rawBoltWrite(b, path, filepath.Join(dir, "raw.db"), n)
	rawPeakHeap := rawPeak()

	// Allocation per worker of the import (client and server: the rows generated, sent,
	// decoded, validated and written; net: without generating the rows) and of the raw writes of
	// the same keys and values.
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(n), "import-B/worker")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(n), "import-allocs/worker")
	// The same without the rows' generation: sending, receiving, decoding, validating, writing.
	b.ReportMetric(float64((ms1.TotalAlloc-ms0.TotalAlloc)-(g1.TotalAlloc-g0.TotalAlloc))/float64(n), "net-B/worker")
	b.ReportMetric(float64((ms1.Mallocs-ms0.Mallocs)-(g1.Mallocs-g0.Mallocs))/float64(n), "net-allocs/worker")
	b.ReportMetric(float64(rawBytes)/float64(n), "raw-B/worker")
	b.ReportMetric(float64(rawMallocs)/float64(n), "raw-allocs/worker")

	b.ReportMetric(float64(n)/importTime.Seconds(), "workers/s")
	b.ReportMetric(float64(n)/rawTime.Seconds(), "raw-workers/s")
	b.ReportMetric(rawTime.Seconds()/importTime.Seconds(), "ratio")
	b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(rawPeakHeap)/(1<<20), "raw-peak-heap-MB")
	b.StartTimer()
}

// rawBoltWrite writes the workers and index entries (the identity-number index, the pool of
// available workers, the county indexes) of the imported file at from into a new
// bbolt file at to, in the import's order and transactions of benchChunk rows (plus the import
// record, as the import writes it), and returns the time spent in the write transactions and the
// bytes and allocations made in them (reading the keys back is left out of all three).
func rawBoltWrite(b *testing.B, from, to string, n int) (spent time.Duration, bytes, mallocs uint64) {
	src, err := bbolt.Open(from, 0o600, &bbolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	dst, err := bbolt.Open(to, 0o600, &bbolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer dst.Close()
	if err := dst.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{BucketWorkers, BucketWorkerByIDHash, BucketRosterSecrets, BucketAvailableWorkers, BucketWorkersByCounty, BucketWorkersByCountyName, BucketImports} {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	type kv struct{ id, idNumber, value, byCounty, byName []byte }
	var record []byte
	batch := make([]kv, 0, benchChunk)
	for i := 0; i < n; i += benchChunk {
		batch = batch[:0]
		if err := src.View(func(tx *bbolt.Tx) error {
			record = append([]byte(nil), tx.Bucket(BucketImports).Get([]byte("bench"))...)
			for j := i; j < min(i+benchChunk, n); j++ {
				idn := []byte(genRow(j).IdNumber)
				wid, err := WorkerIDByIDNumber(tx, string(idn))
				if err != nil {
					return err
				}
				id := []byte(wid)
				v := append([]byte(nil), tx.Bucket(BucketWorkers).Get(id)...)
				if len(id) == 0 || len(v) == 0 {
					return fmt.Errorf("row %d not in the imported file", j)
				}
				w := &sendingv1.Worker{}
				if err := proto.Unmarshal(v, w); err != nil {
					return err
				}
				w.WorkerId = wid
				byCounty, byName := countyKeys(w)
				batch = append(batch, kv{id, idn, v, byCounty, byName})
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		start := time.Now()
		if err := dst.Update(func(tx *bbolt.Tx) error {
			workers, available := tx.Bucket(BucketWorkers), tx.Bucket(BucketAvailableWorkers)
			byCounty, byName := tx.Bucket(BucketWorkersByCounty), tx.Bucket(BucketWorkersByCountyName)
			index, err := openIDIndex(tx)
			if err != nil {
				return err
			}
			for _, e := range batch {
				if err := workers.Put(e.id, e.value); err != nil {
					return err
				}
				if err := available.Put(e.id, []byte{}); err != nil {
					return err
				}
				if err := index.put(string(e.idNumber), string(e.id)); err != nil {
					return err
				}
				if e.byCounty == nil {
					continue // no home county: no county entries
				}
				if err := byCounty.Put(e.byCounty, []byte{}); err != nil {
					return err
				}
				if err := byName.Put(e.byName, []byte{}); err != nil {
					return err
				}
			}
			return tx.Bucket(BucketImports).Put([]byte("bench"), record)
		}); err != nil {
			b.Fatal(err)
		}
		spent += time.Since(start)
		runtime.ReadMemStats(&m1)
		bytes += m1.TotalAlloc - m0.TotalAlloc
		mallocs += m1.Mallocs - m0.Mallocs
	}
	return spent, bytes, mallocs
}

// startHeapSampler samples the in-use heap (objects plus unused parts of in-use spans: what
// MemStats calls HeapInuse) every 20 ms until the returned function is called, which returns the
// peak in bytes.
func startHeapSampler() func() uint64 {
	names := []string{"/memory/classes/heap/objects:bytes", "/memory/classes/heap/unused:bytes"}
	samples := make([]metrics.Sample, len(names))
	for i, n := range names {
		samples[i].Name = n
	}
	var peak atomic.Uint64
	read := func() {
		metrics.Read(samples)
		var v uint64
		for _, s := range samples {
			if s.Value.Kind() == metrics.KindUint64 {
				v += s.Value.Uint64()
			}
		}
		if v > peak.Load() {
			peak.Store(v)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			read()
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(stop)
		wg.Wait()
		read()
		return peak.Load()
	}
}

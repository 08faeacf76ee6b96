package replog

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// applyNext is the single-process baseline: the same writes as apply, in one bbolt transaction
// (and fsync) per command, the sequence taken in the transaction.
func (a *boltApplier) applyNext(cmd Command) error {
	return a.db.Update(func(tx *bolt.Tx) error {
		var last uint64
		if v := tx.Bucket(bucketMeta).Get(keyApplied); v != nil {
			last = binary.BigEndian.Uint64(v)
		}
		seq := last + 1
		id := []byte(cmd.MsgID())
		if err := tx.Bucket(bucketIDs).Put(id, u64(1)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketLog).Put(u64(seq), id); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyApplied, u64(seq))
	})
}

// BenchmarkReplicatedWrite is what a coordination mutation costs in replicated mode against
// the single-process one: "replog" appends a command of about 1 KiB to a three-node cluster in
// this process and waits until the appending node's bbolt applier has applied it (every node
// applies it into its own file); "bbolt" writes the same into one file. 1 and 16 writers, in
// interleaved rounds (REPLOG_ROUNDS, default 3); the median and spread of each figure and the
// throughput as a ratio to bbolt's in the same round are logged.
//
//	go test ./services/platform/replog/ -run '^$' -bench ReplicatedWrite -benchtime 400x -timeout 20m
func BenchmarkReplicatedWrite(b *testing.B) {
	ctx := context.Background()
	spec := newClusterSpec(b, 3)
	for i := range 3 {
		n, err := StartNode(spec.options(i))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(n.Shutdown)
	}
	rs := make([]*replica, 3)
	for i := range rs {
		rs[i] = startReplica(b, ctx, filepath.Join(spec.dir, fmt.Sprintf("applier-%d.db", i)), spec.url(i))
		b.Cleanup(rs[i].stop)
	}
	base := openApplier(b, filepath.Join(spec.dir, "single.db"))
	b.Cleanup(func() { _ = base.db.Close() })

	write := map[string]func(Command) error{
		"bbolt": base.applyNext,
		"replog": func(cmd Command) error {
			seq, err := rs[0].log.Append(ctx, cmd)
			if err != nil {
				return err
			}
			return rs[0].log.WaitApplied(ctx, seq)
		},
	}
	engines := []string{"bbolt", "replog"}
	rounds := 3
	if v, err := strconv.Atoi(os.Getenv("REPLOG_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	type key struct {
		engine  string
		writers int
	}
	ops := map[key][]float64{}
	p50 := map[key][]float64{}
	for r := 1; r <= rounds; r++ {
		for _, w := range []int{1, 16} {
			for _, e := range engines {
				var opsPerSec, median float64
				b.Run(fmt.Sprintf("round=%d/writers=%d/engine=%s", r, w, e), func(b *testing.B) {
					lat := make([][]time.Duration, w)
					prefix := fmt.Sprintf("r%d-%s-%d-%d", r, e, w, b.N)
					var wg sync.WaitGroup
					b.ResetTimer()
					start := time.Now()
					for k := range w {
						wg.Go(func() {
							for i := k; i < b.N; i += w {
								cmd := command(prefix, i)
								cmd.Request = make([]byte, 1024)
								t0 := time.Now()
								if err := write[e](cmd); err != nil {
									b.Error(err)
									return
								}
								lat[k] = append(lat[k], time.Since(t0))
							}
						})
					}
					wg.Wait()
					elapsed := time.Since(start)
					b.StopTimer()
					all := slices.Concat(lat...)
					slices.Sort(all)
					if len(all) == 0 {
						return
					}
					opsPerSec = float64(len(all)) / elapsed.Seconds()
					median = float64(all[len(all)/2].Microseconds()) / 1000
					b.ReportMetric(opsPerSec, "writes/s")
					b.ReportMetric(median, "p50-ms")
				})
				ops[key{e, w}] = append(ops[key{e, w}], opsPerSec)
				p50[key{e, w}] = append(p50[key{e, w}], median)
			}
		}
	}
	f := func(xs []float64, prec int) string {
		s := slices.Clone(xs)
		slices.Sort(s)
		return fmt.Sprintf("%.*f [%.*f–%.*f]", prec, s[len(s)/2], prec, s[0], prec, s[len(s)-1])
	}
	var out strings.Builder
	fmt.Fprintf(&out, "\n%d rounds, median [min–max]\n| engine | writers | writes/s | × bbolt | p50 ms |\n|---|---|---|---|---|\n", rounds)
	for _, w := range []int{1, 16} {
		for _, e := range engines {
			k := key{e, w}
			var ratio []float64
			for i, x := range ops[k] {
				ratio = append(ratio, x/ops[key{"bbolt", w}][i])
			}
			fmt.Fprintf(&out, "| %s | %d | %s | %s | %s |\n", e, w, f(ops[k], 0), f(ratio, 2), f(p50[k], 2))
		}
	}
	fmt.Print(out.String())
}

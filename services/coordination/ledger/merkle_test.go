package ledger

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"go.etcd.io/bbolt"
	"pgregory.net/rapid"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
)

// TestTreeProofsRoundTrip appends random events of two reporters to the trees in a real bbolt
// file and checks, for random sizes and leaves, that the stored tree's inclusion and consistency
// proofs verify against its roots, and that a proof with one byte changed is refused.
func TestTreeProofsRoundTrip(t *testing.T) {
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "tree.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := 0
	rapid.Check(t, func(rt *rapid.T) {
		n++
		reporter := fmt.Sprintf("%06d", n) // a fresh log each run
		count := rapid.IntRange(1, 70).Draw(rt, "count")
		var leaves [][]byte
		var pendingRoot []byte
		err := db.Update(func(tx *bbolt.Tx) error {
			for _, b := range TreeBuckets {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			g := newLogs(tx)
			for i := range count {
				ev := &coordinationv1.LedgerEvent{EventId: fmt.Sprintf("e%d-%d", n, i), ReporterRegion: reporter,
					WorkerId: rapid.StringMatching(`[a-z0-9]{1,8}`).Draw(rt, "worker")}
				index, err := g.append(uint64(i+1), ev)
				if err != nil {
					return err
				}
				if index != uint64(i) {
					rt.Fatalf("leaf %d appended at %d", i, index)
				}
				h, _ := ledgerclient.LeafHash(ev)
				leaves = append(leaves, h)
			}
			// Before the flush, g answers from what it keeps: the same root as the file after.
			if pendingRoot, err = g.root(reporter, uint64(count)); err != nil {
				return err
			}
			return g.flush()
		})
		if err != nil {
			rt.Fatal(err)
		}
		size := uint64(rapid.IntRange(1, count).Draw(rt, "size"))
		index := uint64(rapid.IntRange(0, int(size)-1).Draw(rt, "index"))
		older := uint64(rapid.IntRange(1, int(size)).Draw(rt, "older"))
		_ = db.View(func(tx *bbolt.Tx) error {
			g := newLogs(tx) // from the file: nothing kept from the appends
			if full, err := g.root(reporter, uint64(count)); err != nil || !bytes.Equal(full, pendingRoot) {
				rt.Fatalf("root of %d leaves from the file %x (%v), before the flush %x", count, full, err, pendingRoot)
			}
			root, err := g.root(reporter, size)
			if err != nil {
				rt.Fatal(err)
			}
			oldRoot, _ := g.root(reporter, older)
			leaf, path, err := g.inclusion(reporter, index, size)
			if err != nil {
				rt.Fatal(err)
			}
			if string(leaf) != string(leaves[index]) {
				rt.Fatalf("leaf %d: stored hash is not the event's", index)
			}
			if err := proof.VerifyInclusion(hasher, index, size, leaf, path, root); err != nil {
				rt.Fatalf("inclusion of %d in %d: %v", index, size, err)
			}
			cons, err := g.consistency(reporter, older, size)
			if err != nil {
				rt.Fatal(err)
			}
			if err := proof.VerifyConsistency(hasher, older, size, cons, oldRoot, root); err != nil {
				rt.Fatalf("consistency %d to %d: %v", older, size, err)
			}
			if len(path) > 0 {
				bad := tamper(path, rapid.IntRange(0, len(path)-1).Draw(rt, "at"))
				if proof.VerifyInclusion(hasher, index, size, leaf, bad, root) == nil {
					rt.Fatalf("tampered inclusion proof of %d in %d accepted", index, size)
				}
			}
			if len(cons) > 0 && older < size {
				bad := tamper(cons, rapid.IntRange(0, len(cons)-1).Draw(rt, "cat"))
				if proof.VerifyConsistency(hasher, older, size, bad, oldRoot, root) == nil {
					rt.Fatalf("tampered consistency proof %d to %d accepted", older, size)
				}
			}
			return nil
		})
	})
}

// tamper returns path with one byte of hash i changed.
func tamper(path [][]byte, i int) [][]byte {
	out := make([][]byte, len(path))
	for j, h := range path {
		out[j] = append([]byte(nil), h...)
	}
	out[i][0] ^= 0x01
	return out
}

// BuildTrees (the migration to the verifiable ledger) gives each reporter the log of its events
// in the order recorded, however many leaves it appends between two flushes: the roots are those
// of the same leaves appended to a compact range in memory.
func TestBuildTreesInParts(t *testing.T) {
	defer func(n int) { buildTreesEvery = n }(buildTreesEvery)
	for _, every := range []int{1, 3, 100_000} {
		t.Run(fmt.Sprint(every), func(t *testing.T) {
			buildTreesEvery = every
			db := openStore(t)
			want := map[string]*compact.Range{}
			err := db.Update(func(tx *bbolt.Tx) error {
				c := newCounts(tx)
				for i := range 11 {
					reporter := []string{"440000", "520000"}[i%3/2]
					e := ev(fmt.Sprintf("e%d", i), departed, fmt.Sprintf("B%d", i%4), fmt.Sprintf("w%d", i), t0)
					e.ReporterRegion = reporter
					rec := record(e, t0)
					if _, err := putEvent(tx, c, rec); err != nil {
						return err
					}
					data, err := ledgerclient.LeafData(rec)
					if err != nil {
						return err
					}
					if want[reporter] == nil {
						want[reporter] = rangeFactory.NewEmptyRange(0)
					}
					if err := want[reporter].Append(hasher.HashLeaf(data), nil); err != nil {
						return err
					}
				}
				if err := c.flush(); err != nil {
					return err
				}
				return BuildTrees(tx)
			})
			if err != nil {
				t.Fatal(err)
			}
			_ = db.View(func(tx *bbolt.Tx) error {
				g := newLogs(tx)
				for reporter, r := range want {
					wantRoot, _ := r.GetRootHash(nil)
					root, err := g.root(reporter, g.size(reporter))
					if err != nil || g.size(reporter) != r.End() || !bytes.Equal(root, wantRoot) {
						t.Errorf("%s: %d leaves, root %x (%v); want %d, %x", reporter, g.size(reporter), root, err, r.End(), wantRoot)
					}
				}
				return nil
			})
		})
	}
}

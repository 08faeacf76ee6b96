package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"pgregory.net/rapid"

	"github.com/eastwest/labourlink/services/platform/store"
)

var things = store.NewTable[*wrapperspb.StringValue]([]byte("things"))

func openTable(t *testing.T) *store.DB {
	t.Helper()
	return openTest(t, filepath.Join(t.TempDir(), "t.db"), store.Schema{Name: "t", Version: 1, Buckets: [][]byte{things.Name()}})
}

func TestTableGetPutDelete(t *testing.T) {
	db := openTable(t)
	key := []byte("k1")
	if err := db.Update(func(tx *bbolt.Tx) error {
		return things.Put(tx, key, wrapperspb.String("one"))
	}); err != nil {
		t.Fatal(err)
	}
	key[0] = 'x' // Put copied the key
	var got *wrapperspb.StringValue
	if err := db.View(func(tx *bbolt.Tx) error {
		var ok bool
		var err error
		got, ok, err = things.Get(tx, []byte("k1"))
		if !ok {
			t.Error("k1 not found after Put")
		}
		if has, _ := things.Has(tx, []byte("x1")); has {
			t.Error("the caller's reuse of the key buffer changed the stored key")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got.GetValue() != "one" { // read after the transaction ended: no aliasing
		t.Fatalf("Get = %q, want one", got.GetValue())
	}
	if err := db.Update(func(tx *bbolt.Tx) error { return things.Delete(tx, []byte("k1")) }); err != nil {
		t.Fatal(err)
	}
	_ = db.View(func(tx *bbolt.Tx) error {
		if _, ok, _ := things.Get(tx, []byte("k1")); ok {
			t.Error("k1 still there after Delete")
		}
		return nil
	})
}

func TestTableOutsideSchemaIsAnError(t *testing.T) {
	db := openTable(t)
	other := store.NewTable[*wrapperspb.StringValue]([]byte("other"))
	err := db.View(func(tx *bbolt.Tx) error {
		_, _, err := other.Get(tx, []byte("k"))
		return err
	})
	if err == nil {
		t.Fatal("Get on a bucket that is not in the schema succeeded")
	}
}

func TestTableUndecodableValueIsAnError(t *testing.T) {
	db := openTable(t)
	if err := db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(things.Name()).Put([]byte("bad"), []byte{0xff, 0xff})
	}); err != nil {
		t.Fatal(err)
	}
	err := db.View(func(tx *bbolt.Tx) error {
		_, _, err := things.Get(tx, []byte("bad"))
		return err
	})
	if err == nil || bytes.Contains([]byte(err.Error()), []byte("bad")) {
		t.Fatalf("Get of a malformed value: err = %v, want an error that does not quote the key", err)
	}
}

// TestTablePagesMatchModel: walking a range page by page with a filter returns exactly the
// filtered keys of the range in order, each once, and only the last page has no Last; no page
// looks at more than its size and the scan budget, and only a page whose budget ran out comes
// back short with a Last.
func TestTablePagesMatchModel(t *testing.T) {
	db := openTable(t)
	rapid.Check(t, func(rt *rapid.T) {
		keys := rapid.SliceOfDistinct(rapid.StringMatching(`[ab]{1,4}`), rapid.ID[string]).Draw(rt, "keys")
		prefix := rapid.StringMatching(`[ab]{0,2}`).Draw(rt, "prefix")
		size := rapid.IntRange(1, 5).Draw(rt, "size")
		budget := rapid.IntRange(1, 6).Draw(rt, "budget")
		if err := db.Update(func(tx *bbolt.Tx) error {
			if err := tx.DeleteBucket(things.Name()); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(things.Name()); err != nil {
				return err
			}
			for _, k := range keys {
				if err := things.Put(tx, []byte(k), wrapperspb.String(k)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			rt.Fatal(err)
		}
		looked := 0
		keep := func(_ []byte, m *wrapperspb.StringValue) bool { looked++; return len(m.GetValue())%2 == 1 }
		var want []string
		for _, k := range keys {
			if len(k)%2 == 1 && bytes.HasPrefix([]byte(k), []byte(prefix)) {
				want = append(want, k)
			}
		}
		slices.Sort(want)
		var got []string
		var after []byte
		for range 2*len(keys) + 2 {
			var p store.Page[*wrapperspb.StringValue]
			if err := db.View(func(tx *bbolt.Tx) error {
				var err error
				p, err = store.PageWithin(things, tx, store.Range{Prefix: []byte(prefix), After: after}, size, budget, keep)
				return err
			}); err != nil {
				rt.Fatal(err)
			}
			if looked > size+budget {
				rt.Fatalf("a page of size %d with budget %d looked at %d values", size, budget, looked)
			}
			if len(p.Items) > size || (p.Last != nil && len(p.Items) != size && looked != size+budget) {
				rt.Fatalf("page of %d items (size %d) with Last %q after looking at %d values", len(p.Items), size, p.Last, looked)
			}
			looked = 0
			for _, m := range p.Items {
				got = append(got, m.GetValue())
			}
			if p.Last == nil {
				break
			}
			after = p.Last
		}
		if !slices.Equal(got, want) {
			rt.Fatalf("pages gave %q, want %q", got, want)
		}
	})
}

// GetBytes and ScanBytes give the stored encoding (what Get and Scan decode), in key order, and
// nothing for a missing key.
func TestTableBytes(t *testing.T) {
	db := openTable(t)
	if err := db.Update(func(tx *bbolt.Tx) error {
		for _, k := range []string{"a1", "a2", "b1"} {
			if err := things.Put(tx, []byte(k), wrapperspb.String("v"+k)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_ = db.View(func(tx *bbolt.Tx) error {
		v, ok, err := things.GetBytes(tx, []byte("a2"))
		want, _ := proto.Marshal(wrapperspb.String("va2"))
		if err != nil || !ok || !bytes.Equal(v, want) {
			t.Errorf("GetBytes(a2) = %x, %v, %v; want %x", v, ok, err, want)
		}
		if v, ok, err := things.GetBytes(tx, []byte("zz")); v != nil || ok || err != nil {
			t.Errorf("GetBytes of a missing key = %x, %v, %v", v, ok, err)
		}
		var keys []string
		err = things.ScanBytes(tx, store.Range{Prefix: []byte("a"), After: []byte("a1")}, func(k, v []byte) (bool, error) {
			var m wrapperspb.StringValue
			if err := proto.Unmarshal(v, &m); err != nil || m.GetValue() != "v"+string(k) {
				t.Errorf("ScanBytes %s: %q, %v", k, m.GetValue(), err)
			}
			keys = append(keys, string(k))
			return true, nil
		})
		if err != nil || !slices.Equal(keys, []string{"a2"}) {
			t.Errorf("ScanBytes a after a1 = %v, %v; want [a2]", keys, err)
		}
		return nil
	})
}

// TestPageFilterBoundedByBudget: a filter that matches one value at the end of a table larger
// than PageScanBudget costs each call the budget, not the table: the first page is empty with
// a Last, and reading on finds the value.
func TestPageFilterBoundedByBudget(t *testing.T) {
	db := openTable(t)
	n := store.PageScanBudget + 500
	if err := db.Update(func(tx *bbolt.Tx) error {
		for i := range n {
			v := "other"
			if i == n-1 {
				v = "wanted"
			}
			if err := things.Put(tx, fmt.Appendf(nil, "k%06d", i), wrapperspb.String(v)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	looked := 0
	keep := func(_ []byte, m *wrapperspb.StringValue) bool { looked++; return m.GetValue() == "wanted" }
	var pages []store.Page[*wrapperspb.StringValue]
	var after []byte
	for {
		var p store.Page[*wrapperspb.StringValue]
		if err := db.View(func(tx *bbolt.Tx) (err error) {
			p, err = things.Page(tx, store.Range{After: after}, 10, keep)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		pages = append(pages, p)
		if p.Last == nil {
			break
		}
		after = p.Last
	}
	if len(pages) != 2 || len(pages[0].Items) != 0 || len(pages[1].Items) != 1 || pages[1].Items[0].GetValue() != "wanted" {
		t.Fatalf("pages: %d, first %d items, then %v", len(pages), len(pages[0].Items), pages[len(pages)-1].Items)
	}
	if looked != n {
		t.Fatalf("the two pages looked at %d values, want each of the %d once", looked, n)
	}
}

// errRollback ends a test's write transaction without committing it.
var errRollback = errors.New("rolled back on purpose")

// A Lookup answers as Bucket.Get does, through the writes and deletes of its own transaction
// and for a key naming a nested bucket; GetWith decodes as Get.
func TestLookupAnswersAsGet(t *testing.T) {
	db := openTable(t)
	rapid.Check(t, func(t *rapid.T) {
		key := rapid.SliceOfN(rapid.ByteRange('a', 'e'), 1, 3)
		err := db.Update(func(tx *bbolt.Tx) error {
			b := tx.Bucket(things.Name())
			if _, err := b.CreateBucketIfNotExists([]byte("nested")); err != nil {
				return err
			}
			l := store.NewLookup(b)
			for i := range rapid.IntRange(1, 60).Draw(t, "steps") {
				k := key.Draw(t, fmt.Sprintf("key%d", i))
				switch rapid.IntRange(0, 2).Draw(t, fmt.Sprintf("op%d", i)) {
				case 0:
					if err := things.Put(tx, k, wrapperspb.String(fmt.Sprint(i))); err != nil {
						return err
					}
				case 1:
					if err := b.Delete(k); err != nil {
						return err
					}
				}
				if got, want := l.Get(k), b.Get(k); !bytes.Equal(got, want) || (got == nil) != (want == nil) {
					t.Fatalf("step %d: Lookup.Get(%q) = %q, Bucket.Get = %q", i, k, got, want)
				}
				m, ok, err := things.GetWith(l, k)
				wm, wok, werr := things.Get(tx, k)
				if ok != wok || (err == nil) != (werr == nil) || (ok && !proto.Equal(m, wm)) {
					t.Fatalf("step %d: GetWith(%q) = %v %v %v, Get = %v %v %v", i, k, m, ok, err, wm, wok, werr)
				}
			}
			if l.Get([]byte("nested")) != nil {
				t.Fatalf("Lookup.Get of a nested bucket's name: %q, want nil", l.Get([]byte("nested")))
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatal(err)
		}
	})
}

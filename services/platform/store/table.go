package store

import (
	"bytes"
	"fmt"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

// Table is one bucket whose values are protobuf messages of type M, read and written inside the
// caller's transaction (model: etcd server/storage/schema, a typed accessor per bucket). A
// service declares its tables once, next to its bucket names, and its handlers "load, apply the
// rule, save" through them instead of opening buckets and decoding values themselves:
//
//	var vacancies = store.NewTable[*receivingv1.Vacancy]([]byte("vacancies"))
//
//	err := db.Update(func(tx *bbolt.Tx) error {
//		v, ok, err := vacancies.Get(tx, id)
//		...
//		return vacancies.Put(tx, id, v)
//	})
//
// Values are marshalled deterministically; a value returned by Get, Scan or Page does not alias
// the transaction's memory and stays valid after it ends. Keys given to Put are copied.
type Table[M proto.Message] struct {
	name []byte
}

// NewTable returns the table over the bucket called name. The bucket must be among the
// buckets of the service's Schema (Open creates them).
func NewTable[M proto.Message](name []byte) Table[M] {
	return Table[M]{name: name}
}

// Name returns the bucket's name (for a Schema's Buckets).
func (t Table[M]) Name() []byte { return t.name }

func (t Table[M]) bucket(tx *bbolt.Tx) (*bbolt.Bucket, error) {
	b := tx.Bucket(t.name)
	if b == nil {
		return nil, fmt.Errorf("bucket %s does not exist (not in the schema's buckets?)", t.name)
	}
	return b, nil
}

func (t Table[M]) newMsg() M {
	var zero M
	return zero.ProtoReflect().Type().New().Interface().(M)
}

func (t Table[M]) decode(k, v []byte) (M, error) {
	m := t.newMsg()
	if err := proto.Unmarshal(v, m); err != nil {
		var zero M
		// The key is not in the message: keys may be personal data.
		return zero, fmt.Errorf("decode stored %s in %s: %w", m.ProtoReflect().Descriptor().FullName(), t.name, err)
	}
	return m, nil
}

// Get returns the value under key and whether it exists.
func (t Table[M]) Get(tx *bbolt.Tx, key []byte) (M, bool, error) {
	var zero M
	b, err := t.bucket(tx)
	if err != nil {
		return zero, false, err
	}
	v := b.Get(key)
	if v == nil {
		return zero, false, nil
	}
	m, err := t.decode(key, v)
	if err != nil {
		return zero, false, err
	}
	return m, true, nil
}

// GetBytes returns the encoded value under key and whether it exists, without decoding it: for a
// read path that serves the stored bytes (patched on the wire) instead of decoding and encoding
// them again. The bytes alias the transaction's memory: they are valid only until the
// transaction ends and must not be changed.
func (t Table[M]) GetBytes(tx *bbolt.Tx, key []byte) ([]byte, bool, error) {
	b, err := t.bucket(tx)
	if err != nil {
		return nil, false, err
	}
	v := b.Get(key)
	return v, v != nil, nil
}

// Has reports whether key exists, without decoding its value.
func (t Table[M]) Has(tx *bbolt.Tx, key []byte) (bool, error) {
	b, err := t.bucket(tx)
	if err != nil {
		return false, err
	}
	return b.Get(key) != nil, nil
}

// Put stores m under key. The transaction must be read-write.
func (t Table[M]) Put(tx *bbolt.Tx, key []byte, m M) error {
	b, err := t.bucket(tx)
	if err != nil {
		return err
	}
	return PutProto(b, key, m)
}

// Delete removes key (nothing if it does not exist). The transaction must be read-write.
func (t Table[M]) Delete(tx *bbolt.Tx, key []byte) error {
	b, err := t.bucket(tx)
	if err != nil {
		return err
	}
	return b.Delete(key)
}

// NextSeq returns the next value of the bucket's sequence (1, 2, ...), for tables keyed by
// Uint64Key. The transaction must be read-write.
func (t Table[M]) NextSeq(tx *bbolt.Tx) (uint64, error) {
	b, err := t.bucket(tx)
	if err != nil {
		return 0, err
	}
	return b.NextSequence()
}

// Range selects keys of a table in key order: those that start with Prefix (all when empty)
// and sort after After (from the first when nil; a page token's last key).
type Range struct {
	Prefix []byte
	After  []byte
}

// start is the first key to seek to.
func (r Range) start() []byte {
	if r.After != nil && bytes.Compare(r.After, r.Prefix) >= 0 {
		return append(bytes.Clone(r.After), 0)
	}
	return r.Prefix
}

// Scan calls fn for each key in r, in key order, until fn returns false or an error (which
// Scan returns). fn must not write to the table.
func (t Table[M]) Scan(tx *bbolt.Tx, r Range, fn func(key []byte, m M) (bool, error)) error {
	b, err := t.bucket(tx)
	if err != nil {
		return err
	}
	c := b.Cursor()
	for k, v := c.Seek(r.start()); k != nil && bytes.HasPrefix(k, r.Prefix); k, v = c.Next() {
		m, err := t.decode(k, v)
		if err != nil {
			return err
		}
		more, err := fn(k, m)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// ScanBytes is Scan without decoding: fn gets each encoded value, which aliases the
// transaction's memory (valid until the transaction ends; not to be changed), as does the key.
func (t Table[M]) ScanBytes(tx *bbolt.Tx, r Range, fn func(key, value []byte) (bool, error)) error {
	b, err := t.bucket(tx)
	if err != nil {
		return err
	}
	c := b.Cursor()
	for k, v := c.Seek(r.start()); k != nil && bytes.HasPrefix(k, r.Prefix); k, v = c.Next() {
		more, err := fn(k, v)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// Page is one page of a table.
type Page[M proto.Message] struct {
	Items []M
	// Last is the key of the last item when more items follow (for paging.Listing.Token), nil
	// when the page is the last one.
	Last []byte
}

// PageScanBudget bounds the values one filtered Page looks at beyond its page: a filter that
// matches nothing in a large table costs one call this many decodes, not the table. The page
// may then hold fewer values than asked, even none, with a Last to go on after (AIP-158: a
// client reads until the token is empty).
const PageScanBudget = 10_000

// Page returns up to size values in r that keep accepts (all when keep is nil), and the key to
// continue after when more may follow. Without keep, a page is complete: it is known whether
// another value follows, so a last page never hands out a token that leads to an empty page.
// With keep, Page looks at no more than size + PageScanBudget values; when that runs out, Last
// is the key of the last value looked at.
func (t Table[M]) Page(tx *bbolt.Tx, r Range, size int, keep func(key []byte, m M) bool) (Page[M], error) {
	return t.pageWithin(tx, r, size, PageScanBudget, keep)
}

func (t Table[M]) pageWithin(tx *bbolt.Tx, r Range, size, budget int, keep func(key []byte, m M) bool) (Page[M], error) {
	var p Page[M]
	var last []byte
	looked := 0
	err := t.Scan(tx, r, func(k []byte, m M) (bool, error) {
		if keep == nil || keep(k, m) {
			if len(p.Items) == size {
				p.Last = last
				return false, nil
			}
			p.Items = append(p.Items, m)
			last = append(last[:0], k...)
		}
		if keep != nil {
			if looked++; looked >= size+budget {
				p.Last = append(last[:0], k...)
				return false, nil
			}
		}
		return true, nil
	})
	return p, err
}

// Lookup finds keys of one bucket through one cursor, reused for every lookup of its
// transaction: bbolt's Bucket.Get opens a cursor, and allocates its path down the tree, at each
// call. A Lookup stays right across writes to its bucket in the same transaction (each lookup
// seeks from the root again); it must not outlive the transaction.
type Lookup struct{ c *bbolt.Cursor }

// NewLookup returns a Lookup of b.
func NewLookup(b *bbolt.Bucket) Lookup { return Lookup{c: b.Cursor()} }

// Get returns the value under key, nil if there is none (or key names a nested bucket), as
// Bucket.Get does.
func (l Lookup) Get(key []byte) []byte {
	k, v := l.c.Seek(key)
	if !bytes.Equal(k, key) {
		return nil
	}
	return v
}

// GetWith is Get through l, a Lookup of t's bucket.
func (t Table[M]) GetWith(l Lookup, key []byte) (M, bool, error) {
	v := l.Get(key)
	if v == nil {
		var zero M
		return zero, false, nil
	}
	m, err := t.decode(key, v)
	if err != nil {
		var zero M
		return zero, false, err
	}
	return m, true, nil
}

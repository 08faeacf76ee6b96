package roster

// The index of workers by identity number, kept without the number in clear.
//
// BucketWorkerByIDHash maps HMAC-SHA256(key, normalised identity number) to the worker id of the
// live worker with that number (32-byte keys). The key is 32 random bytes made for this file the
// first time a worker is written (or by the migration of an older file) and kept in
// BucketRosterSecrets. The index serves the import (a row for a known number updates that
// worker) and LookupWorker (exact match only: a keyed hash cannot be searched by prefix).
//
// What it protects against: someone who reads the index (a copy of its pages, a debug dump of the
// bucket) without the key cannot tell which numbers it holds, nor test a guessed number against
// it: an identity number has few enough possibilities (a county, a birth date, a serial) that an
// unkeyed hash would be reversed by trying them all. What it does not protect against: whoever
// has the whole file has the key too, and the workers bucket holds the numbers in clear (the
// full view needs them); backups carry the key with the data. It keeps the number out of the
// index's keys, not out of the file.

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"hash"
	"slices"
	"sync"

	"go.etcd.io/bbolt"

	"github.com/eastwest/labourlink/services/codes/idnumber"
	"github.com/eastwest/labourlink/services/platform/store"
)

// Bucket names of the index by identity number (never change them: they are on disk).
var (
	// BucketWorkerByIDHash: HMAC-SHA256(key, identity number) -> worker id.
	BucketWorkerByIDHash = []byte("workerByIDNumberHMAC")
	// BucketRosterSecrets: secretIDIndexKey -> the HMAC key of BucketWorkerByIDHash.
	BucketRosterSecrets = []byte("rosterSecrets")
	// bucketWorkerByIDNumberV7 is the index of files before sending schema 8: the identity
	// number in clear -> worker id. MigrateIDNumberIndex replaces it.
	bucketWorkerByIDNumberV7 = []byte("workerByIDNumber")
)

var secretIDIndexKey = []byte("idNumberIndexKey")

const idIndexKeyLen = 32

// idIndex is the index by identity number inside one transaction.
type idIndex struct {
	b    *bbolt.Bucket
	look store.Lookup // of b: an import's thousands of lookups through one cursor
	key  []byte       // nil: no key yet (read-only transaction of a file where no worker was written)
}

// openIDIndex opens the index in tx. In a read-write tx it makes the file's key if there is none.
func openIDIndex(tx *bbolt.Tx) (idIndex, error) {
	b := tx.Bucket(BucketWorkerByIDHash)
	secrets := tx.Bucket(BucketRosterSecrets)
	if b == nil || secrets == nil {
		return idIndex{}, fmt.Errorf("buckets %s and %s must exist", BucketWorkerByIDHash, BucketRosterSecrets)
	}
	if k := secrets.Get(secretIDIndexKey); k != nil {
		if len(k) != idIndexKeyLen {
			return idIndex{}, fmt.Errorf("identity index key has %d bytes, want %d", len(k), idIndexKeyLen)
		}
		return idIndex{b: b, look: store.NewLookup(b), key: append([]byte(nil), k...)}, nil
	}
	if !tx.Writable() {
		return idIndex{b: b, look: store.NewLookup(b)}, nil
	}
	k := make([]byte, idIndexKeyLen)
	if _, err := rand.Read(k); err != nil {
		return idIndex{}, fmt.Errorf("identity index key: %w", err)
	}
	if err := secrets.Put(secretIDIndexKey, k); err != nil {
		return idIndex{}, err
	}
	return idIndex{b: b, look: store.NewLookup(b), key: k}, nil
}

// hash is the index key of identity number idn (normalised first).
func (x idIndex) hash(idn string) []byte {
	pool := hmacPool(x.key)
	m := pool.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(idnumber.Normalize(idn)))
	sum := m.Sum(nil)
	pool.Put(m)
	return sum
}

// hmacPools holds, per index key, the HMAC-SHA-256 states keyed with it for reuse: hmac.New
// allocates some 2 KB, once per worker of an import otherwise.
var hmacPools sync.Map // string(key) -> *sync.Pool of hash.Hash

func hmacPool(key []byte) *sync.Pool {
	if p, ok := hmacPools.Load(string(key)); ok {
		return p.(*sync.Pool)
	}
	k := slices.Clone(key)
	p, _ := hmacPools.LoadOrStore(string(k), &sync.Pool{New: func() any { return hmac.New(sha256.New, k) }})
	return p.(*sync.Pool)
}

// get returns the id of the live worker with identity number idn, or "".
func (x idIndex) get(idn string) string {
	if x.key == nil || idn == "" {
		return ""
	}
	return x.getKey(x.hash(idn))
}

// put records that idn is the number of worker id.
func (x idIndex) put(idn, id string) error { return x.putKey(x.hash(idn), id) }

// getKey and putKey are get and put by the index key (hash) of a number: a caller that does both
// for one number hashes it once.
func (x idIndex) getKey(k []byte) string { return string(x.look.Get(k)) }

func (x idIndex) putKey(k []byte, id string) error { return x.b.Put(k, []byte(id)) }

// remove drops idn's entry if it names worker id.
func (x idIndex) remove(idn, id string) error {
	if x.key == nil || idn == "" || x.get(idn) != id {
		return nil
	}
	return x.b.Delete(x.hash(idn))
}

// WorkerIDByIDNumber returns, inside tx, the id of the live worker with identity number idn, or ""
// when there is none.
func WorkerIDByIDNumber(tx *bbolt.Tx, idn string) (string, error) {
	x, err := openIDIndex(tx)
	if err != nil {
		return "", err
	}
	return x.get(idn), nil
}

// MigrateIDNumberIndex replaces the index of files before sending schema 8 (identity number in
// clear -> worker id) by the keyed-hash index, making the file's key. It returns the number of
// entries moved. tx must be read-write.
func MigrateIDNumberIndex(tx *bbolt.Tx) (int, error) {
	for _, name := range [][]byte{BucketWorkerByIDHash, BucketRosterSecrets} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return 0, err
		}
	}
	x, err := openIDIndex(tx)
	if err != nil {
		return 0, err
	}
	old := tx.Bucket(bucketWorkerByIDNumberV7)
	if old == nil {
		return 0, nil
	}
	n := 0
	err = old.ForEach(func(k, v []byte) error {
		n++
		return x.put(string(k), string(v))
	})
	if err != nil {
		return 0, err
	}
	return n, tx.DeleteBucket(bucketWorkerByIDNumberV7)
}

package store

import "go.etcd.io/bbolt"

// Named counters (BucketCounters): revisions of change feeds, sequence numbers that must
// survive the deletion of what they numbered. A counter that was never set is 0.

// Counter reads the counter named key.
func Counter(tx *bbolt.Tx, key []byte) uint64 {
	b := tx.Bucket(BucketCounters)
	if b == nil {
		return 0
	}
	return KeyUint64(b.Get(key))
}

// SetCounter sets the counter named key to n. tx must be read-write.
func SetCounter(tx *bbolt.Tx, key []byte, n uint64) error {
	b, err := tx.CreateBucketIfNotExists(BucketCounters)
	if err != nil {
		return err
	}
	return b.Put(append([]byte(nil), key...), Uint64Key(n))
}

// NextCounter increments the counter named key and returns its new value. tx must be
// read-write.
func NextCounter(tx *bbolt.Tx, key []byte) (uint64, error) {
	n := Counter(tx, key) + 1
	return n, SetCounter(tx, key, n)
}

package ledger

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/store"
)

// Counts kept by the transaction that changes what they count (coordination schema version 10),
// so that the summaries and assessments cost O(days of the period + pairings), never O(ledger):
//
//	pairingFirsts   receiving(6) sending(6) category(1) day(4)          -> count(8)
//	pairingRepeats  receiving(6) sending(6) category(1) time(8) worker  -> previous time(8)
//	pairingWorkers  receiving(6) sending(6) category(1) worker NUL time(8)
//	openByPairing   receiving(6) sending(6) kind(1)                     -> count(8) (kind 0: all)
//	assessedCounts  province(6) year(2) category(1)                     -> count(8)
//	byKind          kind(4) seq(8)                                      (ListEvents by kind)
//	byRegion        region(6) seq(8), for each of the event's regions   (ListEvents by region)
//
// A pairing summary counts the distinct workers with an event of a category in a period. Each
// occurrence (a key of byPairing: pairing, category, time, worker) is either the worker's first
// in its pairing and category (counted per China day in pairingFirsts) or a repeat, kept with the
// time of the worker's occurrence before it. The workers with an occurrence in [from, until) are
// those whose first occurrence in the period is either a first occurrence or a repeat whose
// previous one is before from: the count is the firsts of the period's days plus those repeats of
// the period, and a worker who came once (nearly all) costs nothing to count. Occurrences may be
// recorded out of time order: the one after a new occurrence then changes its previous time
// (pairingWorkers finds the neighbours).
var (
	pairingFirsts  = []byte("ledgerPairingFirsts")
	pairingRepeats = []byte("ledgerPairingRepeats")
	pairingWorkers = keyIndex{[]byte("ledgerPairingWorkers")}
	openByPairing  = []byte("ledgerOpenCounts")
	assessedCounts = []byte("ledgerAssessedCounts")
	byKind         = keyIndex{[]byte("ledgerByKind")}
	byRegion       = keyIndex{[]byte("ledgerByRegion")}
)

// counterBuckets are the buckets of counts and of the indexes built with them.
var counterBuckets = [][]byte{pairingFirsts, pairingRepeats, pairingWorkers.name, openByPairing, assessedCounts, byKind.name, byRegion.name}

// dayNumber is the number of t's day in China since 1970-01-01, as 4 key bytes.
func dayNumber(t time.Time) []byte {
	return binary.BigEndian.AppendUint32(nil, civilDay(t))
}

// civilDay is the number of t's day in China since 1970-01-01.
func civilDay(t time.Time) uint32 {
	_, off := t.In(civil.Zone).Zone()
	return uint32((t.Unix() + int64(off)) / 86400)
}

// startOfDay reports whether t is midnight in China.
func startOfDay(t time.Time) bool {
	c := t.In(civil.Zone)
	return c.Hour() == 0 && c.Minute() == 0 && c.Second() == 0 && c.Nanosecond() == 0
}

// readCount returns the count under key in bucket name.
func readCount(tx *bbolt.Tx, name, key []byte) int64 {
	if v := tx.Bucket(name).Get(key); len(v) == 8 {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

// counts gathers the changes to the ledger's counts (an int64 under a key of a count bucket,
// deleted at 0) made in one write transaction, and flush writes each changed count once: a
// report's thousand events move the same few day, year and pairing counts, which would otherwise
// be read and written a thousand times. A change is a delta, so flushing commutes with a count
// written directly (addCount) in between; nothing reads a count in the transaction that changes
// it.
type counts struct {
	tx      *bbolt.Tx
	pending map[string]map[string]int64 // bucket -> key -> delta
	lookups map[string]store.Lookup     // bucket -> its lookup, reused by the report's events
}

// newCounts gathers count changes in tx.
func newCounts(tx *bbolt.Tx) *counts {
	return &counts{tx: tx, pending: map[string]map[string]int64{}, lookups: map[string]store.Lookup{}}
}

// lookup returns the transaction's Lookup of bucket name (made at its first use), which a
// report's thousand events share instead of opening a cursor per Get.
func (c *counts) lookup(name []byte) (store.Lookup, error) {
	if l, ok := c.lookups[string(name)]; ok {
		return l, nil
	}
	b := c.tx.Bucket(name)
	if b == nil {
		return store.Lookup{}, fmt.Errorf("bucket %s does not exist", name)
	}
	l := store.NewLookup(b)
	c.lookups[string(name)] = l
	return l, nil
}

// add adds n to the count under k in bucket name.
func (c *counts) add(name []byte, k string, n int64) {
	if n == 0 {
		return
	}
	keys, ok := c.pending[string(name)] // (a lookup by string(name) does not copy name)
	if !ok {
		keys = map[string]int64{}
		c.pending[string(name)] = keys
	}
	keys[k] += n
}

// flush writes the changed counts, in bucket and key order.
func (c *counts) flush() error {
	for _, bucket := range slices.Sorted(maps.Keys(c.pending)) {
		deltas := c.pending[bucket]
		keys := make([]string, 0, len(deltas))
		for k, n := range deltas {
			if n != 0 {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			if err := c.write([]byte(bucket), k, deltas[k]); err != nil {
				return err
			}
		}
	}
	clear(c.pending)
	return nil
}

// countOccurrence counts a new key of byPairing: worker's event of category cat in pairing p at t.
func countOccurrence(tx *bbolt.Tx, c *counts, p regions.Pairing, cat byte, t time.Time, worker string) error {
	prefix := pairingCategoryPrefix(p.Receiving, p.Sending, cat)
	// One buffer for the worker's keys: prefix, worker, NUL (wp), then the time.
	key := make([]byte, 0, len(prefix)+len(worker)+1+8)
	wp := append(append(append(key, prefix...), worker...), 0)
	key = binary.BigEndian.AppendUint64(wp, uint64(t.UnixNano()))
	at := key[len(wp):]
	b, err := pairingWorkers.bucket(tx)
	if err != nil {
		return err
	}
	cur := b.Cursor()
	var pred, succ []byte // the times of the worker's occurrences before and after t
	// No key is wp+at (the occurrence is new): the seek lands after it, the step back before it.
	k, _ := cur.Seek(key)
	if k != nil && bytes.HasPrefix(k, wp) {
		succ = bytes.Clone(k[len(wp):])
	}
	if k == nil {
		k, _ = cur.Last()
	} else {
		k, _ = cur.Prev()
	}
	if k != nil && bytes.HasPrefix(k, wp) {
		pred = bytes.Clone(k[len(wp):])
	}
	if err := b.Put(key, []byte{}); err != nil {
		return err
	}
	if pred == nil {
		c.add(pairingFirsts, firstsKey(prefix, t), 1)
	} else if err := tx.Bucket(pairingRepeats).Put(repeatKey(prefix, at, worker), pred); err != nil {
		return err
	}
	if succ == nil {
		return nil
	}
	// The occurrence after t now follows t.
	if pred == nil {
		c.add(pairingFirsts, firstsKey(prefix, keyTime(succ)), -1)
	}
	return tx.Bucket(pairingRepeats).Put(repeatKey(prefix, succ, worker), at)
}

// firstsKey is the pairingFirsts key of the day of t: prefix (receiving, sending, category),
// dayNumber.
func firstsKey(prefix []byte, t time.Time) string {
	var k [13 + 4]byte
	n := copy(k[:], prefix)
	return string(binary.BigEndian.AppendUint32(k[:n], civilDay(t)))
}

// repeatKey is receiving(6) sending(6) category(1) time(8) worker.
func repeatKey(prefix, at []byte, worker string) []byte {
	k := make([]byte, 0, len(prefix)+8+len(worker))
	return append(append(append(k, prefix...), at...), worker...)
}

// countWorkers counts the distinct workers of the pairing's events of category cat with times
// in [from, until), from the counts (a period not made of whole China days is counted from the
// pairing index).
func countWorkers(tx *bbolt.Tx, p regions.Pairing, cat byte, from, until time.Time) (int64, error) {
	if !startOfDay(from) || !startOfDay(until) {
		return scanWorkers(tx, p, cat, from, until)
	}
	prefix := pairingCategoryPrefix(p.Receiving, p.Sending, cat)
	var n int64
	c := tx.Bucket(pairingFirsts).Cursor()
	end := append(bytes.Clone(prefix), dayNumber(until)...)
	for k, v := c.Seek(append(bytes.Clone(prefix), dayNumber(from)...)); k != nil && bytes.Compare(k, end) < 0; k, v = c.Next() {
		if bytes.HasPrefix(k, prefix) && len(v) == 8 {
			n += int64(binary.BigEndian.Uint64(v))
		}
	}
	lo, hi := timeKey(from), timeKey(until)
	c = tx.Bucket(pairingRepeats).Cursor()
	for k, v := c.Seek(append(bytes.Clone(prefix), lo...)); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(k) < len(prefix)+8 || bytes.Compare(k[len(prefix):len(prefix)+8], hi) >= 0 {
			break
		}
		if bytes.Compare(v, lo) < 0 {
			n++
		}
	}
	return n, nil
}

// scanWorkers counts as countWorkers does, from the pairing index: O(the pairing's events of the
// category in the period).
func scanWorkers(tx *bbolt.Tx, p regions.Pairing, cat byte, from, until time.Time) (int64, error) {
	prefix := pairingCategoryPrefix(p.Receiving, p.Sending, cat)
	lo := append(bytes.Clone(prefix), timeKey(from)...)
	workers := map[string]struct{}{}
	err := byPairing.scanFrom(tx, prefix, lo, func(k []byte) (bool, error) {
		pk, ok := parsePairingKey(k)
		if !ok {
			return true, nil
		}
		if !pk.time.Before(until) {
			return false, nil
		}
		workers[pk.worker] = struct{}{}
		return true, nil
	})
	return int64(len(workers)), err
}

// openCountKey is receiving(6) sending(6) kind(1).
func openCountKey(p regions.Pairing, kind coordinationv1.DiscrepancyKind) []byte {
	return append(pairingPrefix(p.Receiving, p.Sending), byte(kind))
}

// countOpenChanges keeps the open counts per pairing and kind as changes (stored before them in
// old) open and close discrepancies.
func countOpenChanges(tx *bbolt.Tx, old map[string]*coordinationv1.Discrepancy, changes []discrepancyChange) error {
	for _, c := range changes {
		delta := int64(0)
		if old[c.key].GetState() == coordinationv1.DiscrepancyState_DISCREPANCY_STATE_OPEN {
			delta--
		}
		if c.d.GetState() == coordinationv1.DiscrepancyState_DISCREPANCY_STATE_OPEN {
			delta++
		}
		if delta == 0 {
			continue
		}
		p := regions.Pairing{Receiving: c.d.GetReceivingRegion(), Sending: c.d.GetSendingRegion()}
		for _, k := range []coordinationv1.DiscrepancyKind{0, c.d.GetKind()} {
			if err := addCount(tx, openByPairing, string(openCountKey(p, k)), delta); err != nil {
				return err
			}
		}
	}
	return nil
}

// openOfPairing returns the open discrepancies of pairing p by kind (kind 0: all kinds).
func openOfPairing(tx *bbolt.Tx, p regions.Pairing) map[coordinationv1.DiscrepancyKind]int64 {
	out := map[coordinationv1.DiscrepancyKind]int64{}
	prefix := pairingPrefix(p.Receiving, p.Sending)
	c := tx.Bucket(openByPairing).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(k) == len(prefix)+1 && len(v) == 8 {
			out[coordinationv1.DiscrepancyKind(k[len(prefix)])] = int64(binary.BigEndian.Uint64(v))
		}
	}
	return out
}

// kindKey is kind(4) seq(8).
func kindKey(kind coordinationv1.EventKind, seq uint64) []byte {
	k := binary.BigEndian.AppendUint32(make([]byte, 0, 12), uint32(kind))
	return binary.BigEndian.AppendUint64(k, seq)
}

// kindPrefix is kind(4).
func kindPrefix(kind coordinationv1.EventKind) []byte {
	return binary.BigEndian.AppendUint32(nil, uint32(kind))
}

// regionKey is region(6) seq(8).
func regionKey(region string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, 14), region...), seq)
}

// indexEvent adds the event recorded under seq to the indexes and counts of this file (those of
// schema version 10; putEvent keeps the older ones).
func indexEvent(tx *bbolt.Tx, seq uint64, ev *coordinationv1.LedgerEvent) error {
	if err := byKind.put(tx, kindKey(ev.GetKind(), seq)); err != nil {
		return err
	}
	for _, r := range eventRegions(ev) {
		if err := byRegion.put(tx, regionKey(r, seq)); err != nil {
			return err
		}
	}
	return nil
}

// eventRegions returns the distinct regions of ev (each indexed once).
func eventRegions(ev *coordinationv1.LedgerEvent) []string {
	var out []string
	for _, r := range []string{ev.GetReceivingRegion(), ev.GetSendingRegion()} {
		if len(r) == 6 && (len(out) == 0 || out[0] != r) {
			out = append(out, r)
		}
	}
	return out
}

// putNewKey adds k to index i and reports whether it was not there.
func putNewKey(c *counts, i keyIndex, k []byte) (bool, error) {
	l, err := c.lookup(i.name)
	if err != nil {
		return false, err
	}
	if l.Get(k) != nil {
		return false, nil
	}
	return true, c.tx.Bucket(i.name).Put(k, []byte{})
}

// BuildCounts builds the counts and indexes of coordination schema version 10 from a file
// written before them: the occurrences from the pairing index (in its order, so in time order
// per pairing and category), the assessment counts from the assessment index, the open counts
// from the discrepancies, the kind and region indexes from the events. Buckets left by an
// interrupted earlier attempt are emptied first.
func BuildCounts(tx *bbolt.Tx) error {
	for _, name := range counterBuckets {
		if tx.Bucket(name) != nil {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	for _, name := range [][]byte{byPairing.name, assessed.name, discrepancies.Name(), events.Name()} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	c := newCounts(tx)
	err := byPairing.scan(tx, store.Range{}, func(k []byte) (bool, error) {
		pk, ok := parsePairingKey(k)
		if !ok {
			return true, nil
		}
		return true, countOccurrence(tx, c, regions.Pairing{Receiving: pk.receiving, Sending: pk.sending}, pk.cat, pk.time, pk.worker)
	})
	if err != nil {
		return fmt.Errorf("pairing counts: %w", err)
	}
	err = assessed.scan(tx, store.Range{}, func(k []byte) (bool, error) {
		if len(k) < 9 {
			return true, nil
		}
		c.add(assessedCounts, string(k[:9]), 1)
		return true, nil
	})
	if err == nil {
		err = c.flush()
	}
	if err != nil {
		return fmt.Errorf("pairing and assessment counts: %w", err)
	}
	var changes []discrepancyChange
	err = discrepancies.Scan(tx, store.Range{}, func(k []byte, d *coordinationv1.Discrepancy) (bool, error) {
		changes = append(changes, discrepancyChange{key: string(k), d: d})
		return true, nil
	})
	if err == nil {
		err = countOpenChanges(tx, nil, changes)
	}
	if err != nil {
		return fmt.Errorf("open counts: %w", err)
	}
	err = events.Scan(tx, store.Range{}, func(k []byte, ev *coordinationv1.LedgerEvent) (bool, error) {
		return true, indexEvent(tx, store.KeyUint64(k), ev)
	})
	if err != nil {
		return fmt.Errorf("kind and region indexes: %w", err)
	}
	return nil
}

package ledger

import (
	"bytes"
	"fmt"

	"go.etcd.io/bbolt"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/platform/store"
)

// The ledger's storage. Every event is stored once under a sequence number (events, seq ->
// LedgerEvent, the order recorded) and indexed (keys.go):
//
//	eventIDs      event_id -> seq                        (idempotency by event id)
//	byWorker      worker NUL seq                         (ListEvents by worker)
//	byBatch       batch NUL seq                          (reconciling one batch)
//	byPairing     receiving sending category time worker (pairing summaries)
//	assessed      province year category worker          (registered-poor, assessment)
//
// The reconciliation of each batch is in batches (batch -> BatchReconciliation), the batches
// still awaiting workers in deadlines (deadline batch), the discrepancies by (batch, worker,
// kind) in discrepancies, their names in discrepancyNames (number -> that key, GetDiscrepancy;
// coordination schema version 4), and every opening and closing is a revision in
// discrepancyChanges (revision -> the discrepancy as it was then). The employment dynamics'
// workers' trips and counts are in dynTrips, dynDays and dynYears (dynamics.go; coordination
// schema version 5). The bucket names are those of the files written before this package
// existed.
var (
	events             = store.NewTable[*coordinationv1.LedgerEvent]([]byte("ledgerEvents"))
	eventIDs           = []byte("ledgerEventIDs")
	byWorker           = keyIndex{[]byte("ledgerByWorker")}
	byBatch            = keyIndex{[]byte("ledgerByBatch")}
	byPairing          = keyIndex{[]byte("ledgerByPairing")}
	assessed           = keyIndex{[]byte("ledgerAssessment")}
	batches            = store.NewTable[*coordinationv1.BatchReconciliation]([]byte("ledgerBatches"))
	deadlines          = keyIndex{[]byte("ledgerDeadlines")}
	discrepancies      = store.NewTable[*coordinationv1.Discrepancy]([]byte("discrepancies"))
	discrepancyChanges = store.NewTable[*coordinationv1.Discrepancy]([]byte("discrepancyChanges"))
	discrepancyNames   = []byte("discrepancyNames")
)

// Buckets are the ledger's buckets, for the service's store.Schema.
var Buckets = [][]byte{
	events.Name(), eventIDs, byWorker.name, byBatch.name, byPairing.name, assessed.name,
	batches.Name(), deadlines.name, discrepancies.Name(), discrepancyChanges.Name(), discrepancyNames,
	dynTrips.Name(), dynDays, dynYears, dynDimDays, dynDimYears,
	treeNodes, treeLeaves, treeSeqs, treeSizes,
	pairingFirsts, pairingRepeats, pairingWorkers.name, openByPairing, assessedCounts, byKind.name, byRegion.name,
}

// keyIndex is a bucket of keys with empty values: an index whose keys say it all.
type keyIndex struct {
	name []byte
}

func (i keyIndex) bucket(tx *bbolt.Tx) (*bbolt.Bucket, error) {
	b := tx.Bucket(i.name)
	if b == nil {
		return nil, fmt.Errorf("bucket %s does not exist (not in the schema's buckets?)", i.name)
	}
	return b, nil
}

// put adds key k. The transaction must be read-write.
func (i keyIndex) put(tx *bbolt.Tx, k []byte) error {
	b, err := i.bucket(tx)
	if err != nil {
		return err
	}
	return b.Put(k, []byte{})
}

// delete removes key k. The transaction must be read-write.
func (i keyIndex) delete(tx *bbolt.Tx, k []byte) error {
	b, err := i.bucket(tx)
	if err != nil {
		return err
	}
	return b.Delete(k)
}

// scan calls fn for each key in r in key order until fn returns false or an error. The key is
// valid only during the call; fn must not write to the index.
func (i keyIndex) scan(tx *bbolt.Tx, r store.Range, fn func(k []byte) (bool, error)) error {
	start := r.Prefix
	if r.After != nil && bytes.Compare(r.After, r.Prefix) >= 0 {
		start = append(bytes.Clone(r.After), 0)
	}
	return i.scanFrom(tx, r.Prefix, start, fn)
}

// scanFrom calls fn for each key with prefix from start on, as scan does.
func (i keyIndex) scanFrom(tx *bbolt.Tx, prefix, start []byte, fn func(k []byte) (bool, error)) error {
	b, err := i.bucket(tx)
	if err != nil {
		return err
	}
	c := b.Cursor()
	for k, _ := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		more, err := fn(k)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// count returns the number of keys with prefix.
func (i keyIndex) count(tx *bbolt.Tx, prefix []byte) (int64, error) {
	var n int64
	err := i.scan(tx, store.Range{Prefix: prefix}, func([]byte) (bool, error) {
		n++
		return true, nil
	})
	return n, err
}

// eventSeq returns the sequence number under which the event id is recorded.
func eventSeq(tx *bbolt.Tx, eventID string) (uint64, bool) {
	return eventSeqIn(store.NewLookup(tx.Bucket(eventIDs)), eventID)
}

// eventSeqIn is eventSeq through ids, a Lookup of the event-id index.
func eventSeqIn(ids store.Lookup, eventID string) (uint64, bool) {
	v := ids.Get([]byte(eventID))
	if v == nil {
		return 0, false
	}
	return store.KeyUint64(v), true
}

// event returns the event recorded under seq; an index naming a missing event is an error.
func event(tx *bbolt.Tx, seq uint64) (*coordinationv1.LedgerEvent, error) {
	ev, ok, err := events.Get(tx, store.Uint64Key(seq))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("ledger index names event %d, which is missing", seq)
	}
	return ev, nil
}

// putEvent records ev (output fields set) under the next sequence number, with its indexes, and
// returns that number. Its counts are changed in c.
func putEvent(tx *bbolt.Tx, c *counts, ev *coordinationv1.LedgerEvent) (uint64, error) {
	seq, err := events.NextSeq(tx)
	if err != nil {
		return 0, err
	}
	if err := events.Put(tx, store.Uint64Key(seq), ev); err != nil {
		return 0, err
	}
	if err := tx.Bucket(eventIDs).Put([]byte(ev.GetEventId()), store.Uint64Key(seq)); err != nil {
		return 0, err
	}
	if err := byWorker.put(tx, idKey(ev.GetWorkerId(), seq)); err != nil {
		return 0, err
	}
	if batch := ev.GetBatchId(); batch != "" {
		if err := byBatch.put(tx, idKey(batch, seq)); err != nil {
			return 0, err
		}
	}
	if cat := category(ev); cat != 0 {
		p := pairingOf(ev)
		at := ev.GetOccurTime().AsTime()
		isNew, err := putNewKey(c, byPairing, pairingKey(p.Receiving, p.Sending, cat, at, ev.GetWorkerId()))
		if err == nil && isNew {
			err = countOccurrence(tx, c, p, cat, at, ev.GetWorkerId())
		}
		if err != nil {
			return 0, err
		}
	}
	if k := assessmentKeyOf(ev); k != nil {
		isNew, err := putNewKey(c, assessed, k)
		if err != nil {
			return 0, err
		}
		if isNew {
			c.add(assessedCounts, string(k[:9]), 1)
		}
	}
	if err := indexEvent(tx, seq, ev); err != nil {
		return 0, err
	}
	return seq, trackDynamics(tx, c, ev)
}

// batchEvents calls fn with each event of batch, in the order recorded; known (may be nil) holds
// events by sequence number as stored, which are not read again from the file.
func batchEvents(tx *bbolt.Tx, batch string, known map[uint64]*coordinationv1.LedgerEvent, fn func(ev *coordinationv1.LedgerEvent)) error {
	return byBatch.scan(tx, store.Range{Prefix: idPrefix(batch)}, func(k []byte) (bool, error) {
		id, seq, ok := parseIDKey(k)
		if !ok || id != batch {
			return true, nil
		}
		if ev, ok := known[seq]; ok {
			fn(ev)
			return true, nil
		}
		ev, err := event(tx, seq)
		if err != nil {
			return false, err
		}
		fn(ev)
		return true, nil
	})
}

// batchDiscrepancies returns the stored discrepancies of batch by key.
func batchDiscrepancies(tx *bbolt.Tx, batch string) (map[string]*coordinationv1.Discrepancy, error) {
	out := map[string]*coordinationv1.Discrepancy{}
	err := discrepancies.Scan(tx, store.Range{Prefix: idPrefix(batch)}, func(k []byte, d *coordinationv1.Discrepancy) (bool, error) {
		out[string(k)] = d
		return true, nil
	})
	return out, err
}

// hasOpenDiscrepancy reports whether batch has an open discrepancy.
func hasOpenDiscrepancy(tx *bbolt.Tx, batch string) (bool, error) {
	open := false
	err := discrepancies.Scan(tx, store.Range{Prefix: idPrefix(batch)}, func(_ []byte, d *coordinationv1.Discrepancy) (bool, error) {
		open = d.GetState() == coordinationv1.DiscrepancyState_DISCREPANCY_STATE_OPEN
		return !open, nil
	})
	return open, err
}

// openDiscrepancies returns the open discrepancies of batch in (worker, kind) order.
func openDiscrepancies(tx *bbolt.Tx, batch string) ([]*coordinationv1.Discrepancy, error) {
	var out []*coordinationv1.Discrepancy
	err := discrepancies.Scan(tx, store.Range{Prefix: idPrefix(batch)}, func(_ []byte, d *coordinationv1.Discrepancy) (bool, error) {
		if d.GetState() == coordinationv1.DiscrepancyState_DISCREPANCY_STATE_OPEN {
			out = append(out, d)
		}
		return true, nil
	})
	return out, err
}

// CountRegisteredPoor returns the number of distinct registered-poor workers the ledger has with
// a DEPARTED event (sending) or ONBOARDED event (receiving) of kind in province in the calendar
// year (China time): the numerator of an assessment. Other kinds count 0.
func CountRegisteredPoor(tx *bbolt.Tx, province string, year int, kind coordinationv1.EventKind) (int64, error) {
	var cat byte
	switch kind {
	case coordinationv1.EventKind_EVENT_KIND_DEPARTED:
		cat = catDeparted
	case coordinationv1.EventKind_EVENT_KIND_ONBOARDED:
		cat = catOnboarded
	default:
		return 0, nil
	}
	return readCount(tx, assessedCounts, assessmentPrefix(province, year, cat)), nil
}

// putDiscrepancyName records that discrepancy number n is stored under key.
func putDiscrepancyName(tx *bbolt.Tx, n uint64, key []byte) error {
	b := tx.Bucket(discrepancyNames)
	if b == nil {
		return fmt.Errorf("bucket %s does not exist", discrepancyNames)
	}
	return b.Put(store.Uint64Key(n), key)
}

// discrepancyByNumber returns discrepancy number n as it is now.
func discrepancyByNumber(tx *bbolt.Tx, n uint64) (*coordinationv1.Discrepancy, bool, error) {
	key := tx.Bucket(discrepancyNames).Get(store.Uint64Key(n))
	if key == nil {
		return nil, false, nil
	}
	d, ok, err := discrepancies.Get(tx, key)
	if err == nil && !ok {
		err = fmt.Errorf("discrepancy %d is named under key %q, which is missing", n, key)
	}
	return d, ok, err
}

// MigrateDiscrepancyNames builds the index of discrepancy names (coordination schema version
// 4) from the discrepancies of a file written before it, so that GetDiscrepancy finds every
// discrepancy opened before the upgrade.
func MigrateDiscrepancyNames(tx *bbolt.Tx) error {
	if _, err := tx.CreateBucketIfNotExists(discrepancyNames); err != nil {
		return err
	}
	if tx.Bucket(discrepancies.Name()) == nil {
		return nil
	}
	return discrepancies.Scan(tx, store.Range{}, func(k []byte, d *coordinationv1.Discrepancy) (bool, error) {
		n, problem := parseDiscrepancyName(d.GetName())
		if problem != "" {
			return false, fmt.Errorf("discrepancy under key %q: name %s", k, problem)
		}
		return true, putDiscrepancyName(tx, n, bytes.Clone(k))
	})
}

// MigrateDetails converts the events recorded before the per-kind details (coordination schema
// version 2): the flat months, still_employed and detail fields become the event's details
// (ledgerclient.UpgradeEvent). The indexes do not change: they were built from the same facts.
func MigrateDetails(tx *bbolt.Tx) error {
	if tx.Bucket(events.Name()) == nil {
		return nil
	}
	type change struct {
		key []byte
		ev  *coordinationv1.LedgerEvent
	}
	var changed []change
	err := events.Scan(tx, store.Range{}, func(k []byte, ev *coordinationv1.LedgerEvent) (bool, error) {
		if ledgerclient.UpgradeEvent(ev) {
			changed = append(changed, change{bytes.Clone(k), ev})
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, c := range changed {
		if err := events.Put(tx, c.key, c.ev); err != nil {
			return err
		}
	}
	return nil
}

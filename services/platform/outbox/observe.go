package outbox

import (
	"sort"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	outboxv1 "github.com/eastwest/labourlink/proto/labourlink/outbox/v1"
	"github.com/eastwest/labourlink/services/platform/metrics"
	"github.com/eastwest/labourlink/services/platform/store"
)

// Observe exports the outbox of db in reg at each scrape (metrics.Registry.ObserveOutbox), aged
// by the clock now (nil: time.Now). Each destination that has a queue, a quarantined entry or
// a relay (destinations, exported at 0 while empty) is listed.
func Observe(reg *metrics.Registry, db *store.DB, now func() time.Time, destinations ...string) {
	if reg == nil {
		return
	}
	if now == nil {
		now = time.Now
	}
	reg.ObserveOutbox(func() ([]metrics.OutboxDestination, error) { return Depths(db, now(), destinations...) })
}

// Depths reads, in one read transaction, the entries waiting per destination (bbolt's count
// of the destination bucket's keys, page by page: no entry is decoded), the age at now of the
// oldest (the first by sequence: entries are queued in sequence order and a failed one keeps
// its place), and the entries quarantined and not yet decided (the quarantine is scanned: it
// holds only what peers refused for good). destinations are listed even when empty.
func Depths(db *store.DB, now time.Time, destinations ...string) ([]metrics.OutboxDestination, error) {
	by := map[string]*metrics.OutboxDestination{}
	at := func(dest string) *metrics.OutboxDestination {
		d := by[dest]
		if d == nil {
			d = &metrics.OutboxDestination{Destination: dest}
			by[dest] = d
		}
		return d
	}
	for _, dest := range destinations {
		at(dest)
	}
	err := db.View(func(tx *bbolt.Tx) error {
		if top := tx.Bucket(store.BucketOutbox); top != nil {
			err := top.ForEachBucket(func(k []byte) error {
				b := top.Bucket(k)
				d := at(string(k))
				d.Entries = b.Stats().KeyN
				if _, v := b.Cursor().First(); v != nil {
					if env, err := decodeEnvelope(v); err == nil {
						d.OldestAge = max(now.Sub(env.createdAt), 0)
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		q := tx.Bucket(store.BucketOutboxQuarantine)
		if q == nil {
			return nil
		}
		return q.ForEach(func(_, v []byte) error {
			var e outboxv1.QuarantinedEntry
			if err := proto.Unmarshal(v, &e); err != nil {
				return nil // damaged: listed by the OutboxService, not counted here
			}
			if e.GetState() == stateQuarantined {
				at(e.GetDestination()).Quarantined++
			}
			return nil
		})
	})
	out := make([]metrics.OutboxDestination, 0, len(by))
	for _, d := range by {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Destination < out[j].Destination })
	return out, err
}

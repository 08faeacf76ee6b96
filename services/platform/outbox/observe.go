package outbox

import (
	"slices"
	"sort"
	"time"

	"go.etcd.io/bbolt"

	outboxv1 "github.com/eastwest/labourlink/proto/labourlink/outbox/v1"
	"github.com/eastwest/labourlink/services/platform/metrics"
	"github.com/eastwest/labourlink/services/platform/store"
)

// Observe exports the outbox of db in reg at each scrape (metrics.Registry.ObserveOutbox), aged
// by the clock now (nil: time.Now). Each destination that has a queue or a quarantined entry is
// listed, and so are, at 0 while empty, destinations and those of the relays running in relays
// (nil: none).
func Observe(reg *metrics.Registry, db *store.DB, now func() time.Time, relays *Set, destinations ...string) {
	if reg == nil {
		return
	}
	if now == nil {
		now = time.Now
	}
	reg.ObserveOutbox(func() ([]metrics.OutboxDestination, error) {
		dests := slices.Clone(destinations)
		if relays != nil {
			for d := range relays.Statuses() {
				dests = append(dests, d)
			}
		}
		return Depths(db, now(), dests...)
	})
}

// Depths returns, per destination (readQueues), the entries waiting, the age at now of the
// oldest, and the entries quarantined and not yet decided; destinations are listed even when
// empty. ListOutboxes (`labourlink outbox list`) reads the same.
func Depths(db *store.DB, now time.Time, destinations ...string) ([]metrics.OutboxDestination, error) {
	queues, err := readQueues(db)
	for _, dest := range destinations {
		if queues[dest] == nil {
			queues[dest] = &queue{}
		}
	}
	out := make([]metrics.OutboxDestination, 0, len(queues))
	for dest, q := range queues {
		d := metrics.OutboxDestination{Destination: dest, Entries: q.pending, Quarantined: q.quarantined}
		if q.pending > 0 {
			d.OldestAge = max(now.Sub(q.oldest), 0)
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Destination < out[j].Destination })
	return out, err
}

// queue is what the data file holds for one destination.
type queue struct {
	pending     int       // entries waiting
	oldest      time.Time // when the first of them was queued (when pending > 0)
	quarantined int       // entries quarantined and not yet decided
}

// readQueues reads every destination that has a queue or quarantined entries, in one read
// transaction: the entries waiting (bbolt's count of the destination bucket's keys, page by
// page: no entry is decoded), when the oldest was queued (the first by sequence: entries are
// queued in sequence order and a failed one keeps its place), and the quarantined entries not
// yet decided (the quarantine is scanned: it holds only what peers refused for good). The map
// is never nil.
func readQueues(db *store.DB) (map[string]*queue, error) {
	by := map[string]*queue{}
	at := func(dest string) *queue {
		q := by[dest]
		if q == nil {
			q = &queue{}
			by[dest] = q
		}
		return q
	}
	err := db.View(func(tx *bbolt.Tx) error {
		if top := tx.Bucket(store.BucketOutbox); top != nil {
			err := top.ForEachBucket(func(name []byte) error {
				b := top.Bucket(name)
				q := at(string(name))
				q.pending = b.Stats().KeyN
				if _, v := b.Cursor().First(); v != nil {
					if env, err := decodeEnvelope(v); err == nil {
						q.oldest = env.createdAt
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return eachQuarantined(tx, nil, func(_ []byte, e *outboxv1.QuarantinedEntry) (bool, error) {
			if e.GetState() == stateQuarantined {
				at(e.GetDestination()).quarantined++
			}
			return true, nil
		})
	})
	return by, err
}

package outbox

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"
	"go.uber.org/zap"

	"github.com/eastwest/labourlink/services/failpoint"
	"github.com/eastwest/labourlink/services/store"
)

// DeliverFunc delivers entries, in order, to the destination. It returns nil
// only when the receiver has accepted all of them (they are then deleted);
// any error makes the relay retry the same entries after a backoff. The
// receiver must be idempotent on Entry.ID, since a batch can be delivered
// again after a crash. To give up on an entry that can never be delivered
// (e.g. the peer answers INVALID_ARGUMENT), log it and return nil.
type DeliverFunc func(ctx context.Context, entries []Entry) error

// Options tune a Relay. Zero fields take the defaults.
type Options struct {
	// BatchSize is the most entries passed to one deliver call. Default 100.
	BatchSize int
	// MinBackoff and MaxBackoff bound the wait after a failed delivery,
	// doubling from MinBackoff with jitter. Defaults 200ms and 30s.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// PollInterval is how often an idle relay looks for new entries when not
	// woken by Notify. Default 500ms.
	PollInterval time.Duration
	// IDPrefix is the prefix of Entry.ID. Default: the data file's
	// InstanceID, which makes ids unique across all services.
	IDPrefix string
}

func (o Options) withDefaults(db *store.DB) Options {
	if o.BatchSize <= 0 {
		o.BatchSize = 100
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 200 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 500 * time.Millisecond
	}
	if o.IDPrefix == "" {
		o.IDPrefix = db.InstanceID()
	}
	return o
}

// Relay delivers the entries of one destination. Run only one Relay per
// destination and data file at a time.
type Relay struct {
	db          *store.DB
	destination string
	deliver     DeliverFunc
	lg          *zap.Logger
	opts        Options
	wake        chan struct{}
	damaged     map[uint64]bool // undecodable entries already logged (Run's goroutine only)
}

// NewRelay returns a relay for destination. Start it with Run.
func NewRelay(db *store.DB, destination string, deliver DeliverFunc, lg *zap.Logger, opts Options) *Relay {
	if lg == nil {
		lg = zap.NewNop()
	}
	return &Relay{
		db:          db,
		destination: destination,
		deliver:     deliver,
		lg:          lg.With(zap.String("destination", destination)),
		opts:        opts.withDefaults(db),
		wake:        make(chan struct{}, 1),
		damaged:     make(map[uint64]bool),
	}
}

// Notify wakes an idle relay to look for entries now (call it after
// committing a Put). It never blocks and does not cut a backoff short.
func (r *Relay) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Pending returns the number of entries waiting for the relay's destination.
func (r *Relay) Pending() (int, error) { return Pending(r.db, r.destination) }

// Run delivers entries until ctx is done, then returns nil. It returns an
// error only if the store is closed.
func (r *Relay) Run(ctx context.Context) error {
	failures := 0 // consecutive failures, for the backoff
	for {
		if ctx.Err() != nil {
			return nil
		}
		entries, err := r.read()
		if err != nil {
			if errors.Is(err, bberrors.ErrDatabaseNotOpen) {
				return err
			}
			failures++
			r.lg.Error("read outbox", zap.Error(err))
			if !r.sleep(ctx, r.backoff(failures), false) {
				return nil
			}
			continue
		}
		if len(entries) == 0 {
			if !r.sleep(ctx, r.opts.PollInterval, true) {
				return nil
			}
			continue
		}

		if err := r.deliver(ctx, entries); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			failures++
			wait := r.backoff(failures)
			if uerr := r.countAttempt(entries); uerr != nil {
				r.lg.Error("record outbox delivery attempt", zap.Error(uerr))
			}
			r.lg.Warn("outbox delivery failed, will retry",
				zap.Int("entries", len(entries)),
				zap.String("first_id", entries[0].ID),
				zap.Uint32("attempts", entries[0].Attempts+1),
				zap.Duration("retry_in", wait),
				zap.Error(err))
			if !r.sleep(ctx, wait, false) {
				return nil
			}
			continue
		}
		failpoint.Inject(failpoint.RelayAfterDeliver)
		// Delivered: delete even if ctx is done meanwhile, so that a
		// delivered batch is not sent again after a restart.
		if err := r.remove(entries); err != nil {
			if errors.Is(err, bberrors.ErrDatabaseNotOpen) {
				return err
			}
			failures++
			r.lg.Error("delete delivered outbox entries", zap.Error(err))
			if !r.sleep(ctx, r.backoff(failures), false) {
				return nil
			}
			continue
		}
		failures = 0
		r.lg.Debug("outbox entries delivered", zap.Int("entries", len(entries)),
			zap.String("last_id", entries[len(entries)-1].ID))
	}
}

// read returns up to BatchSize entries in key order, copied out of the
// transaction.
func (r *Relay) read() ([]Entry, error) {
	var entries []Entry
	err := r.db.View(func(tx *bbolt.Tx) error {
		b := destBucket(tx, r.destination)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil && len(entries) < r.opts.BatchSize; k, v = c.Next() {
			seq := store.KeyUint64(k)
			env, err := decodeEnvelope(v)
			if err != nil {
				// Stored data is damaged; keep it for inspection and go on
				// with the rest rather than block the destination forever.
				if !r.damaged[seq] {
					r.damaged[seq] = true
					r.lg.Error("skip undecodable outbox entry", zap.String("id", entryID(r.opts.IDPrefix, seq)), zap.Error(err))
				}
				continue
			}
			entries = append(entries, Entry{
				Seq:         seq,
				ID:          entryID(r.opts.IDPrefix, seq),
				Destination: env.destination,
				Payload:     env.payload,
				CreatedAt:   env.createdAt,
				Attempts:    env.attempts,
			})
		}
		return nil
	})
	return entries, err
}

func (r *Relay) remove(entries []Entry) error {
	return r.db.Update(func(tx *bbolt.Tx) error {
		b := destBucket(tx, r.destination)
		if b == nil {
			return nil
		}
		for _, e := range entries {
			if err := b.Delete(store.Uint64Key(e.Seq)); err != nil {
				return err
			}
		}
		return nil
	})
}

// countAttempt records one more failed delivery on each entry.
func (r *Relay) countAttempt(entries []Entry) error {
	return r.db.Update(func(tx *bbolt.Tx) error {
		b := destBucket(tx, r.destination)
		if b == nil {
			return nil
		}
		for _, e := range entries {
			key := store.Uint64Key(e.Seq)
			v := b.Get(key)
			if v == nil {
				continue
			}
			env, err := decodeEnvelope(v)
			if err != nil {
				return err
			}
			env.attempts++
			nv, err := encodeEnvelope(env)
			if err != nil {
				return err
			}
			if err := b.Put(key, nv); err != nil {
				return err
			}
		}
		return nil
	})
}

// backoff returns the wait after the n-th consecutive failure: MinBackoff
// doubled n-1 times, capped at MaxBackoff, then jittered into [d/2, d].
func (r *Relay) backoff(n int) time.Duration {
	d := r.opts.MinBackoff
	for i := 1; i < n && d < r.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, r.opts.MaxBackoff)
	half := d / 2
	return half + rand.N(d-half+1)
}

// sleep waits for d, ctx or (if wakeable) Notify. It reports false if ctx
// is done.
func (r *Relay) sleep(ctx context.Context, d time.Duration, wakeable bool) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	var wake <-chan struct{}
	if wakeable {
		wake = r.wake
	}
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	case <-wake:
		return true
	}
}

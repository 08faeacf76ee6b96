package outbox

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eastwest/labourlink/services/platform/backoff"
	"github.com/eastwest/labourlink/services/platform/failpoint"
	"github.com/eastwest/labourlink/services/platform/metrics"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/platform/tracing"
)

// Result is what a DeliverFunc did with the entries it was given.
type Result struct {
	// Done counts the entries, from the first, that were dealt with: delivered, or refused for
	// good (those are in Refused). The relay removes them from the queue.
	Done int
	// Refused holds the refusals of entries among the first Done, by index: the relay moves
	// them to the quarantine.
	Refused map[int]Refusal
}

// Refuse records that entries[i] was refused for good.
func (r *Result) Refuse(i int, why Refusal) {
	if r.Refused == nil {
		r.Refused = map[int]Refusal{}
	}
	r.Refused[i] = why
}

// DeliverFunc delivers entries, in order, to the destination. It returns what it dealt with
// (Result.Done entries from the first, each delivered or refused for good) and, when it stopped
// early, the error of the first entry it could not deliver: that entry and the later entries of
// its ordering key are retried after a backoff; the others are given again at once. The
// receiver must be idempotent on Entry.ID, since an entry can be delivered again after a crash.
type DeliverFunc func(ctx context.Context, entries []Entry) (Result, error)

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
	// Describe says in a few words what an entry is, for the quarantine and the logs (never
	// personal data). Default: the payload's type.
	Describe func(Entry) string
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Metrics, when set, counts the failed deliveries of the relay's destination.
	Metrics *metrics.Registry
}

func (o Options) withDefaults(db *store.DB) Options {
	if o.BatchSize <= 0 {
		o.BatchSize = 100
	}
	b := backoff.Policy{Min: o.MinBackoff, Max: o.MaxBackoff}.WithDefaults(200*time.Millisecond, 30*time.Second)
	o.MinBackoff, o.MaxBackoff = b.Min, b.Max
	if o.PollInterval <= 0 {
		o.PollInterval = 500 * time.Millisecond
	}
	if o.IDPrefix == "" {
		o.IDPrefix = db.InstanceID()
	}
	if o.Describe == nil {
		o.Describe = func(e Entry) string { return typeName(e.Payload.GetTypeUrl()) }
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Status is what a relay knows of its link, for operators.
type Status struct {
	// Running is true while Run runs.
	Running bool
	// LastDelivery is when a delivery last succeeded (zero: not since the relay started).
	LastDelivery time.Time
	// LastError is the last delivery error, "" once deliveries succeed again and no entry waits
	// after a failure of its own.
	LastError string
	// LastErrorTime is when LastError happened.
	LastErrorTime time.Time
	// ConsecutiveFailures counts failed deliveries since the last success.
	ConsecutiveFailures int
	// FailingSince is when the first of those failures happened (zero while none).
	FailingSince time.Time
	// Quarantined counts the entries this relay moved to the quarantine since it started.
	Quarantined int
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

	// Run's goroutine only:
	damaged   map[uint64]bool      // undecodable entries already logged
	notBefore map[uint64]time.Time // entries waiting after a failed delivery

	mu     sync.Mutex
	status Status
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
		notBefore:   make(map[uint64]time.Time),
	}
}

// Destination returns the relay's destination.
func (r *Relay) Destination() string { return r.destination }

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

// Status returns what the relay knows of its link.
func (r *Relay) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

func (r *Relay) setStatus(fn func(*Status)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn(&r.status)
}

// Run delivers entries until ctx is done, then returns nil. It returns an
// error only if the store is closed.
func (r *Relay) Run(ctx context.Context) error {
	r.opts.Metrics.InitializeDestination(r.destination)
	r.setStatus(func(s *Status) { s.Running = true })
	defer r.setStatus(func(s *Status) { s.Running = false })
	failures := 0 // consecutive failures, for the backoff
	for {
		if ctx.Err() != nil {
			return nil
		}
		entries, nextRetry, err := r.read()
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
			wait := r.opts.PollInterval
			if !nextRetry.IsZero() {
				wait = min(wait, max(nextRetry.Sub(r.opts.Now()), time.Millisecond))
			}
			if !r.sleep(ctx, wait, true) {
				return nil
			}
			continue
		}

		dctx, span := startDelivery(ctx, r.destination, entries)
		res, derr := r.deliver(dctx, entries)
		// Entries after Done that were not attempted (no error) are read again at once.
		res.Done = min(max(res.Done, 0), len(entries))
		endDelivery(span, res, derr)
		failpoint.Inject(failpoint.RelayAfterDeliver)
		if res.Done > 0 {
			// Settle even if ctx is done meanwhile, so that a delivered entry is not sent again
			// after a restart.
			if err := r.settle(entries[:res.Done], res.Refused); err != nil {
				if errors.Is(err, bberrors.ErrDatabaseNotOpen) {
					return err
				}
				failures++
				r.lg.Error("remove delivered outbox entries", zap.Error(err))
				if !r.sleep(ctx, r.backoff(failures), false) {
					return nil
				}
				continue
			}
			if len(res.Refused) < res.Done {
				now := r.opts.Now()
				r.setStatus(func(s *Status) { s.LastDelivery = now })
			}
			r.lg.Debug("outbox entries delivered", zap.Int("entries", res.Done),
				zap.String("last_id", entries[res.Done-1].ID))
		}
		if derr == nil {
			if failures > 0 {
				r.lg.Info("outbox delivery works again", zap.Int("after_failures", failures))
			}
			failures = 0
			// The link works again; the last error is cleared once no entry waits after a
			// failure of its own (one that keeps failing stays visible while others get through).
			clear := len(r.notBefore) == 0
			r.setStatus(func(s *Status) {
				s.ConsecutiveFailures, s.FailingSince = 0, time.Time{}
				if clear {
					s.LastError, s.LastErrorTime = "", time.Time{}
				}
			})
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		if res.Done >= len(entries) {
			res.Done = len(entries) - 1 // an error names an entry not dealt with
		}
		failed := entries[res.Done]
		failures++
		wait := r.backoff(failures)
		now := r.opts.Now()
		if status.Code(derr) != codes.Unavailable {
			// The peer answered, or timed out on this entry: it and its key wait twice as long as
			// the destination, so that the entries behind it that do not depend on it go first.
			// (UNAVAILABLE is the link or the peer as a whole: every entry waits alike.)
			r.notBefore[failed.Seq] = now.Add(2 * wait)
		}
		r.opts.Metrics.DeliveryFailed(r.destination)
		if uerr := r.countAttempt(failed); uerr != nil {
			r.lg.Error("record outbox delivery attempt", zap.Error(uerr))
		}
		r.setStatus(func(s *Status) {
			s.LastError, s.LastErrorTime, s.ConsecutiveFailures = derr.Error(), now, failures
			if s.FailingSince.IsZero() {
				s.FailingSince = now
			}
		})
		r.lg.Warn("outbox delivery failed, will retry",
			zap.String("id", failed.ID),
			zap.String("message", r.opts.Describe(failed)),
			zap.Uint32("attempts", failed.Attempts+1),
			zap.Duration("retry_in", wait),
			zap.Error(derr))
		if !r.sleep(ctx, wait, false) {
			return nil
		}
	}
}

// read returns up to BatchSize entries in key order, copied out of the transaction: entries
// waiting after a failure, and the later entries of their ordering keys, are left out. It also
// returns when the first of the waiting entries may be tried again (zero if none waits).
func (r *Relay) read() ([]Entry, time.Time, error) {
	var entries []Entry
	var nextRetry time.Time
	now := r.opts.Now()
	held := map[string]bool{} // ordering keys held back by a waiting entry
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
			if env.key != "" && held[env.key] {
				continue
			}
			if t, ok := r.notBefore[seq]; ok && now.Before(t) {
				if env.key != "" {
					held[env.key] = true
				}
				if nextRetry.IsZero() || t.Before(nextRetry) {
					nextRetry = t
				}
				continue
			}
			entries = append(entries, r.entryOf(seq, env))
		}
		return nil
	})
	return entries, nextRetry, err
}

func (r *Relay) entryOf(seq uint64, env envelope) Entry {
	return Entry{
		Seq:         seq,
		ID:          entryID(r.opts.IDPrefix, seq),
		Destination: env.destination,
		Key:         env.key,
		Payload:     env.payload,
		CreatedAt:   env.createdAt,
		Attempts:    env.attempts,
		Trace:       tracing.FromCarrier(env.trace),
	}
}

// settle removes dealt-with entries from the queue and moves the refused ones to the
// quarantine, in one transaction.
func (r *Relay) settle(entries []Entry, refused map[int]Refusal) error {
	now := r.opts.Now()
	err := r.db.Update(func(tx *bbolt.Tx) error {
		b := destBucket(tx, r.destination)
		if b == nil {
			return nil
		}
		for i, e := range entries {
			if why, ok := refused[i]; ok {
				if err := quarantine(tx, e, why, r.opts.Describe(e), now); err != nil {
					return err
				}
			}
			if err := b.Delete(store.Uint64Key(e.Seq)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, e := range entries {
		delete(r.notBefore, e.Seq)
		if why, ok := refused[i]; ok {
			r.lg.Error("peer refused a message for good; quarantined for an operator",
				zap.String("id", e.ID), zap.String("message", r.opts.Describe(e)),
				zap.String("reason", why.Reason), zap.Stringer("code", why.Code), zap.String("detail", why.Message))
		}
	}
	if len(refused) > 0 {
		r.setStatus(func(s *Status) { s.Quarantined += len(refused) })
	}
	return nil
}

// countAttempt records one more failed delivery on the entry.
func (r *Relay) countAttempt(e Entry) error {
	return r.db.Update(func(tx *bbolt.Tx) error {
		b := destBucket(tx, r.destination)
		if b == nil {
			return nil
		}
		key := store.Uint64Key(e.Seq)
		v := b.Get(key)
		if v == nil {
			return nil
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
		return b.Put(key, nv)
	})
}

// backoff returns the wait after the n-th consecutive failure (services/platform/backoff).
func (r *Relay) backoff(n int) time.Duration {
	return backoff.Policy{Min: r.opts.MinBackoff, Max: r.opts.MaxBackoff}.Delay(n)
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

// Package feedlog is the change log behind the two feeds of the receiving service, the demand
// feed (every change to a vacancy; services/receiving/vacancies appends, services/receiving/feed
// serves) and the decision feed (every change of a candidate's state; services/receiving/candidates).
// Both work alike:
//
//   - Revisions are allocated from a named counter (store.NextCounter) inside the transaction
//     that makes the change (Feed.Append), so they have no gaps, and bbolt's single writer
//     commits them in order. A reader's snapshot therefore always holds revisions
//     compacted+1 .. head, all of them.
//   - Entries are stored under the big-endian revision in the feed's table.
//   - After every commit through DB the watchers are woken. A watcher takes the wake-up channel
//     BEFORE reading, so a commit that its read missed closes that channel and the watcher reads
//     again: nothing is lost between replay and live changes.
//   - Compaction keeps the newest retention entries and records the highest removed revision;
//     asking for changes after an older revision is FAILED_PRECONDITION with reason
//     REVISION_COMPACTED.
//   - Progress notices (as etcd's progress_notify): a watch stream sends a response without an
//     entry (WatchDemandResponse without `change`, WatchDecisionsResponse without `candidate`)
//     as soon as it has replayed everything up to the head, and then every progress interval
//     (default 2 s), each time right after a read that found nothing more to send. A notice
//     tells the consumer "you have every change up to now" (the sending service's replica is
//     known current as of the notice) and "this stream answers": a consumer that hears nothing
//     for several intervals knows within seconds that the link is down or stalled, also
//     behind a proxy that answers keepalive pings itself. A consumer that predates notices
//     reads one as a change at revision 0 and skips it as a repeat.
package feedlog

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/paging"
	"github.com/eastwest/labourlink/services/platform/store"
)

// Feed is one change log: entries of type M under their revision in Table.
type Feed[M proto.Message] struct {
	// Name is "demand" or "decision", for messages and logs.
	Name  string
	Table store.Table[M]
	// HeadKey names the counter of the newest revision; CompactedKey the counter of the
	// highest compacted revision (0: nothing compacted).
	HeadKey, CompactedKey []byte
	// Relist says what a consumer must do after REVISION_COMPACTED.
	Relist string
}

// Append stores fill(rev) at the feed's next revision rev, in tx, and returns rev.
func (f Feed[M]) Append(tx *bbolt.Tx, fill func(rev int64) M) (int64, error) {
	rev, err := store.NextCounter(tx, f.HeadKey)
	if err != nil {
		return 0, err
	}
	if err := f.Table.Put(tx, store.Uint64Key(rev), fill(int64(rev))); err != nil {
		return 0, err
	}
	return int64(rev), nil
}

// Head returns the newest revision in tx's snapshot.
func (f Feed[M]) Head(tx *bbolt.Tx) int64 { return int64(store.Counter(tx, f.HeadKey)) }

// compactedError is the error for a consumer whose position is no longer kept.
func (f Feed[M]) compactedError(after, compacted uint64) error {
	return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_REVISION_COMPACTED,
		"the %s feed no longer keeps the changes after revision %d (changes up to revision %d are compacted): %s",
		f.Name, after, compacted, f.Relist).
		WithMetadata("after_revision", fmt.Sprint(after)).
		WithMetadata("compacted_revision", fmt.Sprint(compacted))
}

// Read returns up to limit entries after revision after (limit <= 0: no limit) and the head.
// keep, if set, filters entries (the scan continues past skipped ones); scanned is the last
// revision looked at.
func (f Feed[M]) Read(tx *bbolt.Tx, after uint64, limit int, keep func(M) bool) (entries []M, head, scanned uint64, err error) {
	head = store.Counter(tx, f.HeadKey)
	compacted := store.Counter(tx, f.CompactedKey)
	if after < compacted {
		return nil, head, after, f.compactedError(after, compacted)
	}
	if after > head {
		return nil, head, after, apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_REVISION_AHEAD,
			"revision %d is ahead of the %s feed, whose newest revision is %d: this service's data is not the one the revision came from; %s",
			after, f.Name, head, f.Relist)
	}
	scanned = after
	err = f.Table.Scan(tx, store.Range{After: store.Uint64Key(after)}, func(k []byte, m M) (bool, error) {
		if limit > 0 && len(entries) >= limit {
			return false, nil
		}
		scanned = store.KeyUint64(k)
		if keep == nil || keep(m) {
			entries = append(entries, m)
		}
		return true, nil
	})
	if err != nil {
		return nil, head, after, err
	}
	return entries, head, scanned, nil
}

// List reads a page of up to size entries after revision after (keep as for Read) and returns
// them with the feed's head revision.
func (f Feed[M]) List(db *DB, after int64, size int, keep func(M) bool) ([]M, int64, error) {
	var entries []M
	var head uint64
	err := db.View(func(tx *bbolt.Tx) error {
		var err error
		entries, head, _, err = f.Read(tx, uint64(after), size, keep)
		return err
	})
	return entries, int64(head), err
}

// compactChunk is the most entries one compaction transaction removes.
const compactChunk = 10000

// compactStep removes up to compactChunk of the oldest entries beyond retention, in tx, and
// returns how many.
func (f Feed[M]) compactStep(tx *bbolt.Tx, retention uint64) (int, error) {
	head := store.Counter(tx, f.HeadKey)
	compacted := store.Counter(tx, f.CompactedKey)
	if head <= retention || compacted >= head-retention {
		return 0, nil
	}
	target := min(head-retention, compacted+compactChunk)
	n := 0
	for rev := compacted + 1; rev <= target; rev++ {
		if err := f.Table.Delete(tx, store.Uint64Key(rev)); err != nil {
			return n, err
		}
		n++
	}
	return n, store.SetCounter(tx, f.CompactedKey, target)
}

// Compact removes the oldest entries beyond the newest retention, at most compactChunk per
// transaction, and returns how many it removed.
func (f Feed[M]) Compact(ctx context.Context, db *DB, retention int) (int, error) {
	removed := 0
	for ctx.Err() == nil {
		var n int
		err := db.DB.Update(func(tx *bbolt.Tx) error {
			var err error
			n, err = f.compactStep(tx, uint64(retention))
			return err
		})
		if err != nil {
			return removed, err
		}
		removed += n
		if n == 0 {
			return removed, nil
		}
	}
	return removed, ctx.Err()
}

// Watching configures watches.
type Watching struct {
	// PairingRecheck is how often a watch checks that its sending province is still paired.
	PairingRecheck time.Duration
	// ProgressInterval is how often a watch with nothing to send sends a progress notice.
	ProgressInterval time.Duration
	// Stopping is closed when the service stops: open watches then end with UNAVAILABLE.
	Stopping <-chan struct{}
}

// watchPage is how many entries a watcher reads per transaction while replaying.
const watchPage = 500

// Watch sends every entry of f after revision after, then every new one as it is committed,
// until ctx ends or send fails. keep filters entries (nil: all). Once it has sent everything up
// to the head, and then every ProgressInterval, it calls progress (a progress notice). Every
// PairingRecheck it calls paired: PERMISSION_DENIED from it (a province unpaired meanwhile)
// ends the watch; any other error (a registry that cannot be asked) leaves it open, the next
// check tries again.
func Watch[M proto.Message](ctx context.Context, db *DB, w Watching, f Feed[M], after uint64, keep func(M) bool,
	send func(M) error, progress func() error, paired func(context.Context) error) error {
	recheck := time.NewTicker(w.PairingRecheck)
	defer recheck.Stop()
	notice := time.NewTicker(w.ProgressInterval)
	defer notice.Stop()
	noticeDue := true // the first notice says that the replay is done
	for {
		wake := db.changed()
		var entries []M
		var head, scanned uint64
		err := db.View(func(tx *bbolt.Tx) error {
			var err error
			entries, head, scanned, err = f.Read(tx, after, watchPage, keep)
			return err
		})
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := send(e); err != nil {
				return err
			}
		}
		after = scanned
		if after < head {
			continue // more to replay
		}
		if noticeDue {
			// Sent only right after a read that found nothing more: everything up to the head
			// of that read has been sent.
			if err := progress(); err != nil {
				return err
			}
			noticeDue = false
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.Stopping:
			return apierror.Unavailable("the receiving service is stopping; resume from revision %d", after)
		case <-recheck.C:
			if err := paired(ctx); apierror.Code(err) == codes.PermissionDenied {
				return err
			}
		case <-notice.C:
			noticeDue = true // read again first: the notice must follow whatever was committed
		case <-wake:
		}
	}
}

// DB is the service's store that wakes the feeds' watchers after every commit. Every change of
// the receiving service goes through its Update or UpdateOnce.
type DB struct {
	*store.DB
	mu sync.Mutex
	ch chan struct{}
}

// NewDB wraps db.
func NewDB(db *store.DB) *DB { return &DB{DB: db} }

// changed returns a channel that is closed at the next commit.
func (d *DB) changed() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ch == nil {
		d.ch = make(chan struct{})
	}
	return d.ch
}

func (d *DB) notify() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ch != nil {
		close(d.ch)
		d.ch = nil
	}
}

// Update runs fn in a read-write transaction and, once it has committed, wakes the watchers.
func (d *DB) Update(fn func(tx *bbolt.Tx) error) error {
	if err := d.DB.Update(fn); err != nil {
		return err
	}
	d.notify()
	return nil
}

// UpdateOnce is store.DB.UpdateOnce (request-id idempotency) that wakes the watchers once the
// change has committed.
func (d *DB) UpdateOnce(now time.Time, method string, req, resp proto.Message, fn func(tx *bbolt.Tx) error) error {
	if err := d.DB.UpdateOnce(now, method, req, resp, fn); err != nil {
		return err
	}
	d.notify()
	return nil
}

// Load reads one value in a read-only transaction with get, a store function of a subsystem
// (the Get handlers: feedlog.Load(db, vacancies.Get, id)).
func Load[K, T any](db *DB, get func(*bbolt.Tx, K) (T, error), key K) (T, error) {
	var v T
	err := db.View(func(tx *bbolt.Tx) error {
		var err error
		v, err = get(tx, key)
		return err
	})
	return v, err
}

// List reads the page of up to size values of t after the page token of listing that keep
// accepts (all when nil), and the token of the next page ("" on the last page).
func List[M proto.Message](db *DB, t store.Table[M], listing paging.Listing, token string, size int, keep func(M) bool) ([]M, string, error) {
	return ListIn(db, t, nil, listing, token, size, keep)
}

// ListIn is List over the keys of t with prefix only (all keys when nil). The listing must
// bind the prefix (a filter of the request), so that a token is never used with another.
func ListIn[M proto.Message](db *DB, t store.Table[M], prefix []byte, listing paging.Listing, token string, size int, keep func(M) bool) ([]M, string, error) {
	after, err := listing.Decode(token)
	if err != nil {
		return nil, "", err
	}
	var accept func([]byte, M) bool
	if keep != nil {
		accept = func(_ []byte, m M) bool { return keep(m) }
	}
	var page store.Page[M]
	err = db.View(func(tx *bbolt.Tx) error {
		var err error
		page, err = t.Page(tx, store.Range{Prefix: prefix, After: after}, size, accept)
		return err
	})
	if err != nil || page.Last == nil {
		return page.Items, "", err
	}
	return page.Items, listing.Token(page.Last), nil
}

// Package feedlog is the change log behind the feeds of the receiving service: the demand
// feed (every change to a vacancy; services/receiving/vacancies appends, services/receiving/feed
// serves) and the decision feed (every change of a candidate's state; services/receiving/candidates).
// The employment feed (what happened to the workers of each sending province;
// services/receiving/intake appends and serves) is a family of such logs, one per sending
// province, in one table (Feeds). All work alike:
//
//   - Revisions are allocated from a named counter (store.NextCounter) inside the transaction
//     that makes the change (Feed.Append), so they have no gaps, and bbolt's single writer
//     commits them in order. A reader's snapshot therefore always holds revisions
//     compacted+1 .. head, all of them.
//   - Entries are stored under the big-endian revision in the feed's table (after the feed's
//     prefix in a table that several feeds share).
//   - After every commit through DB the watchers are woken. A watcher takes the wake-up channel
//     BEFORE reading, so a commit that its read missed closes that channel and the watcher reads
//     again: nothing is lost between replay and live changes.
//   - Compaction keeps the newest retention entries and records the highest removed revision;
//     asking for changes after an older revision is FAILED_PRECONDITION with reason
//     REVISION_COMPACTED.
//   - Every message of a watch carries the feed's head revision (of the read the message comes
//     from), so a follower sees how far behind it is. Messages are a oneof of what they carry
//     (WatchDemandResponse.event, WatchDecisionsResponse.event): an entry, or a progress notice
//     (receivingv1.FeedProgress, as etcd's progress_notify). Watch gives both as one Sent value,
//     and Respond makes any response of that shape from it, so a new feed's watch (the
//     employment feed) takes the shape with one line.
//   - Progress notices: a watch stream sends one with caught_up as soon as it has replayed
//     everything up to the head, and then every progress interval (default 2 s), each time
//     right after a read that found nothing more to send. A notice tells the consumer "you have
//     every change up to head_revision" (the sending service's replica is known current as of
//     the notice; for a filtered feed the consumer may take the head as its position) and "this
//     stream answers": a consumer that hears nothing for several intervals knows within seconds
//     that the link is down or stalled, also behind a proxy that answers keepalive pings itself.
package feedlog

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/paging"
	"github.com/eastwest/labourlink/services/platform/store"
)

// Feed is one change log: entries of type M under their revision in Table.
type Feed[M proto.Message] struct {
	// Name is "demand" or "decision", for messages and logs.
	Name  string
	Table store.Table[M]
	// Prefix, when set, is put before every revision key: several feeds then share Table, each
	// under its own prefix (Feeds). nil for a feed that has its table to itself.
	Prefix []byte
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
	if err := f.Table.Put(tx, f.key(rev), fill(int64(rev))); err != nil {
		return 0, err
	}
	return int64(rev), nil
}

// key is the table key of revision rev.
func (f Feed[M]) key(rev uint64) []byte {
	return append(bytes.Clone(f.Prefix), store.Uint64Key(rev)...)
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
	err = f.Table.Scan(tx, store.Range{Prefix: f.Prefix, After: f.key(after)}, func(k []byte, m M) (bool, error) {
		if limit > 0 && len(entries) >= limit {
			return false, nil
		}
		scanned = store.KeyUint64(k[len(f.Prefix):])
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
		if err := f.Table.Delete(tx, f.key(rev)); err != nil {
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

// Feeds is a family of change logs keyed by a string, all in one table: the employment feed,
// one log per sending province (key: the province code). Each log (Of) is a Feed of its own
// with its own gapless revisions from 1, its own head and compacted counters
// ("{Name}.{key}.head", "{Name}.{key}.compacted") and its keys under the prefix key + 0x00, so
// everything a Feed does (Append, Read, List, Watch, Compact) works on it unchanged.
type Feeds[M proto.Message] struct {
	// Name is the family's name ("employment"), for messages, logs and counter names.
	Name  string
	Table store.Table[M]
	// Relist says what a consumer must do after REVISION_COMPACTED.
	Relist string
}

// Of returns the log of key.
func (fs Feeds[M]) Of(key string) Feed[M] {
	return Feed[M]{
		Name:    fs.Name + " (" + key + ")",
		Table:   fs.Table,
		Prefix:  append([]byte(key), 0),
		HeadKey: []byte(fs.Name + "." + key + ".head"), CompactedKey: []byte(fs.Name + "." + key + ".compacted"),
		Relist: fs.Relist,
	}
}

// Keys returns, in order, the keys of the logs that have had at least one entry (in tx's
// snapshot: those with a head counter).
func (fs Feeds[M]) Keys(tx *bbolt.Tx) []string {
	b := tx.Bucket(store.BucketCounters)
	if b == nil {
		return nil
	}
	var keys []string
	prefix := []byte(fs.Name + ".")
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if key, ok := strings.CutSuffix(string(k[len(prefix):]), ".head"); ok {
			keys = append(keys, key)
		}
	}
	return keys
}

// Compact compacts every log of the family to its newest retention entries (Feed.Compact) and
// returns how many entries it removed, by key (only keys where it removed some).
func (fs Feeds[M]) Compact(ctx context.Context, db *DB, retention int) (map[string]int, error) {
	var keys []string
	if err := db.View(func(tx *bbolt.Tx) error { keys = fs.Keys(tx); return nil }); err != nil {
		return nil, err
	}
	removed := map[string]int{}
	for _, k := range keys {
		n, err := fs.Of(k).Compact(ctx, db, retention)
		if n > 0 {
			removed[k] = n
		}
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// Watching configures watches.
type Watching struct {
	// PairingRecheck is how often a watch checks that its sending province is still paired.
	PairingRecheck time.Duration
	// ProgressInterval is how often a watch with nothing to send sends a progress notice.
	ProgressInterval time.Duration
	// Ticker starts the ticks of the progress notices (every ProgressInterval) and returns them
	// with the function that stops them; nil for a time.Ticker. Tests give ticks they control.
	Ticker func(d time.Duration) (ticks <-chan time.Time, stop func())
	// Stopping is closed when the service stops: open watches then end with UNAVAILABLE.
	Stopping <-chan struct{}
}

// ticker starts the progress ticks (see Ticker).
func (w Watching) ticker() (<-chan time.Time, func()) {
	if w.Ticker != nil {
		return w.Ticker(w.ProgressInterval)
	}
	t := time.NewTicker(w.ProgressInterval)
	return t.C, t.Stop
}

// Sent is one message of a watch stream: an entry, or a progress notice, with the feed's head
// revision when it was read. Exactly one of Entry and Progress is set.
type Sent[M proto.Message] struct {
	Entry    M
	Progress *receivingv1.FeedProgress
	Head     int64
}

// Respond returns the send function for Watch of a stream whose responses R have the watch
// shape (docs/api.md "Feeds"): an int64 `head_revision` and a oneof `event` with a field of the
// entry's type M and a FeedProgress field. send is the stream's Send. A response type without
// that shape is a programming error: every message is then refused with it.
func Respond[M, R proto.Message](send func(R) error) func(Sent[M]) error {
	var r R
	var m M
	md := r.ProtoReflect().Descriptor()
	head := md.Fields().ByName("head_revision")
	var entry, progress protoreflect.FieldDescriptor
	if event := md.Oneofs().ByName("event"); event != nil {
		for i := range event.Fields().Len() {
			f := event.Fields().Get(i)
			switch f.Message().FullName() {
			case m.ProtoReflect().Descriptor().FullName():
				entry = f
			case (*receivingv1.FeedProgress)(nil).ProtoReflect().Descriptor().FullName():
				progress = f
			}
		}
	}
	if head == nil || head.Kind() != protoreflect.Int64Kind || entry == nil || progress == nil {
		err := fmt.Errorf("%s has not the watch shape (head_revision, oneof event of %s and FeedProgress)", md.FullName(), m.ProtoReflect().Descriptor().FullName())
		return func(Sent[M]) error { return err }
	}
	return func(s Sent[M]) error {
		resp := r.ProtoReflect().New()
		resp.Set(head, protoreflect.ValueOfInt64(s.Head))
		if s.Progress != nil {
			resp.Set(progress, protoreflect.ValueOfMessage(s.Progress.ProtoReflect()))
		} else {
			resp.Set(entry, protoreflect.ValueOfMessage(s.Entry.ProtoReflect()))
		}
		return send(resp.Interface().(R))
	}
}

// watchPage is how many entries a watcher reads per transaction while replaying.
const watchPage = 500

// Watch sends every entry of f after revision after, then every new one as it is committed,
// until ctx ends or send fails. keep filters entries (nil: all). Every message carries the head
// revision of the read it comes from. Once it has sent everything up to the head, and then
// every ProgressInterval, it sends a progress notice with caught_up (right after a read that
// found nothing more, so the head it gives is covered). Every PairingRecheck it calls paired:
// PERMISSION_DENIED from it (a province unpaired meanwhile) ends the watch; any other error (a
// registry that cannot be asked) leaves it open, the next check tries again.
func Watch[M proto.Message](ctx context.Context, db *DB, w Watching, f Feed[M], after uint64, keep func(M) bool,
	send func(Sent[M]) error, paired func(context.Context) error) error {
	recheck := time.NewTicker(w.PairingRecheck)
	defer recheck.Stop()
	notice, stop := w.ticker()
	defer stop()
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
			if err := send(Sent[M]{Entry: e, Head: int64(head)}); err != nil {
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
			if err := send(Sent[M]{Progress: &receivingv1.FeedProgress{CaughtUp: true}, Head: int64(head)}); err != nil {
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
		case <-notice:
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

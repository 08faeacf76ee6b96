package receiving

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/eastwest/labourlink/proto/labour/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labour/receiving/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/store"
)

// The two feeds of this service, the demand feed (every change to a vacancy) and the decision
// feed (every change of a candidate's state), work alike:
//
//   - Revisions are allocated from a counter in BucketCounters inside the transaction that makes
//     the change, so they have no gaps, and bbolt's single writer commits them in order. A
//     reader's snapshot therefore always holds revisions compacted+1 .. head, all of them.
//   - Entries are stored under the big-endian revision in the feed's bucket.
//   - After every commit the feed's broadcaster wakes the watchers. A watcher takes the wake-up
//     channel BEFORE reading, so a commit that its read missed closes that channel and the
//     watcher reads again: nothing is lost between replay and live changes.
//   - Compaction keeps the newest FeedRetention entries and records the highest removed
//     revision; asking for changes after an older revision is FAILED_PRECONDITION with reason
//     REVISION_COMPACTED.
//   - Progress notices (as etcd's progress_notify): a watch stream sends a response without an
//     entry (WatchDemandResponse without `change`, WatchDecisionsResponse without `candidate`)
//     as soon as it has replayed everything up to the head, and then every ProgressInterval
//     (default 2 s), each time right after a read that found nothing more to send. A notice
//     tells the consumer "you have every change up to now" (the sending service's replica is
//     known current as of the notice) and "this stream answers": a consumer that hears nothing
//     for several intervals knows within seconds that the link is down or stalled, also
//     behind a proxy that answers keepalive pings itself. A consumer that predates notices
//     reads one as a change at revision 0 and skips it as a repeat.

// feed describes one of the two feeds.
type feed struct {
	name      string // "demand" or "decision", for messages and logs
	bucket    []byte
	headKey   []byte // counter: newest revision
	compacted []byte // counter: highest compacted revision (0: nothing compacted)
	relist    string // what a consumer must do after REVISION_COMPACTED
	bc        broadcaster
}

func demandFeed() *feed {
	return &feed{
		name: "demand", bucket: store.BucketVacancyChanges,
		headKey: []byte("demand.head"), compacted: []byte("demand.compacted"),
		relist: "re-list the open vacancies with ListOpenDemand and follow the feed from the revision that listing returns",
	}
}

func decisionFeed() *feed {
	return &feed{
		name: "decision", bucket: store.BucketDecisions,
		headKey: []byte("decision.head"), compacted: []byte("decision.compacted"),
		relist: "re-read your candidates with ListCandidates (filter sending_region) and follow the feed from the head_revision of a ListDecisions call made before that listing",
	}
}

// broadcaster wakes every goroutine waiting for a commit.
type broadcaster struct {
	mu sync.Mutex
	ch chan struct{}
}

// wait returns a channel that is closed at the next notify.
func (b *broadcaster) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

func (b *broadcaster) notify() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}

// update runs fn in a read-write transaction and, once it has committed, wakes the feeds'
// watchers. Every change of this service goes through it.
func (s *Service) update(fn func(tx *bbolt.Tx) error) error {
	if err := s.db.Update(fn); err != nil {
		return err
	}
	s.demand.bc.notify()
	s.decisions.bc.notify()
	return nil
}

// updateOnce is update with request-id idempotency: for a request id seen before, resp gets the
// response stored for it and fn does not run; otherwise fn makes the change and fills resp, which
// is stored for the request id in the same transaction. An error from fn stores nothing.
func (s *Service) updateOnce(method string, req, resp proto.Message, fn func(tx *bbolt.Tx) error) error {
	return s.update(func(tx *bbolt.Tx) error {
		if ok, err := store.Recall(tx, method, req, resp); err != nil || ok {
			return err
		}
		if err := fn(tx); err != nil {
			return err
		}
		return store.Remember(tx, s.now(), method, req, resp)
	})
}

// counter reads a named counter (0 when unset).
func counter(tx *bbolt.Tx, key []byte) uint64 {
	return store.KeyUint64(tx.Bucket(store.BucketCounters).Get(key))
}

func setCounter(tx *bbolt.Tx, key []byte, n uint64) error {
	return tx.Bucket(store.BucketCounters).Put(key, store.Uint64Key(n))
}

// nextCounter increments a named counter and returns the new value.
func nextCounter(tx *bbolt.Tx, key []byte) (uint64, error) {
	n := counter(tx, key) + 1
	return n, setCounter(tx, key, n)
}

// appendEntry stores m at the feed's next revision and returns the revision.
func (f *feed) appendEntry(tx *bbolt.Tx, fill func(rev int64) proto.Message) (int64, error) {
	rev, err := nextCounter(tx, f.headKey)
	if err != nil {
		return 0, err
	}
	if err := store.PutProto(tx.Bucket(f.bucket), store.Uint64Key(rev), fill(int64(rev))); err != nil {
		return 0, err
	}
	return int64(rev), nil
}

// compactedError is the error for a consumer whose position is no longer kept.
func (f *feed) compactedError(after, compacted uint64) error {
	return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_REVISION_COMPACTED,
		"the %s feed no longer keeps the changes after revision %d (changes up to revision %d are compacted): %s",
		f.name, after, compacted, f.relist).
		WithMetadata("after_revision", fmt.Sprint(after)).
		WithMetadata("compacted_revision", fmt.Sprint(compacted))
}

// feedEntry is one raw entry read from a feed (bytes copied out of the transaction).
type feedEntry struct {
	rev  uint64
	data []byte
}

// read returns up to limit entries after revision after (limit <= 0: no limit) and the head.
// keep, if set, filters entries by their raw bytes (the scan continues past skipped ones);
// scanned is the last revision looked at.
func (f *feed) read(tx *bbolt.Tx, after uint64, limit int, keep func([]byte) (bool, error)) (entries []feedEntry, head, scanned uint64, err error) {
	head = counter(tx, f.headKey)
	compacted := counter(tx, f.compacted)
	if after < compacted {
		return nil, head, after, f.compactedError(after, compacted)
	}
	if after > head {
		return nil, head, after, apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_REVISION_AHEAD,
			"revision %d is ahead of the %s feed, whose newest revision is %d: this service's data is not the one the revision came from; %s",
			after, f.name, head, f.relist)
	}
	scanned = after
	c := tx.Bucket(f.bucket).Cursor()
	for k, v := c.Seek(store.Uint64Key(after + 1)); k != nil; k, v = c.Next() {
		if limit > 0 && len(entries) >= limit {
			break
		}
		scanned = store.KeyUint64(k)
		if keep != nil {
			ok, err := keep(v)
			if err != nil {
				return nil, head, after, err
			}
			if !ok {
				continue
			}
		}
		entries = append(entries, feedEntry{rev: scanned, data: bytes.Clone(v)})
	}
	return entries, head, scanned, nil
}

// watchPage is how many entries a watcher reads per transaction while replaying.
const watchPage = 500

// watch sends every entry after revision after, then every new one as it is committed, until
// ctx ends or send fails, for the sending province sending. keep filters entries (nil: all).
// Once it has sent everything up to the head, and then every ProgressInterval, it calls
// progress (a progress notice; see the file comment). Every PairingRecheck it checks that
// sending is still paired: a province unpaired meanwhile gets PERMISSION_DENIED and no further
// changes (a registry that cannot be asked leaves the stream open; the next check tries again).
func (s *Service) watch(ctx context.Context, f *feed, sending string, after uint64, keep func([]byte) (bool, error), send func(feedEntry) error, progress func() error) error {
	recheck := time.NewTicker(s.cfg.PairingRecheck)
	defer recheck.Stop()
	notice := time.NewTicker(s.cfg.ProgressInterval)
	defer notice.Stop()
	noticeDue := true // the first notice says that the replay is done
	for {
		wake := f.bc.wait()
		var entries []feedEntry
		var head, scanned uint64
		err := s.db.View(func(tx *bbolt.Tx) error {
			var err error
			entries, head, scanned, err = f.read(tx, after, watchPage, keep)
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
		case <-s.stopping:
			return apierror.Unavailable("the receiving service is stopping; resume from revision %d", after)
		case <-recheck.C:
			if err := s.requirePaired(ctx, sending); apierror.Code(err) == codes.PermissionDenied {
				return err
			}
		case <-notice.C:
			noticeDue = true // read again first: the notice must follow whatever was committed
		case <-wake:
		}
	}
}

// decoded returns a watch callback that decodes each entry's value and passes it to send.
func decoded[T any](decode func([]byte) (T, error), send func(T) error) func(feedEntry) error {
	return func(e feedEntry) error {
		v, err := decode(e.data)
		if err != nil {
			return err
		}
		return send(v)
	}
}

// listFeed reads a page of up to size entries of f after revision after (keep as for read) and
// returns their decoded values and the feed's head revision.
func listFeed[T any](s *Service, f *feed, after int64, size int, keep func([]byte) (bool, error), decode func([]byte) (T, error)) ([]T, int64, error) {
	var entries []feedEntry
	var head uint64
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		entries, head, _, err = f.read(tx, uint64(after), size, keep)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	var values []T
	for _, e := range entries {
		v, err := decode(e.data)
		if err != nil {
			return nil, 0, err
		}
		values = append(values, v)
	}
	return values, int64(head), nil
}

// compact removes the oldest entries of f beyond cfg.FeedRetention, at most compactChunk per
// transaction, and returns how many it removed.
func (s *Service) compact(ctx context.Context, f *feed) (int, error) {
	const compactChunk = 10000
	removed := 0
	for ctx.Err() == nil {
		n := 0
		err := s.db.Update(func(tx *bbolt.Tx) error {
			head := counter(tx, f.headKey)
			compacted := counter(tx, f.compacted)
			keep := uint64(s.cfg.FeedRetention)
			if head <= keep || compacted >= head-keep {
				return nil
			}
			target := min(head-keep, compacted+compactChunk)
			b := tx.Bucket(f.bucket)
			for rev := compacted + 1; rev <= target; rev++ {
				if err := b.Delete(store.Uint64Key(rev)); err != nil {
					return err
				}
				n++
			}
			return setCounter(tx, f.compacted, target)
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

// --- DemandFeedService ---

// ValidateRequest checks DemandFeedService requests before their handlers run.
func (x *feedServer) ValidateRequest(_ string, req any) error {
	var v apierror.Violations
	switch r := req.(type) {
	case *receivingv1.WatchDemandRequest:
		x.s.checkSendingRegion(&v, "sending_region", r.GetSendingRegion())
		checkRevision(&v, r.GetAfterRevision())
	case *receivingv1.ListDemandChangesRequest:
		x.s.checkSendingRegion(&v, "sending_region", r.GetSendingRegion())
		checkRevision(&v, r.GetAfterRevision())
		feedSize.Check(&v, r.GetPageSize())
	case *receivingv1.ListOpenDemandRequest:
		x.s.checkSendingRegion(&v, "sending_region", r.GetSendingRegion())
		feedSize.Check(&v, r.GetPageSize())
	default:
		return apierror.NotValidated(req)
	}
	return v.Err()
}

func checkRevision(v *apierror.Violations, rev int64) {
	if rev < 0 {
		v.Add("after_revision", "must not be negative")
	}
}

func decodeChange(data []byte) (*receivingv1.DemandChange, error) {
	c := &receivingv1.DemandChange{}
	if err := proto.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("decode demand change: %w", err)
	}
	return c, nil
}

// WatchDemand streams the demand changes after the request's revision, then new ones.
func (x *feedServer) WatchDemand(req *receivingv1.WatchDemandRequest, stream receivingv1.DemandFeedService_WatchDemandServer) error {
	ctx := stream.Context()
	if err := x.s.requirePaired(ctx, req.GetSendingRegion()); err != nil {
		return err
	}
	return x.s.watch(ctx, x.s.demand, req.GetSendingRegion(), uint64(req.GetAfterRevision()), nil,
		decoded(decodeChange, func(c *receivingv1.DemandChange) error {
			return stream.Send(&receivingv1.WatchDemandResponse{Change: c})
		}),
		func() error { return stream.Send(&receivingv1.WatchDemandResponse{}) })
}

// ListDemandChanges returns a page of demand changes after the request's revision.
func (x *feedServer) ListDemandChanges(ctx context.Context, req *receivingv1.ListDemandChangesRequest) (*receivingv1.ListDemandChangesResponse, error) {
	if err := x.s.requirePaired(ctx, req.GetSendingRegion()); err != nil {
		return nil, err
	}
	resp := &receivingv1.ListDemandChangesResponse{}
	var err error
	resp.Changes, resp.HeadRevision, err = listFeed(x.s, x.s.demand, req.GetAfterRevision(), feedSize.Of(req.GetPageSize()), nil, decodeChange)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// ListOpenDemand lists the open vacancies with the feed revision they were read at.
func (x *feedServer) ListOpenDemand(ctx context.Context, req *receivingv1.ListOpenDemandRequest) (*receivingv1.ListOpenDemandResponse, error) {
	if err := x.s.requirePaired(ctx, req.GetSendingRegion()); err != nil {
		return nil, err
	}
	page, err := x.s.listVacancies(vacancyFilter{status: receivingv1.VacancyStatus_VACANCY_STATUS_OPEN},
		req.GetPageToken(), feedSize.Of(req.GetPageSize()))
	if err != nil {
		return nil, err
	}
	return &receivingv1.ListOpenDemandResponse{Vacancies: page.vacancies, NextPageToken: page.next, Revision: page.revision}, nil
}

// --- expiry ---

// sweepExpired records EXPIRED for every vacancy whose stored status is OPEN or FILLED and whose
// valid-through date has passed, each as a change in the demand feed. It returns how many.
func (s *Service) sweepExpired(ctx context.Context) (int, error) {
	now := s.now()
	day := today(now)
	var ids []string
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(store.BucketVacancies).ForEach(func(k, data []byte) error {
			v := &receivingv1.Vacancy{}
			if err := proto.Unmarshal(data, v); err != nil {
				return fmt.Errorf("decode vacancy: %w", err)
			}
			if v.GetStatus() != receivingv1.VacancyStatus_VACANCY_STATUS_EXPIRED && deriveStatus(v, day) == receivingv1.VacancyStatus_VACANCY_STATUS_EXPIRED {
				ids = append(ids, string(k))
			}
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	done := 0
	const chunk = 500
	for len(ids) > 0 && ctx.Err() == nil {
		n := min(chunk, len(ids))
		part := ids[:n]
		ids = ids[n:]
		err := s.update(func(tx *bbolt.Tx) error {
			for _, id := range part {
				v, err := getVacancy(tx, id)
				if err != nil {
					return err
				}
				if v.GetStatus() == receivingv1.VacancyStatus_VACANCY_STATUS_EXPIRED || deriveStatus(v, day) != receivingv1.VacancyStatus_VACANCY_STATUS_EXPIRED {
					continue // changed since the scan
				}
				if err := s.saveVacancy(tx, v, now); err != nil {
					return err
				}
				done++
			}
			return nil
		})
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

package demand

// Following the feeds of the paired receiving provinces (started per province by
// services/sending/relay_receiving.go):
//
//   - The demand follower keeps the replica of the province's vacancies in
//     BucketDemandReplica (key "<receiving region>/<vacancy id>" -> sendingv1.DemandVacancy)
//     and its position, the last demand-feed revision applied, in BucketFeedPositions
//     (key "demand/<receiving region>" -> sendingv1.FollowPosition).
//   - The decision follower applies the employers' decisions to proposals and workers and keeps
//     its position under "decision/<receiving region>".
//   - The employment follower hands what happened to this province's workers to the roster and
//     keeps its position under "employment/<receiving region>" (employment.go).
//
// Every batch of changes is applied together with the new position in ONE transaction, so after
// a crash, a restart or a broken stream the follower resumes exactly after the last change it
// applied: nothing is missed and nothing is applied twice. A change is applied to the replica
// only if its revision is newer than the revision the replica holds for that vacancy, which
// makes the replay that follows a re-listing harmless.
//
// Starting without a position, or after REVISION_COMPACTED (the feed no longer keeps the
// changes after our position), the demand follower re-lists: it reads ListOpenDemand page by
// page, writes each vacancy with its own revision, marks replica entries that a page's key range
// no longer holds as not open (status UNSPECIFIED: filled, closed or expired, at the page's
// revision; the data is kept for transport planning), and only with the
// last page records the position: the revision of the FIRST page, from which WatchDemand then
// replays whatever changed during the listing. The decision follower re-reads this province's
// candidates (ListCandidates) and follows from the head revision ListDecisions gave just before.
//
// Every message of a watch, a change or a progress notice, shows that the link answers, gives the
// feed's head revision (so follow status shows the lag and whether the follower is caught up),
// and tells until when the replica is known current: links.go says how, and how that is stored
// in the positions (last_message_time; for the demand feed, demand_freshness.current_as_of).
//
// Counters in store.BucketCounters, per receiving region, show what the followers did:
// "follow/<code>/demand.applied" (feed changes applied to the replica), "demand.stale" (older
// than the replica, skipped after a re-listing), "demand.repeated" (at or below the position:
// a change delivered twice, skipped), "demand.listed" (vacancies written by re-listings), and
// "decision.applied" / "decision.repeated".

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/backoff"
	"github.com/eastwest/labourlink/services/platform/metrics"
	"github.com/eastwest/labourlink/services/platform/paging"
	"github.com/eastwest/labourlink/services/platform/store"
)

// Page and batch sizes of the followers.
const (
	relistPageSize  = 1000
	applyBatchLimit = 500
	// healthyStream is how long a stream must have lasted for its end to count as a fresh
	// failure (the backoff starts again from MinBackoff).
	healthyStream = 30 * time.Second
	// persistEvery is how often the time of the last progress notice is written to the stored
	// position when nothing else changes (so that after a restart the replica's freshness is
	// known from disk).
	persistEvery = 30 * time.Second
)

type feedKind int

const (
	feedDemand feedKind = iota
	feedDecisions
	feedEmployment // employment.go
	feedKinds      // the number of feeds
)

func (k feedKind) String() string {
	switch k {
	case feedDemand:
		return "demand"
	case feedEmployment:
		return "employment"
	}
	return "decision"
}

// feedState is what is known in memory of following one feed of one receiving province.
type feedState struct {
	// open: a watch stream is open and has answered (its first message arrived).
	open bool
	// notices: the receiving service sends progress notices on this feed (one was seen).
	notices bool
	// lastMessage is when the last message (a change or a progress notice) arrived.
	lastMessage time.Time
	// currentAsOf is when the replica was last known current (demand; see watchReader).
	currentAsOf time.Time
	// persistedMessage and persistedCurrent are the times last written to the stored position.
	persistedMessage, persistedCurrent time.Time
	// err and errTime are the last error, until the feed answers again.
	err     string
	errTime time.Time
	// head is the feed's head revision as the last message received gave it; applied the
	// feed's position (the last revision applied), once this process has opened a watch.
	head, applied int64
	// live: the open watch has sent its caught-up notice and it was applied.
	live bool
	// caughtUpTime is when this process last found the feed caught up (see caughtUp).
	caughtUpTime time.Time
	// unserved: the receiving service answered that it does not serve this feed (an older
	// version, UNIMPLEMENTED), until it answers on it: the link's health and `connected` do not
	// wait for it.
	unserved bool
}

// answers reports whether the feed's watch is open, or does not count (unserved).
func (fs feedState) answers() bool { return fs.open || fs.unserved }

// caughtUp reports whether the follower is caught up on the feed: its watch is open, has sent
// its caught-up notice, and every revision up to the head it last gave is applied.
func (fs feedState) caughtUp() bool { return fs.open && fs.live && fs.applied >= fs.head }

// followInfo is what is known in memory of following one receiving province.
type followInfo struct {
	endpoint string
	// since is when this process began to follow the province.
	since time.Time
	feeds [feedKinds]feedState
}

// followState is the in-memory state of the followers, for GetFollowStatus, the link health
// and the match runs' freshness check.
type followState struct {
	now func() time.Time // the service's clock
	mu  sync.Mutex
	m   map[string]*followInfo
}

func (f *followState) get(code string) *followInfo {
	if f.m == nil {
		f.m = map[string]*followInfo{}
	}
	fi := f.m[code]
	if fi == nil {
		fi = &followInfo{since: f.now()}
		f.m[code] = fi
	}
	return fi
}

func (f *followState) track(code, endpoint string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.get(code).endpoint = endpoint
}

func (f *followState) forget(code string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, code)
}

// closed records that the watch stream of feed k has ended.
func (f *followState) closed(code string, k feedKind) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fs := &f.get(code).feeds[k]
	fs.open, fs.live = false, false
}

// started records that a watch of feed k opens after revision applied (the feed's position).
func (f *followState) started(code string, k feedKind, applied int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fs := &f.get(code).feeds[k]
	fs.applied, fs.live = applied, false
}

// applied returns the position of feed k as last recorded.
func (f *followState) applied(code string, k feedKind) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.get(code).feeds[k].applied
}

// answered records a message received at `at` on the watch of feed k (a progress notice if
// notice) with the feed's head revision: the stream is open and answers, and the feed's last
// error is cleared.
func (f *followState) answered(code string, k feedKind, at time.Time, notice bool, head int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fs := &f.get(code).feeds[k]
	fs.open, fs.head, fs.unserved = true, head, false
	fs.notices = fs.notices || notice
	fs.lastMessage = later(fs.lastMessage, at)
	fs.err, fs.errTime = "", time.Time{}
}

// sendsNotices reports whether feed k of province code has sent progress notices.
func (f *followState) sendsNotices(code string, k feedKind) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.get(code).feeds[k].notices
}

// persistDue reports whether the times of a batch (last message, current as of) should be
// written to the stored position although the batch changed nothing: the first time, then at
// most every persistEvery.
func (f *followState) persistDue(code string, k feedKind, last, current time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	fs := f.get(code).feeds[k]
	due := func(t, persisted time.Time) bool {
		return !t.IsZero() && (persisted.IsZero() || t.Sub(persisted) >= persistEvery)
	}
	return due(last, fs.persistedMessage) || due(current, fs.persistedCurrent)
}

// noted records, once the entries of batch b are committed, the feed's position (applied),
// whether the stream is live, when its last message arrived and until when the replica is
// known current (zero: not known from this batch); persisted says the times were written to the
// stored position.
func (f *followState) noted(code string, k feedKind, b batchInfo, persisted bool, applied int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fs := &f.get(code).feeds[k]
	fs.applied, fs.live = applied, b.live
	if fs.caughtUp() {
		fs.caughtUpTime = later(fs.caughtUpTime, b.last)
	}
	fs.currentAsOf = later(fs.currentAsOf, b.current)
	if persisted {
		fs.persistedMessage = later(fs.persistedMessage, b.last)
		fs.persistedCurrent = later(fs.persistedCurrent, b.current)
	}
}

// forgetCurrent forgets when the demand replica of code was known current (it was dropped).
func (f *followState) forgetCurrent(code string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fs := &f.get(code).feeds[feedDemand]
	fs.currentAsOf, fs.persistedCurrent = time.Time{}, time.Time{}
}

// setError records a failure of the whole link (every feed).
func (f *followState) setError(code string, err error) {
	for k := range feedKinds {
		f.setFeedError(code, k, err)
	}
}

// unserved reports whether feed k of province code is known not to be served.
func (f *followState) unserved(code string, k feedKind) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.get(code).feeds[k].unserved
}

// setUnserved records that the receiving service does not serve feed k (UNIMPLEMENTED).
func (f *followState) setUnserved(code string, k feedKind) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.get(code).feeds[k].unserved = true
}

// setFeedError records a failure of feed k.
func (f *followState) setFeedError(code string, k feedKind, err error) {
	if err == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fs := &f.get(code).feeds[k]
	fs.err, fs.errTime = err.Error(), f.now()
}

// snapshot returns a copy of the state by province.
func (f *followState) snapshot() map[string]followInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]followInfo, len(f.m))
	for k, v := range f.m {
		out[k] = *v
	}
	return out
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// errorInfo returns the ErrorInfo of a gRPC error (nil if none).
func errorInfo(err error) *errdetails.ErrorInfo {
	st, ok := status.FromError(err)
	if !ok {
		return nil
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

// receiveBatches reads messages with recv in a goroutine and calls apply, in order, with
// batches of whatever has arrived (at most limit at a time), until recv or apply fails or ctx
// ends. cancel must cancel the context recv reads under (the stream's); it is called before
// receiveBatches returns, and the reading goroutine has ended by then.
func receiveBatches[T any](ctx context.Context, cancel context.CancelFunc, recv func() (T, error), limit int, apply func([]T) error) error {
	type item struct {
		v   T
		err error
	}
	items := make(chan item, limit)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			v, err := recv()
			select {
			case items <- item{v, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		cancel()
		<-done
	}()
	for {
		var it item
		select {
		case it = <-items:
		case <-ctx.Done():
			return ctx.Err()
		}
		if it.err != nil {
			return it.err
		}
		batch := []T{it.v}
		var tailErr error
	drain:
		for len(batch) < limit {
			select {
			case it := <-items:
				if it.err != nil {
					tailErr = it.err
					break drain
				}
				batch = append(batch, it.v)
			default:
				break drain
			}
		}
		if err := apply(batch); err != nil {
			return err
		}
		if tailErr != nil {
			return tailErr
		}
	}
}

// followLoop runs once until ctx ends, retrying with backoff; once returns when its stream
// ends. A stream that lasted healthyStream resets the backoff.
func (s *Service) followLoop(ctx context.Context, code string, k feedKind, once func(ctx context.Context) error) {
	lg := s.lg.With(zap.String("receiving_region", code), zap.String("feed", k.String()))
	failures := 0
	for ctx.Err() == nil {
		start := time.Now()
		err := once(ctx)
		s.follow.closed(code, k)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("the feed stream ended")
		}
		if status.Code(err) == codes.Unimplemented {
			// An older receiving service without this feed: not an error of the link. Ask again
			// now and then (it may be upgraded), saying so once.
			if !s.follow.unserved(code, k) {
				lg.Info("the receiving service does not serve this feed (an older version); asking again every while", zap.Duration("every", s.cfg.Backoff.Max))
			}
			s.follow.setUnserved(code, k)
			if !backoff.Sleep(ctx, s.cfg.Backoff.Max) {
				return
			}
			continue
		}
		s.follow.setFeedError(code, k, err)
		if time.Since(start) >= healthyStream {
			failures = 0
		}
		if info := errorInfo(err); info != nil && apierror.ParseReason(info.GetReason()) == commonv1.ErrorReason_ERROR_REASON_REVISION_COMPACTED {
			// Expected after a long absence: re-list at once (once already set up by once).
			lg.Info("feed compacted past our position; re-listing", zap.Error(err))
			if !backoff.Sleep(ctx, s.cfg.Backoff.Min) {
				return
			}
			continue
		}
		failures++
		wait := s.cfg.Backoff.Delay(failures)
		lg.Warn("following the feed failed; will reconnect", zap.Error(err), zap.Duration("retry_in", wait))
		if !backoff.Sleep(ctx, wait) {
			return
		}
	}
}

// watchFeed opens a watch of feed k of province code after revision after (open returns the
// stream's receive function; read takes its responses apart, see watchReader) and applies what
// arrives in batches with apply (the entries, in one transaction with the position, which it
// returns) until the stream ends; it returns why it ended. Only the demand feed's messages say
// how current the demand replica is.
func watchFeed[R any, T comparable](ctx context.Context, s *Service, code string, k feedKind, after int64,
	open func(ctx context.Context) (func() (R, error), error),
	read func(R) (T, *receivingv1.FeedProgress, int64),
	apply func(entries []T, b batchInfo) (int64, error)) error {
	sctx, cancel := context.WithCancelCause(ctx)
	recv, err := open(sctx)
	if err != nil {
		cancel(nil)
		return err
	}
	s.follow.started(code, k, after)
	wd := s.newWatchdog(code, k, cancel)
	defer wd.disarm()
	err = receiveBatches(sctx, func() { cancel(nil) }, watchReader(s, code, k, wd, recv, read),
		applyBatchLimit, func(msgs []watchMsg[T]) error {
			b := splitBatch(msgs)
			if k != feedDemand {
				b.current = time.Time{}
			}
			var applied int64
			written := len(b.entries) > 0
			if written {
				var err error
				if applied, err = apply(b.entries, b.batchInfo); err != nil {
					return err
				}
			}
			return s.noteBatch(code, k, b.batchInfo, written, applied)
		})
	return watchError(ctx, sctx, err)
}

// streamRecv returns the receive function of a watch stream just opened (or the error that
// opening it gave).
func streamRecv[R any](stream interface{ Recv() (R, error) }, err error) (func() (R, error), error) {
	if err != nil {
		return nil, err
	}
	return stream.Recv, nil
}

// --- demand ---

// FollowDemand follows the demand feed of receiving province code until ctx ends.
func (s *Service) FollowDemand(ctx context.Context, code string, client receivingv1.DemandFeedServiceClient) {
	relist := false
	s.followLoop(ctx, code, feedDemand, func(ctx context.Context) error {
		err := s.followDemandOnce(ctx, code, client, &relist)
		if info := errorInfo(err); info != nil {
			switch apierror.ParseReason(info.GetReason()) {
			case commonv1.ErrorReason_ERROR_REASON_REVISION_COMPACTED:
				relist = true
			case commonv1.ErrorReason_ERROR_REASON_REVISION_AHEAD:
				s.lg.Warn("our demand position is ahead of the receiving service's feed (its data was replaced?): dropping the replica and re-listing",
					zap.String("receiving_region", code))
				if rerr := s.dropReplica(code); rerr != nil {
					return errors.Join(err, rerr)
				}
				s.follow.forgetCurrent(code)
				relist = true
			}
		}
		return err
	})
}

func (s *Service) followDemandOnce(ctx context.Context, code string, client receivingv1.DemandFeedServiceClient, relist *bool) error {
	pos, found, err := s.readPosition(feedDemand, code)
	if err != nil {
		return err
	}
	after := pos.GetDemandRevision()
	if !found || *relist {
		after, err = s.relistDemand(ctx, code, client)
		if err != nil {
			return err
		}
		*relist = false
	}
	return watchFeed(ctx, s, code, feedDemand, after,
		func(ctx context.Context) (func() (*receivingv1.WatchDemandResponse, error), error) {
			stream, err := client.WatchDemand(ctx, &receivingv1.WatchDemandRequest{SendingRegion: s.cfg.Region, AfterRevision: after})
			return streamRecv(stream, err)
		},
		func(r *receivingv1.WatchDemandResponse) (*receivingv1.DemandChange, *receivingv1.FeedProgress, int64) {
			return r.GetChange(), r.GetProgress(), r.GetHeadRevision()
		},
		func(changes []*receivingv1.DemandChange, b batchInfo) (int64, error) {
			return s.applyDemandChanges(code, changes, b)
		})
}

// readPosition reads the stored position of feed k of province code.
func (s *Service) readPosition(k feedKind, code string) (*sendingv1.FollowPosition, bool, error) {
	var p *sendingv1.FollowPosition
	var found bool
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		p, found, err = getPosition(tx, k, code)
		return err
	})
	return p, found, err
}

// FeedCounters returns the follower counters of province code (see the file comment).
func (s *Service) FeedCounters(code string) (map[string]uint64, error) {
	out := map[string]uint64{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		prefix := counterKey(code, "")
		c := tx.Bucket(store.BucketCounters).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			out[string(k[len(prefix):])] = store.KeyUint64(v)
		}
		return nil
	})
	return out, err
}

// applyDemandChanges applies feed changes of province code to the replica and records the new
// position, with what else the batch says (stampPosition), in one transaction. It returns the
// position.
func (s *Service) applyDemandChanges(code string, changes []*receivingv1.DemandChange, b batchInfo) (int64, error) {
	now := s.cfg.Now()
	var position int64
	err := s.db.Update(func(tx *bbolt.Tx) error {
		pos, _, err := getPosition(tx, feedDemand, code)
		if err != nil {
			return err
		}
		var applied, stale, repeated uint64
		for _, c := range changes {
			rev := c.GetRevision()
			if rev <= pos.GetDemandRevision() {
				repeated++
				continue
			}
			ok, err := putReplica(tx, code, c.GetVacancy(), rev)
			if err != nil {
				return err
			}
			if ok {
				applied++
			} else {
				stale++
			}
			pos.DemandRevision = rev
		}
		pos.ReceivingRegion = code
		pos.LastChangeTime = timestamppb.New(now)
		stampPosition(pos, feedDemand, b)
		if err := putPosition(tx, feedDemand, code, pos); err != nil {
			return err
		}
		position = pos.GetDemandRevision()
		return errors.Join(
			addCounter(tx, counterKey(code, "demand.applied"), applied),
			addCounter(tx, counterKey(code, "demand.stale"), stale),
			addCounter(tx, counterKey(code, "demand.repeated"), repeated))
	})
	return position, err
}

// relistDemand reads the open demand of province code page by page into the replica and, with
// the last page, records the position: the revision of the first page. It returns it.
func (s *Service) relistDemand(ctx context.Context, code string, client receivingv1.DemandFeedServiceClient) (int64, error) {
	token := ""
	first := int64(-1)
	prev := []byte(code + "/") // the key range still to list starts after prev
	for {
		callCtx, cancel := s.cfg.Peers.WithTimeoutFor(ctx, relistPageSize)
		resp, err := client.ListOpenDemand(callCtx, &receivingv1.ListOpenDemandRequest{
			SendingRegion: s.cfg.Region, PageSize: relistPageSize, PageToken: token,
		})
		cancel()
		if err != nil {
			return 0, fmt.Errorf("list open demand of %s: %w", code, err)
		}
		if first < 0 {
			first = resp.GetRevision()
		}
		lastPage := resp.GetNextPageToken() == ""
		var hi []byte
		err = s.db.Update(func(tx *bbolt.Tx) error {
			seen := map[string]bool{}
			var listed uint64
			for _, v := range resp.GetVacancies() {
				key := replicaKey(code, v.GetVacancyId())
				seen[string(key)] = true
				hi = key
				ok, err := putReplica(tx, code, v, v.GetRevision())
				if err != nil {
					return err
				}
				if ok {
					listed++
				}
			}
			// Entries in this page's key range that it does not hold were not open when it was
			// read: they become tombstones at the page's revision.
			gone := map[string]*sendingv1.DemandVacancy{}
			err := replica.Scan(tx, store.Range{Prefix: []byte(code + "/"), After: prev}, func(k []byte, dv *sendingv1.DemandVacancy) (bool, error) {
				if !lastPage && (hi == nil || bytes.Compare(k, hi) > 0) {
					return false, nil
				}
				if !seen[string(k)] && dv.GetRevision() < resp.GetRevision() {
					gone[string(k)] = dv
				}
				return true, nil
			})
			if err != nil {
				return err
			}
			for k, dv := range gone {
				// The vacancy's data is kept (transport still needs the work county and start
				// date of accepted workers); its status is unknown: filled, closed or expired.
				if dv.Vacancy != nil {
					dv.Vacancy.Status = receivingv1.VacancyStatus_VACANCY_STATUS_UNSPECIFIED
				}
				dv.Revision = resp.GetRevision()
				if err := replica.Put(tx, []byte(k), dv); err != nil {
					return err
				}
			}
			if err := addCounter(tx, counterKey(code, "demand.listed"), listed); err != nil {
				return err
			}
			if !lastPage {
				return nil
			}
			pos, _, err := getPosition(tx, feedDemand, code)
			if err != nil {
				return err
			}
			pos.ReceivingRegion = code
			pos.DemandRevision = first
			pos.LastChangeTime = timestamppb.New(s.cfg.Now())
			return putPosition(tx, feedDemand, code, pos)
		})
		if err != nil {
			return 0, err
		}
		if hi != nil {
			prev = hi
		}
		if lastPage {
			s.lg.Info("re-listed open demand", zap.String("receiving_region", code), zap.Int64("revision", first))
			return first, nil
		}
		token = resp.GetNextPageToken()
	}
}

// dropReplica removes the replica and the demand position of province code (its receiving
// service's data was replaced: the revisions we hold mean nothing there any more).
func (s *Service) dropReplica(code string) error {
	return s.db.Update(func(tx *bbolt.Tx) error { return dropReplica(tx, code) })
}

// --- decisions ---

// FollowDecisions follows the decision feed of receiving province code until ctx ends.
func (s *Service) FollowDecisions(ctx context.Context, code string, client receivingv1.CandidateServiceClient) {
	relistFrom := int64(-1)
	s.followLoop(ctx, code, feedDecisions, func(ctx context.Context) error {
		err := s.followDecisionsOnce(ctx, code, client, &relistFrom)
		if info := errorInfo(err); info != nil {
			switch apierror.ParseReason(info.GetReason()) {
			case commonv1.ErrorReason_ERROR_REASON_REVISION_COMPACTED:
				n, perr := strconv.ParseInt(info.GetMetadata()["compacted_revision"], 10, 64)
				if perr != nil {
					n = 0
				}
				relistFrom = n
			case commonv1.ErrorReason_ERROR_REASON_REVISION_AHEAD:
				s.lg.Warn("our decision position is ahead of the receiving service's feed: re-reading our candidates", zap.String("receiving_region", code))
				relistFrom = 0
			}
		}
		return err
	})
}

func (s *Service) followDecisionsOnce(ctx context.Context, code string, client receivingv1.CandidateServiceClient, relistFrom *int64) error {
	pos, _, err := s.readPosition(feedDecisions, code)
	if err != nil {
		return err
	}
	after := pos.GetDecisionRevision()
	if *relistFrom >= 0 {
		after, err = s.relistDecisions(ctx, code, client, *relistFrom)
		if err != nil {
			return err
		}
		*relistFrom = -1
	}
	return watchFeed(ctx, s, code, feedDecisions, after,
		func(ctx context.Context) (func() (*receivingv1.WatchDecisionsResponse, error), error) {
			stream, err := client.WatchDecisions(ctx, &receivingv1.WatchDecisionsRequest{SendingRegion: s.cfg.Region, AfterRevision: after})
			return streamRecv(stream, err)
		},
		func(r *receivingv1.WatchDecisionsResponse) (*receivingv1.Candidate, *receivingv1.FeedProgress, int64) {
			return r.GetCandidate(), r.GetProgress(), r.GetHeadRevision()
		},
		func(cands []*receivingv1.Candidate, b batchInfo) (int64, error) {
			return s.applyDecisions(code, cands, b)
		})
}

// applyDecisions applies decisions of province code and records the new position, with what
// else the batch says (stampPosition), in one transaction. It returns the position.
func (s *Service) applyDecisions(code string, cands []*receivingv1.Candidate, b batchInfo) (int64, error) {
	now := s.cfg.Now()
	var position int64
	err := s.db.Update(func(tx *bbolt.Tx) error {
		pos, _, err := getPosition(tx, feedDecisions, code)
		if err != nil {
			return err
		}
		var applied, repeated uint64
		for _, c := range cands {
			if c.GetRevision() <= pos.GetDecisionRevision() {
				repeated++
				continue
			}
			if err := s.cfg.ApplyDecision(tx, code, c); err != nil {
				return err
			}
			applied++
			pos.DecisionRevision = c.GetRevision()
		}
		pos.ReceivingRegion = code
		pos.LastChangeTime = timestamppb.New(now)
		stampPosition(pos, feedDecisions, b)
		if err := putPosition(tx, feedDecisions, code, pos); err != nil {
			return err
		}
		position = pos.GetDecisionRevision()
		return errors.Join(
			addCounter(tx, counterKey(code, "decision.applied"), applied),
			addCounter(tx, counterKey(code, "decision.repeated"), repeated))
	})
	return position, err
}

// relistDecisions re-reads this province's candidates at province code after the decision feed
// was compacted past our position (after is the compacted revision): it takes the feed's head
// from ListDecisions first, applies every decided candidate of ListCandidates, and records the
// head as the position. It returns the head.
func (s *Service) relistDecisions(ctx context.Context, code string, client receivingv1.CandidateServiceClient, after int64) (int64, error) {
	callCtx, cancel := s.cfg.Peers.WithTimeoutFor(ctx, 1)
	head, err := client.ListDecisions(callCtx, &receivingv1.ListDecisionsRequest{SendingRegion: s.cfg.Region, AfterRevision: after, PageSize: 1})
	cancel()
	if err != nil {
		return 0, fmt.Errorf("read the decision feed head of %s: %w", code, err)
	}
	token := ""
	for {
		callCtx, cancel := s.cfg.Peers.WithTimeoutFor(ctx, relistPageSize)
		resp, err := client.ListCandidates(callCtx, &receivingv1.ListCandidatesRequest{SendingRegion: s.cfg.Region, PageSize: relistPageSize, PageToken: token})
		cancel()
		if err != nil {
			return 0, fmt.Errorf("list candidates at %s: %w", code, err)
		}
		err = s.db.Update(func(tx *bbolt.Tx) error {
			for _, c := range resp.GetCandidates() {
				if c.GetState() == receivingv1.CandidateState_CANDIDATE_STATE_PENDING {
					continue
				}
				if err := s.cfg.ApplyDecision(tx, code, c); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
		token = resp.GetNextPageToken()
		if token == "" {
			break
		}
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		pos, _, err := getPosition(tx, feedDecisions, code)
		if err != nil {
			return err
		}
		pos.ReceivingRegion = code
		pos.DecisionRevision = head.GetHeadRevision()
		pos.LastChangeTime = timestamppb.New(s.cfg.Now())
		return putPosition(tx, feedDecisions, code, pos)
	})
	return head.GetHeadRevision(), err
}

// --- RPCs (of the MatchingService, which hands them here) ---

// lag returns how far behind the feed's head the follower is (nil before a watch of this
// process has answered: the head is known only from the watch's messages).
func (fs feedState) lag() *sendingv1.FeedLag {
	if fs.head == 0 && fs.applied == 0 && fs.lastMessage.IsZero() {
		return nil
	}
	l := &sendingv1.FeedLag{HeadRevision: fs.head, AppliedRevision: fs.applied,
		RevisionsBehind: max(fs.head-fs.applied, 0), CaughtUp: fs.caughtUp()}
	if !fs.caughtUpTime.IsZero() {
		l.CaughtUpTime = timestamppb.New(fs.caughtUpTime)
	}
	return l
}

// GetFollowStatus shows, per receiving province followed now or before, the positions on its
// feeds with their lag behind the feeds' heads (and whether each is caught up), whether both
// watch streams are open and answer, the last error (until the feeds answer again) and how
// current the demand replica is.
func (s *Service) GetFollowStatus(_ context.Context, _ *sendingv1.GetFollowStatusRequest) (*sendingv1.GetFollowStatusResponse, error) {
	now := s.cfg.Now()
	mem := s.follow.snapshot()
	storedDemand := map[string]*sendingv1.FollowPosition{}
	byCode := map[string]*sendingv1.FollowPosition{}
	at := func(code string) *sendingv1.FollowPosition {
		p := byCode[code]
		if p == nil {
			p = &sendingv1.FollowPosition{ReceivingRegion: code}
			byCode[code] = p
		}
		return p
	}
	err := s.db.View(func(tx *bbolt.Tx) error {
		return positions.Scan(tx, store.Range{}, func(k []byte, pos *sendingv1.FollowPosition) (bool, error) {
			kind, code, ok := bytes.Cut(k, []byte("/"))
			if !ok {
				return true, nil
			}
			p := at(string(code))
			switch string(kind) {
			case feedDemand.String():
				p.DemandRevision = pos.GetDemandRevision()
				storedDemand[string(code)] = pos
			case feedDecisions.String():
				p.DecisionRevision = pos.GetDecisionRevision()
			case feedEmployment.String():
				p.EmploymentRevision = pos.GetEmploymentRevision()
			}
			p.LastChangeTime = laterTS(p.LastChangeTime, pos.GetLastChangeTime())
			p.LastMessageTime = laterTS(p.LastMessageTime, pos.GetLastMessageTime())
			return true, nil
		})
	})
	if err != nil {
		return nil, err
	}
	for code, fi := range mem {
		p := at(code)
		p.Endpoint = fi.endpoint
		p.Connected = fi.feeds[feedDemand].open && fi.feeds[feedDecisions].open && fi.feeds[feedEmployment].answers()
		for k, fs := range fi.feeds {
			if fs.err != "" && (p.LastErrorTime == nil || fs.errTime.After(p.LastErrorTime.AsTime())) {
				p.LastError = feedKind(k).String() + " feed: " + fs.err
				p.LastErrorTime = timestamppb.New(fs.errTime)
			}
			if !fs.lastMessage.IsZero() {
				p.LastMessageTime = laterTS(p.LastMessageTime, timestamppb.New(fs.lastMessage))
			}
		}
		p.DemandLag, p.DecisionLag, p.EmploymentLag = fi.feeds[feedDemand].lag(), fi.feeds[feedDecisions].lag(), fi.feeds[feedEmployment].lag()
	}
	if ep := s.cfg.Receiving; len(ep) > 0 {
		for code, e := range ep {
			if p := at(code); p.Endpoint == "" {
				p.Endpoint = e
			}
		}
	}
	for code, p := range byCode {
		p.DemandFreshness = freshness(code, mem[code], storedDemand[code], now)
	}
	resp := &sendingv1.GetFollowStatusResponse{}
	for _, p := range byCode {
		resp.Positions = append(resp.Positions, p)
	}
	slices.SortFunc(resp.Positions, func(a, b *sendingv1.FollowPosition) int {
		switch {
		case a.GetReceivingRegion() < b.GetReceivingRegion():
			return -1
		case a.GetReceivingRegion() > b.GetReceivingRegion():
			return 1
		}
		return 0
	})
	return resp, nil
}

// laterTS returns the later of two timestamps (nil: unset).
func laterTS(a, b *timestamppb.Timestamp) *timestamppb.Timestamp {
	if b == nil || (a != nil && !b.AsTime().After(a.AsTime())) {
		return a
	}
	return b
}

// demandSize and demandListing page ListDemand (services/platform/paging).
var demandSize = paging.Size{Default: 100, Max: 1000}

func demandListing(r *sendingv1.ListDemandRequest) paging.Listing {
	return paging.For("demand", r.GetReceivingRegion())
}

// ValidateListDemand adds the violations of a ListDemand request's paging to v (the matching
// service's ValidateRequest checks its region).
func ValidateListDemand(r *sendingv1.ListDemandRequest, v *apierror.Violations) {
	demandSize.Check(v, r.GetPageSize())
	demandListing(r).Check(v, r.GetPageToken())
}

// ListDemand lists the replicated OPEN vacancies in (receiving region, vacancy id) order.
func (s *Service) ListDemand(_ context.Context, req *sendingv1.ListDemandRequest) (*sendingv1.ListDemandResponse, error) {
	listing := demandListing(req)
	after, err := listing.Decode(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	size := demandSize.Of(req.GetPageSize())
	var prefix []byte
	if r := req.GetReceivingRegion(); r != "" {
		prefix = []byte(r + "/")
	}
	var page store.Page[*sendingv1.DemandVacancy]
	err = s.db.View(func(tx *bbolt.Tx) error {
		var err error
		page, err = replica.Page(tx, store.Range{Prefix: prefix, After: after}, size, func(_ []byte, dv *sendingv1.DemandVacancy) bool {
			return dv.GetVacancy().GetStatus() == receivingv1.VacancyStatus_VACANCY_STATUS_OPEN
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	resp := &sendingv1.ListDemandResponse{Vacancies: page.Items}
	if page.Last != nil {
		resp.NextPageToken = listing.Token(page.Last)
	}
	return resp, nil
}

// FollowerLags are the followers' lag behind each feed of each receiving province, as
// GetFollowStatus shows it (FeedLag), for the metrics (labourlink_feed_follower_*): read from
// memory, no transaction. A feed whose watch has not answered since the process started is
// left out.
func (s *Service) FollowerLags() []metrics.FollowerLag {
	var out []metrics.FollowerLag
	for code, fi := range s.follow.snapshot() {
		for k, fs := range fi.feeds {
			if l := fs.lag(); l != nil {
				out = append(out, metrics.FollowerLag{Peer: code, Feed: feedKind(k).String(),
					RevisionsBehind: l.GetRevisionsBehind(), CaughtUp: l.GetCaughtUp()})
			}
		}
	}
	return out
}

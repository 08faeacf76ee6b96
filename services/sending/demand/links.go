package demand

// How this service knows, and says, whether its links to the receiving provinces answer and how
// current its demand replica is.
//
//   - The receiving service sends a progress notice (FeedProgress with caught_up) on each watch
//     stream once it has replayed everything up to the head and then every few seconds
//     (services/receiving/internal/feedlog). Every message of a watch, a change or a notice,
//     shows that the stream answers: it marks the feed open (FollowPosition.connected) and
//     clears its last error. A message of a kind this version does not know does the same and
//     is otherwise skipped.
//   - Every message carries the feed's head revision: the follower keeps the last one heard
//     and its position (the last revision applied), and GetFollowStatus reports them per feed
//     (FollowPosition.demand_lag, decision_lag, employment_lag): revisions behind, and caught
//     up while the watch is open, its caught-up notice is applied and the position is at the
//     head. A caught-up notice also moves the position up to the head it gives (stored with
//     the next write): for the decision feed, filtered to this province, the revisions in
//     between hold only other provinces' decisions, so the position is not left behind by them.
//   - The demand replica is known current as of the last message received on an open demand
//     watch (ReplicaFreshness.current_as_of), taken when that message's changes are committed.
//     A change replayed before the stream's first caught-up notice does not count (it is history being
//     caught up on), unless no notice has come from that feed since this process started (an
//     older receiving service sends none; on the very first stream a replay therefore counts).
//     The time is also written to the stored demand position (with every change, and at most
//     every persistEvery for notices alone), so that it survives a restart.
//   - A watch of a receiving service that sends notices and is silent for FeedSilence (default
//     8 s; four of the receiving services' 2 s) is taken as dead: the stream is cancelled with
//     an error saying so, and reopened with backoff. A blackholed link is seen within seconds,
//     also behind a proxy that answers keepalive pings itself; keepalive (services/platform/peers) is
//     the second line, after 10 s + 5 s of silence.
//   - Health: with Config.Health set, each receiving province followed has the health service
//     name peers.LinkHealthName (labourlink.link.receiving.<code>): SERVING while its watches
//     answer (demand, decisions, employment; a feed the receiving service does not serve,
//     UNIMPLEMENTED from an older version, is not waited for), NOT_SERVING once one has been closed and silent for LinkGrace (default
//     5 s), so that a reconnection does not flap. These names say nothing about this service
//     itself: its own service names stay SERVING while a peer is down, because this service
//     still answers (the outbox keeps what it sends until the peer is back). A load balancer
//     checks the service names; an operator's alert watches the link names.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/types/known/durationpb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/identity"
	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending/matching/matcher"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Defaults of the link settings of Config.
const (
	// DefaultFeedSilence is how long a watch that sends progress notices may be silent.
	DefaultFeedSilence = 8 * time.Second
	// DefaultLinkGrace is how long a closed link may be silent before its health turns
	// NOT_SERVING.
	DefaultLinkGrace = 5 * time.Second
	// linkHealthEvery is how often the links' health is published.
	linkHealthEvery = time.Second
)

// watchMsg is one message of a watch stream.
type watchMsg[T any] struct {
	entry    T         // the change or candidate (isEntry)
	isEntry  bool      // the message carries an entry
	notice   bool      // a progress notice (FeedProgress)
	caughtUp bool      // a progress notice with caught_up: every entry up to head was sent
	head     int64     // the feed's head revision the message carries
	live     bool      // the stream has sent a caught-up notice, this message or before
	at       time.Time // when it arrived (Config.Now)
	current  bool      // it shows the replica current as of at (see the file comment)
}

// watchReader returns the read function of a watch stream of feed k of province code, for
// receiveBatches: recv under the watchdog, each message stamped with its arrival and recorded
// as an answer of the feed. read takes a response apart: its entry (nil for another kind), its
// progress notice (nil for another kind) and its head revision. A message with neither (a kind
// a later receiving service added) shows that the stream answers and is otherwise skipped.
func watchReader[R any, T comparable](s *Service, code string, k feedKind, wd *watchdog, recv func() (R, error),
	read func(R) (T, *receivingv1.FeedProgress, int64)) func() (watchMsg[T], error) {
	replayed := false // the stream has sent its first caught-up notice: what follows is live
	first := true
	return func() (watchMsg[T], error) {
		wd.arm(first)
		r, err := recv()
		wd.disarm()
		if err != nil {
			return watchMsg[T]{}, err
		}
		first = false
		var zero T
		entry, progress, head := read(r)
		m := watchMsg[T]{entry: entry, isEntry: entry != zero, notice: progress != nil, caughtUp: progress.GetCaughtUp(), head: head, at: s.cfg.Now()}
		m.current = m.caughtUp || replayed || !s.follow.sendsNotices(code, k)
		replayed = replayed || m.caughtUp
		m.live = replayed
		s.follow.answered(code, k, m.at, m.notice, head)
		return m, nil
	}
}

// batchInfo is what a batch of watch messages says besides its entries.
type batchInfo struct {
	// last is when the batch's last message arrived; current the last time it shows the
	// replica current (zero if none does).
	last, current time.Time
	// head is the feed's head revision as the last message gave it.
	head int64
	// covered is the head revision of the batch's last caught-up notice (0: none): every entry
	// up to it was sent, so the feed's position may move up to it.
	covered int64
	// live: the stream has sent a caught-up notice, by the end of the batch.
	live bool
}

// batch is a batch of watch messages: its entries and what else it says.
type batch[T any] struct {
	entries []T
	batchInfo
}

// splitBatch returns what a batch of messages holds.
func splitBatch[T any](msgs []watchMsg[T]) batch[T] {
	var b batch[T]
	for _, m := range msgs {
		if m.isEntry {
			b.entries = append(b.entries, m.entry)
		}
		if m.caughtUp {
			b.covered = m.head
		}
		b.last, b.head, b.live = m.at, m.head, m.live
		if m.current {
			b.current = m.at
		}
	}
	return b
}

// revision returns the revision of feed k in a stored position.
func revision(p *sendingv1.FollowPosition, k feedKind) int64 {
	switch k {
	case feedDemand:
		return p.GetDemandRevision()
	case feedEmployment:
		return p.GetEmploymentRevision()
	}
	return p.GetDecisionRevision()
}

// setRevision sets the revision of feed k in a stored position.
func setRevision(p *sendingv1.FollowPosition, k feedKind, rev int64) {
	switch k {
	case feedDemand:
		p.DemandRevision = rev
	case feedEmployment:
		p.EmploymentRevision = rev
	default:
		p.DecisionRevision = rev
	}
}

// stampPosition records what a batch says besides its entries in a stored position: the
// revision its caught-up notice covers (the feed's position moves up to it: the revisions in
// between hold nothing for this province), the last message, and for the demand feed when the
// replica was known current.
func stampPosition(p *sendingv1.FollowPosition, k feedKind, b batchInfo) {
	if b.covered > revision(p, k) {
		setRevision(p, k, b.covered)
	}
	if !b.last.IsZero() {
		p.LastMessageTime = timestamppb.New(b.last)
	}
	if k == feedDemand && !b.current.IsZero() {
		p.DemandFreshness = &sendingv1.ReplicaFreshness{ReceivingRegion: p.GetReceivingRegion(), CurrentAsOf: timestamppb.New(b.current)}
	}
}

// noteBatch records a batch once its entries are committed (written: with the stored
// position, whose revision of feed k is now applied). A batch without entries writes to the
// stored position when its caught-up notice moves the position, or its times are persistDue.
func (s *Service) noteBatch(code string, k feedKind, b batchInfo, written bool, applied int64) error {
	if !written {
		applied = s.follow.applied(code, k)
	}
	if !written && (b.covered > applied || s.follow.persistDue(code, k, b.last, b.current)) {
		err := s.db.Update(func(tx *bbolt.Tx) error {
			pos, _, err := getPosition(tx, k, code)
			if err != nil {
				return err
			}
			pos.ReceivingRegion = code
			stampPosition(pos, k, b)
			applied = revision(pos, k)
			return putPosition(tx, k, code, pos)
		})
		if err != nil {
			return err
		}
		written = true
	}
	s.follow.noted(code, k, b, written, applied)
	return nil
}

// errFeedSilent ends a watch stream that was silent for too long.
var errFeedSilent = errors.New("the link is down or stalled")

// watchdog cancels a watch stream that stays silent: while the reader waits in Recv on a feed
// that sends progress notices, FeedSilence without a message cancels the stream's context with
// errFeedSilent. For a stream's first message, which needs a round trip and the receiving
// service's pairing check, it allows a call's deadline instead.
type watchdog struct {
	t              *time.Timer
	silence, first time.Duration
	armed          func() bool
	waited         atomic.Int64 // the duration armed last, for the error
}

func (s *Service) newWatchdog(code string, k feedKind, cancel context.CancelCauseFunc) *watchdog {
	w := &watchdog{
		silence: s.cfg.FeedSilence,
		first:   max(s.cfg.Peers.CallTimeout(0), s.cfg.FeedSilence),
		armed:   func() bool { return s.follow.sendsNotices(code, k) },
	}
	w.t = time.AfterFunc(time.Hour, func() {
		cancel(fmt.Errorf("nothing received on the %s feed for %v, although the receiving service sends progress notices every few seconds: %w",
			k, time.Duration(w.waited.Load()), errFeedSilent))
	})
	w.t.Stop()
	return w
}

// arm starts the watch before a Recv (the first of a stream if first).
func (w *watchdog) arm(first bool) {
	if !w.armed() {
		return
	}
	d := w.silence
	if first {
		d = w.first
	}
	w.waited.Store(int64(d))
	w.t.Reset(d)
}

// disarm stops the watch after a Recv.
func (w *watchdog) disarm() { w.t.Stop() }

// watchError returns the error that ended a watch stream: the watchdog's if it cancelled the
// stream (sctx), else err.
func watchError(ctx, sctx context.Context, err error) error {
	if ctx.Err() == nil {
		if cause := context.Cause(sctx); errors.Is(cause, errFeedSilent) {
			return cause
		}
	}
	return err
}

// --- health ---

// linkServing reports, per receiving province followed, whether its link answers (see the
// file comment).
func (s *Service) linkServing(now time.Time) map[string]bool {
	out := map[string]bool{}
	for code, fi := range s.follow.snapshot() {
		ok := true
		for _, fs := range fi.feeds {
			ok = ok && (fs.answers() || (!fs.lastMessage.IsZero() && now.Sub(fs.lastMessage) < s.cfg.LinkGrace))
		}
		out[code] = ok
	}
	return out
}

// PublishLinkHealth publishes the links' health with Config.Health every linkHealthEvery until
// ctx ends.
func (s *Service) PublishLinkHealth(ctx context.Context) {
	if s.cfg.Health == nil {
		return
	}
	published := map[string]bool{}
	t := time.NewTicker(linkHealthEvery)
	defer t.Stop()
	for {
		s.publishLinkHealthOnce(published)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// publishLinkHealthOnce publishes what changed since published (name -> serving), which it
// updates; a province no longer followed is published NOT_SERVING once and forgotten.
func (s *Service) publishLinkHealthOnce(published map[string]bool) {
	now := map[string]bool{}
	at := s.cfg.Now()
	for code, ok := range s.linkServing(at) {
		now[peers.LinkHealthName(identity.Receiving(code))] = ok
	}
	// The link to the coordination service carries the ledger relay: down once its deliveries
	// have been failing for LinkGrace (it says nothing while there is nothing to deliver).
	if rl := s.cfg.Relays.Get(ledgerclient.Destination); rl != nil {
		st := rl.Status()
		now[peers.LinkHealthName(identity.Coordination())] = st.FailingSince.IsZero() || at.Sub(st.FailingSince) < s.cfg.LinkGrace
	}
	for name, ok := range now {
		if was, seen := published[name]; !seen || was != ok {
			s.cfg.Health(name, ok)
			published[name] = ok
		}
	}
	for name := range published {
		if _, ok := now[name]; !ok {
			s.cfg.Health(name, false)
			delete(published, name)
		}
	}
}

// --- freshness ---

// freshness returns how current the replica of province code is at now, from what is in
// memory (fi, the zero value if the province is not followed now) and its stored demand
// position.
func freshness(code string, fi followInfo, stored *sendingv1.FollowPosition, now time.Time) *sendingv1.ReplicaFreshness {
	demand := fi.feeds[feedDemand]
	f := &sendingv1.ReplicaFreshness{ReceivingRegion: code, Connected: demand.open}
	at := demand.currentAsOf
	if t := stored.GetDemandFreshness().GetCurrentAsOf(); t != nil {
		at = later(at, t.AsTime())
	}
	if !at.IsZero() {
		f.CurrentAsOf = timestamppb.New(at)
		f.Staleness = durationpb.New(max(now.Sub(at), 0))
	}
	return f
}

// Freshness limits of match runs (StartMatchRunRequest.max_replica_staleness).
const (
	DefaultMaxReplicaStaleness = 5 * time.Minute
	replicaWarnStaleness       = 30 * time.Second
)

// ReplicaCheck is how current the replicas a match run uses are.
type ReplicaCheck struct {
	Replicas []*sendingv1.ReplicaFreshness // per province, in code order
	Warnings []string
	stale    []string // provinces with open demand behind by more than the limit
	reasons  []string // what is wrong with each stale province
}

// CheckReplicas returns how current, at now, the replicas of the provinces whose demand a
// match run uses are (regions, or every province in the replica if nil), against limit.
func (s *Service) CheckReplicas(tx *bbolt.Tx, regions map[string]bool, limit time.Duration, now time.Time) (*ReplicaCheck, error) {
	codes := slices.Sorted(func(yield func(string) bool) {
		for code := range regions {
			if !yield(code) {
				return
			}
		}
	})
	if regions == nil {
		codes = replicaRegions(tx)
	}
	mem := s.follow.snapshot()
	today := matchDate(civil.Today(now))
	rc := &ReplicaCheck{}
	for _, code := range codes {
		pos, _, err := getPosition(tx, feedDemand, code)
		if err != nil {
			return nil, err
		}
		f := freshness(code, mem[code], pos, now)
		rc.Replicas = append(rc.Replicas, f)
		behind := time.Duration(1<<63 - 1)
		if f.GetCurrentAsOf() != nil {
			behind = f.GetStaleness().AsDuration()
		}
		if behind <= replicaWarnStaleness {
			continue
		}
		open, err := hasOpenDemand(tx, code, today)
		if err != nil {
			return nil, err
		}
		what := s.describeBehind(f)
		switch {
		case open && behind > limit:
			rc.stale = append(rc.stale, code)
			rc.reasons = append(rc.reasons, what)
		case open:
			rc.Warnings = append(rc.Warnings, "the demand replica of "+what+": its vacancies may have been filled or closed since")
		default:
			rc.Warnings = append(rc.Warnings, "the demand replica of "+what+": it holds no open demand, but new vacancies may be missing")
		}
	}
	return rc, nil
}

// Err returns the refusal of a run for the stale provinces (nil if none).
func (rc *ReplicaCheck) Err(limit time.Duration) error {
	if len(rc.stale) == 0 {
		return nil
	}
	return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_REPLICA_STALE,
		"the demand replica is behind for %s, with open demand: its vacancies may have been filled or closed meanwhile. "+
			"Wait until `labourlink match follow` shows the link connected and current, or allow an older replica with max_replica_staleness (now %v)",
		strings.Join(rc.reasons, "; "), limit).
		WithMetadata("receiving_regions", strings.Join(rc.stale, ",")).
		WithMetadata("max_replica_staleness", limit.String())
}

// describeBehind says how far behind replica f is, for messages.
func (s *Service) describeBehind(f *sendingv1.ReplicaFreshness) string {
	code := f.GetReceivingRegion()
	what := code + " " + s.regions.Name(code)
	if f.GetCurrentAsOf() == nil {
		what += " (never known current"
	} else {
		what += fmt.Sprintf(" (last known current %v ago, at %s",
			f.GetStaleness().AsDuration().Round(time.Second), f.GetCurrentAsOf().AsTime().In(civil.Zone).Format("2006-01-02 15:04:05 MST"))
	}
	if f.GetConnected() {
		return what + ")"
	}
	return what + "; its demand watch is down)"
}

// replicaRegions returns the provinces that have vacancies in the replica, in code order.
func replicaRegions(tx *bbolt.Tx) []string {
	var out []string
	c := tx.Bucket(BucketDemandReplica).Cursor()
	for k, _ := c.First(); k != nil; {
		code, _, _ := strings.Cut(string(k), "/")
		out = append(out, code)
		k, _ = c.Seek([]byte(code + "0")) // '0' follows '/': the first key after "<code>/..."
	}
	return out
}

// hasOpenDemand reports whether the replica holds a vacancy of province code that a match run
// would use: OPEN and not past its valid-through date.
func hasOpenDemand(tx *bbolt.Tx, code string, today matcher.Date) (bool, error) {
	found := false
	err := replica.Scan(tx, store.Range{Prefix: []byte(code + "/")}, func(_ []byte, dv *sendingv1.DemandVacancy) (bool, error) {
		vac := dv.GetVacancy()
		if vac.GetStatus() != receivingv1.VacancyStatus_VACANCY_STATUS_OPEN {
			return true, nil
		}
		if vt := vac.GetValidThrough(); vt != nil && matchDate(vt) < today {
			return true, nil
		}
		found = true
		return false, nil
	})
	return found, err
}

// matchDate is d as the matcher counts days.
func matchDate(d *commonv1.Date) matcher.Date {
	return matcher.DateOf(int(d.GetYear()), time.Month(d.GetMonth()), int(d.GetDay()))
}

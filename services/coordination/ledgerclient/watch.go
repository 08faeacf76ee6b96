package ledgerclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	ledgerwatchv1 "github.com/eastwest/labourlink/proto/labourlink/ledgerwatch/v1"
	storagev1 "github.com/eastwest/labourlink/proto/labourlink/storage/v1"
	"github.com/eastwest/labourlink/services/platform/metrics"
	"github.com/eastwest/labourlink/services/platform/store"
)

// The regional side of the verifiable ledger (sending schema version 9, receiving 6). A regional
// service keeps, in its own file:
//
//	ledgerAcks      leafIndex(8) -> storagev1.LedgerAck      every event the ledger acknowledged
//	ledgerFailures  leafIndex(8) -> storagev1.LedgerFailure  acknowledged events found changed or missing
//	ledgerWatch     "checkpoint" -> coordinationv1.LedgerCheckpoint  the newest verified checkpoint
//	                "publicKey"  -> the ledger's note verifier key, pinned at first use
//	                "problem"    -> what is wrong with the log as a whole ("" or absent: nothing)
//	                "cursor"     -> leafIndex(8) the next scheduled check starts at
//	                "checked"    -> the time of the last check (RFC 3339)
//	                "acknowledged" -> count(8) of ledgerAcks
//
// The public key is pinned: Watch.PublicKey (the -ledger-public-key flag) when set, else the key
// the coordination service gave the first time it was asked, kept in the file (trust on first
// use, as ssh does); a checkpoint signed by any other key is a checkpoint problem.
var (
	BucketLedgerAcks     = []byte("ledgerAcks")
	BucketLedgerFailures = []byte("ledgerFailures")
	BucketLedgerWatch    = []byte("ledgerWatch")
)

var (
	keyCheckpoint = []byte("checkpoint")
	keyPublicKey  = []byte("publicKey")
	keyProblem    = []byte("problem")
	keyCursor     = []byte("cursor")
	keyChecked    = []byte("checked")
	keyAckCount   = []byte("acknowledged")
)

// ackCount is the number of entries of ledgerAcks, kept beside them so that a scrape does not
// walk the bucket.
func ackCount(tx *bbolt.Tx) int {
	return int(store.KeyUint64(tx.Bucket(BucketLedgerWatch).Get(keyAckCount)))
}

// WatchBuckets are the buckets of the regional side of the verifiable ledger.
func WatchBuckets() [][]byte {
	return [][]byte{BucketLedgerAcks, BucketLedgerFailures, BucketLedgerWatch}
}

// HealthName is the health service name under which a regional service reports the state of its
// ledger checks: SERVING while the ledger holds everything it acknowledged, NOT_SERVING after a
// failure.
const HealthName = "labourlink.ledger"

// DefaultCheckInterval is how often the scheduled check runs when WatchConfig says nothing.
const DefaultCheckInterval = 10 * time.Minute

// DefaultLeavesPerCheck is how many acknowledged events a scheduled check verifies.
const DefaultLeavesPerCheck = 100

// maxFailuresShown bounds the failures of a LedgerWatch message.
const maxFailuresShown = 1000

// WatchConfig configures a Watch.
type WatchConfig struct {
	// Region is the reporter whose log is watched (the service's province).
	Region string
	// PublicKey pins the ledger's public key (note verifier key); empty: the key the coordination
	// service gives the first time, kept in the file.
	PublicKey string
	// Interval is how often Run checks; 0 takes DefaultCheckInterval.
	Interval time.Duration
	// LeavesPerCheck is how many acknowledged events one scheduled check verifies (inclusion
	// proof and event); 0 takes DefaultLeavesPerCheck.
	LeavesPerCheck int
	// Health, when set, is told the state: Health(HealthName, ok).
	Health func(name string, serving bool)
	// Now is the clock; nil for time.Now.
	Now func() time.Time
}

// Watch keeps what the ledger acknowledged to a regional service and checks that the ledger
// still holds it.
type Watch struct {
	db  *store.DB
	lg  *zap.Logger
	cfg WatchConfig

	// mu serialises the checks and acknowledgements (each reads and replaces the checkpoint).
	mu     sync.Mutex
	client coordinationv1.LedgerServiceClient
}

// NewWatch returns the watch over db (whose schema has WatchBuckets).
func NewWatch(db *store.DB, lg *zap.Logger, cfg WatchConfig) *Watch {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultCheckInterval
	}
	if cfg.LeavesPerCheck <= 0 {
		cfg.LeavesPerCheck = DefaultLeavesPerCheck
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if lg == nil {
		lg = zap.NewNop()
	}
	return &Watch{db: db, lg: lg, cfg: cfg}
}

// SetClient sets the ledger client the checks use (Run sets it too).
func (w *Watch) SetClient(c coordinationv1.LedgerServiceClient) {
	w.mu.Lock()
	w.client = c
	w.mu.Unlock()
}

// ErrNoCoordination is returned by a check when the service runs without a coordination service.
var ErrNoCoordination = errors.New("this service runs without a coordination service: there is no ledger to check")

// Run checks on the schedule until ctx ends, with client; the health is published at once.
func (w *Watch) Run(ctx context.Context, client coordinationv1.LedgerServiceClient) {
	w.SetClient(client)
	w.publishHealth()
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := w.Check(ctx); err != nil && ctx.Err() == nil {
			w.lg.Warn("ledger check could not run", zap.Error(err))
		}
	}
}

// Observe exports the watch's metrics (metrics.Registry.ObserveLedgerWatch).
func (w *Watch) Observe(reg *metrics.Registry) {
	reg.ObserveLedgerWatch(func() (metrics.LedgerWatch, error) {
		var m metrics.LedgerWatch
		err := w.db.View(func(tx *bbolt.Tx) error {
			m.Acknowledged = ackCount(tx)
			m.Failures = tx.Bucket(BucketLedgerFailures).Stats().KeyN
			m.CheckpointProblem = len(tx.Bucket(BucketLedgerWatch).Get(keyProblem)) > 0
			return nil
		})
		return m, err
	})
}

// publishHealth tells cfg.Health the state in the file.
func (w *Watch) publishHealth() {
	if w.cfg.Health == nil {
		return
	}
	ok := true
	_ = w.db.View(func(tx *bbolt.Tx) error {
		ok = tx.Bucket(BucketLedgerFailures).Stats().KeyN == 0 && len(tx.Bucket(BucketLedgerWatch).Get(keyProblem)) == 0
		return nil
	})
	w.cfg.Health(HealthName, ok)
}

// publicKey returns the pinned key: the configured one, else the one kept, else the one the
// ledger gives now (then kept).
func (w *Watch) publicKey(ctx context.Context, c coordinationv1.LedgerServiceClient) (string, error) {
	var kept string
	if err := w.db.View(func(tx *bbolt.Tx) error {
		kept = string(tx.Bucket(BucketLedgerWatch).Get(keyPublicKey))
		return nil
	}); err != nil {
		return "", err
	}
	want := w.cfg.PublicKey
	switch {
	case want != "" && want == kept:
		return want, nil
	case want == "" && kept != "":
		return kept, nil
	case want == "":
		resp, err := c.GetLedgerPublicKey(ctx, &coordinationv1.GetLedgerPublicKeyRequest{})
		if err != nil {
			return "", fmt.Errorf("ledger public key: %w", err)
		}
		want = resp.GetPublicKey()
		w.lg.Info("ledger public key pinned at first use", zap.String("public_key", want))
	default:
		if kept != "" {
			w.lg.Warn("ledger public key replaced by the configured one", zap.String("kept", kept), zap.String("public_key", want))
		}
	}
	err := w.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(BucketLedgerWatch).Put(keyPublicKey, []byte(want)) })
	return want, err
}

// keptCheckpoint returns the checkpoint kept (nil before the first).
func keptCheckpoint(tx *bbolt.Tx) (*coordinationv1.LedgerCheckpoint, error) {
	cp := &coordinationv1.LedgerCheckpoint{}
	ok, err := store.GetProto(tx.Bucket(BucketLedgerWatch), keyCheckpoint, cp)
	if err != nil || !ok {
		return nil, err
	}
	return cp, nil
}

// advance verifies cur (signed) against the kept checkpoint and keeps it when it extends the kept
// one. It returns the problem with the log as a whole ("" for none); err is for a check that could
// not run (the ledger unreachable).
//
// extends (nil: none) may say that verified extends old without a consistency proof (a leaf
// range of the same answer proves it); otherwise the proof is asked of c.
func (w *Watch) advance(ctx context.Context, c coordinationv1.LedgerServiceClient, key string, cur *coordinationv1.LedgerCheckpoint, extends func(old, cur Checkpoint) bool) (Checkpoint, string, error) {
	verified, problem, keep, err := w.checkAdvance(ctx, c, key, cur, extends)
	if keep {
		err = w.db.Update(func(tx *bbolt.Tx) error { return keepCheckpoint(tx, cur) })
	}
	return verified, problem, err
}

// keepCheckpoint keeps cur as the newest checkpoint checked.
func keepCheckpoint(tx *bbolt.Tx, cur *coordinationv1.LedgerCheckpoint) error {
	return store.PutProto(tx.Bucket(BucketLedgerWatch), keyCheckpoint, cur)
}

// checkAdvance is advance without the write: keep says cur is to be kept (it was checked and is
// newer than the kept one).
func (w *Watch) checkAdvance(ctx context.Context, c coordinationv1.LedgerServiceClient, key string, cur *coordinationv1.LedgerCheckpoint, extends func(old, cur Checkpoint) bool) (verified Checkpoint, problem string, keep bool, err error) {
	verified, err = VerifyCheckpoint(key, w.cfg.Region, cur)
	if err != nil {
		return Checkpoint{}, fmt.Sprintf("the ledger's checkpoint is not signed by the pinned key: %v", err), false, nil
	}
	var kept *coordinationv1.LedgerCheckpoint
	if err := w.db.View(func(tx *bbolt.Tx) (err error) { kept, err = keptCheckpoint(tx); return err }); err != nil {
		return verified, "", false, err
	}
	if kept != nil {
		old, err := VerifyCheckpoint(key, w.cfg.Region, kept)
		if err != nil {
			return verified, fmt.Sprintf("the kept checkpoint is not signed by the pinned key: %v", err), false, nil
		}
		switch {
		case verified.Size < old.Size:
			return verified, fmt.Sprintf("the ledger's log has %d leaves, fewer than the %d it signed before", verified.Size, old.Size), false, nil
		case verified.Size == old.Size:
			if !bytes.Equal(verified.Root, old.Root) {
				return verified, fmt.Sprintf("the ledger's log of %d leaves has another root than the one it signed before", verified.Size), false, nil
			}
			return verified, "", false, nil
		case old.Size > 0 && (extends == nil || !extends(old, verified)):
			p, err := c.GetConsistencyProof(ctx, &coordinationv1.GetConsistencyProofRequest{ReporterRegion: w.cfg.Region, FromSize: int64(old.Size), ToSize: int64(verified.Size)})
			if err != nil {
				return verified, "", false, fmt.Errorf("consistency proof: %w", err)
			}
			if err := VerifyConsistency(old, verified, p.GetProof()); err != nil {
				return verified, err.Error(), false, nil
			}
		}
	}
	return verified, "", true, nil
}

// setProblem records the problem of the log as a whole ("" clears it), logging a new one.
func (w *Watch) setProblem(problem string) error {
	return w.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(BucketLedgerWatch)
		if problem == "" {
			return b.Delete(keyProblem)
		}
		if string(b.Get(keyProblem)) != problem {
			w.lg.Error("ledger check failed: the ledger no longer holds what it acknowledged", zap.String("reporter_region", w.cfg.Region), zap.String("problem", problem))
		}
		return b.Put(keyProblem, []byte(problem))
	})
}

// result is the outcome of checking one acknowledged event ("" problem: it holds).
type result struct {
	index   uint64
	eventID string
	problem string
}

// record keeps the results: a failure is added (logged when new), a pass clears the failure.
func (w *Watch) record(tx *bbolt.Tx, now time.Time, rs []result) error {
	b := tx.Bucket(BucketLedgerFailures)
	for _, r := range rs {
		k := store.Uint64Key(r.index)
		if r.problem == "" {
			if err := b.Delete(k); err != nil {
				return err
			}
			continue
		}
		old := &storagev1.LedgerFailure{}
		found, err := store.GetProto(b, k, old)
		if err != nil {
			return err
		}
		if found && old.GetProblem() == r.problem {
			continue
		}
		w.lg.Error("ledger check failed: an acknowledged event is no longer in the ledger as acknowledged",
			zap.String("event_id", r.eventID), zap.Uint64("leaf_index", r.index), zap.String("problem", r.problem))
		f := &storagev1.LedgerFailure{EventId: r.eventID, Problem: r.problem, DetectTime: timestamppb.New(now)}
		if found {
			f.DetectTime = old.GetDetectTime()
		}
		if err := store.PutProto(b, k, f); err != nil {
			return err
		}
	}
	return nil
}

// Acknowledge keeps what a ReportEvents response acknowledged of batch (the events sent, in
// order): for each of the region's events with an inclusion or in a leaf range, its leaf index
// and the leaf hash of the event as sent, and the checkpoint when it is signed by the pinned key
// and extends the kept one. A proof that does not hold is a failure at once. An error is for an
// acknowledgement that could not be kept (the file): the delivery is then retried, and the
// ledger answers the repeat with the same proofs (as inclusions: the events are duplicates).
//
// A leaf range that starts where the kept checkpoint ends proves the new checkpoint extends it
// (its compact range composes into the kept root): no consistency proof is asked for then.
func (w *Watch) Acknowledge(ctx context.Context, c coordinationv1.LedgerServiceClient, batch []*coordinationv1.LedgerEvent, resp *coordinationv1.ReportEventsResponse) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var cp *coordinationv1.LedgerCheckpoint
	for _, x := range resp.GetCheckpoints() {
		if x.GetReporterRegion() == w.cfg.Region {
			cp = x
		}
	}
	if cp == nil {
		return nil
	}
	// The region's leaf range: its leaves (as sent) and roots, or why they could not be made.
	type leafRange struct {
		r             *coordinationv1.LeafRange
		leaves        [][]byte
		before, after []byte
		err           error
	}
	var ranges []leafRange
	for _, r := range resp.GetRanges() {
		if r.GetReporterRegion() != w.cfg.Region {
			continue
		}
		lr := leafRange{r: r}
		if lr.leaves, lr.err = RangeLeaves(batch, w.cfg.Region, r); lr.err == nil {
			lr.before, lr.after, lr.err = RangeRoots(r, lr.leaves)
		}
		ranges = append(ranges, lr)
	}
	key, err := w.publicKey(ctx, c)
	if err != nil {
		// Keep the leaves; the next check pins the key and checks them.
		w.lg.Warn("ledger acknowledgement not verified", zap.Error(err))
	}
	var verified Checkpoint
	problem, keepCP := "", false
	if key != "" {
		extends := func(old, cur Checkpoint) bool {
			for _, lr := range ranges {
				if lr.err == nil && uint64(lr.r.GetFirstLeafIndex()) == old.Size && uint64(lr.r.GetTreeSize()) == cur.Size &&
					bytes.Equal(lr.before, old.Root) && bytes.Equal(lr.after, cur.Root) {
					return true
				}
			}
			return false
		}
		verified, problem, keepCP, err = w.checkAdvance(ctx, c, key, cp, extends)
		if err != nil {
			w.lg.Warn("ledger checkpoint not advanced", zap.Error(err))
		}
	}
	now := w.cfg.Now()
	var rs []result
	err = w.db.Update(func(tx *bbolt.Tx) error {
		acks := tx.Bucket(BucketLedgerAcks)
		count := ackCount(tx)
		keep := func(index uint64, ev *coordinationv1.LedgerEvent, leaf []byte) error {
			k := store.Uint64Key(index)
			if acks.Get(k) == nil {
				count++
			}
			return store.PutProto(acks, k, &storagev1.LedgerAck{EventId: ev.GetEventId(), LeafHash: leaf, AckTime: timestamppb.New(now)})
		}
		for _, in := range resp.GetInclusions() {
			i := int(in.GetIndex())
			if i < 0 || i >= len(batch) || batch[i].GetReporterRegion() != w.cfg.Region || in.GetEventId() != batch[i].GetEventId() {
				continue
			}
			ev := batch[i]
			leaf, err := LeafHash(ev)
			if err != nil {
				return err
			}
			if key != "" && problem == "" {
				if err := VerifyInclusion(verified, ev, in); err != nil {
					rs = append(rs, result{uint64(in.GetLeafIndex()), ev.GetEventId(), "changed: the proof given on delivery does not hold: " + err.Error()})
				}
			}
			if err := keep(uint64(in.GetLeafIndex()), ev, leaf); err != nil {
				return err
			}
		}
		for _, lr := range ranges {
			verr := lr.err
			if verr == nil && key != "" && problem == "" {
				verr = VerifyRange(verified, lr.r, lr.leaves)
			}
			for j, i := range lr.r.GetIndexes() {
				if i < 0 || int(i) >= len(batch) || batch[i].GetReporterRegion() != w.cfg.Region {
					continue
				}
				ev, index := batch[i], uint64(lr.r.GetFirstLeafIndex())+uint64(j)
				leaf, err := LeafHash(ev)
				if err != nil {
					return err
				}
				if verr != nil && key != "" && problem == "" {
					rs = append(rs, result{index, ev.GetEventId(), "changed: the proof given on delivery does not hold: " + verr.Error()})
				}
				if err := keep(index, ev, leaf); err != nil {
					return err
				}
			}
		}
		if err := tx.Bucket(BucketLedgerWatch).Put(keyAckCount, store.Uint64Key(uint64(count))); err != nil {
			return err
		}
		if keepCP {
			// In the same transaction as the leaves it covers: one commit per acknowledgement.
			if err := keepCheckpoint(tx, cp); err != nil {
				return err
			}
		}
		return w.record(tx, now, rs)
	})
	if err != nil {
		return fmt.Errorf("keep the ledger's acknowledgement: %w", err)
	}
	if problem != "" {
		if err := w.setProblem(problem); err != nil {
			return err
		}
	}
	w.publishHealth()
	return nil
}

// Check runs one scheduled check: the current checkpoint against the kept one, then the next
// LeavesPerCheck acknowledged events from the cursor (an inclusion proof in the current tree and
// the event the ledger holds), the cursor moving on and starting again at 0 after the last.
func (w *Watch) Check(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.client
	if c == nil {
		return ErrNoCoordination
	}
	defer w.publishHealth()
	key, err := w.publicKey(ctx, c)
	if err != nil {
		return err
	}
	resp, err := c.GetLedgerCheckpoint(ctx, &coordinationv1.GetLedgerCheckpointRequest{ReporterRegion: w.cfg.Region})
	if err != nil {
		return fmt.Errorf("ledger checkpoint: %w", err)
	}
	cur, problem, err := w.advance(ctx, c, key, resp.GetCheckpoint(), nil)
	if err != nil {
		return err
	}
	if err := w.setProblem(problem); err != nil {
		return err
	}
	if cur.Size == 0 && problem != "" {
		return nil // not signed: nothing to check leaves against
	}
	// The next acknowledged events from the cursor.
	type ack struct {
		index uint64
		a     *storagev1.LedgerAck
	}
	var next []ack
	err = w.db.View(func(tx *bbolt.Tx) error {
		from := store.KeyUint64(tx.Bucket(BucketLedgerWatch).Get(keyCursor))
		cur := tx.Bucket(BucketLedgerAcks).Cursor()
		for k, v := cur.Seek(store.Uint64Key(from)); k != nil && len(next) < w.cfg.LeavesPerCheck; k, v = cur.Next() {
			a := &storagev1.LedgerAck{}
			if err := proto.Unmarshal(v, a); err != nil {
				return err
			}
			next = append(next, ack{store.KeyUint64(k), a})
		}
		return nil
	})
	if err != nil {
		return err
	}
	var rs []result
	var leaves map[uint64]*coordinationv1.LedgerLeaf
	if len(next) > 0 && next[0].index < cur.Size {
		last := min(next[len(next)-1].index, cur.Size-1)
		leaves, err = listLeaves(ctx, c, w.cfg.Region, next[0].index, last)
		if err != nil {
			return err
		}
	}
	checked := 0
	for _, n := range next {
		if _, listed := leaves[n.index]; !listed && n.index < cur.Size && checked > 0 {
			break // beyond the page: the next check
		}
		r, err := w.checkLeaf(ctx, c, cur, n.index, n.a, leaves[n.index])
		if err != nil {
			return err
		}
		rs = append(rs, r)
		checked++
	}
	now := w.cfg.Now()
	return w.db.Update(func(tx *bbolt.Tx) error {
		if err := w.record(tx, now, rs); err != nil {
			return err
		}
		b := tx.Bucket(BucketLedgerWatch)
		// The next check starts after the last one checked, or at 0 once every one was.
		cursor := uint64(0)
		switch {
		case checked < len(next):
			cursor = next[checked].index
		case len(next) == w.cfg.LeavesPerCheck:
			cursor = next[len(next)-1].index + 1
		}
		if err := b.Put(keyCursor, store.Uint64Key(cursor)); err != nil {
			return err
		}
		return b.Put(keyChecked, []byte(now.UTC().Format(time.RFC3339Nano)))
	})
}

// listLeaves returns the leaves from first to last (at most 1000 of them, from first).
func listLeaves(ctx context.Context, c coordinationv1.LedgerServiceClient, region string, first, last uint64) (map[uint64]*coordinationv1.LedgerLeaf, error) {
	n := min(last-first+1, 1000)
	page, err := c.ListLedgerLeaves(ctx, &coordinationv1.ListLedgerLeavesRequest{ReporterRegion: region, StartIndex: int64(first), PageSize: int32(n)})
	if err != nil {
		return nil, fmt.Errorf("ledger leaves: %w", err)
	}
	out := make(map[uint64]*coordinationv1.LedgerLeaf, len(page.GetLeaves()))
	for _, l := range page.GetLeaves() {
		out[uint64(l.GetLeafIndex())] = l
	}
	return out, nil
}

// checkLeaf checks one acknowledged event: in the tree of cur (inclusion proof of the
// acknowledged leaf hash) and as the event the ledger holds (leaf, listed).
func (w *Watch) checkLeaf(ctx context.Context, c coordinationv1.LedgerServiceClient, cur Checkpoint, index uint64, a *storagev1.LedgerAck, leaf *coordinationv1.LedgerLeaf) (result, error) {
	r := result{index: index, eventID: a.GetEventId()}
	if index >= cur.Size {
		r.problem = fmt.Sprintf("missing: the ledger's log has %d leaves, this event was leaf %d", cur.Size, index)
		return r, nil
	}
	p, err := c.GetInclusionProof(ctx, &coordinationv1.GetInclusionProofRequest{ReporterRegion: w.cfg.Region, LeafIndex: int64(index), TreeSize: int64(cur.Size)})
	if err != nil {
		return r, fmt.Errorf("inclusion proof of leaf %d: %w", index, err)
	}
	if err := verifyLeafInclusion(cur, index, a.GetLeafHash(), p.GetInclusion().GetProof()); err != nil {
		r.problem = "changed: the signed tree does not hold the acknowledged leaf"
		return r, nil
	}
	r.problem = eventProblem(a, leaf)
	return r, nil
}

// verifyLeafInclusion checks that leaf hash is at index in cur's tree.
func verifyLeafInclusion(cur Checkpoint, index uint64, leaf []byte, path [][]byte) error {
	return proof.VerifyInclusion(rfc6962.DefaultHasher, index, cur.Size, leaf, path, cur.Root)
}

// eventProblem compares the ledger's leaf (with its event) with the acknowledgement.
func eventProblem(a *storagev1.LedgerAck, leaf *coordinationv1.LedgerLeaf) string {
	switch {
	case leaf == nil:
		return "missing: the ledger does not list the leaf"
	case !bytes.Equal(leaf.GetLeafHash(), a.GetLeafHash()):
		return "changed: the tree's leaf is not the one acknowledged"
	case leaf.GetEvent() == nil:
		return "missing: the ledger has no event for the leaf"
	}
	h, err := LeafHash(leaf.GetEvent())
	if err != nil || !bytes.Equal(h, a.GetLeafHash()) || leaf.GetEvent().GetEventId() != a.GetEventId() {
		return "changed: the ledger's event is not the one acknowledged"
	}
	return ""
}

// VerifyAll checks the whole history now: the checkpoint as Check does, every leaf of the log
// (ListLedgerLeaves) against the signed root, and every acknowledged event against the ledger's.
// The failures found replace the ones kept. progress (if set) is called after each page.
func (w *Watch) VerifyAll(ctx context.Context, progress func(done, total uint64)) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.client
	if c == nil {
		return ErrNoCoordination
	}
	defer w.publishHealth()
	key, err := w.publicKey(ctx, c)
	if err != nil {
		return err
	}
	resp, err := c.GetLedgerCheckpoint(ctx, &coordinationv1.GetLedgerCheckpointRequest{ReporterRegion: w.cfg.Region})
	if err != nil {
		return fmt.Errorf("ledger checkpoint: %w", err)
	}
	cur, problem, err := w.advance(ctx, c, key, resp.GetCheckpoint(), nil)
	if err != nil {
		return err
	}
	var rs []result
	rng := rangeFactory.NewEmptyRange(0)
	for start := uint64(0); start < cur.Size; {
		page, err := c.ListLedgerLeaves(ctx, &coordinationv1.ListLedgerLeavesRequest{ReporterRegion: w.cfg.Region, StartIndex: int64(start), PageSize: 1000})
		if err != nil {
			return fmt.Errorf("ledger leaves: %w", err)
		}
		leaves := page.GetLeaves()
		if len(leaves) == 0 {
			break
		}
		err = w.db.View(func(tx *bbolt.Tx) error {
			acks := tx.Bucket(BucketLedgerAcks)
			for _, l := range leaves {
				i := uint64(l.GetLeafIndex())
				if i >= cur.Size {
					break
				}
				if i != start {
					return fmt.Errorf("the ledger listed leaf %d where %d was due", i, start)
				}
				if err := rng.Append(l.GetLeafHash(), nil); err != nil {
					return err
				}
				start++
				a := &storagev1.LedgerAck{}
				found, err := store.GetProto(acks, store.Uint64Key(i), a)
				if err != nil {
					return err
				}
				if found {
					rs = append(rs, result{i, a.GetEventId(), eventProblem(a, l)})
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if progress != nil {
			progress(start, cur.Size)
		}
	}
	if problem == "" {
		if rng.End() != cur.Size {
			problem = fmt.Sprintf("the ledger listed %d leaves of a log of %d", rng.End(), cur.Size)
		} else if cur.Size > 0 {
			root, err := rng.GetRootHash(nil)
			if err != nil {
				return err
			}
			if !bytes.Equal(root, cur.Root) {
				problem = "the leaves the ledger lists do not make the root it signed"
			}
		}
	}
	if err := w.setProblem(problem); err != nil {
		return err
	}
	now := w.cfg.Now()
	return w.db.Update(func(tx *bbolt.Tx) error {
		// Acknowledged events beyond the log are missing.
		c := tx.Bucket(BucketLedgerAcks).Cursor()
		for k, v := c.Seek(store.Uint64Key(cur.Size)); k != nil; k, v = c.Next() {
			a := &storagev1.LedgerAck{}
			if err := proto.Unmarshal(v, a); err != nil {
				return err
			}
			i := store.KeyUint64(k)
			rs = append(rs, result{i, a.GetEventId(), fmt.Sprintf("missing: the ledger's log has %d leaves, this event was leaf %d", cur.Size, i)})
		}
		// The failures found replace the ones kept.
		failed := map[uint64]bool{}
		for _, r := range rs {
			if r.problem != "" {
				failed[r.index] = true
			}
		}
		fc := tx.Bucket(BucketLedgerFailures).Cursor()
		var stale [][]byte
		for k, _ := fc.First(); k != nil; k, _ = fc.Next() {
			if !failed[store.KeyUint64(k)] {
				stale = append(stale, bytes.Clone(k))
			}
		}
		for _, k := range stale {
			if err := tx.Bucket(BucketLedgerFailures).Delete(k); err != nil {
				return err
			}
		}
		if err := w.record(tx, now, rs); err != nil {
			return err
		}
		return tx.Bucket(BucketLedgerWatch).Put(keyChecked, []byte(now.UTC().Format(time.RFC3339Nano)))
	})
}

// State returns what the watch keeps and found.
func (w *Watch) State() (*ledgerwatchv1.LedgerWatch, error) {
	st := &ledgerwatchv1.LedgerWatch{ReporterRegion: w.cfg.Region}
	err := w.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(BucketLedgerWatch)
		cp, err := keptCheckpoint(tx)
		if err != nil {
			return err
		}
		st.Checkpoint = cp
		st.PublicKey = string(b.Get(keyPublicKey))
		st.CheckpointProblem = string(b.Get(keyProblem))
		if t, err := time.Parse(time.RFC3339Nano, string(b.Get(keyChecked))); err == nil {
			st.LastCheckTime = timestamppb.New(t)
		}
		st.AcknowledgedEvents = int64(ackCount(tx))
		fb := tx.Bucket(BucketLedgerFailures)
		st.FailureCount = int64(fb.Stats().KeyN)
		c := fb.Cursor()
		for k, v := c.First(); k != nil && len(st.Failures) < maxFailuresShown; k, v = c.Next() {
			f := &storagev1.LedgerFailure{}
			if err := proto.Unmarshal(v, f); err != nil {
				return err
			}
			st.Failures = append(st.Failures, &ledgerwatchv1.LedgerFailure{LeafIndex: int64(store.KeyUint64(k)), EventId: f.GetEventId(), Problem: f.GetProblem(), DetectTime: f.GetDetectTime()})
		}
		return nil
	})
	return st, err
}

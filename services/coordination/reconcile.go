package coordination

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordinationv1 "github.com/eastwest/labourlink/proto/labour/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/store"
)

// Reconciliation per batch. For the sets of distinct workers of one batch in the ledger —
// D departed, A arrived, N no-show, O onboarded — and its grace deadline (earliest departure +
// grace period):
//
//	departed    = |D|
//	arrived     = |A|
//	no_show     = |N \ A|            (a later arrival overrides a no-show)
//	awaiting    = |D \ A \ N|        before the deadline, else 0
//	unaccounted = |D \ A \ N|        from the deadline on, else 0
//	unexpected  = |A \ D|
//	unverified  = |O \ A|
//
// and one discrepancy per worker: UNACCOUNTED (D \ A \ N, from the deadline on), NO_SHOW
// (D ∩ N \ A), UNEXPECTED (A \ D), UNVERIFIED (O \ A). The sets only grow and the deadline only
// moves earlier (an earlier departure reported late), so each discrepancy opens at most once
// and closes at most once: when the missing event arrives.
//
// The result is stored per batch (BucketLedgerBatches) and recomputed from the batch's events
// (BucketLedgerByBatch) whenever the batch gets an event, and when its grace deadline passes
// (BucketLedgerDeadlines, deadline batch -> empty, holds the batches still awaiting workers; the
// timer in Run reconciles those whose deadline passed). Discrepancies are kept by
// (batch, worker, kind) in BucketDiscrepancies, and every opening and closing is a revision in
// BucketDiscrepancyChanges (revision -> the discrepancy as it was then).

// batchFacts are the distinct workers of one batch by kind, each with its earliest time.
type batchFacts struct {
	pairing                              regions.Pairing
	departed, arrived, noShow, onboarded map[string]time.Time
}

func loadBatchFacts(tx *bbolt.Tx, batch string) (*batchFacts, error) {
	f := &batchFacts{
		departed: map[string]time.Time{}, arrived: map[string]time.Time{},
		noShow: map[string]time.Time{}, onboarded: map[string]time.Time{},
	}
	events := tx.Bucket(store.BucketLedgerEvents)
	prefix := idPrefix(batch)
	c := tx.Bucket(store.BucketLedgerByBatch).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) != len(prefix)+8 {
			continue
		}
		ev := &coordinationv1.LedgerEvent{}
		if ok, err := store.GetProto(events, k[len(prefix):], ev); err != nil {
			return nil, err
		} else if !ok {
			return nil, fmt.Errorf("ledger index of batch names event %d, which is missing", store.KeyUint64(k[len(prefix):]))
		}
		f.pairing = regions.Pairing{Receiving: ev.GetReceivingRegion(), Sending: ev.GetSendingRegion()}
		var m map[string]time.Time
		switch ev.GetKind() {
		case coordinationv1.EventKind_EVENT_KIND_DEPARTED:
			m = f.departed
		case coordinationv1.EventKind_EVENT_KIND_ARRIVED:
			m = f.arrived
		case coordinationv1.EventKind_EVENT_KIND_NO_SHOW:
			m = f.noShow
		case coordinationv1.EventKind_EVENT_KIND_ONBOARDED:
			m = f.onboarded
		default:
			continue
		}
		t := ev.GetOccurTime().AsTime()
		if old, ok := m[ev.GetWorkerId()]; !ok || t.Before(old) {
			m[ev.GetWorkerId()] = t
		}
	}
	return f, nil
}

// wantedDiscrepancy is a discrepancy the batch's facts call for.
type wantedDiscrepancy struct {
	kind   coordinationv1.DiscrepancyKind
	worker string
	detail string
}

// reconcileBatch recomputes the batch's reconciliation at time now, stores it, keeps its place in
// the deadline index, and opens and closes its discrepancies.
func (s *Service) reconcileBatch(tx *bbolt.Tx, batch string, now time.Time) error {
	f, err := loadBatchFacts(tx, batch)
	if err != nil {
		return err
	}
	p := f.pairing
	rec := &coordinationv1.BatchReconciliation{
		BatchId: batch, SendingRegion: p.Sending, ReceivingRegion: p.Receiving,
		Departed: int64(len(f.departed)), Arrived: int64(len(f.arrived)),
	}
	var deadline time.Time
	if len(f.departed) > 0 {
		var first time.Time
		for _, t := range f.departed {
			if first.IsZero() || t.Before(first) {
				first = t
			}
		}
		deadline = first.Add(s.cfg.GracePeriod)
		rec.DepartureTime, rec.GraceDeadline = timestamppb.New(first), timestamppb.New(deadline)
	}
	past := !deadline.IsZero() && !now.Before(deadline)

	var want []wantedDiscrepancy
	for w, t := range f.departed {
		_, arrived := f.arrived[w]
		_, noShow := f.noShow[w]
		switch {
		case arrived:
		case noShow:
			want = append(want, wantedDiscrepancy{coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_NO_SHOW, w,
				fmt.Sprintf("departed %s according to %s; reported as a no-show by %s", formatCST(t), p.Sending, p.Receiving)})
		case past:
			rec.Unaccounted++
			want = append(want, wantedDiscrepancy{coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_UNACCOUNTED, w,
				fmt.Sprintf("departed %s according to %s; not confirmed arrived nor no-show by %s by the grace deadline %s",
					formatCST(t), p.Sending, p.Receiving, formatCST(deadline))})
		default:
			rec.Awaiting++
		}
	}
	for w := range f.noShow {
		if _, arrived := f.arrived[w]; !arrived {
			rec.NoShow++
		}
	}
	for w, t := range f.arrived {
		if _, departed := f.departed[w]; !departed {
			rec.Unexpected++
			want = append(want, wantedDiscrepancy{coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_UNEXPECTED, w,
				fmt.Sprintf("confirmed arrived %s by %s; no departure reported by %s", formatCST(t), p.Receiving, p.Sending)})
		}
	}
	for w, t := range f.onboarded {
		if _, arrived := f.arrived[w]; !arrived {
			rec.Unverified++
			want = append(want, wantedDiscrepancy{coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_UNVERIFIED, w,
				fmt.Sprintf("onboarded %s in %s; no arrival confirmed", formatCST(t), p.Receiving)})
		}
	}

	batches := tx.Bucket(store.BucketLedgerBatches)
	old := &coordinationv1.BatchReconciliation{}
	if ok, err := store.GetProto(batches, []byte(batch), old); err != nil {
		return err
	} else if ok && old.GetGraceDeadline() != nil {
		if err := tx.Bucket(store.BucketLedgerDeadlines).Delete(deadlineKey(old.GetGraceDeadline().AsTime(), batch)); err != nil {
			return err
		}
	}
	if rec.Awaiting > 0 {
		if err := putEmpty(tx.Bucket(store.BucketLedgerDeadlines), deadlineKey(deadline, batch)); err != nil {
			return err
		}
	}
	if err := s.syncDiscrepancies(tx, rec, want, now); err != nil {
		return err
	}
	return store.PutProto(batches, []byte(batch), rec)
}

// syncDiscrepancies makes the stored discrepancies of rec's batch match want: it opens the new
// ones, closes the open ones no longer wanted, and writes a revision for each change, in
// (worker, kind) order.
func (s *Service) syncDiscrepancies(tx *bbolt.Tx, rec *coordinationv1.BatchReconciliation, want []wantedDiscrepancy, now time.Time) error {
	b := tx.Bucket(store.BucketDiscrepancies)
	changes := tx.Bucket(store.BucketDiscrepancyChanges)
	type item struct {
		stored *coordinationv1.Discrepancy
		want   *wantedDiscrepancy
	}
	items := map[string]*item{}
	prefix := idPrefix(rec.GetBatchId())
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		d := &coordinationv1.Discrepancy{}
		if err := unmarshal(v, d); err != nil {
			return err
		}
		items[string(k)] = &item{stored: d}
	}
	for i := range want {
		w := &want[i]
		k := string(discrepancyKey(rec.GetBatchId(), w.worker, byte(w.kind)))
		if it, ok := items[k]; ok {
			it.want = w
		} else {
			items[k] = &item{want: w}
		}
	}
	keys := make([]string, 0, len(items))
	for k := range items {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ts := timestamppb.New(now)
	for _, k := range keys {
		it := items[k]
		var d *coordinationv1.Discrepancy
		switch {
		case it.stored == nil:
			id, err := store.NextSeq(b)
			if err != nil {
				return err
			}
			d = &coordinationv1.Discrepancy{
				Name:            "discrepancies/" + strconv.FormatUint(id, 10),
				Kind:            it.want.kind,
				State:           coordinationv1.DiscrepancyState_DISCREPANCY_STATE_OPEN,
				WorkerId:        it.want.worker,
				BatchId:         rec.GetBatchId(),
				SendingRegion:   rec.GetSendingRegion(),
				ReceivingRegion: rec.GetReceivingRegion(),
				Detail:          it.want.detail,
				OpenTime:        ts,
			}
		case it.want == nil && it.stored.GetState() == coordinationv1.DiscrepancyState_DISCREPANCY_STATE_OPEN:
			d = it.stored
			d.State = coordinationv1.DiscrepancyState_DISCREPANCY_STATE_CLOSED
			d.CloseTime = ts
		case it.want != nil && it.stored.GetState() != coordinationv1.DiscrepancyState_DISCREPANCY_STATE_OPEN:
			// Not reachable while the ledger only grows; kept so that the stored state always
			// follows the facts.
			d = it.stored
			d.State = coordinationv1.DiscrepancyState_DISCREPANCY_STATE_OPEN
			d.Detail, d.OpenTime, d.CloseTime = it.want.detail, ts, nil
		default:
			continue
		}
		rev, err := store.NextSeq(changes)
		if err != nil {
			return err
		}
		d.Revision = int64(rev)
		if err := store.PutProto(b, []byte(k), d); err != nil {
			return err
		}
		if err := store.PutProto(changes, store.Uint64Key(rev), d); err != nil {
			return err
		}
	}
	return nil
}

// expireBatchLimit bounds the batches one timer transaction reconciles.
const expireBatchLimit = 500

// expireDue reconciles the batches whose grace deadline has passed (opening their unaccounted
// discrepancies) and returns the next deadline still ahead (zero if none).
func (s *Service) expireDue() (time.Time, error) {
	for {
		now := s.cfg.Now()
		var next time.Time
		more := false
		err := s.db.Update(func(tx *bbolt.Tx) error {
			var due []string
			var dueKeys [][]byte
			deadlines := tx.Bucket(store.BucketLedgerDeadlines)
			c := deadlines.Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				if len(k) < 8 {
					dueKeys = append(dueKeys, append([]byte(nil), k...))
					continue
				}
				if t := keyTime(k[:8]); t.After(now) {
					next = t
					break
				}
				if len(due) == expireBatchLimit {
					more = true
					break
				}
				due = append(due, string(k[8:]))
				dueKeys = append(dueKeys, append([]byte(nil), k...))
			}
			// The keys go whatever the batches' records say, so that the timer never loops on
			// an entry its reconciliation would not remove.
			for _, k := range dueKeys {
				if err := deadlines.Delete(k); err != nil {
					return err
				}
			}
			for _, b := range due {
				if err := s.reconcileBatch(tx, b, now); err != nil {
					return fmt.Errorf("reconcile batch %s at its deadline: %w", b, err)
				}
			}
			return nil
		})
		if err != nil || !more {
			return next, err
		}
	}
}

// ValidateRequest checks reconciliation requests before the handlers run.
func (x *reconciliationServer) ValidateRequest(method string, req any) error {
	t := x.s.regions
	var v apierror.Violations
	switch r := req.(type) {
	case *coordinationv1.GetBatchReconciliationRequest:
		checkID(&v, "batch_id", r.GetBatchId(), maxIDLen)
	case *coordinationv1.ListBatchReconciliationsRequest:
		checkProvince(&v, t, "receiving_region", r.GetReceivingRegion(), false)
		checkProvince(&v, t, "sending_region", r.GetSendingRegion(), false)
		pageSize.CheckBounded(&v, r.GetPageSize())
		batchReconciliationsListing(r).Check(&v, r.GetPageToken())
	case *coordinationv1.ListPairingSummariesRequest:
		checkDate(&v, "period_start", r.GetPeriodStart())
		checkDate(&v, "period_end", r.GetPeriodEnd())
		if v.Len() == 0 && r.GetPeriodStart() != nil && r.GetPeriodEnd() != nil && dayStart(r.GetPeriodEnd()).Before(dayStart(r.GetPeriodStart())) {
			v.Add("period_end", "must not be before period_start")
		}
		checkProvince(&v, t, "region", r.GetRegion(), false)
	case *coordinationv1.ListDiscrepanciesRequest:
		if r.GetBatchId() != "" {
			checkID(&v, "batch_id", r.GetBatchId(), maxIDLen)
		}
		checkProvince(&v, t, "region", r.GetRegion(), false)
		if _, ok := coordinationv1.DiscrepancyKind_name[int32(r.GetKind())]; !ok {
			v.Add("kind", "unknown discrepancy kind")
		}
		pageSize.CheckBounded(&v, r.GetPageSize())
		discrepanciesListing(r).Check(&v, r.GetPageToken())
	case *coordinationv1.ListDiscrepancyChangesRequest:
		if r.GetAfterRevision() < 0 {
			v.Add("after_revision", "must be 0 (from the start) or a revision seen before")
		}
		pageSize.CheckBounded(&v, r.GetPageSize())
	default:
		return apierror.NotValidated(req)
	}
	return v.Err()
}

// openDiscrepancies returns the open discrepancies of batch in (worker, kind) order.
func openDiscrepancies(tx *bbolt.Tx, batch string) ([]*coordinationv1.Discrepancy, error) {
	var out []*coordinationv1.Discrepancy
	prefix := idPrefix(batch)
	c := tx.Bucket(store.BucketDiscrepancies).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		d := &coordinationv1.Discrepancy{}
		if err := unmarshal(v, d); err != nil {
			return nil, err
		}
		if d.GetState() == coordinationv1.DiscrepancyState_DISCREPANCY_STATE_OPEN {
			out = append(out, d)
		}
	}
	return out, nil
}

// GetBatchReconciliation reconciles one batch.
func (x *reconciliationServer) GetBatchReconciliation(ctx context.Context, req *coordinationv1.GetBatchReconciliationRequest) (*coordinationv1.GetBatchReconciliationResponse, error) {
	rec := &coordinationv1.BatchReconciliation{}
	var found bool
	err := x.s.db.View(func(tx *bbolt.Tx) error {
		var err error
		if found, err = store.GetProto(tx.Bucket(store.BucketLedgerBatches), []byte(req.GetBatchId()), rec); err != nil || !found {
			return err
		}
		rec.Discrepancies, err = openDiscrepancies(tx, req.GetBatchId())
		return err
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, apierror.NotFound("batch %s has no events in the ledger", req.GetBatchId())
	}
	return &coordinationv1.GetBatchReconciliationResponse{Reconciliation: rec}, nil
}

// ListBatchReconciliations reconciles batches in batch-id order.
func (x *reconciliationServer) ListBatchReconciliations(ctx context.Context, req *coordinationv1.ListBatchReconciliationsRequest) (*coordinationv1.ListBatchReconciliationsResponse, error) {
	listing := batchReconciliationsListing(req)
	after, err := listing.Decode(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	n := pageSize.Of(req.GetPageSize())
	resp := &coordinationv1.ListBatchReconciliationsResponse{}
	err = x.s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(store.BucketLedgerBatches).Cursor()
		for k, v := seekAfter(c, nil, after); k != nil; k, v = c.Next() {
			if len(resp.Reconciliations) == n {
				resp.NextPageToken = listing.Token(after)
				return nil
			}
			after = append([]byte(nil), k...)
			rec := &coordinationv1.BatchReconciliation{}
			if err := unmarshal(v, rec); err != nil {
				return err
			}
			if r := req.GetReceivingRegion(); r != "" && rec.GetReceivingRegion() != r {
				continue
			}
			if r := req.GetSendingRegion(); r != "" && rec.GetSendingRegion() != r {
				continue
			}
			var err error
			if rec.Discrepancies, err = openDiscrepancies(tx, rec.GetBatchId()); err != nil {
				return err
			}
			resp.Reconciliations = append(resp.Reconciliations, rec)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// ListPairingSummaries counts distinct workers per pairing and category over a period: a worker
// counts in a category when the pairing has an event of it about the worker whose occur_time
// falls in the period (dates in China Standard Time, both days included).
func (x *reconciliationServer) ListPairingSummaries(ctx context.Context, req *coordinationv1.ListPairingSummariesRequest) (*coordinationv1.ListPairingSummariesResponse, error) {
	s := x.s
	from := earliestOccur
	if d := req.GetPeriodStart(); d != nil {
		from = dayStart(d)
	}
	var until time.Time // exclusive
	if d := req.GetPeriodEnd(); d != nil {
		until = dayStart(d).AddDate(0, 0, 1)
	} else {
		y, m, d := s.cfg.Now().In(chinaTime).Date()
		until = time.Date(y, m, d+1, 0, 0, 0, 0, chinaTime)
	}
	region := req.GetRegion()
	involves := func(p regions.Pairing) bool {
		return region == "" || p.Receiving == region || p.Sending == region
	}
	resp := &coordinationv1.ListPairingSummariesResponse{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		set := map[regions.Pairing]bool{}
		for _, p := range registeredPairings(tx) {
			set[p] = true
		}
		idx := tx.Bucket(store.BucketLedgerByPairing)
		c := idx.Cursor()
		for k, _ := c.First(); k != nil; {
			if len(k) < 12 {
				k, _ = c.Next()
				continue
			}
			set[regions.Pairing{Receiving: string(k[:6]), Sending: string(k[6:12])}] = true
			k, _ = c.Seek(append(append([]byte(nil), k[:12]...), 0xff))
		}
		open := map[regions.Pairing]int64{}
		dc := tx.Bucket(store.BucketDiscrepancies).Cursor()
		for k, v := dc.First(); k != nil; k, v = dc.Next() {
			d := &coordinationv1.Discrepancy{}
			if err := unmarshal(v, d); err != nil {
				return err
			}
			if d.GetState() == coordinationv1.DiscrepancyState_DISCREPANCY_STATE_OPEN {
				open[regions.Pairing{Receiving: d.GetReceivingRegion(), Sending: d.GetSendingRegion()}]++
			}
		}
		pairs := make([]regions.Pairing, 0, len(set))
		for p := range set {
			if involves(p) {
				pairs = append(pairs, p)
			}
		}
		sort.Slice(pairs, func(i, j int) bool {
			if pairs[i].Receiving != pairs[j].Receiving {
				return pairs[i].Receiving < pairs[j].Receiving
			}
			return pairs[i].Sending < pairs[j].Sending
		})
		for _, p := range pairs {
			count := func(cat byte) int64 {
				prefix := append(pairingPrefix(p.Receiving, p.Sending), cat)
				workers := map[string]struct{}{}
				lo := append(append([]byte(nil), prefix...), timeKey(from)...)
				hi := append(append([]byte(nil), prefix...), timeKey(until)...)
				for k, _ := c.Seek(lo); k != nil && bytes.Compare(k, hi) < 0; k, _ = c.Next() {
					if len(k) < len(prefix)+8 {
						continue
					}
					workers[string(k[len(prefix)+8:])] = struct{}{}
				}
				return int64(len(workers))
			}
			resp.Summaries = append(resp.Summaries, &coordinationv1.PairingSummary{
				ReceivingRegion:   p.Receiving,
				SendingRegion:     p.Sending,
				Departed:          count(catDeparted),
				Arrived:           count(catArrived),
				NoShow:            count(catNoShow),
				Onboarded:         count(catOnboarded),
				Employed_3Months:  count(catEmployed3),
				Employed_6Months:  count(catEmployed6),
				LeftJob:           count(catLeftJob),
				ReturnedHome:      count(catReturnedHome),
				OpenDiscrepancies: open[p],
			})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// ListDiscrepancies lists discrepancies in (batch, worker, kind) order.
func (x *reconciliationServer) ListDiscrepancies(ctx context.Context, req *coordinationv1.ListDiscrepanciesRequest) (*coordinationv1.ListDiscrepanciesResponse, error) {
	listing := discrepanciesListing(req)
	after, err := listing.Decode(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	n := pageSize.Of(req.GetPageSize())
	var prefix []byte
	if req.GetBatchId() != "" {
		prefix = idPrefix(req.GetBatchId())
	}
	resp := &coordinationv1.ListDiscrepanciesResponse{}
	err = x.s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(store.BucketDiscrepancies).Cursor()
		for k, v := seekAfter(c, prefix, after); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(resp.Discrepancies) == n {
				resp.NextPageToken = listing.Token(after)
				return nil
			}
			after = append([]byte(nil), k...)
			d := &coordinationv1.Discrepancy{}
			if err := unmarshal(v, d); err != nil {
				return err
			}
			if !req.GetIncludeClosed() && d.GetState() != coordinationv1.DiscrepancyState_DISCREPANCY_STATE_OPEN {
				continue
			}
			if req.GetKind() != coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_UNSPECIFIED && d.GetKind() != req.GetKind() {
				continue
			}
			if r := req.GetRegion(); r != "" && d.GetSendingRegion() != r && d.GetReceivingRegion() != r {
				continue
			}
			resp.Discrepancies = append(resp.Discrepancies, d)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// ListDiscrepancyChanges returns discrepancies as they opened and closed, after a revision.
func (x *reconciliationServer) ListDiscrepancyChanges(ctx context.Context, req *coordinationv1.ListDiscrepancyChangesRequest) (*coordinationv1.ListDiscrepancyChangesResponse, error) {
	n := pageSize.Of(req.GetPageSize())
	resp := &coordinationv1.ListDiscrepancyChangesResponse{}
	err := x.s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(store.BucketDiscrepancyChanges)
		resp.HeadRevision = int64(b.Sequence())
		c := b.Cursor()
		for k, v := c.Seek(store.Uint64Key(uint64(req.GetAfterRevision()) + 1)); k != nil && len(resp.Changes) < n; k, v = c.Next() {
			d := &coordinationv1.Discrepancy{}
			if err := unmarshal(v, d); err != nil {
				return err
			}
			resp.Changes = append(resp.Changes, d)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

package ledger

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/codes/workcalendar"
	"github.com/eastwest/labourlink/services/coordination/check"
	"github.com/eastwest/labourlink/services/coordination/registry"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/paging"
	"github.com/eastwest/labourlink/services/platform/store"
)

// The reconciliation (rules.go) is stored per batch and recomputed from the batch's events
// whenever the batch gets an event, and when its grace deadline passes (the deadlines index
// holds the batches still awaiting workers; the timer in Run reconciles those whose deadline
// passed).

// reconcileBatch recomputes the batch's reconciliation at time now, stores it, keeps its place in
// the deadline index, and opens and closes its discrepancies. known (may be nil) holds events of
// the batch by sequence number as stored (the report's own), not read again.
func (l *Ledger) reconcileBatch(tx *bbolt.Tx, batch string, now time.Time, known map[uint64]*coordinationv1.LedgerEvent) error {
	f := newBatchFacts()
	if err := batchEvents(tx, batch, known, f.add); err != nil {
		return err
	}
	t, err := l.pairingTerms(tx, f.pairing)
	if err != nil {
		return err
	}
	rec, deadline, want := reconcile(batch, f, t.grace, now)
	more, next, uncovered, err := tripDeadlines(tx, batch, f, t, workcalendar.China(), now)
	if err != nil {
		return err
	}
	if uncovered {
		l.lg.Warn("working days counted on weekends only: the holiday calendar does not cover the year",
			zap.String("batch_id", batch), zap.Ints("covered_years", workcalendar.China().Years()))
	}
	want = append(want, more...)
	if rec.GetAwaiting() > 0 {
		next = earliest(next, deadline)
	}
	if !next.IsZero() {
		rec.NextDeadline = timestamppb.New(next)
	}
	old, ok, err := batches.Get(tx, []byte(batch))
	if err != nil {
		return err
	}
	if ok {
		for _, d := range []*timestamppb.Timestamp{old.GetGraceDeadline(), old.GetNextDeadline()} {
			if d == nil {
				continue
			}
			if err := deadlines.delete(tx, deadlineKey(d.AsTime(), batch)); err != nil {
				return err
			}
		}
	}
	if !next.IsZero() {
		if err := deadlines.put(tx, deadlineKey(next, batch)); err != nil {
			return err
		}
	}
	stored, err := batchDiscrepancies(tx, batch)
	if err != nil {
		return err
	}
	changes := planDiscrepancies(rec, stored, want, now)
	for _, c := range changes {
		if err := putDiscrepancy(tx, c); err != nil {
			return err
		}
	}
	if err := countOpenChanges(tx, stored, changes); err != nil {
		return err
	}
	l.open.countChanges(tx, stored, changes)
	return batches.Put(tx, []byte(batch), rec)
}

// putDiscrepancy stores a change of a discrepancy with the next revision, naming the
// discrepancy if it is new.
func putDiscrepancy(tx *bbolt.Tx, c discrepancyChange) error {
	if c.d.GetName() == "" {
		id, err := discrepancies.NextSeq(tx)
		if err != nil {
			return err
		}
		c.d.Name = discrepancyName(id)
		if err := putDiscrepancyName(tx, id, []byte(c.key)); err != nil {
			return err
		}
	}
	rev, err := discrepancyChanges.NextSeq(tx)
	if err != nil {
		return err
	}
	c.d.Revision = int64(rev)
	if err := discrepancies.Put(tx, []byte(c.key), c.d); err != nil {
		return err
	}
	return discrepancyChanges.Put(tx, store.Uint64Key(rev), c.d)
}

// expireBatchLimit bounds the batches one timer transaction reconciles.
const expireBatchLimit = 500

// ExpireDue reconciles the batches whose grace deadline has passed (opening their unaccounted
// discrepancies) and returns the next deadline still ahead (zero if none). Run calls it. Each
// step of at most expireBatchLimit batches is one write (ExpireDueMethod) at the time it starts.
func (l *Ledger) ExpireDue() (time.Time, error) {
	for {
		now := l.cfg.Now()
		// Nothing due (the common case after a report): a read, not a write transaction.
		first, err := l.firstDeadline()
		if err != nil || first.IsZero() || first.After(now) {
			return first, err
		}
		if err := l.w.Write(context.Background(), l.expireDue, now, timestamppb.New(first), &emptypb.Empty{}); err != nil {
			return time.Time{}, err
		}
	}
}

// applyExpireDue reconciles at most expireBatchLimit batches whose deadline is not after now
// and removes their deadline keys. The request is the first deadline due when the step began
// (its identity: see New); the step takes every deadline due at now.
func (l *Ledger) applyExpireDue(tx *bbolt.Tx, now time.Time, _ *timestamppb.Timestamp, _ *emptypb.Empty) error {
	var due []string
	var dueKeys [][]byte
	err := deadlines.scan(tx, store.Range{}, func(k []byte) (bool, error) {
		t, batch, ok := parseDeadlineKey(k)
		switch {
		case !ok:
		case t.After(now), len(due) == expireBatchLimit:
			return false, nil
		default:
			due = append(due, batch)
		}
		dueKeys = append(dueKeys, append([]byte(nil), k...))
		return true, nil
	})
	if err != nil {
		return err
	}
	// The keys go whatever the batches' records say, so that the timer never loops on an entry
	// its reconciliation would not remove.
	for _, k := range dueKeys {
		if err := deadlines.delete(tx, k); err != nil {
			return err
		}
	}
	for _, b := range due {
		if err := l.reconcileBatch(tx, b, now, nil); err != nil {
			return fmt.Errorf("reconcile batch %s at its deadline: %w", b, err)
		}
	}
	return nil
}

// firstDeadline returns the earliest deadline in the index (zero if none).
func (l *Ledger) firstDeadline() (time.Time, error) {
	var first time.Time
	err := l.db.View(func(tx *bbolt.Tx) error {
		return deadlines.scan(tx, store.Range{}, func(k []byte) (bool, error) {
			t, _, ok := parseDeadlineKey(k)
			if ok {
				first = t
			}
			return !ok, nil
		})
	})
	return first, err
}

// Page tokens are bound to the List and its filters, and hold a key of the List's shape.

func batchReconciliationsListing(r *coordinationv1.ListBatchReconciliationsRequest) paging.Listing {
	filters := []string{r.GetReceivingRegion(), r.GetSendingRegion()}
	if r.GetWithOpenDiscrepancies() {
		// Only then, so that the tokens of listings without it stay those of before.
		filters = append(filters, "with open discrepancies")
	}
	return paging.For("batch reconciliations", filters...).Keys(isBatchKey)
}

func discrepanciesListing(r *coordinationv1.ListDiscrepanciesRequest) paging.Listing {
	return paging.For("discrepancies", r.GetBatchId(), r.GetRegion(), r.GetKind().String(), strconv.FormatBool(r.GetIncludeClosed())).
		Keys(discrepancyKeyOf(r.GetBatchId()))
}

func pairingSummariesListing(r *coordinationv1.ListPairingSummariesRequest) paging.Listing {
	return paging.For("pairing summaries", civil.Format(r.GetPeriodStart()), civil.Format(r.GetPeriodEnd()), r.GetRegion()).Keys(isPairingKey)
}

// isPairingKey: ListPairingSummaries, receiving(6) sending(6) province codes.
func isPairingKey(k []byte) bool {
	if len(k) != 12 {
		return false
	}
	for _, c := range k {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isBatchKey: ListBatchReconciliations, a batch id.
func isBatchKey(k []byte) bool { return isID(k, maxIDLen) }

// discrepancyKeyOf returns the check of a ListDiscrepancies token (batch NUL worker NUL kind),
// which with a batch filter must be of that batch.
func discrepancyKeyOf(batch string) func([]byte) bool {
	return func(k []byte) bool {
		b, w, _, ok := parseDiscrepancyKey(k)
		if !ok || !isID([]byte(b), maxIDLen) || !isID([]byte(w), maxIDLen) {
			return false
		}
		return batch == "" || b == batch
	}
}

// ValidateRequest checks reconciliation requests before the handlers run.
func (x *ReconciliationServer) ValidateRequest(method string, req any) error {
	t := x.l.cfg.Regions
	var v apierror.Violations
	switch r := req.(type) {
	case *coordinationv1.GetBatchReconciliationRequest:
		checkID(&v, "batch_id", r.GetBatchId(), maxIDLen)
		check.Province(&v, t, "sending_region", r.GetSendingRegion(), true)
	case *coordinationv1.ListBatchReconciliationsRequest:
		check.Province(&v, t, "receiving_region", r.GetReceivingRegion(), false)
		check.Province(&v, t, "sending_region", r.GetSendingRegion(), false)
		check.PageSize.Check(&v, r.GetPageSize())
		batchReconciliationsListing(r).Check(&v, r.GetPageToken())
	case *coordinationv1.ListPairingSummariesRequest:
		checkOptionalDate(&v, "period_start", r.GetPeriodStart())
		checkOptionalDate(&v, "period_end", r.GetPeriodEnd())
		if v.Len() == 0 && r.GetPeriodStart() != nil && r.GetPeriodEnd() != nil && civil.Compare(r.GetPeriodEnd(), r.GetPeriodStart()) < 0 {
			v.Add("period_end", "must not be before period_start")
		}
		check.Province(&v, t, "region", r.GetRegion(), false)
		check.PageSize.Check(&v, r.GetPageSize())
		pairingSummariesListing(r).Check(&v, r.GetPageToken())
	case *coordinationv1.ListDiscrepanciesRequest:
		if r.GetBatchId() != "" {
			checkID(&v, "batch_id", r.GetBatchId(), maxIDLen)
		}
		check.Province(&v, t, "region", r.GetRegion(), false)
		if _, ok := coordinationv1.DiscrepancyKind_name[int32(r.GetKind())]; !ok {
			v.Add("kind", "unknown discrepancy kind")
		}
		check.PageSize.Check(&v, r.GetPageSize())
		discrepanciesListing(r).Check(&v, r.GetPageToken())
	case *coordinationv1.GetDiscrepancyRequest:
		if _, problem := parseDiscrepancyName(r.GetName()); problem != "" {
			v.Add("name", problem)
		}
		check.Province(&v, t, "region", r.GetRegion(), false)
	case *coordinationv1.ListDiscrepancyChangesRequest:
		if r.GetAfterRevision() < 0 {
			v.Add("after_revision", "must be 0 (from the start) or a revision seen before")
		}
		check.PageSize.Check(&v, r.GetPageSize())
	default:
		return apierror.NotValidated(req)
	}
	return v.Err()
}

// checkOptionalDate adds a violation unless d is unset or a real calendar date.
func checkOptionalDate(v *apierror.Violations, field string, d *commonv1.Date) {
	if d == nil {
		return
	}
	if p := civil.Problem(d); p != "" {
		v.Add(field, p)
	}
}

// GetBatchReconciliation reconciles one batch.
func (x *ReconciliationServer) GetBatchReconciliation(ctx context.Context, req *coordinationv1.GetBatchReconciliationRequest) (*coordinationv1.GetBatchReconciliationResponse, error) {
	var rec *coordinationv1.BatchReconciliation
	var found bool
	err := x.l.db.View(func(tx *bbolt.Tx) (err error) {
		rec, found, err = batchWithDiscrepancies(tx, req.GetBatchId())
		return err
	})
	if err != nil {
		return nil, err
	}
	if !found || rec.GetSendingRegion() != req.GetSendingRegion() {
		return nil, apierror.NotFound("batch %s of %s has no events in the ledger", req.GetBatchId(), req.GetSendingRegion())
	}
	return &coordinationv1.GetBatchReconciliationResponse{Reconciliation: rec}, nil
}

// batchWithDiscrepancies returns the stored reconciliation of batch with its open discrepancies.
func batchWithDiscrepancies(tx *bbolt.Tx, batch string) (*coordinationv1.BatchReconciliation, bool, error) {
	rec, found, err := batches.Get(tx, []byte(batch))
	if err != nil || !found {
		return nil, found, err
	}
	rec.Discrepancies, err = openDiscrepancies(tx, batch)
	return rec, true, err
}

// ListBatchReconciliations reconciles batches in batch-id order.
func (x *ReconciliationServer) ListBatchReconciliations(ctx context.Context, req *coordinationv1.ListBatchReconciliationsRequest) (*coordinationv1.ListBatchReconciliationsResponse, error) {
	listing := batchReconciliationsListing(req)
	after, err := listing.Decode(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	var page store.Page[*coordinationv1.BatchReconciliation]
	err = x.l.db.View(func(tx *bbolt.Tx) (err error) {
		var openErr error
		keep := func(_ []byte, rec *coordinationv1.BatchReconciliation) bool {
			if !batchMatches(req, rec) || openErr != nil {
				return false
			}
			if !req.GetWithOpenDiscrepancies() {
				return true
			}
			open, err := hasOpenDiscrepancy(tx, rec.GetBatchId())
			openErr = err
			return open
		}
		page, err = batchesWithDiscrepancies(tx, store.Range{After: after}, check.PageSize.Of(req.GetPageSize()), keep)
		if openErr != nil {
			return openErr
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	resp := &coordinationv1.ListBatchReconciliationsResponse{Reconciliations: page.Items}
	if page.Last != nil {
		resp.NextPageToken = listing.Token(page.Last)
	}
	return resp, nil
}

// batchesWithDiscrepancies is a page of stored reconciliations, each with its open
// discrepancies.
func batchesWithDiscrepancies(tx *bbolt.Tx, r store.Range, size int, keep func([]byte, *coordinationv1.BatchReconciliation) bool) (store.Page[*coordinationv1.BatchReconciliation], error) {
	page, err := batches.Page(tx, r, size, keep)
	if err != nil {
		return page, err
	}
	for _, rec := range page.Items {
		if rec.Discrepancies, err = openDiscrepancies(tx, rec.GetBatchId()); err != nil {
			return page, err
		}
	}
	return page, nil
}

// ListPairingSummaries counts distinct workers per pairing and category over a period: a worker
// counts in a category when the pairing has an event of it about the worker whose occur_time
// falls in the period (dates in China Standard Time, both days included). Every registered
// pairing and every pairing with counted events has a summary. Pages follow the (receiving,
// sending) order; the token holds the last pairing returned.
func (x *ReconciliationServer) ListPairingSummaries(ctx context.Context, req *coordinationv1.ListPairingSummariesRequest) (*coordinationv1.ListPairingSummariesResponse, error) {
	listing := pairingSummariesListing(req)
	after, err := listing.Decode(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	from, until := summaryPeriod(req, x.l.cfg.Now())
	resp := &coordinationv1.ListPairingSummariesResponse{}
	var more bool
	err = x.l.db.View(func(tx *bbolt.Tx) (err error) {
		resp.Summaries, more, err = pairingSummaries(tx, req.GetRegion(), from, until, string(after), check.PageSize.Of(req.GetPageSize()))
		return err
	})
	if err != nil {
		return nil, err
	}
	if more {
		last := resp.Summaries[len(resp.Summaries)-1]
		resp.NextPageToken = listing.Token([]byte(last.GetReceivingRegion() + last.GetSendingRegion()))
	}
	return resp, nil
}

// pairingSummaries returns the summaries of up to n pairings after the pairing key after
// (receiving then sending code; "" for the first) that involve region (all when "") over
// [from, until), in (receiving, sending) order, and whether more follow.
func pairingSummaries(tx *bbolt.Tx, region string, from, until time.Time, after string, n int) ([]*coordinationv1.PairingSummary, bool, error) {
	all, err := summaryPairings(tx, region)
	if err != nil {
		return nil, false, err
	}
	var pairs []regions.Pairing
	for _, p := range all {
		if p.Receiving+p.Sending > after {
			pairs = append(pairs, p)
		}
	}
	more := len(pairs) > n
	if more {
		pairs = pairs[:n]
	}
	var out []*coordinationv1.PairingSummary
	for _, p := range pairs {
		count := map[byte]int64{}
		for _, cat := range summaryCategories {
			if count[cat], err = countWorkers(tx, p, cat, from, until); err != nil {
				return nil, false, err
			}
		}
		out = append(out, pairingSummary(p, count, openOfPairing(tx, p)))
	}
	return out, more, nil
}

// summaryPairings returns, in (receiving, sending) order, the registered pairings and the
// pairings with counted events that involve region (all when region is "").
func summaryPairings(tx *bbolt.Tx, region string) ([]regions.Pairing, error) {
	set := map[regions.Pairing]bool{}
	registered, err := registry.Pairings(tx)
	if err != nil {
		return nil, err
	}
	for _, p := range registered {
		set[p] = true
	}
	// One key per pairing: after each, skip to the next pairing's keys.
	b, err := byPairing.bucket(tx)
	if err != nil {
		return nil, err
	}
	c := b.Cursor()
	for k, _ := c.First(); k != nil; {
		if len(k) < 12 {
			k, _ = c.Next()
			continue
		}
		set[regions.Pairing{Receiving: string(k[:6]), Sending: string(k[6:12])}] = true
		k, _ = c.Seek(append(append([]byte(nil), k[:12]...), 0xff))
	}
	pairs := make([]regions.Pairing, 0, len(set))
	for p := range set {
		if region == "" || p.Receiving == region || p.Sending == region {
			pairs = append(pairs, p)
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].Receiving != pairs[j].Receiving {
			return pairs[i].Receiving < pairs[j].Receiving
		}
		return pairs[i].Sending < pairs[j].Sending
	})
	return pairs, nil
}

// ListDiscrepancies lists discrepancies in (batch, worker, kind) order.
func (x *ReconciliationServer) ListDiscrepancies(ctx context.Context, req *coordinationv1.ListDiscrepanciesRequest) (*coordinationv1.ListDiscrepanciesResponse, error) {
	listing := discrepanciesListing(req)
	after, err := listing.Decode(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	r := store.Range{After: after}
	if req.GetBatchId() != "" {
		r.Prefix = idPrefix(req.GetBatchId())
	}
	keep := func(_ []byte, d *coordinationv1.Discrepancy) bool { return discrepancyMatches(req, d) }
	var page store.Page[*coordinationv1.Discrepancy]
	err = x.l.db.View(func(tx *bbolt.Tx) (err error) {
		page, err = discrepancies.Page(tx, r, check.PageSize.Of(req.GetPageSize()), keep)
		return err
	})
	if err != nil {
		return nil, err
	}
	resp := &coordinationv1.ListDiscrepanciesResponse{Discrepancies: page.Items}
	if page.Last != nil {
		resp.NextPageToken = listing.Token(page.Last)
	}
	return resp, nil
}

// GetDiscrepancy reads one discrepancy by name, as it is now; one that does not involve the
// request's region is NOT_FOUND, as ListDiscrepancies would not list it.
func (x *ReconciliationServer) GetDiscrepancy(ctx context.Context, req *coordinationv1.GetDiscrepancyRequest) (*coordinationv1.GetDiscrepancyResponse, error) {
	n, _ := parseDiscrepancyName(req.GetName())
	var d *coordinationv1.Discrepancy
	var found bool
	err := x.l.db.View(func(tx *bbolt.Tx) (err error) {
		d, found, err = discrepancyByNumber(tx, n)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !found || !involves(d, req.GetRegion()) {
		if req.GetRegion() != "" {
			return nil, apierror.NotFound("no discrepancy %s involving %s", req.GetName(), req.GetRegion())
		}
		return nil, apierror.NotFound("no discrepancy %s", req.GetName())
	}
	return &coordinationv1.GetDiscrepancyResponse{Discrepancy: d}, nil
}

// ListDiscrepancyChanges returns discrepancies as they opened and closed, after a revision.
func (x *ReconciliationServer) ListDiscrepancyChanges(ctx context.Context, req *coordinationv1.ListDiscrepancyChangesRequest) (*coordinationv1.ListDiscrepancyChangesResponse, error) {
	resp := &coordinationv1.ListDiscrepancyChangesResponse{}
	err := x.l.db.View(func(tx *bbolt.Tx) error {
		resp.HeadRevision = int64(tx.Bucket(discrepancyChanges.Name()).Sequence())
		page, err := discrepancyChanges.Page(tx, store.Range{After: store.Uint64Key(uint64(req.GetAfterRevision()))}, check.PageSize.Of(req.GetPageSize()), nil)
		resp.Changes = page.Items
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

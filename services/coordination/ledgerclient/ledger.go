// Package ledgerclient is the client side of the coordination service's ledger: the delivery function
// the outbox relays of the sending and receiving services use to report their ledger events.
//
//	cc, _ := peers.Dial(cfg.Coordination, cfg.Peers.Expecting(identity.Coordination()))
//	relay := outbox.NewRelay(db, ledger.Destination,
//		ledger.Deliver(coordinationv1.NewLedgerServiceClient(cc), cfg.Peers.Deadlines), lg, outbox.Options{})
//	go relay.Run(ctx)
//
// Delivery is exactly-once in effect: the relay delivers at least once (again after a crash
// between the report and the deletion of the entries), and the ledger records each event id once,
// counting repeats as duplicates.
package ledgerclient

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/peers"
)

// Destination is the outbox destination of ledger events.
const Destination = "coordination"

// MaxEventsPerCall is the most events one ReportEvents call carries (the ledger's limit).
const MaxEventsPerCall = 1000

// RelayBatchSize is the outbox batch size of a ledger relay (outbox.Options.BatchSize): up to
// five ledger calls of MaxEventsPerCall per delivery, so that the outbox's read and settling
// commit are paid once per 5,000 events, and each call's acknowledgement (its consistency proof,
// its checks and its commit) runs while the ledger records the next call (BENCHMARKS.md,
// "Outbox relay to the ledger").
const RelayBatchSize = 5 * MaxEventsPerCall

// eventOf returns the ledger event of an outbox entry. An entry whose event has no event_id gets
// the entry's ID, which is stable across restarts; a writer normally sets a deterministic key of
// the fact (such as `440000:arrived:<batch>:<worker>`), so that the same fact written twice is one
// event.
func eventOf(e outbox.Entry) (*coordinationv1.LedgerEvent, error) {
	ev := &coordinationv1.LedgerEvent{}
	if err := e.UnmarshalPayload(ev); err != nil {
		return nil, fmt.Errorf("outbox entry %s for %s is not a ledger event (%s): %w", e.ID, e.Destination, e.Payload.GetTypeUrl(), err)
	}
	if ev.GetEventId() == "" {
		ev.EventId = e.ID
	}
	// An event put in the outbox before the per-kind details is sent in the new shape.
	UpgradeEvent(ev)
	return ev, nil
}

// Describe says what the ledger event of an outbox entry is, for logs and the quarantine: kind,
// batch and worker id (never personal data).
func Describe(e outbox.Entry) string {
	ev, err := eventOf(e)
	if err != nil {
		return "not a ledger event: " + e.Payload.GetTypeUrl()
	}
	s := strings.ToLower(strings.TrimPrefix(ev.GetKind().String(), "EVENT_KIND_")) + " event " + ev.GetEventId()
	if b := ev.GetBatchId(); b != "" {
		s += ", batch " + b
	}
	return s + ", worker " + ev.GetWorkerId()
}

// Deliver returns an outbox delivery function that reports the entries' LedgerEvent payloads to
// the ledger in ReportEvents calls of at most MaxEventsPerCall, each with a deadline.
//
// The ledger answers event by event: an event it refuses (an event id reused with other content,
// a pairing that is not in the registry, a field it will never take) is listed in the response's
// refusals, and its entry goes to the outbox quarantine with the reason, for an operator; the
// others are recorded. A lost ledger event would make the reconciliation and the assessment wrong
// without anyone noticing, so nothing is dropped: a refused event waits in the quarantine, and it
// never holds back the events behind it. A call refused as a whole (for example personal data in
// one event, refused before the handler) is sent again event by event, so that each refusal
// belongs to the one event it is about. Any other error (the ledger is down or slow) keeps the
// entries for a retry after a backoff.
//
// Each call's deadline is d.For(number of events): it allows for the link's round trips and the
// size of the report (peers.Deadlines; the zero value takes the defaults).
func Deliver(client coordinationv1.LedgerServiceClient, d peers.Deadlines) outbox.DeliverFunc {
	return DeliverWatched(client, d, nil)
}

// DeliverWatched is Deliver that gives each response to w (Watch.Acknowledge) before the entries
// are dealt with: what the ledger acknowledged is kept in the service's file, with its proofs
// checked, before the entries leave the outbox. A nil w is Deliver.
//
// A delivery of more than one call overlaps each call's acknowledgement with the next call: the
// ledger records call k+1 while the province checks and keeps what it answered to call k. An
// entry counts as delivered (outbox.Result.Done) only once its call's acknowledgement is kept;
// when an acknowledgement fails, the entries from its call on are delivered again later (the
// ledger answers a repeat as duplicates, with the same proofs).
func DeliverWatched(client coordinationv1.LedgerServiceClient, d peers.Deadlines, w *Watch) outbox.DeliverFunc {
	var ack ackFunc
	if w != nil {
		ack = w.Acknowledge
	}
	return deliver(client, d, ack)
}

// ackFunc keeps what a ReportEvents response acknowledged of batch (Watch.Acknowledge).
type ackFunc func(ctx context.Context, c coordinationv1.LedgerServiceClient, batch []*coordinationv1.LedgerEvent, resp *coordinationv1.ReportEventsResponse) error

// deliver is DeliverWatched with the acknowledgement ack (nil: none).
func deliver(client coordinationv1.LedgerServiceClient, d peers.Deadlines, ack ackFunc) outbox.DeliverFunc {
	return func(ctx context.Context, entries []outbox.Entry) (outbox.Result, error) {
		var res outbox.Result
		events := make([]*coordinationv1.LedgerEvent, len(entries))
		for i, e := range entries {
			ev, err := eventOf(e)
			if err != nil {
				res.Refuse(i, outbox.Refusal{Code: codes.InvalidArgument, Reason: apierror.Reason(commonv1.ErrorReason_ERROR_REASON_NOT_A_LEDGER_EVENT), Message: err.Error()})
				continue
			}
			events[i] = ev
		}
		acks := acknowledger{ack: ack, d: d, client: client, ackedTo: len(entries)}
		// report sends events[from:to] (nil ones skipped) in one call.
		report := func(from, to int) error {
			var batch []*coordinationv1.LedgerEvent
			var at []int // entry index of each event in batch
			for i := from; i < to; i++ {
				if events[i] != nil {
					batch = append(batch, events[i])
					at = append(at, i)
				}
			}
			if len(batch) == 0 {
				return nil
			}
			callCtx, cancel := d.WithTimeoutFor(ctx, len(batch))
			// One leaf range per reporter rather than a proof per event: about a hundredth of the answer,
			// and the range alone proves the new checkpoint extends the kept one.
			resp, err := client.ReportEvents(callCtx, &coordinationv1.ReportEventsRequest{Events: batch, ProofForm: coordinationv1.ProofForm_PROOF_FORM_RANGES})
			cancel()
			if err != nil {
				return err
			}
			for _, r := range resp.GetRefusals() {
				if j := int(r.GetIndex()); j >= 0 && j < len(at) {
					res.Refuse(at[j], outbox.ItemRefusal(r))
				}
			}
			return acks.start(ctx, from, batch, resp)
		}
		err := inCalls(entries, MaxEventsPerCall, &res, report)
		if aerr := acks.wait(); aerr != nil && err == nil {
			err = aerr
		}
		// Entries whose acknowledgement was not kept are not delivered yet, nor dealt with.
		res.Done = min(res.Done, acks.ackedTo)
		for i := range res.Refused {
			if i >= res.Done {
				delete(res.Refused, i)
			}
		}
		if err != nil {
			return res, fmt.Errorf("report ledger events: %w", err)
		}
		return res, nil
	}
}

// acknowledger keeps the ledger's answers of one delivery (Watch.Acknowledge), one call behind:
// the answer to a call is acknowledged while the next call is under way.
type acknowledger struct {
	ack    ackFunc // nil: nothing to acknowledge
	d      peers.Deadlines
	client coordinationv1.LedgerServiceClient
	// ackedTo is the entry index up to which every call's acknowledgement is kept, or is not
	// needed; a failed acknowledgement brings it down to its call's first entry.
	ackedTo int
	pending chan error // the acknowledgement under way, nil if none
	from    int        // the first entry of the call it acknowledges
}

// start waits for the acknowledgement under way, then starts the one of resp, the answer to
// batch (whose first entry is from). It returns the failure of the one it waited for: no
// further call is made once an acknowledgement could not be kept.
func (a *acknowledger) start(ctx context.Context, from int, batch []*coordinationv1.LedgerEvent, resp *coordinationv1.ReportEventsResponse) error {
	if a.ack == nil {
		return nil
	}
	if err := a.wait(); err != nil {
		return err // this call's entries, after the failed one's, are not delivered either
	}
	done := make(chan error, 1)
	a.pending, a.from = done, from
	go func() {
		ackCtx, cancel := a.d.WithTimeoutFor(ctx, 1)
		defer cancel()
		done <- a.ack(ackCtx, a.client, batch, resp)
	}()
	return nil
}

// wait waits for the acknowledgement under way, if any, and returns its failure.
func (a *acknowledger) wait() error {
	if a.pending == nil {
		return nil
	}
	err := <-a.pending
	a.pending = nil
	if err != nil {
		a.ackedTo = min(a.ackedTo, a.from)
	}
	return err
}

// inCalls sends entries in calls of at most max (report(from, to) sends entries[from:to]),
// recording in res what was dealt with. A call refused for good is sent again entry by entry, so
// that each refusal belongs to the one entry it is about: a refused entry is recorded in res (for
// the quarantine), the others go on. Any other error stops, with the entries from res.Done kept.
func inCalls(entries []outbox.Entry, max int, res *outbox.Result, report func(from, to int) error) error {
	for from := 0; from < len(entries); from += max {
		to := min(from+max, len(entries))
		err := report(from, to)
		if err != nil && outbox.RefusedForGood(err) {
			// Refused as a whole: one entry at a time, to find the one(s) at fault.
			err = nil
			for i := from; i < to && err == nil; i++ {
				if err = report(i, i+1); err != nil && outbox.RefusedForGood(err) {
					res.Refuse(i, outbox.RefusalOf(err))
					err = nil
				}
				if err == nil {
					res.Done = i + 1
				}
			}
		}
		if err != nil {
			return fmt.Errorf("%d entries (first %s): %w", to-from, entries[res.Done].ID, err)
		}
		res.Done = to
	}
	return nil
}

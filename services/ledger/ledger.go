// Package ledger is the client side of the coordination service's ledger: the delivery function
// the outbox relays of the sending and receiving services use to report their ledger events.
//
//	cc, _ := peers.Dial(cfg.Coordination, cfg.Peers.Expecting(identity.Coordination()))
//	relay := outbox.NewRelay(db, ledger.Destination,
//		ledger.Deliver(coordinationv1.NewLedgerServiceClient(cc)), lg, outbox.Options{})
//	go relay.Run(ctx)
//
// Delivery is exactly-once in effect: the relay delivers at least once (again after a crash
// between the report and the deletion of the entries), and the ledger records each event id once,
// counting repeats as duplicates.
package ledger

import (
	"context"
	"fmt"

	coordinationv1 "github.com/eastwest/labourlink/proto/labour/coordination/v1"
	"github.com/eastwest/labourlink/services/outbox"
	"github.com/eastwest/labourlink/services/peers"
)

// Destination is the outbox destination of ledger events.
const Destination = "coordination"

// MaxEventsPerCall is the most events one ReportEvents call carries (the ledger's limit).
const MaxEventsPerCall = 1000

// Events returns the ledger events of outbox entries, in order. An entry whose event has no
// event_id gets the entry's ID, which is stable across restarts; a writer normally sets a
// deterministic key of the fact (such as `440000:arrived:<batch>:<worker>`), so that the same fact
// written twice is one event.
func Events(entries []outbox.Entry) ([]*coordinationv1.LedgerEvent, error) {
	out := make([]*coordinationv1.LedgerEvent, 0, len(entries))
	for _, e := range entries {
		ev := &coordinationv1.LedgerEvent{}
		if err := e.UnmarshalPayload(ev); err != nil {
			return nil, fmt.Errorf("outbox entry %s for %s is not a ledger event (%s): %w", e.ID, e.Destination, e.Payload.GetTypeUrl(), err)
		}
		if ev.GetEventId() == "" {
			ev.EventId = e.ID
		}
		out = append(out, ev)
	}
	return out, nil
}

// Deliver returns an outbox delivery function that reports the entries' LedgerEvent payloads to
// the ledger, in one ReportEvents call (or several of at most MaxEventsPerCall), each with a
// deadline (peers.WithTimeout).
//
// It returns nil only when the ledger has recorded every event (or had it already); any error
// makes the relay keep the entries and retry after a backoff. That includes a refusal
// (INVALID_ARGUMENT: an event the ledger will never take, such as an event id reused with other
// content): the entries are kept, not dropped, and the relay's log names the first entry and the
// field violations, because a lost ledger event would make the reconciliation and the assessment
// wrong without anyone noticing.
func Deliver(client coordinationv1.LedgerServiceClient) outbox.DeliverFunc {
	return func(ctx context.Context, entries []outbox.Entry) error {
		events, err := Events(entries)
		if err != nil {
			return err
		}
		for len(events) > 0 {
			n := min(len(events), MaxEventsPerCall)
			callCtx, cancel := peers.WithTimeout(ctx)
			_, err := client.ReportEvents(callCtx, &coordinationv1.ReportEventsRequest{Events: events[:n]})
			cancel()
			if err != nil {
				return fmt.Errorf("report %d ledger events (first %s): %w", n, events[0].GetEventId(), err)
			}
			events = events[n:]
		}
		return nil
	}
}

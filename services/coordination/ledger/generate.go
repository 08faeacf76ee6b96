package ledger

import (
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
)

// Generate records evs in tx the way ReportEvents records a report (each event checked field by
// field and against the ledger, then stored with every index, count and leaf of the verifiable
// log, and the batches it touched reconciled at now), without gRPC, idempotency records or
// checkpoints: for benchmarks and load tools that build a ledger too large to send through the
// service (10 million events). An event that ReportEvents would refuse is an error here.
func (l *Ledger) Generate(tx *bbolt.Tx, evs []*coordinationv1.LedgerEvent, now time.Time) error {
	ing := l.newIngest(tx, now)
	for i, ev := range evs {
		dup, err := ing.check(i, ev)
		if err == nil && !dup {
			dup, err = ing.add(i, ev)
		}
		if err != nil {
			return fmt.Errorf("event %s: %w", ev.GetEventId(), err)
		}
		if dup {
			return fmt.Errorf("event %s: recorded already", ev.GetEventId())
		}
	}
	return ing.flush()
}

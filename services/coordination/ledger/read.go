package ledger

import (
	"time"

	"go.etcd.io/bbolt"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/store"
)

// Readers of the ledger for the packages that compute from its events (eligibility): through
// the indexes, never the whole ledger.

// WorkerEvents calls fn with each recorded event of worker, in the order recorded, until fn
// returns false or an error.
func WorkerEvents(tx *bbolt.Tx, worker string, fn func(ev *coordinationv1.LedgerEvent) (bool, error)) error {
	return byWorker.scan(tx, store.Range{Prefix: idPrefix(worker)}, func(k []byte) (bool, error) {
		id, seq, ok := parseIDKey(k)
		if !ok || id != worker {
			return true, nil
		}
		ev, err := event(tx, seq)
		if err != nil {
			return false, err
		}
		return fn(ev)
	})
}

// DepartedWorkers calls fn with each worker of the sending province who has a DEPARTED event
// with occur_time in [from, before), once per departure (a worker may come more than once), from
// the pairing index of every receiving province.
func DepartedWorkers(tx *bbolt.Tx, t *regions.Table, sending string, from, before time.Time, fn func(worker string) error) error {
	for _, p := range t.Provinces() {
		receiving := p.Code
		if receiving == sending {
			continue
		}
		prefix := pairingCategoryPrefix(receiving, sending, catDeparted)
		start := append(append([]byte(nil), prefix...), timeKey(from)...)
		err := byPairing.scanFrom(tx, prefix, start, func(k []byte) (bool, error) {
			pk, ok := parsePairingKey(k)
			if !ok {
				return true, nil
			}
			if !pk.time.Before(before) {
				return false, nil
			}
			return true, fn(pk.worker)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

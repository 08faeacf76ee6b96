package ledger

import (
	"encoding/binary"
	"strings"
	"sync"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/platform/metrics"
)

// The ledger's metrics (Config.Metrics): the events recorded, counted after their report's
// commit, and the discrepancies open now by kind. Those are counted once when the ledger is
// built (from the open counts per pairing, counters.go, before the service serves, so no write runs meanwhile)
// and then kept in memory by the commits that open and close discrepancies (reconcileBatch,
// the one place they change): a scrape reads memory, and the count follows what is on disk.

// openCounts are the open discrepancies by kind.
type openCounts struct {
	mu sync.Mutex
	n  map[coordinationv1.DiscrepancyKind]int64
}

// initMetrics exports the ledger's metrics in reg.
func (l *Ledger) initMetrics(reg *metrics.Registry) {
	if reg == nil {
		return
	}
	for k := range coordinationv1.EventKind_name {
		kind := coordinationv1.EventKind(k)
		if kind == coordinationv1.EventKind_EVENT_KIND_UNSPECIFIED {
			continue
		}
		for _, role := range []commonv1.RegionRole{commonv1.RegionRole_REGION_ROLE_SENDING, commonv1.RegionRole_REGION_ROLE_RECEIVING} {
			reg.InitializeLedgerEvent(eventKindLabel(kind), roleLabel(role))
		}
	}
	open := &openCounts{n: map[coordinationv1.DiscrepancyKind]int64{}}
	err := l.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(openByPairing).ForEach(func(k, v []byte) error {
			if len(k) == 13 && k[12] != 0 && len(v) == 8 {
				open.n[coordinationv1.DiscrepancyKind(k[12])] += int64(binary.BigEndian.Uint64(v))
			}
			return nil
		})
	})
	if err != nil {
		// Not exported rather than wrong; the service still serves.
		l.lg.Error("count open discrepancies for the metrics", zap.Error(err))
		return
	}
	l.open = open
	reg.ObserveDiscrepancies(open.byKind)
}

// byKind returns the open discrepancies of every kind, 0 included.
func (o *openCounts) byKind() map[string]int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]int64{}
	for k := range coordinationv1.DiscrepancyKind_name {
		kind := coordinationv1.DiscrepancyKind(k)
		if kind != coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_UNSPECIFIED {
			out[enumLabel(kind.String(), "DISCREPANCY_KIND_")] = o.n[kind]
		}
	}
	return out
}

// countChanges adds, once tx commits, what changes (stored before them in old) open and close.
func (o *openCounts) countChanges(tx *bbolt.Tx, old map[string]*coordinationv1.Discrepancy, changes []discrepancyChange) {
	if o == nil || len(changes) == 0 {
		return
	}
	delta := map[coordinationv1.DiscrepancyKind]int64{}
	for _, c := range changes {
		if old[c.key].GetState() == coordinationv1.DiscrepancyState_DISCREPANCY_STATE_OPEN {
			delta[c.d.GetKind()]--
		}
		if c.d.GetState() == coordinationv1.DiscrepancyState_DISCREPANCY_STATE_OPEN {
			delta[c.d.GetKind()]++
		}
	}
	tx.OnCommit(func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		for k, d := range delta {
			o.n[k] += d
		}
	})
}

// eventCounts are the events a report records, by kind and reporter role.
type eventCounts map[[2]string]int

// add counts ev, under the role that reports its kind (as recorded).
func (c eventCounts) add(ev *coordinationv1.LedgerEvent) {
	c[[2]string{eventKindLabel(ev.GetKind()), roleLabel(reporterRole(ev.GetKind()))}]++
}

// report counts the events in reg once tx commits.
func (c eventCounts) report(tx *bbolt.Tx, reg *metrics.Registry) {
	if reg == nil || len(c) == 0 {
		return
	}
	tx.OnCommit(func() {
		for k, n := range c {
			reg.LedgerEventsIngested(k[0], k[1], n)
		}
	})
}

func eventKindLabel(k coordinationv1.EventKind) string { return enumLabel(k.String(), "EVENT_KIND_") }
func roleLabel(r commonv1.RegionRole) string           { return enumLabel(r.String(), "REGION_ROLE_") }

// enumLabel is an enum value's name without its prefix, in lower case ("EVENT_KIND_DEPARTED":
// "departed"); a number not in the enum stays a number.
func enumLabel(name, prefix string) string {
	return strings.ToLower(strings.TrimPrefix(name, prefix))
}

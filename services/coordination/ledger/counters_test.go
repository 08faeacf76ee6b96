package ledger

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"
	"pgregory.net/rapid"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/store"
)

var countPairings = []regions.Pairing{{Receiving: "440000", Sending: "520000"}, {Receiving: "330000", Sending: "520000"}}

// occurrence is one key of the pairing index.
type occurrence struct {
	p      regions.Pairing
	cat    byte
	at     time.Time
	worker string
}

func drawOccurrence(t *rapid.T) occurrence {
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, civil.Zone)
	return occurrence{
		p:   rapid.SampledFrom(countPairings).Draw(t, "pairing"),
		cat: rapid.SampledFrom([]byte{catDeparted, catArrived}).Draw(t, "cat"),
		// Times within 20 days, at hour steps that cross China midnights (and UTC ones).
		at:     day.Add(time.Duration(rapid.IntRange(0, 20*24-1).Draw(t, "hour")) * time.Hour),
		worker: fmt.Sprintf("w%d", rapid.IntRange(0, 12).Draw(t, "worker")),
	}
}

// addOccurrence records o as putEvent does: the pairing key, counted in c when it is new.
func addOccurrence(tx *bbolt.Tx, c *counts, o occurrence) error {
	isNew, err := putNewKey(c, byPairing, pairingKey(o.p.Receiving, o.p.Sending, o.cat, o.at, o.worker))
	if err == nil && isNew {
		err = countOccurrence(tx, c, o.p, o.cat, o.at, o.worker)
	}
	return err
}

// The counts say, for every period of whole days, what a scan of the pairing index says: the
// distinct workers of each pairing and category, whatever order the occurrences come in
// (repeats, out of time order, the same worker in other pairings and categories). So does a
// file whose counts were built afterwards by the migration.
func TestCountsEqualTheScan(t *testing.T) {
	dir, n := t.TempDir(), 0
	rapid.Check(t, func(t *rapid.T) {
		n++
		db, err := store.Open(filepath.Join(dir, fmt.Sprintf("c%d.db", n)), store.Schema{Name: "ledger-test", Version: 1, Buckets: Buckets}, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		occs := rapid.SliceOfN(rapid.Custom(drawOccurrence), 0, 60).Draw(t, "occurrences")
		// The gathered counts are flushed every so often (a report, a migration), or only at
		// the end: the counts are the same.
		every := rapid.IntRange(1, 61).Draw(t, "flush every")
		err = db.Update(func(tx *bbolt.Tx) error {
			c := newCounts(tx)
			for i, o := range occs {
				if err := addOccurrence(tx, c, o); err != nil {
					return err
				}
				if (i+1)%every == 0 {
					if err := c.flush(); err != nil {
						return err
					}
				}
			}
			return c.flush()
		})
		if err != nil {
			t.Fatal(err)
		}
		compare := func(when string) {
			t.Helper()
			err := db.View(func(tx *bbolt.Tx) error {
				start := time.Date(2026, 2, 27, 0, 0, 0, 0, civil.Zone)
				for from := 0; from < 24; from += 3 {
					for days := 1; days < 24; days += 5 {
						f, u := start.AddDate(0, 0, from), start.AddDate(0, 0, from+days)
						for _, p := range countPairings {
							for _, cat := range []byte{catDeparted, catArrived} {
								got, err := countWorkers(tx, p, cat, f, u)
								if err != nil {
									return err
								}
								want, err := scanWorkers(tx, p, cat, f, u)
								if err != nil {
									return err
								}
								if got != want {
									t.Fatalf("%s: %v cat %d [%s, %s): counted %d, scan %d", when, p, cat, f, u, got, want)
								}
							}
						}
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		compare("kept by each write")
		if err := db.Update(BuildCounts); err != nil {
			t.Fatal(err)
		}
		compare("built by the migration")
	})
}

// ListEvents answers a kind or region filter from its index, and a filter no index answers
// (a time range that matches nothing) within its budget: a page with a token to go on from,
// never a scan of the whole ledger in one call, and going on finds every match exactly once.
func TestListEventsIndexesAndBudget(t *testing.T) {
	t.Parallel()
	db := openStore(t)
	const total = listScanBudget + 2500
	at := time.Date(2026, 5, 1, 8, 0, 0, 0, civil.Zone)
	err := db.Update(func(tx *bbolt.Tx) error {
		c := newCounts(tx)
		for i := 0; i < total; i++ {
			ev := &coordinationv1.LedgerEvent{
				EventId: fmt.Sprintf("ev-%05d", i), WorkerId: fmt.Sprintf("w%d", i%97),
				Kind:            coordinationv1.EventKind_EVENT_KIND_DEPARTED,
				ReceivingRegion: "440000", SendingRegion: "520000", BatchId: fmt.Sprintf("b%d", i%7),
				OccurTime: timestamppb.New(at.Add(time.Duration(i) * time.Second)),
			}
			switch {
			case i%1000 == 999:
				ev.Kind = coordinationv1.EventKind_EVENT_KIND_ARRIVED
			case i == total-1:
				ev.SendingRegion = "510000"
			}
			if _, err := putEvent(tx, c, ev); err != nil {
				return err
			}
		}
		return c.flush()
	})
	if err != nil {
		t.Fatal(err)
	}
	list := func(req *coordinationv1.ListEventsRequest) (ids []string, calls int) {
		var after uint64
		for {
			calls++
			var page []*coordinationv1.LedgerEvent
			var last uint64
			err := db.View(func(tx *bbolt.Tx) (err error) {
				page, last, err = listEvents(tx, req, after, 100)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range page {
				ids = append(ids, ev.GetEventId())
			}
			if last == 0 {
				return ids, calls
			}
			if last <= after {
				t.Fatalf("listing does not advance: after %d, last %d", after, last)
			}
			after = last
		}
	}
	tests := []struct {
		name      string
		req       *coordinationv1.ListEventsRequest
		want      int
		wantCalls int // calls that end the listing
	}{
		{"a kind that matches nothing: one call, from the kind index", &coordinationv1.ListEventsRequest{Kind: coordinationv1.EventKind_EVENT_KIND_INCIDENT}, 0, 1},
		{"a rare kind: one call", &coordinationv1.ListEventsRequest{Kind: coordinationv1.EventKind_EVENT_KIND_ARRIVED}, total / 1000, 1},
		{"a region with one event: one call", &coordinationv1.ListEventsRequest{Region: "510000"}, 1, 1},
		{"a time range that matches nothing: the budget bounds each call", &coordinationv1.ListEventsRequest{OccurTimeFrom: timestamppb.New(at.AddDate(1, 0, 0))}, 0, 2},
	}
	for _, tt := range tests {
		ids, calls := list(tt.req)
		if len(ids) != tt.want || calls != tt.wantCalls {
			t.Errorf("%s: %d events in %d calls, want %d in %d", tt.name, len(ids), calls, tt.want, tt.wantCalls)
		}
		seen := map[string]bool{}
		for _, id := range ids {
			if seen[id] {
				t.Errorf("%s: %s listed twice", tt.name, id)
			}
			seen[id] = true
		}
	}
	// A region filter with a kind: the kind index, the region checked on each.
	ids, _ := list(&coordinationv1.ListEventsRequest{Kind: coordinationv1.EventKind_EVENT_KIND_DEPARTED, Region: "510000"})
	if len(ids) != 1 || ids[0] != fmt.Sprintf("ev-%05d", total-1) {
		t.Errorf("kind and region: %v", ids)
	}
}

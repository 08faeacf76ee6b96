package ledgerclient_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap/zaptest"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/devtools/proctest"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending"
)

// putSendingEvents commits departure events to the outbox of the sending service's data file in
// dir, as RecordDeparture does, while no process holds the file.
func putSendingEvents(t *testing.T, dir string, round, n int) []*coordinationv1.LedgerEvent {
	t.Helper()
	db, err := store.Open(filepath.Join(dir, "sending.db"), sending.Schema, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var evs []*coordinationv1.LedgerEvent
	for i := range n {
		evs = append(evs, departure(fmt.Sprintf("520000-S%d", round), fmt.Sprintf("s%d-%04d", round, i), time.Now().Add(-time.Hour)))
	}
	// One transaction, so that the test does not spend its time in 20,000 fsyncs.
	if err := db.Update(func(tx *bbolt.Tx) error {
		for _, ev := range evs {
			if _, err := outbox.Put(context.Background(), tx, time.Now(), ledgerclient.Destination, "", ev); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return evs
}

func sendingPending(t *testing.T, dir string) int {
	t.Helper()
	db, err := store.Open(filepath.Join(dir, "sending.db"), sending.Schema, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n, err := outbox.Pending(db, ledgerclient.Destination)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSendingProcessOutboxReachesLedgerExactlyOnceAcrossKills: a real sending process delivers
// its outbox of DEPARTED events to a real coordination process; the sending process is killed
// with SIGKILL while it delivers, more events are committed, the coordination process is killed
// too, and both restart on their data. In the end the ledger has every event once and the
// sending outbox is empty.
func TestSendingProcessOutboxReachesLedgerExactlyOnceAcrossKills(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs the labourlink binary")
	}
	dataC, dataS := t.TempDir(), t.TempDir()
	coordArgs := []string{"-data", dataC}
	coord := proctest.Start(t, "coordination", "", coordArgs...)
	cc := coord.Conn()
	defer cc.Close()
	sendingArgs := []string{"-region", "520000", "-data", dataS, "-coordination", coord.Addr}

	all := putSendingEvents(t, dataS, 1, 20000)
	snd := proctest.Start(t, "sending", "", sendingArgs...)
	// Kill the sending process as soon as the first events are in the ledger: mid-delivery.
	events := coordinationv1.NewLedgerServiceClient(cc)
	for {
		resp, err := events.ListEvents(callCtx(t), &coordinationv1.ListEventsRequest{PageSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetEvents()) > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	snd.Kill()
	delivered := len(ledgerEventIDs(t, cc))
	t.Logf("sending killed after %d of %d events were delivered", delivered, len(all))

	all = append(all, putSendingEvents(t, dataS, 2, 500)...)
	coord.Kill()
	snd = proctest.Start(t, "sending", snd.Addr, sendingArgs...) // delivers into a dead ledger: backs off
	coord = proctest.Start(t, "coordination", coord.Addr, coordArgs...)

	got := waitLedger(t, cc, len(all))
	snd.Stop()
	if len(got) != len(all) {
		t.Fatalf("%d events in the ledger, want %d", len(got), len(all))
	}
	for _, e := range all {
		if got[e.GetEventId()] == nil {
			t.Fatalf("event %s lost", e.GetEventId())
		}
	}
	if n := sendingPending(t, dataS); n != 0 {
		t.Fatalf("%d events still pending in the sending outbox", n)
	}
	recon := coordinationv1.NewReconciliationServiceClient(cc)
	for r, n := range map[int]int64{1: 20000, 2: 500} {
		resp, err := recon.GetBatchReconciliation(callCtx(t), &coordinationv1.GetBatchReconciliationRequest{BatchId: fmt.Sprintf("520000-S%d", r), SendingRegion: regions.IDOwner(fmt.Sprintf("520000-S%d", r))})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetReconciliation().GetDeparted() != n {
			t.Fatalf("batch S%d: %d departed, want %d (each worker once)", r, resp.GetReconciliation().GetDeparted(), n)
		}
	}
}

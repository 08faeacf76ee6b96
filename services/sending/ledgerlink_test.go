package sending

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/platform/outbox"
)

// The link to the coordination service is the ledger relay's: its health name turns
// NOT_SERVING once deliveries have been failing for LinkGrace, while the service's own names
// are not affected.
func TestCoordinationLinkHealthFollowsTheLedgerRelay(t *testing.T) {
	// An address where nothing listens: every delivery fails UNAVAILABLE.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := lis.Addr().String()
	lis.Close()
	r := startReceiving(t)
	var health healthLog
	cfg := fastConfig(r.addr)
	cfg.Coordination = dead
	cfg.LinkGrace = 100 * time.Millisecond
	cfg.Health = health.set
	n := startSending(t, "", cfg, true)
	const link = "labourlink.link.coordination"
	err = n.db.Update(func(tx *bbolt.Tx) error {
		_, err := outbox.Put(context.Background(), tx, time.Now(), ledgerclient.Destination, "", &coordinationv1.LedgerEvent{EventId: "e1", Kind: coordinationv1.EventKind_EVENT_KIND_DEPARTED,
			ReporterRegion: rosterRegion, SendingRegion: rosterRegion, ReceivingRegion: flowReceiving, WorkerId: "520000-W1", BatchId: "B1",
			OccurTime: timestamppb.Now()})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the coordination link NOT_SERVING", func() (bool, string) {
		v, ok := health.serving(link)
		return ok && !v, fmt.Sprintf("published %v: %v", ok, v)
	})
	if st := n.svc.relays.Get(ledgerclient.Destination).Status(); st.FailingSince.IsZero() || st.LastError == "" {
		t.Errorf("relay status %+v, want failing since a time, with the error", st)
	}
}

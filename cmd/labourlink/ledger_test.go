package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	storagev1 "github.com/eastwest/labourlink/proto/labourlink/storage/v1"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/devtools/proctest"
	"github.com/eastwest/labourlink/services/platform/grpcserver"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending"
)

// `labourlink ledger verify` and `ledger status` on a sending service whose events a real
// coordination process acknowledged: clean, exit 0; once an acknowledged leaf no longer matches
// the ledger's, the table names the event and its leaf index, and the exit code is 1.
func TestLedgerVerifyCommand(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs the labourlink binary")
	}
	lg := zaptest.NewLogger(t)
	coord := proctest.Start(t, "coordination", "", "-data", t.TempDir())
	client := coordinationv1.NewLedgerServiceClient(coord.Conn())
	db, err := store.Open(filepath.Join(t.TempDir(), "sending.db"), sending.Schema, lg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	w := ledgerclient.NewWatch(db, lg, ledgerclient.WatchConfig{Region: "520000"})
	w.SetClient(client)
	dep := time.Now().Add(-time.Hour).Truncate(time.Second)
	var evs []*coordinationv1.LedgerEvent
	for i := range 3 {
		worker := fmt.Sprintf("520000-W%010d", i+1)
		evs = append(evs, &coordinationv1.LedgerEvent{EventId: "520000:departed:B1:" + worker, Kind: coordinationv1.EventKind_EVENT_KIND_DEPARTED,
			ReporterRegion: "520000", SendingRegion: "520000", ReceivingRegion: "440000", WorkerId: worker, BatchId: "B1", OccurTime: timestamppb.New(dep)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := client.ReportEvents(ctx, &coordinationv1.ReportEventsRequest{Events: evs})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Acknowledge(ctx, client, evs, resp); err != nil {
		t.Fatal(err)
	}

	srv := grpcserver.New(grpcserver.Config{ServiceName: "sending"}, lg)
	ledgerclient.NewWatchServer(w).Register(srv.GRPC())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() { srv.Stop(context.Background()); <-served }()
	run := func(args ...string) (string, string, int) {
		var out, errOut bytes.Buffer
		full := append([]string{args[0], args[1], "-addr", lis.Addr().String()}, args[2:]...)
		code := runCLI(context.Background(), &cliEnv{stdout: &out, stderr: &errOut}, full)
		return out.String(), errOut.String(), code
	}
	out, errOut, code := run("ledger", "verify")
	if code != exitOK || !strings.Contains(out, "holds every acknowledged event") || !strings.Contains(out, "3 acknowledged events") {
		t.Fatalf("ledger verify on a clean ledger (%d): %s%s", code, out, errOut)
	}

	// The acknowledged leaf 1 no longer matches what the ledger holds.
	if err := db.Update(func(tx *bbolt.Tx) error {
		return store.PutProto(tx.Bucket(ledgerclient.BucketLedgerAcks), store.Uint64Key(1),
			&storagev1.LedgerAck{EventId: evs[1].GetEventId(), LeafHash: bytes.Repeat([]byte{7}, 32)})
	}); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = run("ledger", "verify")
	if code != exitFailed || !strings.Contains(out, evs[1].GetEventId()) || !strings.Contains(out, "changed") || !strings.Contains(out, "1 acknowledged event(s)") {
		t.Fatalf("ledger verify after the change (%d): %s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "verify") {
		t.Errorf("no progress on stderr: %q", errOut)
	}
	out, errOut, code = run("ledger", "status", "-o", "json")
	if code != exitFailed || !strings.Contains(out, `"failure_count"`) || !strings.Contains(errOut, "1 acknowledged event(s) changed or missing") {
		t.Fatalf("ledger status -o json (%d): %s%s", code, out, errOut)
	}
}

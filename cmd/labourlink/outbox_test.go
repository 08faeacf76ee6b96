package main

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/platform/grpcserver"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending"
)

// An operator sees the outbox and its quarantine, reads a refused message and retries it.
func TestOutboxCommands(t *testing.T) {
	t.Parallel()
	lg := zaptest.NewLogger(t)
	db, err := store.Open(filepath.Join(t.TempDir(), "sending.db"), sending.Schema, lg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ev := &coordinationv1.LedgerEvent{EventId: "520000:departed:B1:w1", Kind: coordinationv1.EventKind_EVENT_KIND_DEPARTED,
		ReporterRegion: "520000", SendingRegion: "520000", ReceivingRegion: "110000", WorkerId: "520000-W1", BatchId: "B1",
		OccurTime: timestamppb.New(time.Date(2027, 2, 1, 8, 0, 0, 0, civil.Zone))}
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := outbox.Put(context.Background(), tx, time.Now(), "coordination", "", ev)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// A relay whose ledger refuses the event (its pairing is not registered).
	refused := make(chan struct{})
	relays := &outbox.Set{}
	r := outbox.NewRelay(db, "coordination", func(_ context.Context, es []outbox.Entry) (outbox.Result, error) {
		var res outbox.Result
		for i := range es {
			res.Refuse(i, outbox.Refusal{Code: codes.FailedPrecondition, Reason: "NOT_PAIRED", Message: "110000 and 520000 are not paired"})
			res.Done++
		}
		select {
		case <-refused:
		default:
			close(refused)
		}
		return res, nil
	}, lg, outbox.Options{IDPrefix: "gz", PollInterval: time.Millisecond, Describe: ledgerclient.Describe})
	relays.Add(r)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- r.Run(ctx) }()
	// Once the refusal is answered, stop the relay: Run settles what it delivered (the refused
	// entry goes to the quarantine) before it returns.
	<-refused
	cancel()
	if err := <-runDone; err != nil {
		t.Fatal(err)
	}
	if n, err := outbox.Quarantined(db, ""); err != nil || n != 1 {
		t.Fatalf("quarantined %d, %v; want 1", n, err)
	}

	srv := grpcserver.New(grpcserver.Config{ServiceName: "sending"}, lg)
	outbox.NewServer(db, relays, lg, outbox.ServerConfig{IDPrefix: "gz"}).Register(srv.GRPC())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() { srv.Stop(context.Background()); <-served }()
	addr := lis.Addr().String()

	cli := func(args ...string) (string, string, int) {
		var out, errOut bytes.Buffer
		// The command words, then -addr, then the command's own flags and arguments.
		full := append([]string{args[0], args[1], "-addr", addr}, args[2:]...)
		code := runCLI(context.Background(), &cliEnv{stdout: &out, stderr: &errOut}, full)
		return out.String(), errOut.String(), code
	}
	out, errOut, code := cli("outbox", "list")
	if code != 0 || !strings.Contains(out, "coordination") || !strings.Contains(out, "quarantined") || !strings.Contains(out, "stopped") {
		t.Fatalf("outbox list (%d): %s%s", code, out, errOut)
	}
	out, errOut, code = cli("outbox", "quarantine")
	if code != 0 || !strings.Contains(out, "gz-1") || !strings.Contains(out, "NOT_PAIRED") || !strings.Contains(out, "FAILED_PRECONDITION") || !strings.Contains(out, "departed event 520000:departed:B1:w1") {
		t.Fatalf("outbox quarantine (%d): %s%s", code, out, errOut)
	}
	out, errOut, code = cli("outbox", "show", "gz-1")
	if code != 0 || !strings.Contains(out, "110000 and 520000 are not paired") || !strings.Contains(out, "NOT_PAIRED (code FAILED_PRECONDITION)") || !strings.Contains(out, `"eventId"`) || !strings.Contains(out, `"batchId"`) {
		t.Fatalf("outbox show (%d): %s%s", code, out, errOut)
	}
	if _, errOut, code = cli("outbox", "retry", "gz-1"); code == 0 || !strings.Contains(errOut, "-note is required") {
		t.Fatalf("retry without a note (%d): %s", code, errOut)
	}
	out, errOut, code = cli("outbox", "retry", "-note", "pairing 110000-520000 registered", "gz-1")
	if code != 0 || !strings.Contains(out, "as entry gz-2") {
		t.Fatalf("outbox retry (%d): %s%s", code, out, errOut)
	}
	out, _, _ = cli("outbox", "show", "gz-1")
	if !strings.Contains(out, "retried by operator") || !strings.Contains(out, "pairing 110000-520000 registered") {
		t.Fatalf("the decision is not shown: %s", out)
	}
	if _, errOut, code = cli("outbox", "discard", "-note", "no", "gz-1"); code == 0 || !strings.Contains(errOut, "ALREADY_DECIDED") {
		t.Fatalf("a second decision (%d): %s", code, errOut)
	}
	if _, errOut, code = cli("outbox", "quarantine", "-state", "maybe"); code == 0 || !strings.Contains(errOut, "-state must be") {
		t.Fatalf("bad state (%d): %s", code, errOut)
	}
}

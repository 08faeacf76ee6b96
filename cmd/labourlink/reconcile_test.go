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

	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/coordination"
	"github.com/eastwest/labourlink/services/platform/grpcserver"
	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/platform/store"
)

// startCoordination runs a coordination service in-process whose clock reads now(); it returns
// its address.
func startCoordination(t *testing.T, now func() time.Time) string {
	t.Helper()
	lg := zaptest.NewLogger(t)
	db, err := store.Open(filepath.Join(t.TempDir(), "coordination.db"), coordination.Schema, lg)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := coordination.New(db, lg, coordination.Config{LoadDefaultPairings: true, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	srv := grpcserver.New(grpcserver.Config{ServiceName: "coordination"}, lg)
	svc.Register(srv.GRPC())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop(context.Background())
		<-done
		db.Close()
	})
	return lis.Addr().String()
}

func TestReconcileAndAssessShow(t *testing.T) {
	t.Parallel()
	cst := time.FixedZone("CST", 8*3600)
	dep := time.Date(2025, 3, 1, 8, 0, 0, 0, cst)
	clock := dep.Add(time.Hour)
	addr := startCoordination(t, func() time.Time { return clock })
	cc, err := peers.Dial(addr, peers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	var events []*coordinationv1.LedgerEvent
	add := func(kind coordinationv1.EventKind, worker string, at time.Time) {
		e := &coordinationv1.LedgerEvent{
			EventId: fmt.Sprintf("%s:%s", kind, worker), Kind: kind, SendingRegion: "520000", ReceivingRegion: "440000",
			WorkerId: worker, BatchId: "520000-B1", OccurTime: timestamppb.New(at), RegisteredPoor: true, ReporterRegion: "440000",
		}
		if kind == coordinationv1.EventKind_EVENT_KIND_DEPARTED {
			e.ReporterRegion = "520000"
		}
		events = append(events, e)
	}
	for i := 1; i <= 5; i++ {
		add(coordinationv1.EventKind_EVENT_KIND_DEPARTED, fmt.Sprintf("w%d", i), dep)
	}
	for i := 1; i <= 3; i++ {
		add(coordinationv1.EventKind_EVENT_KIND_ARRIVED, fmt.Sprintf("w%d", i), dep.Add(time.Hour))
		add(coordinationv1.EventKind_EVENT_KIND_ONBOARDED, fmt.Sprintf("w%d", i), dep.Add(time.Hour))
	}
	add(coordinationv1.EventKind_EVENT_KIND_NO_SHOW, "w4", dep.Add(time.Hour))
	if _, err := coordinationv1.NewLedgerServiceClient(cc).ReportEvents(context.Background(), &coordinationv1.ReportEventsRequest{Events: events}); err != nil {
		t.Fatal(err)
	}

	run := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		env := &cliEnv{stdout: &out, stderr: &errOut}
		if code := runCLI(context.Background(), env, append(args, "-addr", addr)); code != 0 {
			t.Fatalf("labourlink %v: exit %d\n%s", args, code, errOut.String())
		}
		return out.String()
	}
	out := run("reconcile", "show", "-region", "520000", "-from", "2025-03-01", "-to", "2025-03-31")
	t.Log("\n" + out)
	for _, tt := range []struct{ key, want string }{
		// The pairing has open discrepancies: highlighted ('!' without a terminal).
		{"440000 广东省", "! 440000 广东省 520000 贵州省 5 3 1 3 0 0 0 0 1 0 0 0"}, // then overdue checkpoints, late incidents, abandoned,
		{"520000-B1  520000", "! 520000-B1 520000 440000 2025-03-01 08:00 5 3 1 1 0 0 0"},
		{"no-show  520000-B1", "! 1 no-show 520000-B1 w4 520000 440000 2025-03-01 09:00 departed 2025-03-01 08:00 CST according to 520000; reported as a no-show by 440000"},
		{"1 open discrepancies", "1 open discrepancies"},
	} {
		if got := row(out, tt.key); got != tt.want {
			t.Errorf("row %q = %q, want %q", tt.key, got, tt.want)
		}
	}

	// The number listed reads the one discrepancy; asked for by another province, it is not found.
	out = run("reconcile", "discrepancy", "1")
	t.Log("\n" + out)
	for _, want := range []string{
		"discrepancy:     discrepancies/1\n", "kind:            no-show\n", "state:           open\n",
		"batch:           520000-B1\n", "worker:          w4\n", "sending:         520000 贵州省\n",
		"opened (CST):    2025-03-01 09:00\n", "closed (CST):    -\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("reconcile discrepancy 1: no line %q", want)
		}
	}
	if got := run("reconcile", "discrepancy", "-region", "440000", "discrepancies/1"); !strings.Contains(got, "worker:          w4\n") {
		t.Errorf("reconcile discrepancy for the receiving province:\n%s", got)
	}
	var errOut bytes.Buffer
	if code := runCLI(context.Background(), &cliEnv{stdout: &bytes.Buffer{}, stderr: &errOut}, []string{"reconcile", "discrepancy", "-region", "450000", "1", "-addr", addr}); code == 0 || !strings.Contains(errOut.String(), "NotFound") {
		t.Errorf("reconcile discrepancy of another province: exit %d, %s", code, errOut.String())
	}

	_, err = coordinationv1.NewAssessmentServiceClient(cc).SetBaseline(context.Background(), &coordinationv1.SetBaselineRequest{Region: "520000", Year: 2025, Count: 4})
	if err != nil {
		t.Fatal(err)
	}
	out = run("assess", "show", "-year", "2025")
	t.Log("\n" + out)
	for _, tt := range []struct{ key, want string }{
		{"520000 贵州省", "520000 贵州省 sending sent out 5 4 operator 125.0%"},
		// No baseline: marked.
		{"440000 广东省", "! 440000 广东省 receiving onboarded 3 - none -"},
	} {
		if got := row(out, tt.key); got != tt.want {
			t.Errorf("row %q = %q, want %q", tt.key, got, tt.want)
		}
	}
	out = run("assess", "show", "-year", "2025", "-region", "440000")
	if strings.Count(out, "\n") != 4 || row(out, "440000") == "" {
		t.Errorf("assess show -region:\n%s", out)
	}
}

// row returns the first line of out containing key, with its fields joined by single spaces.
func row(out, key string) string {
	for _, line := range strings.SplitAfter(out, "\n") {
		if strings.Contains(line, key) {
			return strings.Join(strings.Fields(line), " ")
		}
	}
	return ""
}

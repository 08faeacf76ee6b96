package daemon_test

import (
	"context"
	"fmt"
	"github.com/eastwest/labourlink/services/devtools/fulldisk"
	"github.com/eastwest/labourlink/services/sending/roster/rostertest"
	"os"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/idnumber"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/daemon"
	"github.com/eastwest/labourlink/services/platform/grpcserver"
	"github.com/eastwest/labourlink/services/platform/store"
)

// start runs the daemon for cfg until the returned stop is called (or the test ends).
func start(t *testing.T, cfg daemon.Config, lg *zap.Logger) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- daemon.Run(ctx, cfg, lg) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run: %v", err)
		}
	}
	t.Cleanup(stop)
	healthy(t, cfg.Listen, insecure.NewCredentials())
	return stop
}

// rosterRows returns good rows from..to-1 of Guizhou workers, every one distinct.
func rosterRows(from, to int) []*sendingv1.WorkerRow {
	counties := regions.Default().CountiesOf("520000")
	const numerals = "零一二三四五六七八九"
	var out []*sendingv1.WorkerRow
	for i := from; i < to; i++ {
		county := counties[i%len(counties)]
		birth := time.Date(1975, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i/1000)
		first17 := fmt.Sprintf("%s%s%03d", county, birth.Format("20060102"), i%1000)
		name := []rune("工人")
		for _, c := range fmt.Sprint(i) {
			name = append(name, []rune(numerals)[c-'0'])
		}
		out = append(out, &sendingv1.WorkerRow{
			RowNumber: int64(i - from + 2), IdNumber: first17 + string(idnumber.CheckChar(first17)),
			FullName: string(name), Phone: fmt.Sprintf("139%08d", i), HomeCounty: county,
			Occupations: "8212", AvailableFrom: "2026-04-01", HealthCheckPassed: "是", HealthCheckDate: "2025-12-01",
		})
	}
	return out
}

func importRows(ctx context.Context, c sendingv1.RosterServiceClient, importID string, rows []*sendingv1.WorkerRow) (*sendingv1.ImportWorkersResponse, error) {
	return rostertest.ImportRows(ctx, c, importID, rows, 2000)
}

// A full disk, reached through the real API of a real sending service on a real (tmpfs) file
// system: the client gets UNAVAILABLE with reason STORAGE_FULL and a plain message, the
// health name labourlink.storage turns NOT_SERVING (the service's own names stay SERVING and
// reads still work), "storage full" is logged once for several refused writes, the same
// import succeeds once space is freed, and everything acknowledged is there after a restart.
func TestFullDiskThroughTheAPI(t *testing.T) {
	t.Parallel()
	disk := fulldisk.Mount(t, "12m")
	core, logs := observer.New(zapcore.InfoLevel)
	cfg := sendingConfig(t)
	cfg.DataDir = disk
	stop := start(t, cfg, zap.New(core))

	cc, err := grpc.NewClient(cfg.Listen, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx := t.Context()
	roster := sendingv1.NewRosterServiceClient(cc)
	hc := healthpb.NewHealthClient(cc)
	healthOf := func(name string) healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: name})
		if err != nil {
			t.Fatalf("health of %q: %v", name, err)
		}
		return resp.GetStatus()
	}
	const serving, notServing = healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_NOT_SERVING
	roster1 := sendingv1.RosterService_ServiceDesc.ServiceName

	if _, err := importRows(ctx, roster, "kept", rosterRows(0, 300)); err != nil {
		t.Fatalf("import before the disk is full: %v", err)
	}
	if got := healthOf(grpcserver.StorageHealthService); got != serving {
		t.Fatalf("storage health = %v, want SERVING", got)
	}

	filler := fulldisk.Fill(t, disk)
	big := rosterRows(1000, 4000)
	for attempt := range 2 {
		_, err := importRows(ctx, roster, "big", big)
		st := status.Convert(err)
		if st.Code() != codes.Unavailable {
			t.Fatalf("attempt %d on a full disk: %v, want Unavailable", attempt, err)
		}
		var reason string
		for _, d := range st.Details() {
			if info, ok := d.(*errdetails.ErrorInfo); ok {
				reason = info.GetReason()
			}
		}
		if reason != "STORAGE_FULL" || st.Message() != store.StorageFullMessage {
			t.Errorf("refusal: reason %q, message %q; want STORAGE_FULL, %q", reason, st.Message(), store.StorageFullMessage)
		}
	}
	for name, want := range map[string]healthpb.HealthCheckResponse_ServingStatus{grpcserver.StorageHealthService: notServing, "": serving, roster1: serving} {
		if got := healthOf(name); got != want {
			t.Errorf("while full: health of %q = %v, want %v", name, got, want)
		}
	}
	if resp, err := roster.GetImport(ctx, &sendingv1.GetImportRequest{ImportId: "kept"}); err != nil || !resp.GetComplete() {
		t.Errorf("read while full: %v, %v", resp, err)
	}
	full := logs.FilterMessageSnippet("storage full").All()
	if len(full) != 1 || full[0].Level != zapcore.ErrorLevel {
		t.Errorf("'storage full' logged %d times for two refused imports, want once at error level: %v", len(full), full)
	}

	if err := os.Remove(filler); err != nil { // the operator frees space
		t.Fatal(err)
	}
	resp, err := importRows(ctx, roster, "big", big)
	if err != nil {
		t.Fatalf("the same import after space was freed: %v", err)
	}
	if resp.GetSummary().GetCreated() != int64(len(big)) {
		t.Errorf("created %d, want %d", resp.GetSummary().GetCreated(), len(big))
	}
	if got := healthOf(grpcserver.StorageHealthService); got != serving {
		t.Errorf("storage health after a write succeeded = %v, want SERVING", got)
	}
	if n := logs.FilterMessageSnippet("storage writable again").Len(); n != 1 {
		t.Errorf("%d 'writable again' lines, want 1", n)
	}

	stop()
	start(t, cfg, zap.NewNop())
	cc2, err := grpc.NewClient(cfg.Listen, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc2.Close()
	for id, want := range map[string]int64{"kept": 300, "big": int64(len(big))} {
		resp, err := sendingv1.NewRosterServiceClient(cc2).GetImport(ctx, &sendingv1.GetImportRequest{ImportId: id})
		if err != nil || !resp.GetComplete() || resp.GetSummary().GetCreated() != want {
			t.Errorf("after restart, import %s: %v, %v; want complete with %d created", id, resp, err, want)
		}
	}
}

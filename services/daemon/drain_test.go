package daemon_test

import (
	"context"
	"github.com/eastwest/labourlink/services/devtools/wait"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/daemon"
	"github.com/eastwest/labourlink/services/devtools/proctest"
)

// importClient is what the test needs of one service's import API.
type importClient struct {
	// open starts an import stream and sends rows 2..rows+1 without the final mark.
	open func(ctx context.Context, cc *grpc.ClientConn, rows int) (grpc.ClientStream, error)
	// get returns the import's rows received, last row and whether it is complete.
	get func(ctx context.Context, cc *grpc.ClientConn) (received, lastRow int64, complete bool, err error)
}

const drainImportID = "drain-through-daemon"

var sendingImports = importClient{
	open: func(ctx context.Context, cc *grpc.ClientConn, rows int) (grpc.ClientStream, error) {
		stream, err := sendingv1.NewRosterServiceClient(cc).ImportWorkers(ctx)
		if err != nil {
			return nil, err
		}
		req := &sendingv1.ImportWorkersRequest{ImportId: drainImportID}
		for i := range rows {
			req.Rows = append(req.Rows, &sendingv1.WorkerRow{RowNumber: int64(i + 2)}) // rejected rows count too
		}
		return stream, stream.Send(req)
	},
	get: func(ctx context.Context, cc *grpc.ClientConn) (int64, int64, bool, error) {
		gi, err := sendingv1.NewRosterServiceClient(cc).GetImport(ctx, &sendingv1.GetImportRequest{ImportId: drainImportID})
		return gi.GetSummary().GetRowsReceived(), gi.GetLastRowNumber(), gi.GetComplete(), err
	},
}

var receivingImports = importClient{
	open: func(ctx context.Context, cc *grpc.ClientConn, rows int) (grpc.ClientStream, error) {
		stream, err := receivingv1.NewVacancyServiceClient(cc).ImportVacancies(ctx)
		if err != nil {
			return nil, err
		}
		req := &receivingv1.ImportVacanciesRequest{ImportId: drainImportID}
		for i := range rows {
			req.Rows = append(req.Rows, &receivingv1.VacancyRow{RowNumber: int64(i + 2)})
		}
		return stream, stream.Send(req)
	},
	get: func(ctx context.Context, cc *grpc.ClientConn) (int64, int64, bool, error) {
		gi, err := receivingv1.NewVacancyServiceClient(cc).GetVacancyImport(ctx, &receivingv1.GetVacancyImportRequest{ImportId: drainImportID})
		return gi.GetSummary().GetRowsReceived(), gi.GetLastRowNumber(), gi.GetComplete(), err
	},
}

// When the daemon stops, an import stream that waits for its client ends with the service's
// UNAVAILABLE as soon as the graceful stop begins: the stop does not wait for its timeout (a
// minute here), and the rows committed are still there, the import incomplete, after a restart.
func TestStopEndsIdleImportStreams(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		kind    daemon.Kind
		region  string
		imports importClient
		// rows is what the stream sends: a full batch for the sending service, whose stream
		// commits in batches of 5000 rows (so that the rows are on disk before the stop).
		rows int
	}{
		{"sending", daemon.Sending, "520000", sendingImports, 5000},
		{"receiving", daemon.Receiving, "440000", receivingImports, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.InfoLevel)
			cfg := daemon.Config{Kind: tt.kind, Region: tt.region, Listen: proctest.FreeAddr(t), DataDir: t.TempDir(),
				LogLevel: "info", ShutdownTimeout: time.Minute}
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			errc := make(chan error, 1)
			go func() { errc <- daemon.Run(ctx, cfg, zap.New(core)) }()
			healthy(t, cfg.Listen, insecure.NewCredentials())

			cc, err := grpc.NewClient(cfg.Listen, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			streamCtx, cancelStream := context.WithCancel(context.Background())
			defer cancelStream()
			stream, err := tt.imports.open(streamCtx, cc, tt.rows)
			if err != nil {
				t.Fatal(err)
			}
			// The stream is idle once its rows are on disk: wait for that, then stop.
			waitFor(t, "the stream's rows on disk", func() bool {
				callCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				n, _, _, err := tt.imports.get(callCtx, cc)
				return err == nil && n == int64(tt.rows)
			})
			stop()

			// RecvMsg: the client neither half-closes nor cancels; the server ends the stream.
			err = stream.RecvMsg(&emptypb.Empty{})
			if st, _ := status.FromError(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "service is stopping") {
				t.Fatalf("idle import stream at the stop: %v; want the service's UNAVAILABLE", err)
			}
			if err := <-errc; err != nil {
				t.Fatalf("run: %v", err)
			}
			if n := logs.FilterMessageSnippet("graceful stop timed out").Len(); n != 0 {
				t.Fatal("the graceful stop waited for its timeout")
			}
			if logs.FilterMessage("import complete").Len() != 0 {
				t.Fatal(`an incomplete import logged "import complete"`)
			}

			// Restart on the same data: the rows are kept, the import incomplete.
			ctx, stop = context.WithCancel(context.Background())
			defer stop()
			go func() { errc <- daemon.Run(ctx, cfg, zap.NewNop()) }()
			healthy(t, cfg.Listen, insecure.NewCredentials())
			callCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			n, last, complete, err := tt.imports.get(callCtx, cc)
			if err != nil {
				t.Fatal(err)
			}
			if complete || n != int64(tt.rows) || last != int64(tt.rows+1) {
				t.Fatalf("after restart: %d rows up to row %d, complete %v; want %d rows up to row %d, incomplete",
					n, last, complete, tt.rows, tt.rows+1)
			}
			stop()
			if err := <-errc; err != nil {
				t.Fatalf("run after restart: %v", err)
			}
		})
	}
}

// waitFor waits until cond holds (services/devtools/wait).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	wait.For(t, what, cond)
}

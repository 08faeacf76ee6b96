package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/grpcserver"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/receiving"
	"github.com/eastwest/labourlink/services/sending"
)

// sentChunk is what one send of an import stream carried.
type sentChunk struct {
	rows  int
	final bool
	total int64
}

// The last message of an import says final with the number of rows sent, also when the rows end
// on a chunk boundary (then it carries no rows) and when the file has no rows.
func TestImportSendsFinalWithTotalRows(t *testing.T) {
	t.Parallel()
	content, _ := spreadsheetCSV() // 5 data rows and a blank one
	tests := []struct {
		name  string
		csv   string
		chunk string
		want  []sentChunk
	}{
		{"last chunk short", content, "2", []sentChunk{{2, false, 0}, {2, false, 0}, {1, true, 5}}},
		{"rows end on a chunk boundary", content, "5", []sentChunk{{5, false, 0}, {0, true, 5}}},
		{"one chunk", content, "100", []sentChunk{{5, true, 5}}},
		{"no rows", strings.SplitAfter(content, "\r\n")[0], "100", []sentChunk{{0, true, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "roster.csv")
			writeFile(t, path, []byte(tt.csv))
			var sent []sentChunk
			c := *rosterImport
			c.connect = func(grpc.ClientConnInterface) importService[*sendingv1.WorkerRow] {
				return importService[*sendingv1.WorkerRow]{
					open: func(context.Context, string) (importStream[*sendingv1.WorkerRow], error) {
						return importStream[*sendingv1.WorkerRow]{
							send: func(rows []*sendingv1.WorkerRow, final bool, total int64) error {
								c := sentChunk{rows: len(rows), final: final}
								if final {
									c.total = total // what the message carries (see roster.go)
								}
								sent = append(sent, c)
								return nil
							},
							closeAndRecv: func() (*commonv1.ImportSummary, error) {
								return &commonv1.ImportSummary{ImportId: "x"}, nil
							},
						}, nil
					},
				}
			}
			var out, errOut bytes.Buffer
			env := &cliEnv{stdout: &out, stderr: &errOut}
			if err := runCSVImport(context.Background(), env, []string{path, "-chunk", tt.chunk, "-addr", "127.0.0.1:1"}, &c); err != nil {
				t.Fatalf("%v\n%s", err, errOut.String())
			}
			if fmt.Sprint(sent) != fmt.Sprint(tt.want) {
				t.Fatalf("sent %v, want %v", sent, tt.want)
			}
		})
	}
}

// serveTwice serves two services built by build over one data file, on two listeners: a
// service that is stopping and the same service restarted, as far as the file is concerned.
func serveTwice(t *testing.T, lg *zap.Logger, schema store.Schema, build func(db *store.DB, draining <-chan struct{}) (registrar, error)) (stopping, restarted string) {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "svc.db"), schema, lg)
	if err != nil {
		t.Fatal(err)
	}
	drained := make(chan struct{})
	close(drained)
	var addrs []string
	var stops []func()
	for _, draining := range []<-chan struct{}{drained, nil} {
		svc, err := build(db, draining)
		if err != nil {
			t.Fatal(err)
		}
		srv := grpcserver.New(grpcserver.Config{}, lg)
		svc.Register(srv.GRPC())
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = srv.Serve(lis)
		}()
		addrs = append(addrs, lis.Addr().String())
		stops = append(stops, func() { srv.Stop(context.Background()); <-done })
	}
	t.Cleanup(func() {
		for _, stop := range stops {
			stop()
		}
		db.Close()
	})
	return addrs[0], addrs[1]
}

// An import the service could not finish (here: the service is stopping) says that the import
// is incomplete and that the same command finishes it; it does. (The CLI retries UNAVAILABLE a
// few times with backoff, services/platform/peers: each case takes about 3 s.)
func TestImportInterruptedSaysHowToResume(t *testing.T) {
	t.Parallel()
	lg := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	content, _ := spreadsheetCSV()
	vacancies := "用人单位,统一社会信用代码,工作地点,职业,招聘人数,最低月薪,最高月薪,开始日期,截止日期\r\n" +
		"坏行,x,520102,8212,0,4500,6000,2027-01-01,2027-02-01\r\n"
	tests := []struct {
		name    string
		command []string
		csv     string
		schema  store.Schema
		build   func(db *store.DB, draining <-chan struct{}) (registrar, error)
	}{
		{"roster import", []string{"roster", "import"}, content, sending.Schema, func(db *store.DB, draining <-chan struct{}) (registrar, error) {
			return sending.New(db, lg, sending.Config{Region: "520000", Draining: draining})
		}},
		{"vacancies import", []string{"vacancies", "import"}, vacancies, receiving.Schema, func(db *store.DB, draining <-chan struct{}) (registrar, error) {
			return receiving.New(db, lg, receiving.Config{Region: "440000", Draining: draining})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stopping, restarted := serveTwice(t, lg, tt.schema, tt.build)
			path := filepath.Join(t.TempDir(), "file.csv")
			writeFile(t, path, []byte(tt.csv))
			args := append(append([]string(nil), tt.command...), path)

			code, out, errOut := runRoster(t, stopping, args...)
			if code == 0 || !strings.Contains(errOut, "The import is incomplete") || !strings.Contains(errOut, "Run the same command again") ||
				strings.Contains(out, "received") {
				t.Fatalf("interrupted import: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			code, out, errOut = runRoster(t, restarted, args...)
			if code != exitRejected || !strings.Contains(out, "received") || strings.Contains(errOut, "incomplete") {
				t.Fatalf("the same command again: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
		})
	}
}

// resumable: the errors after which running the same command again finishes the import.
func TestResumable(t *testing.T) {
	t.Parallel()
	violation := func(field string) error {
		var v apierror.Violations
		v.Add(field, "…")
		return apierror.Status(v.Err()).Err()
	}
	tests := []struct {
		err  error
		want bool
	}{
		{status.Error(codes.Canceled, "context canceled"), true},
		{status.Error(codes.Unavailable, "the sending service is stopping"), true},
		{status.Error(codes.DeadlineExceeded, "deadline"), true},
		{status.Error(codes.Internal, "internal error"), true},
		{violation("final"), true},
		{violation("total_rows"), true},
		{violation("rows[0].row_number"), false},
		{status.Error(codes.PermissionDenied, "not yours"), false},
		{fmt.Errorf("roster.csv changed while it was imported"), false},
	}
	for _, tt := range tests {
		if got := resumable(tt.err); got != tt.want {
			t.Errorf("resumable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

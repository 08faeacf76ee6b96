package roster

// How an import ends: only a message marked final with the right total_rows completes it;
// every other end of a stream keeps the rows received and leaves the import resumable.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
)

// endRows are the rows of the tests below: 2100 rows (numbers 2..2101), every 50th rejected.
func endRows() (rows []*sendingv1.WorkerRow, good int) {
	for i := range 2100 {
		r := genRow(i)
		if i%50 == 7 {
			r.Phone = "123"
		} else {
			good++
		}
		rows = append(rows, r)
	}
	return rows, good
}

// importEvents records env's import hook: each event is sent on the returned channel (for tests
// of a few streams: the hook blocks when 1000 events are not read).
func importEvents(env *rosterEnv) <-chan string {
	c := make(chan string, 1000)
	env.svc.importHook = func(_, event string) { c <- event }
	return c
}

// waitEvent waits for the import hook's next event of kind event, skipping others.
func waitEvent(t *testing.T, events <-chan string, event string) {
	t.Helper()
	for e := range events {
		if e == event {
			return
		}
	}
}

// fieldViolation returns the description of the violation of field in err ("" if none).
func fieldViolation(t *testing.T, err error, field string) string {
	t.Helper()
	st := wantCode(t, err, codes.InvalidArgument)
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, fv := range br.GetFieldViolations() {
				if fv.GetField() == field {
					return fv.GetDescription()
				}
			}
		}
	}
	t.Fatalf("no field violation on %s in %v", field, st.Details())
	return ""
}

// checkIncomplete checks that GetImport reports importID incomplete with a consistent count:
// the rows it holds are exactly rows 2..last_row_number. It returns rows_received.
func checkIncomplete(t *testing.T, env *rosterEnv, importID string) int64 {
	t.Helper()
	gi, err := env.client.GetImport(context.Background(), &sendingv1.GetImportRequest{ImportId: importID})
	if err != nil {
		t.Fatal(err)
	}
	s := gi.GetSummary()
	if gi.GetComplete() {
		t.Fatalf("GetImport says complete: %v", gi)
	}
	if n := s.GetRowsReceived(); (n == 0 && gi.GetLastRowNumber() != 0) || (n > 0 && gi.GetLastRowNumber() != n+1) ||
		s.GetCreated()+s.GetRejected() != n {
		t.Fatalf("GetImport = %v; want rows 2..last_row_number counted once", gi)
	}
	return s.GetRowsReceived()
}

// checkCompleted checks that a resent import completed exactly: every row counted once, each good
// row one worker.
func checkCompleted(t *testing.T, env *rosterEnv, importID string, resp *sendingv1.ImportWorkersResponse, rows []*sendingv1.WorkerRow, good int) {
	t.Helper()
	s := resp.GetSummary()
	if s.GetRowsReceived() != int64(len(rows)) || s.GetCreated() != int64(good) || s.GetRejected() != int64(len(rows)-good) ||
		s.GetUpdated() != 0 || s.GetUnchanged() != 0 {
		t.Fatalf("completed import: %v; want %d rows, %d created, %d rejected", s, len(rows), good, len(rows)-good)
	}
	roster, indexN := rosterSnapshot(t, env.db)
	if len(roster) != good || indexN != good {
		t.Fatalf("roster has %d workers, %d index entries; want %d", len(roster), indexN, good)
	}
	gi, err := env.client.GetImport(context.Background(), &sendingv1.GetImportRequest{ImportId: importID})
	if err != nil {
		t.Fatal(err)
	}
	if !gi.GetComplete() || gi.GetLastRowNumber() != rows[len(rows)-1].GetRowNumber() {
		t.Fatalf("GetImport after completion: complete %v, last row %d", gi.GetComplete(), gi.GetLastRowNumber())
	}
}

// A stream that ends without the final message, however it ends, leaves the import incomplete
// with the rows it received kept; sending the import again with final completes it exactly. The
// old service took a half-close for the end of the import (issue 10: grpc-js half-closes before
// it cancels).
func TestImportIncompleteWithoutFinal(t *testing.T) {
	t.Parallel()
	rows, good := endRows()
	const chunk = 300
	tests := []struct {
		name string
		// end ends the stream after all chunks were sent (and are in hand); it returns the
		// error the client saw.
		end func(stream sendingv1.RosterService_ImportWorkersClient, cancel context.CancelFunc) error
		// exact: every row sent is kept (the server read them all before the stream ended).
		exact bool
		// field is the field violation the client gets (empty: no reply is expected).
		field string
	}{
		{"half-close without final", func(s sendingv1.RosterService_ImportWorkersClient, _ context.CancelFunc) error {
			_, err := s.CloseAndRecv()
			return err
		}, true, "final"},
		{"cancel", func(s sendingv1.RosterService_ImportWorkersClient, cancel context.CancelFunc) error {
			cancel()
			return s.RecvMsg(&sendingv1.ImportWorkersResponse{})
		}, true, ""},
		{"half-close then cancel, as grpc-js does", func(s sendingv1.RosterService_ImportWorkersClient, cancel context.CancelFunc) error {
			err := s.CloseSend()
			cancel()
			if err != nil {
				return err
			}
			return s.RecvMsg(&sendingv1.ImportWorkersResponse{})
		}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.InfoLevel)
			env := startRoster(t, zap.New(core), "")
			events := importEvents(env)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stream, err := env.client.ImportWorkers(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for start := 0; start < len(rows); start += chunk {
				if err := stream.Send(&sendingv1.ImportWorkersRequest{ImportId: "cut", Rows: rows[start : start+chunk]}); err != nil {
					t.Fatal(err)
				}
				waitEvent(t, events, importMessage)
			}
			err = tt.end(stream, cancel)
			if err == nil {
				t.Fatal("a stream without a final message got a reply")
			}
			if tt.field != "" {
				if d := fieldViolation(t, err, tt.field); !strings.Contains(d, fmt.Sprintf("%d rows", len(rows))) || !strings.Contains(d, "final=true") {
					t.Errorf("violation on %s: %q; want the rows kept and how to complete the import", tt.field, d)
				}
			}
			waitEvent(t, events, importEnd)

			kept := checkIncomplete(t, env, "cut")
			if tt.exact && kept != int64(len(rows)) {
				t.Errorf("%d rows kept, want all %d sent", kept, len(rows))
			}
			if logs.FilterMessage("import complete").Len() != 0 {
				t.Error(`an incomplete import logged "import complete"`)
			}
			if logs.FilterMessage("import stream ended before its final message").Len() != 1 {
				t.Errorf("no info line that the stream ended before its final message in %d lines", logs.Len())
			}

			// The whole import again, with final: complete, every row once.
			resp, err := importRows(context.Background(), env.client, "cut", rows, chunk)
			if err != nil {
				t.Fatal(err)
			}
			checkCompleted(t, env, "cut", resp, rows, good)
			// And again: the stored summary, nothing changed.
			again, err := importRows(context.Background(), env.client, "cut", rows, chunk)
			if err != nil {
				t.Fatal(err)
			}
			checkCompleted(t, env, "cut", again, rows, good)
		})
	}
}

// A client cancels after some chunks: the rows it sent are kept, GetImport says where to resume,
// and a resumed stream that starts after last_row_number completes the import.
func TestImportCancelledThenResumedFromLastRow(t *testing.T) {
	t.Parallel()
	rows, good := endRows()
	env := startRoster(t, nil, "")
	events := importEvents(env)
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := env.client.ImportWorkers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for start := 0; start < 1200; start += 400 {
		if err := stream.Send(&sendingv1.ImportWorkersRequest{ImportId: "resume", Rows: rows[start : start+400]}); err != nil {
			t.Fatal(err)
		}
		waitEvent(t, events, importMessage)
	}
	cancel()
	if err := stream.RecvMsg(&sendingv1.ImportWorkersResponse{}); status.Code(err) != codes.Canceled {
		t.Fatalf("cancelled stream: %v", err)
	}
	waitEvent(t, events, importEnd)
	gi, err := env.client.GetImport(context.Background(), &sendingv1.GetImportRequest{ImportId: "resume"})
	if err != nil {
		t.Fatal(err)
	}
	if gi.GetComplete() || gi.GetSummary().GetRowsReceived() != 1200 || gi.GetLastRowNumber() != rows[1199].GetRowNumber() {
		t.Fatalf("after the cancel: %v; want 1200 rows up to row %d, incomplete", gi, rows[1199].GetRowNumber())
	}

	// Resume after the last row on disk: only the rest is sent, total_rows counts all.
	var rest []*sendingv1.WorkerRow
	for _, r := range rows {
		if r.GetRowNumber() > gi.GetLastRowNumber() {
			rest = append(rest, r)
		}
	}
	stream, err = env.client.ImportWorkers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&sendingv1.ImportWorkersRequest{ImportId: "resume", Rows: rest, Final: true, TotalRows: int64(len(rows))}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatal(err)
	}
	checkCompleted(t, env, "resume", resp, rows, good)
}

// The final message's total_rows must be the import's row count; otherwise the rows are kept,
// the import stays incomplete, and INVALID_ARGUMENT on total_rows says how many rows arrived.
func TestImportFinalTotalRowsMustAgree(t *testing.T) {
	t.Parallel()
	rows := []*sendingv1.WorkerRow{genRow(0), genRow(1), genRow(2), genRow(3), genRow(4)}
	tests := []struct {
		name  string
		total int64
		kept  int64 // rows kept after the refusal; -1: the import does not exist
	}{
		{"more than sent", 6, 5},
		{"fewer than sent", 4, 5},
		{"zero", 0, 5},
		{"negative", -1, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := startRoster(t, nil, "")
			ctx := context.Background()
			stream, err := env.client.ImportWorkers(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.Send(&sendingv1.ImportWorkersRequest{ImportId: "count", Rows: rows, Final: true, TotalRows: tt.total}); err != nil {
				t.Fatal(err)
			}
			_, err = stream.CloseAndRecv()
			d := fieldViolation(t, err, "total_rows")
			if tt.kept < 0 {
				if _, err := env.client.GetImport(ctx, &sendingv1.GetImportRequest{ImportId: "count"}); status.Code(err) != codes.NotFound {
					t.Fatalf("a refused negative total_rows left an import: %v", err)
				}
				if roster, _ := rosterSnapshot(t, env.db); len(roster) != 0 {
					t.Fatalf("a refused message stored %d workers", len(roster))
				}
				return
			}
			if !strings.Contains(d, fmt.Sprintf("received %d rows", tt.kept)) || !strings.Contains(d, "incomplete") {
				t.Errorf("violation %q; want the rows received and that the import stays incomplete", d)
			}
			if kept := checkIncomplete(t, env, "count"); kept != tt.kept {
				t.Fatalf("%d rows kept, want %d", kept, tt.kept)
			}
			// The right count, in a final message of its own, completes it.
			stream, err = env.client.ImportWorkers(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.Send(&sendingv1.ImportWorkersRequest{ImportId: "count", Final: true, TotalRows: 5}); err != nil {
				t.Fatal(err)
			}
			resp, err := stream.CloseAndRecv()
			if err != nil {
				t.Fatal(err)
			}
			checkCompleted(t, env, "count", resp, rows, 5)
		})
	}
}

// The final mark may come on the last chunk, alone after the rows, on an import of no rows, or
// alone on a stream that resumes an import whose rows all arrived before.
func TestImportFinalMessageForms(t *testing.T) {
	t.Parallel()
	rows, good := endRows()
	tests := []struct {
		name string
		// streams are the messages of successive streams; each but the last is half-closed
		// without final.
		streams [][]*sendingv1.ImportWorkersRequest
		rows    []*sendingv1.WorkerRow
		good    int
	}{
		{"final on the last chunk", [][]*sendingv1.ImportWorkersRequest{{
			{Rows: rows[:1000]}, {Rows: rows[1000:], Final: true, TotalRows: 2100},
		}}, rows, good},
		{"final alone after the rows", [][]*sendingv1.ImportWorkersRequest{{
			{Rows: rows[:1000]}, {Rows: rows[1000:]}, {Final: true, TotalRows: 2100},
		}}, rows, good},
		{"an import of no rows", [][]*sendingv1.ImportWorkersRequest{{
			{Final: true, TotalRows: 0},
		}}, nil, 0},
		{"final alone on a resumed stream", [][]*sendingv1.ImportWorkersRequest{
			{{Rows: rows[:1000]}, {Rows: rows[1000:]}},
			{{Final: true, TotalRows: 2100}},
		}, rows, good},
		{"rows resent and final on a resumed stream", [][]*sendingv1.ImportWorkersRequest{
			{{Rows: rows[:1500]}},
			{{Rows: rows[:1000]}, {Rows: rows[1000:], Final: true, TotalRows: 2100}},
		}, rows, good},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := startRoster(t, nil, "")
			var resp *sendingv1.ImportWorkersResponse
			for i, msgs := range tt.streams {
				stream, err := env.client.ImportWorkers(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range msgs {
					m.ImportId = "forms"
					if err := stream.Send(m); err != nil {
						t.Fatal(err)
					}
				}
				resp, err = stream.CloseAndRecv()
				if i < len(tt.streams)-1 {
					fieldViolation(t, err, "final")
					checkIncomplete(t, env, "forms")
				} else if err != nil {
					t.Fatal(err)
				}
			}
			if len(tt.rows) == 0 {
				gi, err := env.client.GetImport(context.Background(), &sendingv1.GetImportRequest{ImportId: "forms"})
				if err != nil {
					t.Fatal(err)
				}
				if !gi.GetComplete() || resp.GetSummary().GetRowsReceived() != 0 {
					t.Fatalf("empty import: %v, reply %v", gi, resp)
				}
				return
			}
			checkCompleted(t, env, "forms", resp, tt.rows, tt.good)
		})
	}
}

// Messages after the final one are not read: the reply is the import as the final message
// completed it, and rows sent after it are not imported.
func TestImportIgnoresMessagesAfterFinal(t *testing.T) {
	t.Parallel()
	env := startRoster(t, nil, "")
	rows := []*sendingv1.WorkerRow{genRow(0), genRow(1), genRow(2)}
	stream, err := env.client.ImportWorkers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&sendingv1.ImportWorkersRequest{ImportId: "after", Rows: rows, Final: true, TotalRows: 3}); err != nil {
		t.Fatal(err)
	}
	// More messages: a row after the final one, and a message with another import id (refused
	// if it were read). Send may fail with io.EOF once the server has replied.
	for _, m := range []*sendingv1.ImportWorkersRequest{
		{ImportId: "after", Rows: []*sendingv1.WorkerRow{genRow(3)}},
		{ImportId: "other", Rows: []*sendingv1.WorkerRow{genRow(4)}, Final: true, TotalRows: 1},
	} {
		if err := stream.Send(m); err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatal(err)
	}
	checkCompleted(t, env, "after", resp, rows, 3)
	roster, _ := rosterSnapshot(t, env.db)
	if roster[genRow(3).IdNumber] != nil || roster[genRow(4).IdNumber] != nil {
		t.Fatal("a row sent after the final message was imported")
	}
}

// Idle import streams hold no batch buffer and no committer: the memory of 200 streams that sent
// one small message and wait (server and client side together: about 32 KB each when written)
// is a small fraction of one batch (importBatchRows rows) each. The
// old service allocated a batch of 5000 rows per stream at once (2,000 idle streams held 1 GB).
func TestIdleImportStreamsHoldNoBatch(t *testing.T) {
	// Not parallel: it measures the process's heap.
	env := startRoster(t, zap.NewNop(), "")
	const streams = 200
	events := make(chan string, streams+1)
	env.svc.importHook = func(_, event string) {
		if event == importMessage {
			events <- event
		}
	}
	inUse := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse + m.StackInuse
	}
	// One stream first, so that connection-wide buffers are not counted.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func(i int) {
		stream, err := env.client.ImportWorkers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&sendingv1.ImportWorkersRequest{ImportId: fmt.Sprintf("idle-%d", i), Rows: []*sendingv1.WorkerRow{genRow(i)}}); err != nil {
			t.Fatal(err)
		}
		waitEvent(t, events, importMessage)
	}
	open(streams)
	before := inUse()
	for i := range streams {
		open(i)
	}
	perStream := (int64(inUse()) - int64(before)) / streams
	batch := int64(importBatchRows) * int64(unsafe.Sizeof(rowResult{}))
	t.Logf("%d idle streams: %d bytes each (server and client); one batch buffer is %d bytes", streams, perStream, batch)
	if perStream > batch/4 {
		t.Fatalf("an idle import stream holds %d bytes, more than a quarter of a batch buffer (%d bytes)", perStream, batch)
	}
}

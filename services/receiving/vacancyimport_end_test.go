package receiving

// How a vacancy import ends: only a message marked final with the right total_rows completes
// it; every other end of a stream keeps the rows committed and leaves the import resumable.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
)

// endRows are rows 2..61, every 10th rejected (occupation 0000), in chunks of 20.
func endRows(t *testing.T) (chunks [][]*receivingv1.VacancyRow, rows, good int) {
	var chunk []*receivingv1.VacancyRow
	for n := int64(2); n < 62; n++ {
		r := goodRow(t, n)
		if n%10 == 5 {
			r.Occupation = "0000"
		} else {
			good++
		}
		chunk = append(chunk, r)
		rows++
		if len(chunk) == 20 {
			chunks = append(chunks, chunk)
			chunk = nil
		}
	}
	return chunks, rows, good
}

// importEvents records e's import hook: each event is sent on the returned channel.
func (e *env) importEvents() <-chan string {
	c := make(chan string, 1000)
	e.svc.vacancies.ImportHook = func(_, event string) { c <- event }
	return c
}

func waitEvent(events <-chan string, event string) {
	for e := range events {
		if e == event {
			return
		}
	}
}

// vacancyImport returns GetVacancyImport of id and checks it is consistent: the rows counted
// are the created and rejected ones.
func (e *env) getImport(id string) *receivingv1.GetVacancyImportResponse {
	e.t.Helper()
	gi, err := e.vac.GetVacancyImport(ctx(e.t), &receivingv1.GetVacancyImportRequest{ImportId: id})
	if err != nil {
		e.t.Fatal(err)
	}
	if s := gi.GetSummary(); s.GetCreated()+s.GetRejected() != s.GetRowsReceived() {
		e.t.Fatalf("GetVacancyImport = %v: counts do not add up", gi)
	}
	return gi
}

// checkCompleted checks a completed import: every row once, one vacancy per good row.
func (e *env) checkCompleted(id string, sum *commonv1.ImportSummary, rows, good int, lastRow int64) {
	e.t.Helper()
	if sum.GetRowsReceived() != int64(rows) || sum.GetCreated() != int64(good) || sum.GetRejected() != int64(rows-good) {
		e.t.Fatalf("completed import: %v; want %d rows, %d created, %d rejected", sum, rows, good, rows-good)
	}
	if h := e.head(); h != int64(good) {
		e.t.Fatalf("demand feed head %d, want %d (one change per vacancy, no duplicates)", h, good)
	}
	if gi := e.getImport(id); !gi.GetComplete() || gi.GetLastRowNumber() != lastRow {
		e.t.Fatalf("GetVacancyImport after completion: %v; want complete, last row %d", gi, lastRow)
	}
}

// A stream that ends without the final message, however it ends, leaves the import incomplete
// with its committed chunks kept; sending the import again with final completes it exactly.
func TestVacancyImportIncompleteWithoutFinal(t *testing.T) {
	t.Parallel()
	chunks, rows, good := endRows(t)
	tests := []struct {
		name  string
		end   func(stream receivingv1.VacancyService_ImportVacanciesClient, cancel context.CancelFunc) error
		exact bool   // every chunk sent is kept
		field string // the field violation the client gets; "" when no reply is expected
	}{
		{"half-close without final", func(s receivingv1.VacancyService_ImportVacanciesClient, _ context.CancelFunc) error {
			_, err := s.CloseAndRecv()
			return err
		}, true, "final"},
		{"cancel", func(s receivingv1.VacancyService_ImportVacanciesClient, cancel context.CancelFunc) error {
			cancel()
			return s.RecvMsg(&receivingv1.ImportVacanciesResponse{})
		}, true, ""},
		{"half-close then cancel, as grpc-js does", func(s receivingv1.VacancyService_ImportVacanciesClient, cancel context.CancelFunc) error {
			err := s.CloseSend()
			cancel()
			if err != nil {
				return err
			}
			return s.RecvMsg(&receivingv1.ImportVacanciesResponse{})
		}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			events := e.importEvents()
			cctx, cancel := context.WithCancel(ctx(t))
			defer cancel()
			stream, err := e.vac.ImportVacancies(cctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range chunks {
				if err := stream.Send(&receivingv1.ImportVacanciesRequest{ImportId: "cut", Rows: c}); err != nil {
					t.Fatal(err)
				}
				waitEvent(events, importMessage)
			}
			err = tt.end(stream, cancel)
			if err == nil {
				t.Fatal("a stream without a final message got a reply")
			}
			if tt.field != "" {
				if d := violations(t, err)[tt.field]; !strings.Contains(d, fmt.Sprintf("%d rows", rows)) || !strings.Contains(d, "final=true") {
					t.Errorf("violation on %s: %q; want the rows kept and how to complete the import", tt.field, d)
				}
			}
			waitEvent(events, importEnd)
			gi := e.getImport("cut")
			if gi.GetComplete() {
				t.Fatalf("an import without a final message is complete: %v", gi)
			}
			if tt.exact && (gi.GetSummary().GetRowsReceived() != int64(rows) || gi.GetLastRowNumber() != 61) {
				t.Errorf("after the stream: %v; want all %d rows kept, last row 61", gi, rows)
			}
			sum, err := e.importRows("cut", chunks...)
			if err != nil {
				t.Fatal(err)
			}
			e.checkCompleted("cut", sum, rows, good, 61)
			again, err := e.importRows("cut", chunks...)
			if err != nil {
				t.Fatal(err)
			}
			e.checkCompleted("cut", again, rows, good, 61)
		})
	}
}

// The final message's total_rows must be the import's row count, counted once over resumed
// streams; otherwise its rows are kept, the import stays incomplete, and INVALID_ARGUMENT on
// total_rows says how many rows arrived.
func TestVacancyImportFinalTotalRowsMustAgree(t *testing.T) {
	t.Parallel()
	rows := []*receivingv1.VacancyRow{goodRow(t, 2), goodRow(t, 3), goodRow(t, 4)}
	tests := []struct {
		name  string
		total int64
		kept  int64 // -1: refused before anything, no import
	}{
		{"more than sent", 4, 3},
		{"fewer than sent", 2, 3},
		{"the rows of this stream counted twice", 6, 3},
		{"negative", -3, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			stream, err := e.vac.ImportVacancies(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.Send(&receivingv1.ImportVacanciesRequest{ImportId: "count", Rows: rows, Final: true, TotalRows: tt.total}); err != nil {
				t.Fatal(err)
			}
			_, err = stream.CloseAndRecv()
			d := violations(t, err)["total_rows"]
			if tt.kept < 0 {
				_, err := e.vac.GetVacancyImport(ctx(t), &receivingv1.GetVacancyImportRequest{ImportId: "count"})
				wantCode(t, err, codes.NotFound, "")
				if h := e.head(); h != 0 {
					t.Fatalf("a refused message created %d vacancies", h)
				}
				return
			}
			if !strings.Contains(d, fmt.Sprintf("received %d rows", tt.kept)) || !strings.Contains(d, "incomplete") {
				t.Errorf("violation %q; want the rows received and that the import stays incomplete", d)
			}
			if gi := e.getImport("count"); gi.GetComplete() || gi.GetSummary().GetRowsReceived() != tt.kept {
				t.Fatalf("after the refusal: %v; want %d rows kept, incomplete", gi, tt.kept)
			}
			// The same rows again (skipped) with the right count complete it.
			sum, err := e.importRows("count", rows)
			if err != nil {
				t.Fatal(err)
			}
			e.checkCompleted("count", sum, 3, 3, 4)
		})
	}
}

// The final mark may come on the last chunk, alone after the rows, on an import of no rows, or
// alone on a stream that resumes an import.
func TestVacancyImportFinalMessageForms(t *testing.T) {
	t.Parallel()
	chunks, rows, good := endRows(t)
	final := func(total int) *receivingv1.ImportVacanciesRequest {
		return &receivingv1.ImportVacanciesRequest{Final: true, TotalRows: int64(total)}
	}
	tests := []struct {
		name    string
		streams [][]*receivingv1.ImportVacanciesRequest // each but the last half-closed without final
		rows    int
		good    int
		lastRow int64
	}{
		{"final on the last chunk", [][]*receivingv1.ImportVacanciesRequest{{
			{Rows: chunks[0]}, {Rows: chunks[1]}, {Rows: chunks[2], Final: true, TotalRows: int64(rows)},
		}}, rows, good, 61},
		{"final alone after the rows", [][]*receivingv1.ImportVacanciesRequest{{
			{Rows: chunks[0]}, {Rows: chunks[1]}, {Rows: chunks[2]}, final(rows),
		}}, rows, good, 61},
		{"an import of no rows", [][]*receivingv1.ImportVacanciesRequest{{final(0)}}, 0, 0, 0},
		{"final alone on a resumed stream", [][]*receivingv1.ImportVacanciesRequest{
			{{Rows: chunks[0]}, {Rows: chunks[1]}, {Rows: chunks[2]}},
			{final(rows)},
		}, rows, good, 61},
		{"rows resent and final on a resumed stream", [][]*receivingv1.ImportVacanciesRequest{
			{{Rows: chunks[0]}, {Rows: chunks[1]}},
			{{Rows: chunks[0]}, {Rows: chunks[1]}, {Rows: chunks[2]}, final(rows)},
		}, rows, good, 61},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			var resp *receivingv1.ImportVacanciesResponse
			for i, msgs := range tt.streams {
				stream, err := e.vac.ImportVacancies(ctx(t))
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
					if _, ok := violations(t, err)["final"]; !ok {
						t.Fatalf("half-close without final: %v", err)
					}
				} else if err != nil {
					t.Fatal(err)
				}
			}
			e.checkCompleted("forms", resp.GetSummary(), tt.rows, tt.good, tt.lastRow)
		})
	}
}

// Messages after the final one are not read: the reply is the import as the final message
// completed it, and rows sent after it create nothing.
func TestVacancyImportIgnoresMessagesAfterFinal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rows := []*receivingv1.VacancyRow{goodRow(t, 2), goodRow(t, 3)}
	stream, err := e.vac.ImportVacancies(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&receivingv1.ImportVacanciesRequest{ImportId: "after", Rows: rows, Final: true, TotalRows: 2}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*receivingv1.ImportVacanciesRequest{
		{ImportId: "after", Rows: []*receivingv1.VacancyRow{goodRow(t, 4)}},
		{ImportId: "other", Rows: []*receivingv1.VacancyRow{goodRow(t, 5)}, Final: true, TotalRows: 1},
	} {
		if err := stream.Send(m); err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatal(err)
	}
	e.checkCompleted("after", resp.GetSummary(), 2, 2, 3)
}

// A graceful stop of the server ends an import stream that waits for its client with
// UNAVAILABLE at once (the stop does not wait for its timeout); the committed rows are kept and
// the import is incomplete after a restart; sending it again completes it.
func TestVacancyImportEndsWhenServerDrains(t *testing.T) {
	t.Parallel()
	chunks, rows, good := endRows(t)
	e := newEnv(t)
	e.svc.vacancies.Draining = e.srv.Draining()
	events := e.importEvents()
	stream, err := e.vac.ImportVacancies(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&receivingv1.ImportVacanciesRequest{ImportId: "drain", Rows: chunks[0]}); err != nil {
		t.Fatal(err)
	}
	waitEvent(events, importMessage)
	stopped := make(chan struct{})
	go func() {
		e.srv.Stop(context.Background())
		close(stopped)
	}()
	err = stream.RecvMsg(&receivingv1.ImportVacanciesResponse{})
	if st := wantCode(t, err, codes.Unavailable, ""); !strings.Contains(st.Message(), "stopping") {
		t.Fatalf("drained stream: %v; want the service's UNAVAILABLE", err)
	}
	<-stopped
	e.restart()
	if gi := e.getImport("drain"); gi.GetComplete() || gi.GetSummary().GetRowsReceived() != 20 || gi.GetLastRowNumber() != 21 {
		t.Fatalf("after the stop: %v; want the first 20 rows kept, incomplete", gi)
	}
	sum, err := e.importRows("drain", chunks...)
	if err != nil {
		t.Fatal(err)
	}
	e.checkCompleted("drain", sum, rows, good, 61)
}

// A stream cancelled by its client keeps the chunks committed; GetVacancyImport says the last
// row on disk; a resumed stream that starts after it completes the import.
func TestVacancyImportCancelledThenResumedFromLastRow(t *testing.T) {
	t.Parallel()
	chunks, rows, good := endRows(t)
	e := newEnv(t)
	events := e.importEvents()
	cctx, cancel := context.WithCancel(ctx(t))
	stream, err := e.vac.ImportVacancies(cctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range chunks[:2] {
		if err := stream.Send(&receivingv1.ImportVacanciesRequest{ImportId: "resume", Rows: c}); err != nil {
			t.Fatal(err)
		}
		waitEvent(events, importMessage)
	}
	cancel()
	if err := stream.RecvMsg(&receivingv1.ImportVacanciesResponse{}); status.Code(err) != codes.Canceled {
		t.Fatalf("cancelled stream: %v", err)
	}
	waitEvent(events, importEnd)
	gi := e.getImport("resume")
	if gi.GetComplete() || gi.GetSummary().GetRowsReceived() != 40 || gi.GetLastRowNumber() != 41 {
		t.Fatalf("after the cancel: %v; want 40 rows up to row 41, incomplete", gi)
	}
	stream, err = e.vac.ImportVacancies(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	var rest []*receivingv1.VacancyRow
	for _, r := range chunks[2] {
		if r.GetRowNumber() > gi.GetLastRowNumber() {
			rest = append(rest, r)
		}
	}
	if err := stream.Send(&receivingv1.ImportVacanciesRequest{ImportId: "resume", Rows: rest, Final: true, TotalRows: int64(rows)}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatal(err)
	}
	e.checkCompleted("resume", resp.GetSummary(), rows, good, 61)
}

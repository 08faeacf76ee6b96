package roster

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/devtools/proctest"
)

// A real sending process is killed with SIGKILL right after it acknowledged imports, and again in
// the middle of a stream. After a restart every acknowledged row is there (a re-import of the
// same rows under a new id finds all of them unchanged), the acknowledged imports report the
// same summaries, and the interrupted import completes when sent again.
func TestImportSurvivesKillAfterReply(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs the labourlink binary")
	}
	dir := t.TempDir()
	args := []string{"-region", rosterRegion, "-data", dir, "-coordination", "", "-log-level", "debug"}
	ctx := context.Background()

	rowsOf := func(from, to int) []*sendingv1.WorkerRow {
		var rows []*sendingv1.WorkerRow
		for i := from; i < to; i++ {
			r := genRow(i)
			r.RowNumber = int64(i - from + 2)
			if i%500 == 7 {
				r.HomeCounty = "110101" // rejected
			}
			rows = append(rows, r)
		}
		return rows
	}
	var logs []string
	start := func() *proctest.Process {
		p := proctest.Start(t, "sending", "", args...)
		logs = append(logs, p.Log)
		return p
	}
	p := start()
	cc := p.Conn()
	client := sendingv1.NewRosterServiceClient(cc)
	acked := map[string]*sendingv1.ImportWorkersResponse{}
	var ackedRows []*sendingv1.WorkerRow
	for k := range 3 {
		id := fmt.Sprintf("kill-%d", k)
		rows := rowsOf(k*7000, (k+1)*7000)
		resp, err := importRows(ctx, client, id, rows, 2000)
		if err != nil {
			t.Fatal(err)
		}
		acked[id] = resp
		ackedRows = append(ackedRows, rows...)
	}
	p.Kill() // no graceful stop: whatever was acknowledged must already be on disk
	cc.Close()

	p = start()
	cc = p.Conn()
	client = sendingv1.NewRosterServiceClient(cc)
	for id, want := range acked {
		gi, err := client.GetImport(ctx, &sendingv1.GetImportRequest{ImportId: id})
		if err != nil {
			t.Fatal(err)
		}
		if !gi.GetComplete() || !proto.Equal(gi.GetSummary(), want.GetSummary()) {
			t.Fatalf("after kill, import %s = %v, want the acknowledged %v", id, gi, want.GetSummary())
		}
	}
	// Every acknowledged good row is stored with its values: all unchanged under a new id.
	for i := range ackedRows {
		ackedRows[i].RowNumber = int64(i + 2)
	}
	check, err := importRows(ctx, client, "check-after-kill", ackedRows, 5000)
	if err != nil {
		t.Fatal(err)
	}
	var created int64
	for _, a := range acked {
		created += a.GetSummary().GetCreated()
	}
	if s := check.GetSummary(); s.GetUnchanged() != created || s.GetCreated() != 0 || s.GetUpdated() != 0 {
		t.Fatalf("re-import after kill: %v; want %d unchanged, nothing created or updated", s, created)
	}

	// Killed in the middle of a stream: the committed batches stay, a re-send completes it.
	rows := rowsOf(100_000, 130_000)
	stream, err := client.ImportWorkers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for c := 0; c < 12; c++ {
		if err := stream.Send(&sendingv1.ImportWorkersRequest{ImportId: "cut-by-kill", Rows: rows[c*2000 : (c+1)*2000]}); err != nil {
			t.Fatal(err)
		}
	}
	for { // until a batch of the stream is on disk
		gi, err := client.GetImport(ctx, &sendingv1.GetImportRequest{ImportId: "cut-by-kill"})
		if err == nil && gi.GetSummary().GetRowsReceived() > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.Kill()
	cc.Close()

	p = start()
	cc = p.Conn()
	defer cc.Close()
	client = sendingv1.NewRosterServiceClient(cc)
	gi, err := client.GetImport(ctx, &sendingv1.GetImportRequest{ImportId: "cut-by-kill"})
	if err != nil {
		t.Fatal(err)
	}
	if gi.GetComplete() || gi.GetSummary().GetRowsReceived() == 0 {
		t.Fatalf("killed import after restart: %v", gi)
	}
	resp, err := importRows(ctx, client, "cut-by-kill", rows, 2000)
	if err != nil {
		t.Fatal(err)
	}
	if s := resp.GetSummary(); s.GetRowsReceived() != 30000 || s.GetCreated() != 30000-60 || s.GetRejected() != 60 {
		t.Fatalf("completed import: %v", s)
	}
	p.Stop()

	// The real processes' logs (JSON, debug level) have no identity number or phone.
	for _, path := range logs {
		log, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(log) == 0 {
			t.Fatalf("empty log %s", path)
		}
		for _, r := range append(ackedRows, rows...) {
			if strings.Contains(string(log), r.IdNumber) || strings.Contains(string(log), r.Phone) {
				t.Fatalf("the service log %s holds an identity number or phone", path)
			}
		}
	}
}

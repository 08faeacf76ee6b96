package roster

import (
	"context"
	"fmt"
	"testing"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
)

// cloneRows returns a deep copy of rows.
func cloneRows(rows []*sendingv1.WorkerRow) []*sendingv1.WorkerRow {
	out := make([]*sendingv1.WorkerRow, len(rows))
	for i, r := range rows {
		out[i] = proto.Clone(r).(*sendingv1.WorkerRow)
	}
	return out
}

// importState is what a refused stream must leave as it was: the roster and the import.
func importState(t *testing.T, env *rosterEnv, importID string) (map[string]*sendingv1.Worker, *sendingv1.GetImportResponse) {
	t.Helper()
	roster, _ := rosterSnapshot(t, env.db)
	gi, err := env.client.GetImport(context.Background(), &sendingv1.GetImportRequest{ImportId: importID})
	if err != nil {
		t.Fatal(err)
	}
	return roster, gi
}

func sameState(t *testing.T, env *rosterEnv, importID string, roster map[string]*sendingv1.Worker, gi *sendingv1.GetImportResponse) {
	t.Helper()
	after, giAfter := importState(t, env, importID)
	if !proto.Equal(gi, giAfter) {
		t.Fatalf("the import changed: %v\nwas %v", giAfter, gi)
	}
	if len(after) != len(roster) {
		t.Fatalf("the roster has %d workers, had %d", len(after), len(roster))
	}
	for id, w := range roster {
		if !proto.Equal(w, after[id]) {
			t.Fatalf("a worker changed:\n%v\nwas %v", after[id], w)
		}
	}
}

// sendWithoutFinal sends rows under importID and half-closes without a final message: the rows
// are committed and the import stays incomplete (INVALID_ARGUMENT on final).
func sendWithoutFinal(t *testing.T, env *rosterEnv, importID string, rows []*sendingv1.WorkerRow) {
	t.Helper()
	stream, err := env.client.ImportWorkers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for start := 0; start < len(rows); start += 400 {
		if err := stream.Send(&sendingv1.ImportWorkersRequest{ImportId: importID, Rows: rows[start:min(start+400, len(rows))]}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = stream.CloseAndRecv()
	fieldViolation(t, err, "final")
}

// reusedImports are rows sent again under the id of an import of rows (endRows, 2100 rows
// numbered 2..2101) that are not those rows; cut is how many of them the incomplete import has
// on disk (1200), and each changes something among them.
func reusedImports() []struct {
	name         string
	again        func(rows []*sendingv1.WorkerRow) []*sendingv1.WorkerRow
	completeOnly bool
} {
	return []struct {
		name         string
		again        func(rows []*sendingv1.WorkerRow) []*sendingv1.WorkerRow
		completeOnly bool
	}{
		{"one row changed", func(rows []*sendingv1.WorkerRow) []*sendingv1.WorkerRow {
			rows = cloneRows(rows)
			rows[1000].Phone = "13900139000"
			return rows
		}, false},
		{"one row left out", func(rows []*sendingv1.WorkerRow) []*sendingv1.WorkerRow {
			return append(cloneRows(rows[:500]), rows[501:]...)
		}, false},
		{"one row renumbered", func(rows []*sendingv1.WorkerRow) []*sendingv1.WorkerRow {
			rows = cloneRows(rows)
			rows[0].RowNumber = 1 // row 2 sent as row 1
			return rows
		}, false},
		{"sent again from the middle", func(rows []*sendingv1.WorkerRow) []*sendingv1.WorkerRow {
			return rows[600:]
		}, false},
		{"another roster with the same row numbers", func(rows []*sendingv1.WorkerRow) []*sendingv1.WorkerRow {
			other := make([]*sendingv1.WorkerRow, len(rows))
			for i := range other {
				other[i] = genRow(5000 + i)
				other[i].RowNumber = rows[i].GetRowNumber()
			}
			return other
		}, false},
		{"one row added after the last", func(rows []*sendingv1.WorkerRow) []*sendingv1.WorkerRow {
			extra := genRow(9000)
			extra.RowNumber = rows[len(rows)-1].GetRowNumber() + 1
			return append(cloneRows(rows), extra)
		}, true},
	}
}

// TestImportIDReusedWithOtherRowsComplete: a complete import sent again with the same rows gets
// its summary; sent again with other rows under its id (AIP-155 for import ids) it is
// INVALID_ARGUMENT on import_id and nothing changes.
func TestImportIDReusedWithOtherRowsComplete(t *testing.T) {
	t.Parallel()
	rows, _ := endRows()
	env := startRoster(t, nil, "")
	ctx := context.Background()
	first, err := importRows(ctx, env.client, "2026年春季名单.xlsx", rows, 700)
	if err != nil {
		t.Fatal(err)
	}
	roster, gi := importState(t, env, "2026年春季名单.xlsx")
	for _, tt := range reusedImports() {
		t.Run(tt.name, func(t *testing.T) {
			_, err := importRows(ctx, env.client, "2026年春季名单.xlsx", tt.again(rows), 700)
			if d := fieldViolation(t, err, "import_id"); d == "" {
				t.Fatal("no reason")
			}
			sameState(t, env, "2026年春季名单.xlsx", roster, gi)
		})
	}
	again, err := importRows(ctx, env.client, "2026年春季名单.xlsx", rows, 300)
	if err != nil || !proto.Equal(again, first) {
		t.Fatalf("the same rows again: %v, %v; want the first reply %v", again.GetSummary(), err, first.GetSummary())
	}
	sameState(t, env, "2026年春季名单.xlsx", roster, gi)
}

// TestImportIDReusedWithOtherRowsIncomplete: an import cut after 1200 rows, sent again with
// rows that are not those on disk, is INVALID_ARGUMENT on import_id before anything of the
// stream is committed (also the new rows after the cut); sent again with its rows, whole or
// from after the last row on disk, it completes exactly.
func TestImportIDReusedWithOtherRowsIncomplete(t *testing.T) {
	t.Parallel()
	rows, good := endRows()
	for _, resume := range []string{"whole", "after the last row"} {
		t.Run("resumed "+resume, func(t *testing.T) {
			t.Parallel()
			env := startRoster(t, nil, "")
			const id = "cut roster.csv"
			sendWithoutFinal(t, env, id, rows[:1200])
			roster, gi := importState(t, env, id)
			if gi.GetLastRowNumber() != rows[1199].GetRowNumber() || gi.GetComplete() {
				t.Fatalf("after the cut: %v", gi)
			}
			for _, tt := range reusedImports() {
				if tt.completeOnly {
					continue
				}
				_, err := importRows(context.Background(), env.client, id, tt.again(rows), 700)
				if d := fieldViolation(t, err, "import_id"); d == "" {
					t.Fatalf("%s: no reason", tt.name)
				}
				sameState(t, env, id, roster, gi)
			}
			send := rows
			if resume != "whole" {
				send = rows[1200:]
			}
			stream, err := env.client.ImportWorkers(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.Send(&sendingv1.ImportWorkersRequest{ImportId: id, Rows: send, Final: true, TotalRows: int64(len(rows))}); err != nil {
				t.Fatal(err)
			}
			resp, err := stream.CloseAndRecv()
			if err != nil {
				t.Fatal(err)
			}
			checkCompleted(t, env, id, resp, rows, good)
		})
	}
}

// TestImportRecordWithoutDigestNotCompared: an import whose record was written before rows were
// compared (no rows_digest) behaves as before: sent again complete, the stored summary whatever
// the rows; nothing changes.
func TestImportRecordWithoutDigestNotCompared(t *testing.T) {
	t.Parallel()
	rows, _ := endRows()
	env := startRoster(t, nil, "")
	ctx := context.Background()
	first, err := importRows(ctx, env.client, "old", rows, 700)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.db.Update(func(tx *bbolt.Tx) error {
		m, ok, err := imports.Get(tx, []byte("old"))
		if err != nil || !ok || len(m.GetRowsDigest()) != 32 {
			return fmt.Errorf("record %v, %v, %v; want one with a 32-byte digest", m, ok, err)
		}
		m.RowsDigest = nil
		return imports.Put(tx, []byte("old"), m)
	}); err != nil {
		t.Fatal(err)
	}
	roster, gi := importState(t, env, "old")
	changed := reusedImports()[0].again(rows)
	again, err := importRows(ctx, env.client, "old", changed, 700)
	if err != nil || !proto.Equal(again, first) {
		t.Fatalf("an old complete import sent again: %v, %v; want the stored reply", again.GetSummary(), err)
	}
	sameState(t, env, "old", roster, gi)
}

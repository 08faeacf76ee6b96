package coordination

import (
	"fmt"
	"path/filepath"
	"testing"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc/codes"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/coordination/ledger"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
)

// With PROOF_FORM_RANGES a report of two reporters' events, one of them refused, is answered
// with one leaf range per reporter: the request indexes of its events recorded now, in leaf
// order, from where its log ended, to its checkpoint's size; the range's leaves make the signed
// root, and its compact range alone the root of the log before the report. An unknown proof form
// is refused on proof_form.
func TestReportEventsLeafRanges(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, err := ledger.LoadOrCreateKey(filepath.Join(dir, ledger.KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, dir, zaptest.NewLogger(t), Config{LoadDefaultPairings: true, LedgerKey: key}, t0)
	pub, err := h.ledger.GetLedgerPublicKey(ctxT(t), &coordinationv1.GetLedgerPublicKeyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	events := func(call, n int) []*coordinationv1.LedgerEvent {
		var out []*coordinationv1.LedgerEvent
		for i := range n {
			w := fmt.Sprintf("520000-W%010d", call*100+i)
			out = append(out, ev(fmt.Sprintf("dep-%d-%d", call, i), departed, "520000-B1", w, t0),
				ev(fmt.Sprintf("arr-%d-%d", call, i), arrived, "520000-B1", w, t0.Add(30*60e9)))
		}
		return out
	}
	verified := func(resp *coordinationv1.ReportEventsResponse, reporter string) ledgerclient.Checkpoint {
		t.Helper()
		for _, cp := range resp.GetCheckpoints() {
			if cp.GetReporterRegion() == reporter {
				v, err := ledgerclient.VerifyCheckpoint(pub.GetPublicKey(), reporter, cp)
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
		}
		t.Fatalf("no checkpoint of %s", reporter)
		return ledgerclient.Checkpoint{}
	}

	firstResp := h.report(t, events(1, 2)...) // the default: inclusions, no ranges
	if len(firstResp.GetRanges()) != 0 || len(firstResp.GetInclusions()) != 4 {
		t.Fatalf("default proof form: %d ranges, %d inclusions; want 0 and 4", len(firstResp.GetRanges()), len(firstResp.GetInclusions()))
	}
	batch := events(2, 3)
	batch[2].WorkerId = "" // refused: a departure needs its worker
	resp, err := h.ledger.ReportEvents(ctxT(t), &coordinationv1.ReportEventsRequest{Events: batch, ProofForm: coordinationv1.ProofForm_PROOF_FORM_RANGES})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetRefusals()) != 1 || resp.GetRefusals()[0].GetIndex() != 2 || len(resp.GetInclusions()) != 0 {
		t.Fatalf("refusals %v, inclusions %v; want event 2 refused and no inclusion", resp.GetRefusals(), resp.GetInclusions())
	}
	want := map[string]string{"520000": "[0 4]", "440000": "[1 3 5]"}
	if len(resp.GetRanges()) != len(want) {
		t.Fatalf("%d ranges, want %d", len(resp.GetRanges()), len(want))
	}
	for _, r := range resp.GetRanges() {
		reporter := r.GetReporterRegion()
		if got := fmt.Sprint(r.GetIndexes()); got != want[reporter] || r.GetFirstLeafIndex() != 2 || r.GetTreeSize() != 2+int64(len(r.GetIndexes())) {
			t.Errorf("%s: range of %s from leaf %d, tree size %d; want %s from leaf 2", reporter, got, r.GetFirstLeafIndex(), r.GetTreeSize(), want[reporter])
		}
		cp := verified(resp, reporter)
		leaves, err := ledgerclient.RangeLeaves(batch, reporter, r)
		if err != nil {
			t.Fatal(err)
		}
		if err := ledgerclient.VerifyRange(cp, r, leaves); err != nil {
			t.Errorf("%s: %v", reporter, err)
		}
		before, _, err := ledgerclient.RangeRoots(r, leaves)
		if err != nil {
			t.Fatal(err)
		}
		if old := verified(firstResp, reporter); old.Size != 2 || string(before) != string(old.Root) {
			t.Errorf("%s: the compact range before the report is not the log of the first report", reporter)
		}
		// The leaves in another order, or another event, do not make the root.
		swapped := append([][]byte{leaves[len(leaves)-1]}, leaves[:len(leaves)-1]...)
		if ledgerclient.VerifyRange(cp, r, swapped) == nil {
			t.Errorf("%s: a range accepted with its leaves in another order", reporter)
		}
	}

	_, err = h.ledger.ReportEvents(ctxT(t), &coordinationv1.ReportEventsRequest{Events: events(3, 1), ProofForm: 9})
	wantCode(t, err, codes.InvalidArgument)
	if f := fieldViolations(t, err); f["proof_form"] == "" {
		t.Errorf("unknown proof form: violations %v, want proof_form", f)
	}
}

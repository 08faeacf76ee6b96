package coordination

import (
	"fmt"
	"slices"
	"testing"

	"go.uber.org/zap/zaptest"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
)

// ListLedgerLeaves pages with page tokens (AIP-158) as with start indexes: following
// next_page_token from the first page lists every leaf once, in order, and the last page has no
// token.
func TestListLedgerLeavesPageToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t.TempDir(), zaptest.NewLogger(t), Config{LoadDefaultPairings: true}, t0)
	defer h.close()
	for i := range 5 {
		h.report(t, ev(fmt.Sprintf("520000-dep-%d", i), departed, "520000-B1", fmt.Sprintf("520000-W%010d", i+1), t0))
	}
	var got []int64
	req := &coordinationv1.ListLedgerLeavesRequest{ReporterRegion: "520000", PageSize: 2}
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("more pages than leaves")
		}
		resp, err := h.ledger.ListLedgerLeaves(ctxT(t), req)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range resp.GetLeaves() {
			got = append(got, l.GetLeafIndex())
		}
		if resp.GetNextPageToken() == "" {
			if resp.GetNextStartIndex() != 0 {
				t.Errorf("last page has next_start_index %d", resp.GetNextStartIndex())
			}
			break
		}
		req.PageToken = resp.GetNextPageToken()
	}
	if !slices.Equal(got, []int64{0, 1, 2, 3, 4}) {
		t.Errorf("leaves %v, want 0..4", got)
	}
}

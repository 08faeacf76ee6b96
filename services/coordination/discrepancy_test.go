package coordination

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
)

// openTwoDiscrepancies reports B1 (520000 -> 440000): w1 and w2 departed, w2 reported a no-show
// and then confirmed arrived (its NO_SHOW discrepancy opens and closes), w3 arrived without a
// departure (UNEXPECTED, open). It returns every discrepancy as ListDiscrepancies has it.
func openTwoDiscrepancies(t *testing.T, h *harness) []*coordinationv1.Discrepancy {
	t.Helper()
	h.report(t,
		ev("d1", departed, "B1", "w1", t0), ev("d2", departed, "B1", "w2", t0),
		ev("n2", noShow, "B1", "w2", t0.Add(time.Hour)), ev("a3", arrived, "B1", "w3", t0.Add(time.Hour)),
	)
	h.report(t, ev("a2", arrived, "B1", "w2", t0.Add(2*time.Hour)))
	resp, err := h.recon.ListDiscrepancies(ctxT(t), &coordinationv1.ListDiscrepanciesRequest{IncludeClosed: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetDiscrepancies()) != 2 {
		t.Fatalf("discrepancies %v, want the closed no-show of w2 and the open unexpected w3", resp.GetDiscrepancies())
	}
	return resp.GetDiscrepancies()
}

// GetDiscrepancy reads a discrepancy by its name as ListDiscrepancies lists it, open or closed;
// with a region it finds only discrepancies involving that province, as ListDiscrepancies with
// that region would.
func TestGetDiscrepancy(t *testing.T) {
	t.Parallel()
	h := startHarness(t, Config{LoadDefaultPairings: true})
	listed := openTwoDiscrepancies(t, h)
	states := map[coordinationv1.DiscrepancyState]bool{}
	for _, want := range listed {
		for _, region := range []string{"", "520000", "440000"} {
			resp, err := h.recon.GetDiscrepancy(ctxT(t), &coordinationv1.GetDiscrepancyRequest{Name: want.GetName(), Region: region})
			if err != nil {
				t.Fatalf("GetDiscrepancy(%s, region %q): %v", want.GetName(), region, err)
			}
			if !proto.Equal(resp.GetDiscrepancy(), want) {
				t.Errorf("GetDiscrepancy(%s) = %v, want %v as listed", want.GetName(), resp.GetDiscrepancy(), want)
			}
		}
		states[want.GetState()] = true
		_, err := h.recon.GetDiscrepancy(ctxT(t), &coordinationv1.GetDiscrepancyRequest{Name: want.GetName(), Region: "450000"})
		wantCode(t, err, codes.NotFound)
	}
	if !states[coordinationv1.DiscrepancyState_DISCREPANCY_STATE_OPEN] || !states[coordinationv1.DiscrepancyState_DISCREPANCY_STATE_CLOSED] {
		t.Fatalf("states %v, want an open and a closed discrepancy", states)
	}
	_, err := h.recon.GetDiscrepancy(ctxT(t), &coordinationv1.GetDiscrepancyRequest{Name: "discrepancies/99"})
	wantCode(t, err, codes.NotFound)

	for _, tc := range []struct{ name, field string }{
		{"", "name"},
		{"discrepancies/0", "name"},
		{"discrepancies/01", "name"},
		{"discrepancies/-1", "name"},
		{"discrepancies/x", "name"},
		{"1", "name"},
		{"batches/1", "name"},
	} {
		_, err := h.recon.GetDiscrepancy(ctxT(t), &coordinationv1.GetDiscrepancyRequest{Name: tc.name})
		if _, ok := fieldViolations(t, err)[tc.field]; !ok {
			t.Errorf("GetDiscrepancy(%q): %v, want a violation on %s", tc.name, err, tc.field)
		}
	}
	_, err = h.recon.GetDiscrepancy(ctxT(t), &coordinationv1.GetDiscrepancyRequest{Name: "discrepancies/1", Region: "520100"})
	if _, ok := fieldViolations(t, err)["region"]; !ok {
		t.Errorf("GetDiscrepancy with a prefecture as region: %v", err)
	}
}

// A file of schema version 3 has no index of discrepancy names: opening it with version 4
// builds the index from the stored discrepancies, so GetDiscrepancy finds the discrepancies
// opened before the upgrade, and those opened after get the next numbers.
func TestOpenVersion3FileNamesDiscrepancies(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	lg := zapLogger(t)
	h := newHarness(t, dir, lg, Config{LoadDefaultPairings: true}, t0)
	before := openTwoDiscrepancies(t, h)
	h.close()

	// Write the file back the way version 3 left it: no discrepancyNames bucket.
	asVersion(t, dir, 3, "discrepancyNames")

	h = newHarness(t, dir, lg, Config{LoadDefaultPairings: true}, t0)
	t.Cleanup(h.close)
	for _, want := range before {
		resp, err := h.recon.GetDiscrepancy(ctxT(t), &coordinationv1.GetDiscrepancyRequest{Name: want.GetName()})
		if err != nil {
			t.Fatalf("GetDiscrepancy(%s) after the upgrade: %v", want.GetName(), err)
		}
		if !proto.Equal(resp.GetDiscrepancy(), want) {
			t.Errorf("GetDiscrepancy(%s) after the upgrade = %v, want %v", want.GetName(), resp.GetDiscrepancy(), want)
		}
	}
	// A new discrepancy after the upgrade (w4 arrived without departing) is named and found.
	h.report(t, ev("a4", arrived, "B1", "w4", t0.Add(3*time.Hour)))
	list, err := h.recon.ListDiscrepancies(ctxT(t), &coordinationv1.ListDiscrepanciesRequest{IncludeClosed: true})
	if err != nil {
		t.Fatal(err)
	}
	var added *coordinationv1.Discrepancy
	for _, d := range list.GetDiscrepancies() {
		if d.GetWorkerId() == "w4" {
			added = d
		}
	}
	if added == nil || added.GetName() != "discrepancies/3" {
		t.Fatalf("discrepancies after the upgrade %v, want w4's as discrepancies/3", list.GetDiscrepancies())
	}
	resp, err := h.recon.GetDiscrepancy(ctxT(t), &coordinationv1.GetDiscrepancyRequest{Name: added.GetName()})
	if err != nil || !proto.Equal(resp.GetDiscrepancy(), added) {
		t.Fatalf("GetDiscrepancy(%s) = %v, %v; want %v", added.GetName(), resp.GetDiscrepancy(), err, added)
	}
}

package coordination

import (
	"encoding/base64"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	coordinationv1 "github.com/eastwest/labourlink/proto/labour/coordination/v1"
)

// Every List refuses a page token it did not issue (garbage, or a token of another List) with
// INVALID_ARGUMENT and a field violation on page_token, instead of reading it as a position.
func TestListsRefuseGarbagePageTokens(t *testing.T) {
	h := startHarness(t, Config{LoadDefaultPairings: true})
	h.report(t, ev("520000:departed:B1:w1", departed, "B1", "w1", t0), ev("520000:departed:B1:w2", departed, "B1", "w2", t0))
	// A real token of ListEvents, to hand to the other Lists.
	page, err := h.ledger.ListEvents(ctxT(t), &coordinationv1.ListEventsRequest{PageSize: 1})
	if err != nil || page.GetNextPageToken() == "" {
		t.Fatalf("ListEvents: %v, %v", page, err)
	}
	eventsToken := page.GetNextPageToken()
	b64 := base64.RawURLEncoding.EncodeToString
	lists := map[string]func(tok string) error{
		"ListEvents": func(tok string) error {
			_, err := h.ledger.ListEvents(ctxT(t), &coordinationv1.ListEventsRequest{PageToken: tok})
			return err
		},
		"ListBatchReconciliations": func(tok string) error {
			_, err := h.recon.ListBatchReconciliations(ctxT(t), &coordinationv1.ListBatchReconciliationsRequest{PageToken: tok})
			return err
		},
		"ListDiscrepancies": func(tok string) error {
			_, err := h.recon.ListDiscrepancies(ctxT(t), &coordinationv1.ListDiscrepanciesRequest{PageToken: tok})
			return err
		},
		"ListRegions": func(tok string) error {
			_, err := h.registry.ListRegions(ctxT(t), &coordinationv1.ListRegionsRequest{PageToken: tok})
			return err
		},
		"ListPairings": func(tok string) error {
			_, err := h.registry.ListPairings(ctxT(t), &coordinationv1.ListPairingsRequest{PageToken: tok})
			return err
		},
	}
	garbage := map[string][]string{
		"ListEvents":               {"garbage", "!!!", b64([]byte("B1"))},
		"ListBatchReconciliations": {"!!!", eventsToken, b64([]byte("a b"))},
		"ListDiscrepancies":        {"garbage", "!!!", eventsToken, b64([]byte("B1\x00w1"))},
		"ListRegions":              {"garbage", "!!!", eventsToken, b64([]byte("52000"))},
		"ListPairings":             {"garbage", "!!!", eventsToken, b64([]byte("440000520000"))},
	}
	for name, call := range lists {
		for _, tok := range garbage[name] {
			t.Run(name+"/"+tok, func(t *testing.T) {
				err := call(tok)
				if status.Code(err) != codes.InvalidArgument {
					t.Fatalf("error %v, want INVALID_ARGUMENT", err)
				}
				if v := fieldViolations(t, err); v["page_token"] == "" {
					t.Fatalf("violations %v, want one on page_token", v)
				}
			})
		}
	}
	// A discrepancies token of one batch is not one of another batch's listing, nor of the
	// listing of every batch.
	tok := discrepanciesListing(&coordinationv1.ListDiscrepanciesRequest{BatchId: "B1"}).Token(discrepancyKey("B1", "w1", 1))
	if _, err := h.recon.ListDiscrepancies(ctxT(t), &coordinationv1.ListDiscrepanciesRequest{PageToken: tok, BatchId: "B1"}); err != nil {
		t.Errorf("a well-formed token of batch B1: %v", err)
	}
	_, err = h.recon.ListDiscrepancies(ctxT(t), &coordinationv1.ListDiscrepanciesRequest{PageToken: tok, BatchId: "B2"})
	if v := fieldViolations(t, err); v["page_token"] == "" {
		t.Errorf("token of batch B1 for batch B2: violations %v, want one on page_token", v)
	}
	_, err = h.recon.ListDiscrepancies(ctxT(t), &coordinationv1.ListDiscrepanciesRequest{PageToken: tok})
	if v := fieldViolations(t, err); v["page_token"] == "" {
		t.Errorf("token of batch B1 without the batch filter: violations %v, want one on page_token", v)
	}
	// A ListEvents token is bound to its filters too.
	_, err = h.ledger.ListEvents(ctxT(t), &coordinationv1.ListEventsRequest{PageToken: eventsToken, WorkerId: "w1"})
	if v := fieldViolations(t, err); v["page_token"] == "" {
		t.Errorf("ListEvents token with another worker_id: violations %v, want one on page_token", v)
	}
	// Real tokens still page.
	next, err := h.ledger.ListEvents(ctxT(t), &coordinationv1.ListEventsRequest{PageSize: 1, PageToken: eventsToken})
	if err != nil || len(next.GetEvents()) != 1 {
		t.Fatalf("second page: %v, %v", next, err)
	}
}

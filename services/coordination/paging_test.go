package coordination

import (
	"encoding/base64"
	"fmt"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
)

// Every List refuses a page token it did not issue (garbage, or a token of another List) with
// INVALID_ARGUMENT and a field violation on page_token, instead of reading it as a position.
func TestListsRefuseGarbagePageTokens(t *testing.T) {
	t.Parallel()
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
		"ListPairingSummaries": func(tok string) error {
			_, err := h.recon.ListPairingSummaries(ctxT(t), &coordinationv1.ListPairingSummariesRequest{PageToken: tok})
			return err
		},
		"ListAssessments": func(tok string) error {
			_, err := h.assess.ListAssessments(ctxT(t), &coordinationv1.ListAssessmentsRequest{Year: 2025, PageToken: tok})
			return err
		},
	}
	garbage := map[string][]string{
		"ListEvents":               {"garbage", "!!!", b64([]byte("B1"))},
		"ListBatchReconciliations": {"!!!", eventsToken, b64([]byte("a b"))},
		"ListDiscrepancies":        {"garbage", "!!!", eventsToken, b64([]byte("B1\x00w1"))},
		"ListRegions":              {"garbage", "!!!", eventsToken, b64([]byte("52000"))},
		"ListPairings":             {"garbage", "!!!", eventsToken, b64([]byte("440000520000"))},
		"ListPairingSummaries":     {"garbage", "!!!", eventsToken, b64([]byte("44000052000x"))},
		"ListAssessments":          {"garbage", "!!!", eventsToken, b64([]byte("52000"))},
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
	// (Two arrivals without departure give batch B1 two discrepancies, so that a page of one has a
	// token; the token's key shape is checked in the ledger package, TestListingTokens.)
	h.report(t, ev("440000:arrived:B1:w3", arrived, "B1", "w3", t0), ev("440000:arrived:B1:w4", arrived, "B1", "w4", t0))
	first, err := h.recon.ListDiscrepancies(ctxT(t), &coordinationv1.ListDiscrepanciesRequest{BatchId: "B1", PageSize: 1})
	if err != nil || first.GetNextPageToken() == "" {
		t.Fatalf("ListDiscrepancies of B1: %v, %v", first, err)
	}
	tok := first.GetNextPageToken()
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
	_, err = h.ledger.ListEvents(ctxT(t), &coordinationv1.ListEventsRequest{PageToken: eventsToken, OccurTimeFrom: timestamppb.New(t0)})
	if v := fieldViolations(t, err); v["page_token"] == "" {
		t.Errorf("ListEvents token with a time range: violations %v, want one on page_token", v)
	}
	// Real tokens still page.
	next, err := h.ledger.ListEvents(ctxT(t), &coordinationv1.ListEventsRequest{PageSize: 1, PageToken: eventsToken})
	if err != nil || len(next.GetEvents()) != 1 {
		t.Fatalf("second page: %v, %v", next, err)
	}
}

// Every List with a page token binds it to the request's filters (AIP-158): a token used with
// other filters is refused with INVALID_ARGUMENT on page_token, and with the same filters it
// pages on.
func TestPageTokensBoundToFilters(t *testing.T) {
	t.Parallel()
	h := startHarness(t, Config{LoadDefaultPairings: true})
	for _, r := range []*coordinationv1.Region{
		{Code: "520000", Role: sendingRole, Endpoint: "h:1"},
		{Code: "450000", Role: sendingRole, Endpoint: "h:2"},
		{Code: "440000", Role: receivingRole, Endpoint: "h:3"},
	} {
		if _, err := h.registry.RegisterRegion(ctxT(t), &coordinationv1.RegisterRegionRequest{Region: r}); err != nil {
			t.Fatal(err)
		}
	}
	h.report(t, ev("520000:departed:B1:w1", departed, "B1", "w1", t0), ev("520000:departed:B2:w2", departed, "B2", "w2", t0))
	tests := []struct {
		name string
		// list calls the List with the filters of the first page (same) or other ones, and
		// returns the number of items and the next page token.
		list func(tok string, same bool) (int, string, error)
	}{
		{"ListRegions", func(tok string, same bool) (int, string, error) {
			role := sendingRole
			if !same {
				role = receivingRole
			}
			resp, err := h.registry.ListRegions(ctxT(t), &coordinationv1.ListRegionsRequest{Role: role, PageSize: 1, PageToken: tok})
			return len(resp.GetRegions()), resp.GetNextPageToken(), err
		}},
		{"ListPairings", func(tok string, same bool) (int, string, error) {
			region := "440000"
			if !same {
				region = "520000"
			}
			resp, err := h.registry.ListPairings(ctxT(t), &coordinationv1.ListPairingsRequest{Region: region, PageSize: 1, PageToken: tok})
			return len(resp.GetPairings()), resp.GetNextPageToken(), err
		}},
		{"ListBatchReconciliations", func(tok string, same bool) (int, string, error) {
			region := "520000"
			if !same {
				region = "450000"
			}
			resp, err := h.recon.ListBatchReconciliations(ctxT(t), &coordinationv1.ListBatchReconciliationsRequest{SendingRegion: region, PageSize: 1, PageToken: tok})
			return len(resp.GetReconciliations()), resp.GetNextPageToken(), err
		}},
		{"ListEvents", func(tok string, same bool) (int, string, error) {
			kind := departed
			if !same {
				kind = arrived
			}
			resp, err := h.ledger.ListEvents(ctxT(t), &coordinationv1.ListEventsRequest{Kind: kind, PageSize: 1, PageToken: tok})
			return len(resp.GetEvents()), resp.GetNextPageToken(), err
		}},
		{"ListDiscrepancies", func(tok string, same bool) (int, string, error) {
			resp, err := h.recon.ListDiscrepancies(ctxT(t), &coordinationv1.ListDiscrepanciesRequest{IncludeClosed: same, PageSize: 1, PageToken: tok})
			return len(resp.GetDiscrepancies()), resp.GetNextPageToken(), err
		}},
		{"ListPairingSummaries", func(tok string, same bool) (int, string, error) {
			req := &coordinationv1.ListPairingSummariesRequest{PeriodStart: &commonv1.Date{Year: 2020, Month: 1, Day: 1}, PageSize: 1, PageToken: tok}
			if !same {
				req.PeriodStart.Year = 2021
			}
			resp, err := h.recon.ListPairingSummaries(ctxT(t), req)
			return len(resp.GetSummaries()), resp.GetNextPageToken(), err
		}},
		{"ListAssessments", func(tok string, same bool) (int, string, error) {
			year := int32(2025)
			if !same {
				year = 2024
			}
			resp, err := h.assess.ListAssessments(ctxT(t), &coordinationv1.ListAssessmentsRequest{Year: year, PageSize: 1, PageToken: tok})
			return len(resp.GetAssessments()), resp.GetNextPageToken(), err
		}},
	}
	// Two discrepancies (arrivals without departure) for ListDiscrepancies.
	h.report(t, ev("440000:arrived:B1:w3", arrived, "B1", "w3", t0), ev("440000:arrived:B2:w4", arrived, "B2", "w4", t0))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, tok, err := tt.list("", true)
			if err != nil || n != 1 || tok == "" {
				t.Fatalf("first page: %d items, token %q, %v", n, tok, err)
			}
			_, _, err = tt.list(tok, false)
			if v := fieldViolations(t, err); v["page_token"] == "" {
				t.Fatalf("token with other filters: violations %v, want one on page_token", v)
			}
			if n, _, err := tt.list(tok, true); err != nil || n != 1 {
				t.Fatalf("second page with the same filters: %d items, %v", n, err)
			}
		})
	}
}

// ListPairingSummaries and ListAssessments page: the pages of any size join up into the whole
// list, in order, each item once.
func TestSummariesAndAssessmentsPagesJoinUp(t *testing.T) {
	t.Parallel()
	h := startHarness(t, Config{LoadDefaultPairings: true})
	h.report(t, ev("520000:departed:B1:w1", departed, "B1", "w1", t0))
	summaries := func(size int32) (names []string, pages int) {
		req := &coordinationv1.ListPairingSummariesRequest{Region: "", PageSize: size}
		for {
			resp, err := h.recon.ListPairingSummaries(ctxT(t), req)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, s := range resp.GetSummaries() {
				names = append(names, fmt.Sprintf("%s-%s:%d", s.GetReceivingRegion(), s.GetSendingRegion(), s.GetDeparted()))
			}
			if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
				return names, pages
			}
		}
	}
	assessments := func(size int32) (names []string, pages int) {
		req := &coordinationv1.ListAssessmentsRequest{Year: 2025, PageSize: size}
		for {
			resp, err := h.assess.ListAssessments(ctxT(t), req)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, a := range resp.GetAssessments() {
				names = append(names, fmt.Sprintf("%s:%d", a.GetRegion(), a.GetNumerator()))
			}
			if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
				return names, pages
			}
		}
	}
	for name, list := range map[string]func(int32) ([]string, int){"summaries": summaries, "assessments": assessments} {
		all, pages := list(1000)
		if len(all) < 3 || pages != 1 {
			t.Fatalf("%s: %d in %d pages, want at least 3 in one page", name, len(all), pages)
		}
		if !slices.IsSorted(all) {
			t.Errorf("%s out of order: %v", name, all)
		}
		for _, size := range []int32{1, 2, int32(len(all)) - 1, int32(len(all))} {
			got, pages := list(size)
			if !slices.Equal(got, all) {
				t.Errorf("%s in pages of %d: %v, want %v", name, size, got, all)
			}
			if want := (len(all) + int(size) - 1) / int(size); pages != want {
				t.Errorf("%s in pages of %d: %d pages, want %d", name, size, pages, want)
			}
		}
	}
}

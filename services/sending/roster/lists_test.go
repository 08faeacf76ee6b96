package roster

import (
	"context"
	"testing"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
)

// The roster's Lists refuse a page token issued for another import or other filters, with one
// violation on page_token (the other refusals: sending.TestSendingListsRefuseBadTokensAndFilters).
func TestRosterListsRefuseOtherTokens(t *testing.T) {
	t.Parallel()
	env := startRoster(t, nil, "")
	ctx := context.Background()
	tests := []struct {
		name  string
		call  func(context.Context) error
		field string
	}{
		{"import rejections token of another import", func(ctx context.Context) error {
			tok := rejectionsListing("i0").Token(make([]byte, rejectionCursorLen))
			_, err := env.client.ListImportRejections(ctx, &sendingv1.ListImportRejectionsRequest{ImportId: "i1", PageToken: tok})
			return err
		}, "page_token"},
		{"workers token of other filters", func(ctx context.Context) error {
			tok := workersListing(&sendingv1.ListWorkersRequest{HomeCounty: "520102"}).Token([]byte("520000-AAAAAAAAAAAAAAAA"))
			_, err := env.client.ListWorkers(ctx, &sendingv1.ListWorkersRequest{PageToken: tok})
			return err
		}, "page_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fieldViolations(t, tt.call(ctx))
			if _, ok := got[tt.field]; !ok || len(got) != 1 {
				t.Fatalf("violations %v, want one on %s", got, tt.field)
			}
		})
	}
}

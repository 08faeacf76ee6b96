package sending

import (
	"context"
	"fmt"
	"testing"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
)

// Every List of the sending service refuses a page token it did not issue, with a violation on
// page_token, and filters that name nothing (an undefined enum value, a region of the wrong
// kind).
func TestSendingListsRefuseBadTokensAndFilters(t *testing.T) {
	t.Parallel()
	n := startSending(t, "", fastConfig("127.0.0.1:1"), false)
	ctx := testCtx(t)
	tests := []struct {
		name  string
		call  func(context.Context) error
		field string
	}{
		{"workers token", func(ctx context.Context) error {
			_, err := n.roster.ListWorkers(ctx, &sendingv1.ListWorkersRequest{PageToken: "garbage"})
			return err
		}, "page_token"},
		{"workers status", func(ctx context.Context) error {
			_, err := n.roster.ListWorkers(ctx, &sendingv1.ListWorkersRequest{Status: 77})
			return err
		}, "status"},
		{"workers county of another province", func(ctx context.Context) error {
			_, err := n.roster.ListWorkers(ctx, &sendingv1.ListWorkersRequest{HomeCounty: "110101"})
			return err
		}, "home_county"},
		{"import rejections token", func(ctx context.Context) error {
			_, err := n.roster.ListImportRejections(ctx, &sendingv1.ListImportRejectionsRequest{ImportId: "i1", PageToken: "garbage"})
			return err
		}, "page_token"},
		// Tokens of other filters and other imports: roster.TestRosterListsRefuseOtherTokens.
		{"runs token", func(ctx context.Context) error {
			_, err := n.matching.ListMatchRuns(ctx, &sendingv1.ListMatchRunsRequest{PageToken: "garbage"})
			return err
		}, "page_token"},
		{"demand token", func(ctx context.Context) error {
			_, err := n.matching.ListDemand(ctx, &sendingv1.ListDemandRequest{PageToken: "garbage"})
			return err
		}, "page_token"},
		{"proposals state", func(ctx context.Context) error {
			_, err := n.matching.ListProposals(ctx, &sendingv1.ListProposalsRequest{State: 99})
			return err
		}, "state"},
		{"batches token", func(ctx context.Context) error {
			_, err := n.transport.ListBatches(ctx, &sendingv1.ListBatchesRequest{PageToken: "garbage"})
			return err
		}, "page_token"},
		{"batches state", func(ctx context.Context) error {
			_, err := n.transport.ListBatches(ctx, &sendingv1.ListBatchesRequest{State: 99})
			return err
		}, "state"},
		{"batches region", func(ctx context.Context) error {
			_, err := n.transport.ListBatches(ctx, &sendingv1.ListBatchesRequest{ReceivingRegion: "440300"})
			return err
		}, "receiving_region"},
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

// CreateBatch checks its manifest against the seats it will use (the mode's default when seats
// is 0) with its other arguments, before the request id and the state: more workers than a bus
// has seats is batch.manifest, even with a request id used before.
func TestCreateBatchArgumentsBeforeRequestID(t *testing.T) {
	t.Parallel()
	n := startSending(t, "", fastConfig("127.0.0.1:1"), false)
	ctx := testCtx(t)
	// An escort's mobile is a phone the transport requests carry on purpose.
	if _, err := n.transport.PlanBatches(ctx, &sendingv1.PlanBatchesRequest{RequestId: "used", EscortName: "李 建国", EscortContact: "13912345678"}); err != nil {
		t.Fatal(err)
	}
	var manifest []*sendingv1.ManifestEntry
	for i := 0; i <= DefaultSeats.Bus; i++ {
		manifest = append(manifest, &sendingv1.ManifestEntry{WorkerId: fmt.Sprintf("520000-AAAAAAAAAAAA%c%cAA", 'A'+i/26, 'A'+i%26)})
	}
	_, err := n.transport.CreateBatch(ctx, &sendingv1.CreateBatchRequest{RequestId: "used", Batch: &sendingv1.Batch{Manifest: manifest}})
	got := fieldViolations(t, err)
	if _, ok := got["batch.manifest"]; !ok || len(got) != 1 {
		t.Fatalf("violations %v, want one on batch.manifest", got)
	}
}

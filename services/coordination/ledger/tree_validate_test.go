package ledger

import (
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/apierror"
)

// The verifiable ledger's requests are checked at the edge: each bad field is INVALID_ARGUMENT
// naming the field, and a good request passes.
func TestValidateTreeRequests(t *testing.T) {
	t.Parallel()
	x := &LedgerServer{l: &Ledger{cfg: Config{Regions: regions.Default()}}}
	tests := []struct {
		name   string
		req    proto.Message
		fields []string // nil: valid
	}{
		{"checkpoint", &coordinationv1.GetLedgerCheckpointRequest{ReporterRegion: "520000"}, nil},
		{"checkpoint without reporter", &coordinationv1.GetLedgerCheckpointRequest{}, []string{"reporter_region"}},
		{"checkpoint of a prefecture", &coordinationv1.GetLedgerCheckpointRequest{ReporterRegion: "520100"}, []string{"reporter_region"}},
		{"inclusion by index", &coordinationv1.GetInclusionProofRequest{ReporterRegion: "520000", LeafIndex: 3, TreeSize: 4}, nil},
		{"inclusion by event", &coordinationv1.GetInclusionProofRequest{ReporterRegion: "520000", EventId: "520000:departed:B1:w1"}, nil},
		{"inclusion negative index", &coordinationv1.GetInclusionProofRequest{ReporterRegion: "520000", LeafIndex: -1}, []string{"leaf_index"}},
		{"inclusion index and event", &coordinationv1.GetInclusionProofRequest{ReporterRegion: "520000", LeafIndex: 2, EventId: "e1"}, []string{"leaf_index"}},
		{"inclusion size not above index", &coordinationv1.GetInclusionProofRequest{ReporterRegion: "520000", LeafIndex: 4, TreeSize: 4}, []string{"tree_size"}},
		{"inclusion negative size", &coordinationv1.GetInclusionProofRequest{ReporterRegion: "520000", TreeSize: -1}, []string{"tree_size"}},
		{"consistency", &coordinationv1.GetConsistencyProofRequest{ReporterRegion: "440000", FromSize: 1, ToSize: 1}, nil},
		{"consistency from 0", &coordinationv1.GetConsistencyProofRequest{ReporterRegion: "440000", ToSize: 3}, []string{"from_size"}},
		{"consistency backwards", &coordinationv1.GetConsistencyProofRequest{ReporterRegion: "440000", FromSize: 3, ToSize: 2}, []string{"to_size"}},
		{"leaves", &coordinationv1.ListLedgerLeavesRequest{ReporterRegion: "440000", StartIndex: 5, PageSize: 10}, nil},
		{"leaves negative start and size", &coordinationv1.ListLedgerLeavesRequest{ReporterRegion: "440000", StartIndex: -1, PageSize: -1}, []string{"page_size", "start_index"}},
		{"leaves with a garbage token", &coordinationv1.ListLedgerLeavesRequest{ReporterRegion: "440000", PageToken: "nope"}, []string{"page_token"}},
		{"leaves with another reporter's token", &coordinationv1.ListLedgerLeavesRequest{ReporterRegion: "440000", PageToken: leavesListing("520000").Token(make([]byte, 8))}, []string{"page_token"}},
		{"leaves with token and start", &coordinationv1.ListLedgerLeavesRequest{ReporterRegion: "440000", StartIndex: 2, PageToken: leavesListing("440000").Token(make([]byte, 8))}, []string{"start_index"}},
		{"leaves without reporter", &coordinationv1.ListLedgerLeavesRequest{}, []string{"reporter_region"}},
		{"public key", &coordinationv1.GetLedgerPublicKeyRequest{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := x.ValidateRequest("", tc.req)
			if tc.fields == nil {
				if err != nil {
					t.Fatalf("valid request refused: %v", err)
				}
				return
			}
			st := apierror.Status(err)
			if st.Code() != codes.InvalidArgument {
				t.Fatalf("got %v, want InvalidArgument", err)
			}
			_, fv := apierror.DetailsOf(st)
			var got []string
			for _, f := range fv {
				got = append(got, f.Field)
			}
			slices.Sort(got)
			got = slices.Compact(got)
			if !slices.Equal(got, tc.fields) {
				t.Errorf("fields %v, want %v (%v)", got, tc.fields, fv)
			}
		})
	}
}

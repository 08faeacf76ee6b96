package federation_test

import (
	"context"
	"strings"
	"testing"
	"time"

	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/eastwest/labourlink/services/platform/peers"
)

// describeComments asks the service at addr, by server reflection as grpcurl does, for the file
// defining symbol and returns the doc comments it carries.
func describeComments(t *testing.T, addr, symbol string) string {
	t.Helper()
	cc, err := peers.Dial(addr, peers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := reflectionv1.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionv1.ServerReflectionRequest{
		MessageRequest: &reflectionv1.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: symbol},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var comments strings.Builder
	for _, raw := range resp.GetFileDescriptorResponse().GetFileDescriptorProto() {
		var fd descriptorpb.FileDescriptorProto
		if err := proto.Unmarshal(raw, &fd); err != nil {
			t.Fatal(err)
		}
		for _, loc := range fd.GetSourceCodeInfo().GetLocation() {
			comments.WriteString(loc.GetLeadingComments())
		}
	}
	return comments.String()
}

// TestReflectionServesDocComments: operators read the API's documentation through
// `grpcurl describe`, which needs the doc comments in the descriptors served by reflection.
func TestReflectionServesDocComments(t *testing.T) {
	t.Parallel()
	d := startDev(t)
	for _, tc := range []struct{ kind, symbol, want string }{
		{"sending", "labourlink.sending.v1.RosterService", "The worker roster of this sending province"},
		{"receiving", "labourlink.receiving.v1.DemandFeedService", "The demand change feed"},
		{"coordination", "labourlink.coordination.v1.LedgerService", "The ledger: facts reported by both sides"},
	} {
		if got := describeComments(t, d.addrs[tc.kind], tc.symbol); !strings.Contains(got, tc.want) {
			t.Errorf("%s: reflection for %s carries no doc comment %q", tc.kind, tc.symbol, tc.want)
		}
	}
}

package sending

import (
	"context"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
)

// TestFlowRequestsValidated: bad matching and transport requests are INVALID_ARGUMENT with the
// offending field named in the BadRequest details, and change nothing.
func TestFlowRequestsValidated(t *testing.T) {
	t.Parallel()
	n := startSending(t, "", fastConfig("127.0.0.1:1"), false)
	ctx := testCtx(t)
	goodWorker := "520000-K3Q7ZC2M4XJ5R6TA"
	for _, tc := range []struct {
		name  string
		call  func(context.Context) error
		field string
	}{
		{"run name", func(ctx context.Context) error {
			_, err := n.matching.GetMatchRun(ctx, &sendingv1.GetMatchRunRequest{Name: "runs/1"})
			return err
		}, "name"},
		{"runs page size", func(ctx context.Context) error {
			_, err := n.matching.ListMatchRuns(ctx, &sendingv1.ListMatchRunsRequest{PageSize: -1})
			return err
		}, "page_size"},
		{"runs view", func(ctx context.Context) error {
			_, err := n.matching.ListMatchRuns(ctx, &sendingv1.ListMatchRunsRequest{View: sendingv1.MatchRunView(3)})
			return err
		}, "view"},
		{"demand region", func(ctx context.Context) error {
			_, err := n.matching.ListDemand(ctx, &sendingv1.ListDemandRequest{ReceivingRegion: "440300"})
			return err
		}, "receiving_region"},
		{"demand of this province", func(ctx context.Context) error {
			_, err := n.matching.ListDemand(ctx, &sendingv1.ListDemandRequest{ReceivingRegion: rosterRegion})
			return err
		}, "receiving_region"},
		{"proposals vacancy", func(ctx context.Context) error {
			_, err := n.matching.ListProposals(ctx, &sendingv1.ListProposalsRequest{Vacancy: "440000-V0000000001"})
			return err
		}, "vacancy"},
		{"proposals token", func(ctx context.Context) error {
			_, err := n.matching.ListProposals(ctx, &sendingv1.ListProposalsRequest{PageToken: "nonsense"})
			return err
		}, "page_token"},
		{"plan seats", func(ctx context.Context) error {
			_, err := n.transport.PlanBatches(ctx, &sendingv1.PlanBatchesRequest{Seats: new(int32(5000))})
			return err
		}, "seats"},
		{"plan seats zero", func(ctx context.Context) error { // unset is the default; a set 0 is wrong
			_, err := n.transport.PlanBatches(ctx, &sendingv1.PlanBatchesRequest{Seats: new(int32(0))})
			return err
		}, "seats"},
		{"create batch seats zero", func(ctx context.Context) error {
			_, err := n.transport.CreateBatch(ctx, &sendingv1.CreateBatchRequest{Batch: &sendingv1.Batch{Seats: new(int32(0)), Manifest: []*sendingv1.ManifestEntry{{WorkerId: goodWorker}}}})
			return err
		}, "batch.seats"},
		{"plan start date", func(ctx context.Context) error {
			_, err := n.transport.PlanBatches(ctx, &sendingv1.PlanBatchesRequest{StartDate: cdate(2027, 2, 30)})
			return err
		}, "start_date"},
		{"plan mode", func(ctx context.Context) error {
			_, err := n.transport.PlanBatches(ctx, &sendingv1.PlanBatchesRequest{Mode: commonv1.TransportMode(9)})
			return err
		}, "mode"},
		{"create without batch", func(ctx context.Context) error {
			_, err := n.transport.CreateBatch(ctx, &sendingv1.CreateBatchRequest{})
			return err
		}, "batch"},
		{"create with a worker twice", func(ctx context.Context) error {
			_, err := n.transport.CreateBatch(ctx, &sendingv1.CreateBatchRequest{Batch: &sendingv1.Batch{Manifest: []*sendingv1.ManifestEntry{{WorkerId: goodWorker}, {WorkerId: goodWorker}}}})
			return err
		}, "batch.manifest[1].worker_id"},
		{"create over the seats", func(ctx context.Context) error {
			_, err := n.transport.CreateBatch(ctx, &sendingv1.CreateBatchRequest{Batch: &sendingv1.Batch{Seats: new(int32(1)), Manifest: []*sendingv1.ManifestEntry{{WorkerId: goodWorker}, {WorkerId: "520000-K3Q7ZC2M4XJ5R6TB"}}}})
			return err
		}, "batch.manifest"},
		{"create origin elsewhere", func(ctx context.Context) error {
			_, err := n.transport.CreateBatch(ctx, &sendingv1.CreateBatchRequest{Batch: &sendingv1.Batch{Origin: "440305", Manifest: []*sendingv1.ManifestEntry{{WorkerId: goodWorker}}}})
			return err
		}, "batch.origin"},
		{"depart bad worker id", func(ctx context.Context) error {
			_, err := n.transport.RecordDeparture(ctx, &sendingv1.RecordDepartureRequest{Name: "batches/520000-B00000001", BoardedWorkerIds: []string{"520102199001150010"}})
			return err
		}, "boarded_worker_ids[0]"},
		{"depart in the future", func(ctx context.Context) error {
			_, err := n.transport.RecordDeparture(ctx, &sendingv1.RecordDepartureRequest{Name: "batches/520000-B00000001", ActualDepartureTime: timestamppb.New(fixedClock().AddDate(5, 0, 0))})
			return err
		}, "actual_departure_time"},
		{"cancel name", func(ctx context.Context) error {
			_, err := n.transport.CancelBatch(ctx, &sendingv1.CancelBatchRequest{Name: "520000-B00000001"})
			return err
		}, "name"},
		{"batches state", func(ctx context.Context) error {
			_, err := n.transport.ListBatches(ctx, &sendingv1.ListBatchesRequest{State: sendingv1.BatchState(7)})
			return err
		}, "state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(ctx)
			st, ok := status.FromError(err)
			if !ok || st.Code() != codes.InvalidArgument {
				t.Fatalf("error = %v, want INVALID_ARGUMENT", err)
			}
			for _, d := range st.Details() {
				if br, ok := d.(*errdetails.BadRequest); ok {
					for _, v := range br.GetFieldViolations() {
						if v.GetField() == tc.field {
							return
						}
					}
				}
			}
			t.Fatalf("no violation of field %s in %v", tc.field, err)
		})
	}
}

package ledgerclient

import (
	"context"
	"errors"

	"google.golang.org/grpc"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	ledgerwatchv1 "github.com/eastwest/labourlink/proto/labourlink/ledgerwatch/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
)

// WatchServiceName is the gRPC service name of the LedgerWatchService, for health.
const WatchServiceName = "labourlink.ledgerwatch.v1.LedgerWatchService"

// WatchServer serves the LedgerWatchService of a regional service over its Watch.
type WatchServer struct {
	ledgerwatchv1.UnimplementedLedgerWatchServiceServer
	w *Watch
}

// NewWatchServer returns the LedgerWatchService of w.
func NewWatchServer(w *Watch) *WatchServer { return &WatchServer{w: w} }

// Register registers the LedgerWatchService on gs.
func (x *WatchServer) Register(gs *grpc.Server) {
	ledgerwatchv1.RegisterLedgerWatchServiceServer(gs, x)
}

// ValidateRequest checks a request before its handler runs (both requests are empty).
func (x *WatchServer) ValidateRequest(_ string, req any) error {
	switch req.(type) {
	case *ledgerwatchv1.GetLedgerWatchRequest, *ledgerwatchv1.VerifyLedgerRequest:
		return nil
	}
	return apierror.NotValidated(req)
}

// GetLedgerWatch returns what the service keeps of the ledger and the failures found.
func (x *WatchServer) GetLedgerWatch(ctx context.Context, _ *ledgerwatchv1.GetLedgerWatchRequest) (*ledgerwatchv1.GetLedgerWatchResponse, error) {
	st, err := x.w.State()
	if err != nil {
		return nil, err
	}
	return &ledgerwatchv1.GetLedgerWatchResponse{Watch: st}, nil
}

// VerifyLedger checks the whole history now, streaming progress and then the result.
func (x *WatchServer) VerifyLedger(_ *ledgerwatchv1.VerifyLedgerRequest, stream grpc.ServerStreamingServer[ledgerwatchv1.VerifyLedgerResponse]) error {
	var sendErr error
	err := x.w.VerifyAll(stream.Context(), func(done, total uint64) {
		if sendErr == nil {
			sendErr = stream.Send(&ledgerwatchv1.VerifyLedgerResponse{LeavesChecked: int64(done), TreeSize: int64(total)})
		}
	})
	if err == nil {
		err = sendErr
	}
	if err != nil {
		return watchError(err)
	}
	st, err := x.w.State()
	if err != nil {
		return err
	}
	size := int64(0)
	if cp := st.GetCheckpoint(); cp != nil {
		size = cp.GetTreeSize()
	}
	return stream.Send(&ledgerwatchv1.VerifyLedgerResponse{LeavesChecked: size, TreeSize: size, Result: st})
}

// watchError maps a check's error to the API: no coordination service is FAILED_PRECONDITION, a
// ledger that cannot be reached UNAVAILABLE.
func watchError(err error) error {
	switch {
	case errors.Is(err, ErrNoCoordination):
		return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION, "%s", ErrNoCoordination.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), apierror.IsKnown(err):
		return err
	}
	return apierror.Unavailable("the ledger check could not run: %v", err)
}

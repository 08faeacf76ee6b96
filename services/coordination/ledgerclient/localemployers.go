package ledgerclient

// Delivery of a sending province's local employers (their state after each change) from the
// outbox to the coordination service's DynamicsService.ReportLocalEmployers, for the national
// recovery rate. The coordination service keeps the state of the highest version of each
// employer, so a state delivered again (after a crash) or late changes nothing.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/peers"
)

// LocalEmployersDestination is the outbox destination of local employers' states.
const LocalEmployersDestination = "coordination.localEmployers"

// MaxLocalEmployersPerCall is the most states one ReportLocalEmployers call carries (the
// coordination service's limit).
const MaxLocalEmployersPerCall = 1000

// DeliverLocalEmployers returns an outbox delivery function that reports the entries'
// LocalEmployerState payloads of the province region in ReportLocalEmployers calls of at most
// MaxLocalEmployersPerCall, each with a deadline (d.For(number of states)) and a request id made
// of the entries' ids. A call refused for good is sent again state by state, and a state refused
// then goes to the outbox quarantine with the reason; other errors keep the entries for a retry.
func DeliverLocalEmployers(client coordinationv1.DynamicsServiceClient, region string, d peers.Deadlines) outbox.DeliverFunc {
	return func(ctx context.Context, entries []outbox.Entry) (outbox.Result, error) {
		var res outbox.Result
		states := make([]*coordinationv1.LocalEmployerState, len(entries))
		for i, e := range entries {
			st := &coordinationv1.LocalEmployerState{}
			if err := e.UnmarshalPayload(st); err != nil {
				res.Refuse(i, outbox.Refusal{Code: codes.InvalidArgument, Reason: apierror.Reason(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT),
					Message: fmt.Sprintf("outbox entry %s is not a local employer's state (%s): %v", e.ID, e.Payload.GetTypeUrl(), err)})
				continue
			}
			states[i] = st
		}
		report := func(from, to int) error {
			req := &coordinationv1.ReportLocalEmployersRequest{ReporterRegion: region}
			var ids []string
			for i := from; i < to; i++ {
				if states[i] != nil {
					req.Employers = append(req.Employers, states[i])
					ids = append(ids, entries[i].ID)
				}
			}
			if len(req.Employers) == 0 {
				return nil
			}
			sum := sha256.Sum256([]byte(strings.Join(ids, ",")))
			req.RequestId = "localEmployers-" + hex.EncodeToString(sum[:16])
			callCtx, cancel := d.WithTimeoutFor(ctx, len(req.Employers))
			defer cancel()
			_, err := client.ReportLocalEmployers(callCtx, req)
			return err
		}
		if err := inCalls(entries, MaxLocalEmployersPerCall, &res, report); err != nil {
			return res, fmt.Errorf("report local employers: %w", err)
		}
		return res, nil
	}
}

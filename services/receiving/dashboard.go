package receiving

import (
	"context"
	"net/http"
	"strings"

	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/dashboard"
	"github.com/eastwest/labourlink/services/platform/identity"
)

// Dashboard is this province's own view of the dashboard (services/platform/dashboard): the
// batches announced to it, with the workers confirmed arrived and the no-shows, from its own
// IntakeService in-process (the figures of ListIntakeBatches). The pairing tables,
// discrepancies, assessment and dynamics are the coordination service's (its dashboard with
// ?region=).
func (s *Service) Dashboard() http.Handler {
	return dashboard.HandlerOrLog(dashboard.Config{Self: identity.Receiving(s.cfg.Region), Loader: dashboard.LoaderFunc(s.loadDashboard)}, s.lg)
}

func (s *Service) loadDashboard(ctx context.Context, r dashboard.Request) (*dashboard.Page, error) {
	today := civil.Today(s.cfg.Now())
	t := regions.Default()
	p := &dashboard.Page{Service: "receiving", Region: s.cfg.Region, RegionName: t.Name(s.cfg.Region),
		AsOf: civil.Format(today), Year: int(today.GetYear()), ShowIntake: true}
	req := &receivingv1.ListIntakeBatchesRequest{PageSize: 1000}
	for {
		if err := r.Check(ctx, s.intake, receivingv1.IntakeService_ListIntakeBatches_FullMethodName, req); err != nil {
			return nil, err
		}
		resp, err := s.intake.ListIntakeBatches(ctx, req)
		if err != nil {
			return nil, err
		}
		for _, b := range resp.GetBatches() {
			row := dashboard.IntakeRow{BatchID: b.GetBatchId(), Sending: b.GetSendingRegion(), SendingName: t.Name(b.GetSendingRegion()),
				State: strings.TrimPrefix(b.GetState().String(), "INTAKE_BATCH_STATE_")}
			for _, e := range b.GetEntries() {
				row.Workers++
				if e.GetDeparted() {
					row.Departed++
				}
				switch e.GetOutcome() {
				case receivingv1.ArrivalOutcome_ARRIVAL_OUTCOME_ARRIVED:
					row.Arrived++
				case receivingv1.ArrivalOutcome_ARRIVAL_OUTCOME_NO_SHOW:
					row.NoShow++
				}
			}
			p.Intake = append(p.Intake, row)
		}
		if resp.GetNextPageToken() == "" {
			return p, nil
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

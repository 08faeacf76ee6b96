package sending

import (
	"context"
	"net/http"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/platform/dashboard"
	"github.com/eastwest/labourlink/services/platform/identity"
)

// Dashboard is this province's own view of the dashboard (services/platform/dashboard): the
// employment dynamics of its registered-poor workers over the year and its local employers'
// recovery rate, from its own DynamicsService in-process (the figures of
// GetEmploymentDynamics). The pairing tables, discrepancies and assessment are the
// coordination service's (its dashboard with ?region=).
func (s *Service) Dashboard() http.Handler {
	return dashboard.HandlerOrLog(dashboard.Config{Self: identity.Sending(s.cfg.Region), Loader: dashboard.LoaderFunc(s.loadDashboard)}, s.lg)
}

func (s *Service) loadDashboard(ctx context.Context, r dashboard.Request) (*dashboard.Page, error) {
	today := civil.Today(s.cfg.Now())
	p := &dashboard.Page{Service: "sending", Region: s.cfg.Region, RegionName: s.regions.Name(s.cfg.Region),
		AsOf: civil.Format(today), Year: int(today.GetYear())}
	srv := s.dynamics.Server()
	series, err := dashboard.Series(today, func(asOf *commonv1.Date, last bool) (dashboard.DynamicsPoint, error) {
		req := &sendingv1.GetEmploymentDynamicsRequest{AsOf: asOf}
		if err := r.Check(ctx, srv, sendingv1.DynamicsService_GetEmploymentDynamics_FullMethodName, req); err != nil {
			return dashboard.DynamicsPoint{}, err
		}
		resp, err := srv.GetEmploymentDynamics(ctx, req)
		if err != nil {
			return dashboard.DynamicsPoint{}, err
		}
		if last {
			p.Recovery = dashboard.RecoveryOf(resp.GetRecoveryTotal(), resp.GetRecoveryByKind())
		}
		return dashboard.PointOf(resp.GetAsOf(), resp.GetTotal()), nil
	})
	if err != nil {
		return nil, err
	}
	p.Dynamics = series
	return p, nil
}

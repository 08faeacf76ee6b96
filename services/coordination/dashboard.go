package coordination

import (
	"context"
	"net/http"
	"strings"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/dashboard"
	"github.com/eastwest/labourlink/services/platform/identity"
)

// Dashboard is the national reconciliation dashboard (services/platform/dashboard), or a
// province's part of it with ?region=: pairing summaries of the year, open discrepancies,
// assessments against the baseline, the employment dynamics and the local employers' recovery
// rate, read from this service's own gRPC servers in-process.
func (s *Service) Dashboard() http.Handler {
	return dashboard.HandlerOrLog(dashboard.Config{Self: identity.Coordination(), Loader: dashboard.LoaderFunc(s.loadDashboard)}, s.lg)
}

func (s *Service) loadDashboard(ctx context.Context, r dashboard.Request) (*dashboard.Page, error) {
	now := s.now()
	today := civil.Today(now)
	p := &dashboard.Page{Service: "coordination", Region: r.Region, RegionName: s.regions.Name(r.Region),
		AsOf: civil.Format(today), Year: int(today.GetYear()),
		ShowPairings: true, ShowDiscrepancies: true, ShowAssessments: true}
	rec := s.ledger.ReconciliationServer()

	sumReq := &coordinationv1.ListPairingSummariesRequest{Region: r.Region, PageSize: 1000,
		PeriodStart: &commonv1.Date{Year: today.GetYear(), Month: 1, Day: 1}, PeriodEnd: today}
	for {
		if err := r.Check(ctx, rec, coordinationv1.ReconciliationService_ListPairingSummaries_FullMethodName, sumReq); err != nil {
			return nil, err
		}
		resp, err := rec.ListPairingSummaries(ctx, sumReq)
		if err != nil {
			return nil, err
		}
		for _, x := range resp.GetSummaries() {
			p.Pairings = append(p.Pairings, dashboard.PairingRow{
				Receiving: x.GetReceivingRegion(), ReceivingName: s.regions.Name(x.GetReceivingRegion()),
				Sending: x.GetSendingRegion(), SendingName: s.regions.Name(x.GetSendingRegion()),
				Departed: x.GetDeparted(), Arrived: x.GetArrived(), NoShow: x.GetNoShow(), Onboarded: x.GetOnboarded(),
				LeftJob: x.GetLeftJob(), ReturnedHome: x.GetReturnedHome(), OpenDiscrepancies: x.GetOpenDiscrepancies()})
		}
		if resp.GetNextPageToken() == "" {
			break
		}
		sumReq.PageToken = resp.GetNextPageToken()
	}

	disReq := &coordinationv1.ListDiscrepanciesRequest{Region: r.Region, PageSize: 1000}
	for {
		if err := r.Check(ctx, rec, coordinationv1.ReconciliationService_ListDiscrepancies_FullMethodName, disReq); err != nil {
			return nil, err
		}
		resp, err := rec.ListDiscrepancies(ctx, disReq)
		if err != nil {
			return nil, err
		}
		for _, d := range resp.GetDiscrepancies() {
			p.Discrepancies = append(p.Discrepancies, dashboard.DiscrepancyRow{Name: d.GetName(),
				Kind:     strings.TrimPrefix(d.GetKind().String(), "DISCREPANCY_KIND_"),
				WorkerID: d.GetWorkerId(), BatchID: d.GetBatchId(), Sending: d.GetSendingRegion(), Receiving: d.GetReceivingRegion(),
				Detail: d.GetDetail(), Since: civil.FormatTime(d.GetOpenTime().AsTime())})
		}
		if resp.GetNextPageToken() == "" {
			break
		}
		disReq.PageToken = resp.GetNextPageToken()
	}

	if err := s.loadAssessments(ctx, r, p); err != nil {
		return nil, err
	}

	// A sending province's dynamics are of its workers; a receiving province's, of the
	// workers out at work in it (its by_destination row); the nation's, of all.
	var sendingRegion string
	receiving := r.Region != "" && !isSendingRegion(r.Region)
	if r.Region != "" && !receiving {
		sendingRegion = r.Region
	}
	series, err := dashboard.Series(today, func(asOf *commonv1.Date, last bool) (dashboard.DynamicsPoint, error) {
		req := &coordinationv1.GetNationalEmploymentDynamicsRequest{AsOf: asOf, SendingRegion: sendingRegion}
		if err := r.Check(ctx, s.dynamics, coordinationv1.DynamicsService_GetNationalEmploymentDynamics_FullMethodName, req); err != nil {
			return dashboard.DynamicsPoint{}, err
		}
		resp, err := s.dynamics.GetNationalEmploymentDynamics(ctx, req)
		if err != nil {
			return dashboard.DynamicsPoint{}, err
		}
		row := resp.GetTotal()
		if receiving {
			row = nil
			for _, x := range resp.GetByDestination() {
				if x.GetKey() == r.Region {
					row = x
				}
			}
		}
		if last && !receiving {
			p.Recovery = dashboard.RecoveryOf(resp.GetRecoveryTotal(), resp.GetRecoveryByKind())
		}
		return dashboard.PointOf(resp.GetAsOf(), row), nil
	})
	if err != nil {
		return nil, err
	}
	p.Dynamics = series
	return p, nil
}

// loadAssessments reads the assessments of the year: every province's for the nation
// (ListAssessments), the province's own for a province (GetAssessment).
func (s *Service) loadAssessments(ctx context.Context, r dashboard.Request, p *dashboard.Page) error {
	year := int32(p.Year)
	if r.Region != "" {
		req := &coordinationv1.GetAssessmentRequest{Region: r.Region, Year: year}
		if err := r.Check(ctx, s.assessment, coordinationv1.AssessmentService_GetAssessment_FullMethodName, req); err != nil {
			return err
		}
		resp, err := s.assessment.GetAssessment(ctx, req)
		if err != nil {
			return err
		}
		p.Assessments = append(p.Assessments, assessmentRow(resp.GetAssessment()))
		return nil
	}
	req := &coordinationv1.ListAssessmentsRequest{Year: year, PageSize: 1000}
	for {
		if err := r.Check(ctx, s.assessment, coordinationv1.AssessmentService_ListAssessments_FullMethodName, req); err != nil {
			return err
		}
		resp, err := s.assessment.ListAssessments(ctx, req)
		if err != nil {
			return err
		}
		for _, a := range resp.GetAssessments() {
			p.Assessments = append(p.Assessments, assessmentRow(a))
		}
		if resp.GetNextPageToken() == "" {
			return nil
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

func assessmentRow(a *coordinationv1.Assessment) dashboard.AssessmentRow {
	row := dashboard.AssessmentRow{Region: a.GetRegion(), Name: a.GetDisplayName(),
		Role:           strings.TrimPrefix(a.GetRole().String(), "REGION_ROLE_"),
		Numerator:      a.GetNumerator(),
		BaselineSource: strings.TrimPrefix(a.GetBaselineSource().String(), "BASELINE_SOURCE_"),
		Percentage:     dashboard.Pct(a.Percentage)}
	if a.Denominator != nil {
		d := a.GetDenominator()
		row.Denominator = &d
	}
	return row
}

// isSendingRegion reports whether code is a sending province of the default pairings (the
// dynamics are of sending provinces only).
func isSendingRegion(code string) bool {
	for _, p := range regions.DefaultPairings() {
		if p.Sending == code {
			return true
		}
	}
	return false
}

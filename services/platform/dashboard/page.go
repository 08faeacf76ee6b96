// Package dashboard serves the read-only reconciliation dashboard: one HTML page, rendered on
// the server with html/template and inline SVG charts (no JavaScript, no CDN: every asset is
// embedded), in Simplified Chinese or English. The figures come from a Loader that each service
// implements by calling its own gRPC server implementations in-process, so the page shows the
// numbers the API returns; before each of those calls the Loader asks Request.Allow, which, on a
// TLS request, decides with the authorisation policy of the read RPC (services/platform/authz)
// for the identity of the request's verified client certificate.
package dashboard

import (
	"context"

	"strings"

	"google.golang.org/protobuf/proto"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
)

// Page is what the dashboard shows. A nil section is not shown (the province views of the
// sending and receiving services have only some of them).
type Page struct {
	// Service is the kind of service that serves the page: coordination, sending or receiving.
	Service string
	// Region is the province the page is about (6-digit code); empty for the nation.
	Region string
	// RegionName is the province's name, such as 贵州省.
	RegionName string
	// AsOf is the day of the figures (China time), YYYY-MM-DD.
	AsOf string
	// Year is the assessment year.
	Year int

	Pairings      []PairingRow
	Discrepancies []DiscrepancyRow
	Assessments   []AssessmentRow
	Dynamics      []DynamicsPoint
	Recovery      *Recovery
	Intake        []IntakeRow

	// ShowPairings and the others say which sections the service has, even when empty.
	ShowPairings, ShowDiscrepancies, ShowAssessments, ShowIntake bool
}

// PairingRow is one pairing's counts (coordination ListPairingSummaries).
type PairingRow struct {
	Receiving, ReceivingName, Sending, SendingName string
	Departed, Arrived, NoShow, Onboarded           int64
	LeftJob, ReturnedHome, OpenDiscrepancies       int64
}

// DiscrepancyRow is one open discrepancy (coordination ListDiscrepancies).
type DiscrepancyRow struct {
	Name, Kind, WorkerID, BatchID, Sending, Receiving, Detail string
	// Since is when it opened (China time).
	Since string
}

// AssessmentRow is one province's assessment against its baseline (coordination
// GetAssessment/ListAssessments). Denominator and Percentage are nil without a baseline.
type AssessmentRow struct {
	Region, Name, Role string
	Numerator          int64
	Denominator        *int64
	Percentage         *float64
	BaselineSource     string
}

// DynamicsPoint is the employment dynamics on one day: workers out at work and the same day a
// year before.
type DynamicsPoint struct {
	Date                    string
	OutAtWork, LastYearSame int64
	LastYearTotal           int64
}

// Recovery is the local employers' recovery rate as of the day.
type Recovery struct {
	Resumed, Registered int64
	Percentage          *float64
	ByKind              []RecoveryKind
}

// RecoveryKind is the recovery rate of one kind of local employer.
type RecoveryKind struct {
	Kind                string
	Resumed, Registered int64
	Percentage          *float64
}

// IntakeRow is one announced batch as the receiving service holds it (ListIntakeBatches).
type IntakeRow struct {
	BatchID, Sending, SendingName, State string
	Workers, Departed, Arrived, NoShow   int64
}

// Request is what a Loader is asked for.
type Request struct {
	// Region is the province asked for (?region=, or the caller's own province); empty for the
	// nation.
	Region string
	// Allow decides whether the caller may call method with req; a Loader calls it before
	// each in-process call and returns its error.
	Allow func(ctx context.Context, method string, req proto.Message) error
}

// Loader loads the page's figures.
type Loader interface {
	LoadDashboard(ctx context.Context, r Request) (*Page, error)
}

// LoaderFunc is a function that is a Loader.
type LoaderFunc func(ctx context.Context, r Request) (*Page, error)

// LoadDashboard calls f.
func (f LoaderFunc) LoadDashboard(ctx context.Context, r Request) (*Page, error) { return f(ctx, r) }

// validator is what the services' gRPC servers implement to check a request before its handler
// runs (grpcserver's validation step).
type validator interface {
	ValidateRequest(method string, req any) error
}

// Check prepares an in-process call of method on srv with req as the gRPC server would: it
// validates req with srv's ValidateRequest (when srv has one) and asks Allow.
func (r Request) Check(ctx context.Context, srv any, method string, req proto.Message) error {
	if v, ok := srv.(validator); ok {
		if err := v.ValidateRequest(method, req); err != nil {
			return err
		}
	}
	return r.Allow(ctx, method, req)
}

// Pct copies an optional percentage.
func Pct(p *float64) *float64 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// RecoveryOf is the recovery section from the API's recovery rows (the sending and the
// coordination DynamicsService answer with the same messages).
func RecoveryOf(total *sendingv1.LocalRecovery, byKind []*sendingv1.LocalRecovery) *Recovery {
	rt := total.GetRecoveryRate()
	out := &Recovery{Resumed: rt.GetNumerator(), Registered: rt.GetDenominator(), Percentage: Pct(rt.Percentage)}
	for _, k := range byKind {
		r := k.GetRecoveryRate()
		out.ByKind = append(out.ByKind, RecoveryKind{Kind: strings.TrimPrefix(k.GetKind().String(), "LOCAL_EMPLOYER_KIND_"),
			Resumed: r.GetNumerator(), Registered: r.GetDenominator(), Percentage: Pct(r.Percentage)})
	}
	return out
}

// SeriesDays is how many days apart the points of the dynamics line chart are, and
// SeriesPoints how many there are (the last is today): about a year, month by month.
const (
	SeriesDays   = 30
	SeriesPoints = 13
)

// Series is the dynamics line chart's points up to today: point(asOf) for each day, oldest
// first.
func Series(today *commonv1.Date, point func(asOf *commonv1.Date, last bool) (DynamicsPoint, error)) ([]DynamicsPoint, error) {
	out := make([]DynamicsPoint, 0, SeriesPoints)
	for i := SeriesPoints - 1; i >= 0; i-- {
		pt, err := point(civil.AddDays(today, -i*SeriesDays), i == 0)
		if err != nil {
			return nil, err
		}
		out = append(out, pt)
	}
	return out, nil
}

// PointOf is a chart point from a dynamics row of the API on the day asOf.
func PointOf(asOf *commonv1.Date, row *commonv1.DynamicsRow) DynamicsPoint {
	return DynamicsPoint{Date: civil.Format(asOf), OutAtWork: row.GetOutAtWork(), LastYearSame: row.GetSameDayLastYear(), LastYearTotal: row.GetLastYearTotal()}
}

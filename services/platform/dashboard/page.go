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

	"google.golang.org/protobuf/proto"
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

// Package dynamics is the national employment dynamics (就业动态) of the coordination service
// (labourlink.coordination.v1.DynamicsService): as of a date, the registered-poor workers out at
// work (services/platform/outatwork) by sending province, by destination province, by home county and by occupation, against
// the same day a year before and the year before's total, read from the counts the ledger keeps
// per day and year as it records events (ledger.Dynamics); and the local employers' recovery rate,
// from the states of the employers the sending provinces report (ReportLocalEmployers, local.go),
// by the province's own definition (outatwork.Recovery). Published figures: any party of the
// federation reads them; only a sending province's own service reports its employers.
package dynamics

import (
	"context"
	"time"

	"go.etcd.io/bbolt"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/occupation"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/coordination/check"
	"github.com/eastwest/labourlink/services/coordination/ledger"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/outatwork"
	"github.com/eastwest/labourlink/services/platform/store"
)

// Server is the DynamicsService.
type Server struct {
	coordinationv1.UnimplementedDynamicsServiceServer
	db      *store.DB
	w       store.Writer
	regions *regions.Table
	now     func() time.Time

	reportLocalEmployers *store.Mutation
}

// New returns the dynamics over db (the coordination file, with the ledger's buckets), with the
// region table t and the clock now. Its writes go to db in this process until SetWriter.
func New(db *store.DB, t *regions.Table, now func() time.Time) *Server {
	x := &Server{db: db, w: store.Local{DB: db}, regions: t, now: now}
	x.reportLocalEmployers = store.NewMutation(coordinationv1.DynamicsService_ReportLocalEmployers_FullMethodName, x.applyReportLocalEmployers)
	return x
}

// SetWriter sends the dynamics' writes to w.
func (x *Server) SetWriter(w store.Writer) { x.w = w }

// Mutations are the dynamics' writes.
func (x *Server) Mutations() []*store.Mutation { return []*store.Mutation{x.reportLocalEmployers} }

// ValidateRequest checks dynamics requests before the handlers run.
func (x *Server) ValidateRequest(_ string, req any) error {
	var v apierror.Violations
	switch r := req.(type) {
	case *coordinationv1.GetNationalEmploymentDynamicsRequest:
		outatwork.CheckAsOf(&v, "as_of", r.GetAsOf(), x.now())
		check.Province(&v, x.regions, "sending_region", r.GetSendingRegion(), false)
	case *coordinationv1.ReportLocalEmployersRequest:
		x.checkReport(&v, r)
	default:
		return apierror.NotValidated(req)
	}
	return v.Err()
}

// GetNationalEmploymentDynamics reads the figures as of the day asked.
func (x *Server) GetNationalEmploymentDynamics(_ context.Context, req *coordinationv1.GetNationalEmploymentDynamicsRequest) (*coordinationv1.GetNationalEmploymentDynamicsResponse, error) {
	f := outatwork.FiguresOf(req.GetAsOf())
	var counts ledger.DynamicsCounts
	resp := &coordinationv1.GetNationalEmploymentDynamicsResponse{AsOf: req.GetAsOf()}
	err := x.db.View(func(tx *bbolt.Tx) error {
		var err error
		if counts, err = ledger.Dynamics(tx, req.GetSendingRegion(), f); err != nil {
			return err
		}
		return x.addRecovery(tx, req.GetSendingRegion(), resp)
	})
	if err != nil {
		return nil, err
	}
	var total outatwork.Counts
	for _, c := range counts.Sending {
		total.AsOf += c.AsOf
		total.SameDay += c.SameDay
		total.LastYear += c.LastYear
	}
	byDest := map[string]*outatwork.Counts{}
	for k, c := range counts.Pairs {
		d := byDest[k[1]]
		if d == nil {
			d = &outatwork.Counts{}
			byDest[k[1]] = d
		}
		d.AsOf += c.AsOf
		d.SameDay += c.SameDay
		d.LastYear += c.LastYear
	}
	resp.SameDayLastYear, resp.LastYear = f.SameDay.Date(), int32(f.LastYear)
	resp.Total = outatwork.Row("", total)
	resp.BySendingRegion = outatwork.Rows(counts.Sending, x.regions.Name)
	resp.ByDestination = outatwork.Rows(byDest, x.regions.Name)
	resp.ByHomeCounty = outatwork.Rows(counts.Dims[ledger.DimHomeCounty], x.regions.Name)
	resp.ByOccupation = outatwork.Rows(counts.Dims[ledger.DimOccupation], occupation.Title)
	return resp, nil
}

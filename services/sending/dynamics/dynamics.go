// Package dynamics is the employment dynamics (就业动态) of a sending province
// (labourlink.sending.v1.DynamicsService): as of a date, its registered-poor workers out at work
// (services/platform/outatwork says what that means) by home county, destination province and
// occupation, against the same day a year before and the year before's total; the local
// employers' recovery rate as of the date; the workers placed locally on it.
//
// The figures are computed from the roster in one read transaction that decodes one worker at a
// time (roster.ForEachWorker): memory holds the rows (counties, provinces, occupations), never
// the workers. Nothing is stored.
package dynamics

import (
	"context"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/grpc"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/outatwork"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending/returnees"
	"github.com/eastwest/labourlink/services/sending/roster"
)

// Config configures the dynamics.
type Config struct {
	// Region is the 6-digit code of this sending province, such as 520000.
	Region string
	// Regions is the code table (regions.Default() when nil).
	Regions *regions.Table
	// Now is the clock; nil for time.Now.
	Now func() time.Time
}

// Service is the employment dynamics of one sending province.
type Service struct {
	db  *store.DB
	cfg Config
}

// New returns the dynamics over db (the sending service's file, with the roster's and the
// take-over's buckets).
func New(db *store.DB, cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Regions == nil {
		cfg.Regions = regions.Default()
	}
	return &Service{db: db, cfg: cfg}
}

// Register registers the DynamicsService on gs.
func (s *Service) Register(gs *grpc.Server) {
	sendingv1.RegisterDynamicsServiceServer(gs, &server{s: s})
}

type server struct {
	sendingv1.UnimplementedDynamicsServiceServer
	s *Service
}

// The dimensions of the tally.
const (
	dimTotal       = "total"
	dimCounty      = "county"
	dimDestination = "destination"
	dimOccupation  = "occupation"
)

// ValidateRequest checks a request before its handler runs (grpcserver's validation step).
func (x *server) ValidateRequest(_ string, req any) error {
	s := x.s
	var v apierror.Violations
	switch r := req.(type) {
	case *sendingv1.GetEmploymentDynamicsRequest:
		outatwork.CheckAsOf(&v, "as_of", r.GetAsOf(), s.cfg.Now())
		if c := r.GetHomeCounty(); c != "" && (!s.cfg.Regions.IsCounty(c) || s.cfg.Regions.ProvinceOf(c) != s.cfg.Region) {
			v.Addf("home_county", "%q is not a GB/T 2260 county of %s (%s)", c, s.cfg.Region, s.cfg.Regions.Name(s.cfg.Region))
		}
	default:
		return apierror.NotValidated(req)
	}
	return v.Err()
}

// Trips returns what the figures need of the worker's trips, in the same order.
func Trips(w *sendingv1.Worker) []outatwork.Trip {
	out := make([]outatwork.Trip, len(w.GetTrips()))
	for i, t := range w.GetTrips() {
		tr := outatwork.Trip{NoShow: t.GetNoShow()}
		if t.GetDepartureTime() != nil {
			tr.Depart = outatwork.DayOfTime(t.GetDepartureTime().AsTime())
		}
		if t.GetReturnTime() != nil {
			tr.End = outatwork.DayOfTime(t.GetReturnTime().AsTime())
		}
		if d := t.GetLeftJobDate(); d != nil {
			if left := outatwork.DayOf(d); tr.End == 0 || left < tr.End {
				tr.End = left
			}
		}
		out[i] = tr
	}
	return out
}

// placedOn reports whether w had a local placement going on on day d.
func placedOn(w *sendingv1.Worker, d outatwork.Day) bool {
	for _, p := range w.GetLocalPlacements() {
		if p.GetStartDate() != nil && outatwork.DayOf(p.GetStartDate()) <= d && (p.GetEndDate() == nil || d < outatwork.DayOf(p.GetEndDate())) {
			return true
		}
	}
	return false
}

// GetEmploymentDynamics computes the figures as of the day asked.
func (x *server) GetEmploymentDynamics(_ context.Context, req *sendingv1.GetEmploymentDynamicsRequest) (*sendingv1.GetEmploymentDynamicsResponse, error) {
	s := x.s
	f := outatwork.FiguresOf(req.GetAsOf())
	county := req.GetHomeCounty()
	tally := outatwork.NewTally(f)
	resp := &sendingv1.GetEmploymentDynamicsResponse{
		AsOf: req.GetAsOf(), SameDayLastYear: f.SameDay.Date(), LastYear: int32(f.LastYear),
	}
	recovery := outatwork.NewRecovery(outatwork.EndOfDay(req.GetAsOf()))
	err := s.db.View(func(tx *bbolt.Tx) error {
		err := roster.ForEachWorker(tx, func(w *sendingv1.Worker) error {
			if !w.GetRegisteredPoor() || (county != "" && w.GetHomeCounty() != county) {
				return nil
			}
			if placedOn(w, f.AsOf) {
				resp.PlacedLocally++
			}
			spells := outatwork.Spells(Trips(w))
			if len(spells) == 0 {
				return nil
			}
			trips := w.GetTrips()
			tally.Add(dimTotal, spells, func(outatwork.Spell) string { return "" })
			tally.Add(dimCounty, spells, func(outatwork.Spell) string { return w.GetHomeCounty() })
			tally.Add(dimDestination, spells, func(sp outatwork.Spell) string { return trips[sp.Trip].GetReceivingRegion() })
			tally.Add(dimOccupation, spells, func(sp outatwork.Spell) string { return trips[sp.Trip].GetOccupation() })
			return nil
		})
		if err != nil {
			return err
		}
		return returnees.ForEachEmployer(tx, func(e *sendingv1.LocalEmployer) error {
			if county != "" && e.GetCounty() != county {
				return nil
			}
			recovery.Add(e.GetKind(), e.GetCreateTime(), e.GetResumed(), e.GetResumptionChanges())
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	total := tally.Counts(dimTotal)[""]
	if total == nil {
		total = &outatwork.Counts{}
	}
	resp.Total = outatwork.Row("", *total)
	resp.ByHomeCounty = tally.Rows(dimCounty, s.cfg.Regions.Name)
	resp.ByDestination = tally.Rows(dimDestination, s.cfg.Regions.Name)
	resp.ByOccupation = tally.Rows(dimOccupation, nil)
	resp.RecoveryByKind, resp.RecoveryTotal = recovery.Rates()
	return resp, nil
}

// Server is the DynamicsService server, for in-process callers (the dashboard).
func (s *Service) Server() sendingv1.DynamicsServiceServer { return &server{s: s} }

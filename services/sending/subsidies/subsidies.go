// Package subsidies is the sending side of the subsidy lists (labourlink.sending.v1.
// SubsidyService): it asks the coordination service for this province's eligible workers
// (EligibilityService, worker ids and facts only) and joins the workers' names and home counties
// from the roster, so that names never leave the province. Nothing is stored.
package subsidies

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending/roster"
)

// MaxPeriodDays is the longest period one request may ask (the coordination service's
// eligibility.MaxPeriodDays).
const MaxPeriodDays = 366

// MaxPageSize is the most workers one page may ask.
const MaxPageSize = 1000

// Config configures the subsidy lists.
type Config struct {
	// Region is the 6-digit code of this sending province, such as 520000.
	Region string
	// Coordinated is false when the sending service runs without a coordination service: the
	// lists are then refused with FAILED_PRECONDITION.
	Coordinated bool
	// Deadlines are the deadlines of the calls to the coordination service.
	Deadlines peers.Deadlines
	// Now is the clock; nil for time.Now.
	Now func() time.Time
}

// Service is the subsidy lists of one sending province.
type Service struct {
	db          *store.DB
	cfg         Config
	eligibility atomic.Pointer[coordinationv1.EligibilityServiceClient]
}

// New returns the subsidy lists over db (the sending service's file, for the roster).
func New(db *store.DB, cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{db: db, cfg: cfg}
}

// Connect sets the client of the coordination service's EligibilityService (the sending
// service's connection while it runs); nil disconnects, and the lists are refused with
// UNAVAILABLE until the next Connect.
func (s *Service) Connect(c coordinationv1.EligibilityServiceClient) {
	if c == nil {
		s.eligibility.Store(nil)
		return
	}
	s.eligibility.Store(&c)
}

// Register registers the SubsidyService on gs.
func (s *Service) Register(gs *grpc.Server) {
	sendingv1.RegisterSubsidyServiceServer(gs, &server{s: s})
}

type server struct {
	sendingv1.UnimplementedSubsidyServiceServer
	s *Service
}

// ValidateRequest checks a request before its handler runs (grpcserver's validation step). The
// rule's id and the page token are checked by the coordination service, whose refusal (with
// the same field names) is passed back.
func (x *server) ValidateRequest(_ string, req any) error {
	var v apierror.Violations
	switch r := req.(type) {
	case *sendingv1.ListEligibleWorkersRequest:
		if r.GetRule() == "" {
			v.Add("rule", "is required")
		}
		dates := true
		for _, d := range []struct {
			field string
			date  *commonv1.Date
		}{{"period_start", r.GetPeriodStart()}, {"period_end", r.GetPeriodEnd()}} {
			if d.date == nil {
				v.Add(d.field, "is required")
				dates = false
			} else if p := civil.Problem(d.date); p != "" {
				v.Add(d.field, p)
				dates = false
			}
		}
		if dates {
			start, end := civil.Start(r.GetPeriodStart()), civil.Start(r.GetPeriodEnd())
			switch {
			case !end.After(start):
				v.Add("period_end", "must be later than period_start (the period is [period_start, period_end))")
			case end.After(start.AddDate(0, 0, MaxPeriodDays)):
				v.Add("period_end", fmt.Sprintf("at most %d days after period_start", MaxPeriodDays))
			}
		}
		if ts := r.GetAsOf(); ts != nil {
			if ts.CheckValid() != nil {
				v.Add("as_of", "is not a valid timestamp")
			} else if ts.AsTime().After(x.s.cfg.Now()) {
				v.Add("as_of", "must not be in the future: a list as of a future time could still change")
			}
		}
		if n := r.GetPageSize(); n < 0 || n > MaxPageSize {
			v.Addf("page_size", "must be 0 (the default, 100) to %d", MaxPageSize)
		}
	default:
		return apierror.NotValidated(req)
	}
	return v.Err()
}

// ListEligibleWorkers asks the coordination service for one page of this province's list and
// joins the names from the roster.
func (x *server) ListEligibleWorkers(ctx context.Context, req *sendingv1.ListEligibleWorkersRequest) (*sendingv1.ListEligibleWorkersResponse, error) {
	s := x.s
	if !s.cfg.Coordinated {
		return nil, apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED,
			"this sending service runs without a coordination service (-coordination): the subsidy lists come from its ledger")
	}
	c := s.eligibility.Load()
	if c == nil {
		return nil, apierror.Unavailable("not connected to the coordination service yet (or stopping); try again")
	}
	callCtx, cancel := s.cfg.Deadlines.WithTimeoutFor(ctx, max(int(req.GetPageSize()), 100))
	defer cancel()
	resp, err := (*c).ListEligibleWorkers(callCtx, &coordinationv1.ListEligibleWorkersRequest{
		SendingRegion: s.cfg.Region, Rule: req.GetRule(), PeriodStart: req.GetPeriodStart(), PeriodEnd: req.GetPeriodEnd(),
		AsOf: req.GetAsOf(), PageSize: req.GetPageSize(), PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, peerError(err)
	}
	out := &sendingv1.ListEligibleWorkersResponse{AsOf: resp.GetAsOf(), NextPageToken: resp.GetNextPageToken()}
	err = s.db.View(func(tx *bbolt.Tx) error {
		for _, e := range resp.GetWorkers() {
			n := &sendingv1.NamedEligibleWorker{
				WorkerId: e.GetWorkerId(), Rule: e.GetRule(), FactEventId: e.GetFactEventId(), FactDate: e.GetFactDate(),
				BatchId: e.GetBatchId(), ReceivingRegion: e.GetReceivingRegion(), Vacancy: e.GetVacancy(),
				DepartedEventId: e.GetDepartedEventId(), DepartedDate: e.GetDepartedDate(), RegisteredPoor: e.GetRegisteredPoor(),
				MonthsEmployed: e.GetMonthsEmployed(),
			}
			w, err := roster.Read(tx, e.GetWorkerId())
			switch {
			case errors.Is(err, apierror.ErrNotFound):
				// Not (or no longer) in the roster: listed without a name.
			case err != nil:
				return err
			case !w.GetErased():
				n.Name, n.HomeCounty = w.GetFullName(), w.GetHomeCounty()
			}
			out.Workers = append(out.Workers, n)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// peerError is the error of a failed call to the coordination service: its refusals (invalid
// argument with the field violations, permission denied) pass back as they are; a coordination
// service that does not answer is UNAVAILABLE with what happened.
func peerError(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return apierror.Unavailable("the coordination service did not answer: %v", err)
	}
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return apierror.Unavailable("the coordination service did not answer (%s): %s", st.Code(), st.Message())
	}
	return err
}

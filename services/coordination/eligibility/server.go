package eligibility

import (
	"context"
	"fmt"
	"sort"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/coordination/check"
	"github.com/eastwest/labourlink/services/coordination/ledger"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/store"
)

// MaxPeriodDays is the longest period one request may ask.
const MaxPeriodDays = 366

// Server is the EligibilityService over the coordination service's ledger.
type Server struct {
	coordinationv1.UnimplementedEligibilityServiceServer
	db    *store.DB
	t     *regions.Table
	rules *Rules
	now   func() time.Time
}

// New returns the EligibilityService evaluating rules over the ledger in db.
func New(db *store.DB, t *regions.Table, rules *Rules, now func() time.Time) *Server {
	return &Server{db: db, t: t, rules: rules, now: now}
}

// listing binds page tokens to the request's filters, as_of included.
func listing(r *coordinationv1.ListEligibleWorkersRequest) listingOf {
	return listingOf{r.GetSendingRegion(), r.GetRule(), civil.Format(r.GetPeriodStart()), civil.Format(r.GetPeriodEnd()), timeFilter(r.GetAsOf())}
}

// ValidateRequest checks the requests before the handlers run (grpcserver.Validator).
func (s *Server) ValidateRequest(method string, req any) error {
	var v apierror.Violations
	switch r := req.(type) {
	case *coordinationv1.ListEligibleWorkersRequest:
		check.Province(&v, s.t, "sending_region", r.GetSendingRegion(), true)
		if r.GetRule() == "" {
			v.Add("rule", "is required")
		} else if _, ok := s.rules.Get(r.GetRule()); !ok {
			v.Add("rule", fmt.Sprintf("unknown rule; the rules are %v", s.rules.IDs()))
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
			} else if ts.AsTime().After(s.now()) {
				v.Add("as_of", "must not be in the future: a list as of a future time could still change")
			}
		}
		check.PageSize.Check(&v, r.GetPageSize())
		listing(r).paging().Check(&v, r.GetPageToken())
	case *coordinationv1.ListSubsidyRulesRequest:
	default:
		return apierror.NotValidated(req)
	}
	return v.Err()
}

// ListSubsidyRules lists the rules.
func (s *Server) ListSubsidyRules(ctx context.Context, req *coordinationv1.ListSubsidyRulesRequest) (*coordinationv1.ListSubsidyRulesResponse, error) {
	return &coordinationv1.ListSubsidyRulesResponse{Rules: s.rules.Proto()}, nil
}

// ListEligibleWorkers lists the eligible workers in worker id order. The candidates are the
// workers of the sending province with a DEPARTED event since the rule's lookback (the pairing
// index of the ledger); each is evaluated over its own events (the worker index), so a page
// reads the events of its own workers only.
func (s *Server) ListEligibleWorkers(ctx context.Context, req *coordinationv1.ListEligibleWorkersRequest) (*coordinationv1.ListEligibleWorkersResponse, error) {
	rule, _ := s.rules.Get(req.GetRule())
	asOf := s.now()
	if req.GetAsOf() != nil {
		asOf = req.GetAsOf().AsTime()
	}
	// The next page's token is bound to the as_of answered: the next request passes it.
	pl := listing(withAsOf(req, asOf)).paging()
	after, err := listing(req).paging().Decode(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	start, end := civil.Start(req.GetPeriodStart()), civil.Start(req.GetPeriodEnd())
	size := check.PageSize.Of(req.GetPageSize())
	resp := &coordinationv1.ListEligibleWorkersResponse{AsOf: timestamppb.New(asOf)}
	err = s.db.View(func(tx *bbolt.Tx) error {
		seen := map[string]bool{}
		var workers []string
		err := ledger.DepartedWorkers(tx, s.t, req.GetSendingRegion(), lookback(rule, start), minTime(end, asOf), func(w string) error {
			if !seen[w] && w > string(after) {
				seen[w] = true
				workers = append(workers, w)
			}
			return nil
		})
		if err != nil {
			return err
		}
		sort.Strings(workers)
		listed := 0
		for i, w := range workers {
			if listed == size {
				resp.NextPageToken = pl.Token([]byte(workers[i-1]))
				break
			}
			var evs []*coordinationv1.LedgerEvent
			if err := ledger.WorkerEvents(tx, w, func(ev *coordinationv1.LedgerEvent) (bool, error) {
				if ev.GetSendingRegion() == req.GetSendingRegion() {
					evs = append(evs, ev)
				}
				return true, nil
			}); err != nil {
				return err
			}
			if es := InPeriod(Evaluate(rule, evs, asOf), start, end); len(es) > 0 {
				resp.Workers = append(resp.Workers, es...)
				listed++
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// withAsOf is req with as_of set to asOf (for the page token of a listing without as_of).
func withAsOf(req *coordinationv1.ListEligibleWorkersRequest, asOf time.Time) *coordinationv1.ListEligibleWorkersRequest {
	if req.GetAsOf() != nil {
		return req
	}
	return &coordinationv1.ListEligibleWorkersRequest{SendingRegion: req.GetSendingRegion(), Rule: req.GetRule(),
		PeriodStart: req.GetPeriodStart(), PeriodEnd: req.GetPeriodEnd(), AsOf: timestamppb.New(asOf)}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Package candidates is the CandidateService of the receiving service: candidates submitted by
// the paired sending provinces, the decisions on them, and the decision feed.
//
// A candidate is stored under its id; an index finds it by (sending region, worker id, vacancy
// id), which makes resubmission return the existing candidate. Every state change after
// submission (accepted, rejected, withdrawn) takes the decision feed's next revision and is
// stored in the feed under it (services/receiving/internal/feedlog).
//
// Accepting reserves a position (vacancies.Reserve): the vacancy's reserved count is checked and
// incremented in the same transaction as the candidate's change. bbolt runs one writer at a
// time, so concurrent accepts are serialised and the count never passes the headcount.
//
// Files: rules.go (checks and state transitions), store.go (tables), candidates.go (handlers).
package candidates

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/paging"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/receiving/internal/check"
	"github.com/eastwest/labourlink/services/receiving/internal/feedlog"
	"github.com/eastwest/labourlink/services/receiving/internal/province"
	"github.com/eastwest/labourlink/services/receiving/vacancies"
)

// Config configures the CandidateService.
type Config struct {
	DB       *feedlog.DB
	Now      func() time.Time
	Province *province.Province
	Watching feedlog.Watching
	// Onboarded reports, in tx, whether worker is onboarded (employed, or left the job) for
	// vacancy (a resource name): such a candidate cannot be withdrawn. It is intake's
	// (services/receiving/intake.Onboarded), given by the service that composes both.
	Onboarded func(tx *bbolt.Tx, workerID, vacancy string) (bool, error)
}

// Server is the CandidateService.
type Server struct {
	receivingv1.UnimplementedCandidateServiceServer
	cfg Config
}

// New returns the CandidateService.
func New(cfg Config) *Server { return &Server{cfg: cfg} }

func (x *Server) now() time.Time { return x.cfg.Now() }

// ValidateRequest checks CandidateService requests before their handlers run.
func (x *Server) ValidateRequest(_ string, req any) error {
	var v apierror.Violations
	p := x.cfg.Province
	switch r := req.(type) {
	case *receivingv1.SubmitCandidatesRequest:
		p.CheckSendingRegion(&v, "sending_region", r.GetSendingRegion())
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
		switch n := len(r.GetCandidates()); {
		case n == 0:
			v.Add("candidates", "must hold at least one candidate")
		case n > maxCandidatesPerRequest:
			v.Addf("candidates", "has %d candidates, at most %d are allowed", n, maxCandidatesPerRequest)
		}
		// Each candidate is checked by the handler and refused on its own (SubmitCandidates).
	case *receivingv1.GetCandidateRequest:
		check.Name(&v, "name", r.GetName(), check.Candidates)
	case *receivingv1.ListCandidatesRequest:
		if r.GetVacancy() != "" {
			check.Name(&v, "vacancy", r.GetVacancy(), check.Vacancies)
		}
		check.ListSize.Check(&v, r.GetPageSize())
		if _, ok := receivingv1.CandidateState_name[int32(r.GetState())]; !ok {
			v.Addf("state", "%d is not a CandidateState", r.GetState())
		}
		p.CheckSendingRegionFilter(&v, r.GetSendingRegion())
		if r.GetWorkerId() != "" {
			check.WorkerID(&v, "worker_id", r.GetWorkerId())
		}
	case *receivingv1.DecideCandidateRequest:
		check.Name(&v, "name", r.GetName(), check.Candidates)
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
		switch r.GetDecision() {
		case receivingv1.Decision_DECISION_ACCEPT:
		case receivingv1.Decision_DECISION_REJECT:
			check.Text(&v, "reason", r.GetReason(), check.MaxReason, true)
		default:
			v.Add("decision", "must be DECISION_ACCEPT or DECISION_REJECT")
		}
		if r.GetDecision() == receivingv1.Decision_DECISION_ACCEPT {
			check.Text(&v, "reason", r.GetReason(), check.MaxReason, false)
		}
	case *receivingv1.WithdrawCandidateRequest:
		check.Name(&v, "name", r.GetName(), check.Candidates)
		p.CheckSendingRegion(&v, "sending_region", r.GetSendingRegion())
		check.Text(&v, "reason", r.GetReason(), check.MaxReason, false)
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
	case *receivingv1.WatchDecisionsRequest:
		p.CheckFeedRequest(&v, r)
	case *receivingv1.ListDecisionsRequest:
		p.CheckFeedRequest(&v, r)
	default:
		return apierror.NotValidated(req)
	}
	return v.Err()
}

// SubmitCandidates records candidates, answering each on its own: a candidate that is refused
// (bad fields, a worker of another province, an unknown vacancy) is listed in the response's
// refusals and the others are taken. A (sending region, worker, vacancy) already submitted
// returns the existing candidate.
func (x *Server) SubmitCandidates(ctx context.Context, req *receivingv1.SubmitCandidatesRequest) (*receivingv1.SubmitCandidatesResponse, error) {
	sending := req.GetSendingRegion()
	if err := x.cfg.Province.RequirePaired(ctx, sending); err != nil {
		return nil, err
	}
	resp := &receivingv1.SubmitCandidatesResponse{}
	now := x.now()
	err := x.cfg.DB.UpdateOnce(now, receivingv1.CandidateService_SubmitCandidates_FullMethodName, req, resp, func(tx *bbolt.Tx) error {
		resp.Candidates, resp.Refusals = nil, nil
		for i, in := range req.GetCandidates() {
			c, refused, err := x.submit(tx, now, i, sending, in)
			if err != nil {
				return err
			}
			if refused != nil {
				r, ok := apierror.Refusal(i, in.GetWorkerId(), fmt.Sprintf("candidates[%d].", i), refused)
				if !ok {
					return fmt.Errorf("candidates[%d]: %w", i, refused)
				}
				resp.Refusals = append(resp.Refusals, r)
				continue
			}
			resp.Candidates = append(resp.Candidates, c)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// submit takes candidate i of a submission, in tx: the existing candidate when it was
// submitted before, else a new one. refused is why the candidate is refused on its own (bad
// fields, a worker of another province, an unknown vacancy); err fails the whole submission.
func (x *Server) submit(tx *bbolt.Tx, now time.Time, i int, sending string, in *receivingv1.Candidate) (c *receivingv1.Candidate, refused, err error) {
	if err := checkSubmitted(x.cfg.Province, i, sending, in); err != nil {
		return nil, err, nil
	}
	vid := check.ResourceID(in.GetVacancy(), check.Vacancies)
	vac, err := vacancies.Get(tx, vid)
	if err != nil {
		return nil, err, nil
	}
	if c, found, err := Find(tx, sending, in.GetWorkerId(), vid); err != nil || found {
		return c, nil, err
	}
	seq, err := store.NextCounter(tx, seqKey)
	if err != nil {
		return nil, nil, err
	}
	c = submitted(fmt.Sprintf("%s-C%010d", x.cfg.Province.Code, seq), sending, in, vac, now)
	return c, nil, add(tx, c, vid, now)
}

// GetCandidate reads a candidate.
func (x *Server) GetCandidate(_ context.Context, req *receivingv1.GetCandidateRequest) (*receivingv1.GetCandidateResponse, error) {
	c, err := feedlog.Load(x.cfg.DB, Get, check.ResourceID(req.GetName(), check.Candidates))
	if err != nil {
		return nil, err
	}
	return &receivingv1.GetCandidateResponse{Candidate: c}, nil
}

// ListCandidates lists candidates with filters, in id order.
func (x *Server) ListCandidates(_ context.Context, req *receivingv1.ListCandidatesRequest) (*receivingv1.ListCandidatesResponse, error) {
	listing := paging.For("candidates", req.GetVacancy(), req.GetState().String(), req.GetSendingRegion(), req.GetWorkerId())
	cs, next, err := feedlog.List(x.cfg.DB, candidateTable, listing, req.GetPageToken(), check.ListSize.Of(req.GetPageSize()), func(c *receivingv1.Candidate) bool {
		return (req.GetVacancy() == "" || c.GetVacancy() == req.GetVacancy()) &&
			(req.GetState() == 0 || c.GetState() == req.GetState()) &&
			(req.GetSendingRegion() == "" || c.GetSendingRegion() == req.GetSendingRegion()) &&
			(req.GetWorkerId() == "" || c.GetWorkerId() == req.GetWorkerId())
	})
	if err != nil {
		return nil, err
	}
	return &receivingv1.ListCandidatesResponse{Candidates: cs, NextPageToken: next}, nil
}

// DecideCandidate accepts or rejects a pending candidate (the rules: decides and
// vacancies.Reserve). Repeating the decision a candidate already has returns it unchanged; the
// other decision is FAILED_PRECONDITION.
func (x *Server) DecideCandidate(_ context.Context, req *receivingv1.DecideCandidateRequest) (*receivingv1.DecideCandidateResponse, error) {
	resp := &receivingv1.DecideCandidateResponse{}
	accept := req.GetDecision() == receivingv1.Decision_DECISION_ACCEPT
	now := x.now()
	err := x.cfg.DB.UpdateOnce(now, receivingv1.CandidateService_DecideCandidate_FullMethodName, req, resp, func(tx *bbolt.Tx) error {
		c, err := Get(tx, check.ResourceID(req.GetName(), check.Candidates))
		if err != nil {
			return err
		}
		resp.Candidate = c
		if ok, err := decides(c, accept); err != nil || !ok {
			return err
		}
		state := Rejected
		if accept {
			vac, err := vacancies.Get(tx, check.ResourceID(c.GetVacancy(), check.Vacancies))
			if err != nil {
				return err
			}
			if err := vacancies.Reserve(vac, civil.Today(now)); err != nil {
				return err
			}
			if err := vacancies.Save(tx, vac, now); err != nil {
				return err
			}
			state = Accepted
		}
		c.State, c.StateReason = state, req.GetReason()
		return recordDecision(tx, c, now)
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// WithdrawCandidate withdraws a candidate on the sending side's word (the rule: withdraws),
// releasing an accepted candidate's reservation. Withdrawing a withdrawn or rejected candidate
// returns it unchanged; a worker already onboarded for the vacancy cannot be withdrawn (record
// that the job was left).
func (x *Server) WithdrawCandidate(ctx context.Context, req *receivingv1.WithdrawCandidateRequest) (*receivingv1.WithdrawCandidateResponse, error) {
	if err := x.cfg.Province.RequirePaired(ctx, req.GetSendingRegion()); err != nil {
		return nil, err
	}
	resp := &receivingv1.WithdrawCandidateResponse{}
	now := x.now()
	err := x.cfg.DB.UpdateOnce(now, receivingv1.CandidateService_WithdrawCandidate_FullMethodName, req, resp, func(tx *bbolt.Tx) error {
		c, err := Get(tx, check.ResourceID(req.GetName(), check.Candidates))
		if err != nil {
			return err
		}
		resp.Candidate = c
		if ok, err := withdraws(c, req.GetSendingRegion()); err != nil || !ok {
			return err
		}
		if c.GetState() == Accepted {
			if err := x.release(tx, c, now); err != nil {
				return err
			}
		}
		c.State, c.StateReason = Withdrawn, req.GetReason()
		return recordDecision(tx, c, now)
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// release gives back the position accepted candidate c reserved, in tx, unless its worker is
// already onboarded for the vacancy (FAILED_PRECONDITION).
func (x *Server) release(tx *bbolt.Tx, c *receivingv1.Candidate, now time.Time) error {
	onboarded, err := x.cfg.Onboarded(tx, c.GetWorkerId(), c.GetVacancy())
	if err != nil {
		return err
	}
	if onboarded {
		return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_ALREADY_ONBOARDED, "worker %s of candidate %s is already onboarded; record that the job was left instead",
			c.GetWorkerId(), c.GetName())
	}
	vac, err := vacancies.Get(tx, check.ResourceID(c.GetVacancy(), check.Vacancies))
	if err != nil {
		return err
	}
	vacancies.Release(vac)
	return vacancies.Save(tx, vac, now)
}

// keepRegion returns a decision-feed filter for one sending province.
func keepRegion(region string) func(*receivingv1.Candidate) bool {
	return func(c *receivingv1.Candidate) bool { return c.GetSendingRegion() == region }
}

// WatchDecisions streams the decisions on the region's candidates after the request's revision,
// then new ones.
func (x *Server) WatchDecisions(req *receivingv1.WatchDecisionsRequest, stream receivingv1.CandidateService_WatchDecisionsServer) error {
	ctx := stream.Context()
	sending := req.GetSendingRegion()
	if err := x.cfg.Province.RequirePaired(ctx, sending); err != nil {
		return err
	}
	return feedlog.Watch(ctx, x.cfg.DB, x.cfg.Watching, Decisions, uint64(req.GetAfterRevision()), keepRegion(sending),
		feedlog.Respond[*receivingv1.Candidate](stream.Send),
		func(ctx context.Context) error { return x.cfg.Province.RequirePaired(ctx, sending) })
}

// ListDecisions returns a page of the region's decisions after the request's revision. A
// consumer continues after the last candidate's revision, or after head_revision when the page
// is not full (every revision up to the head was looked at).
func (x *Server) ListDecisions(ctx context.Context, req *receivingv1.ListDecisionsRequest) (*receivingv1.ListDecisionsResponse, error) {
	if err := x.cfg.Province.RequirePaired(ctx, req.GetSendingRegion()); err != nil {
		return nil, err
	}
	cs, head, err := Decisions.List(x.cfg.DB, req.GetAfterRevision(), check.FeedSize.Of(req.GetPageSize()), keepRegion(req.GetSendingRegion()))
	if err != nil {
		return nil, err
	}
	return &receivingv1.ListDecisionsResponse{Candidates: cs, HeadRevision: head}, nil
}

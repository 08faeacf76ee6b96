package receiving

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labour/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labour/receiving/v1"
	"github.com/eastwest/labourlink/services/codes/occupation"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/paging"
	"github.com/eastwest/labourlink/services/platform/store"
)

// Candidates and decisions.
//
// A candidate is stored under its id in BucketCandidates; BucketCandidateIndex finds it by
// (sending region, worker id, vacancy id), which makes resubmission return the existing
// candidate. Every state change after submission (accepted, rejected, withdrawn) takes the
// decision feed's next revision and is stored in BucketDecisions under it.
//
// Accepting reserves a position: the vacancy's reserved count is checked and incremented in the
// same transaction as the candidate's change. bbolt runs one writer at a time, so concurrent
// accepts are serialised and the count never passes the headcount.
//
// A candidate submitted for a vacancy that is CLOSED or EXPIRED is recorded and rejected at once
// (reason "vacancy closed" or "vacancy expired"), so that the sending side learns it from the
// decision feed instead of retrying the submission; a FILLED vacancy takes pending candidates
// (a place may free up).

const (
	statePending   = receivingv1.CandidateState_CANDIDATE_STATE_PENDING
	stateAccepted  = receivingv1.CandidateState_CANDIDATE_STATE_ACCEPTED
	stateRejected  = receivingv1.CandidateState_CANDIDATE_STATE_REJECTED
	stateWithdrawn = receivingv1.CandidateState_CANDIDATE_STATE_WITHDRAWN

	maxCandidatesPerRequest = 1000
	maxReason               = 500
)

func candidateIndexKey(sending, workerID, vacancyID string) []byte {
	return []byte(sending + "\x00" + workerID + "\x00" + vacancyID)
}

// ValidateRequest checks CandidateService requests before their handlers run.
func (x *candidateServer) ValidateRequest(_ string, req any) error {
	var v apierror.Violations
	switch r := req.(type) {
	case *receivingv1.SubmitCandidatesRequest:
		x.s.checkSendingRegion(&v, "sending_region", r.GetSendingRegion())
		checkRequestID(&v, "request_id", r.GetRequestId())
		switch n := len(r.GetCandidates()); {
		case n == 0:
			v.Add("candidates", "must hold at least one candidate")
		case n > maxCandidatesPerRequest:
			v.Add("candidates", fmt.Sprintf("has %d candidates, at most %d are allowed", n, maxCandidatesPerRequest))
		}
		// Each candidate is checked by the handler and refused on its own (SubmitCandidates).
	case *receivingv1.GetCandidateRequest:
		checkName(&v, "name", r.GetName(), candidatesCollection)
	case *receivingv1.ListCandidatesRequest:
		if r.GetVacancy() != "" {
			checkName(&v, "vacancy", r.GetVacancy(), vacanciesCollection)
		}
		listSize.Check(&v, r.GetPageSize())
		x.s.checkListFilters(&v, r)
	case *receivingv1.DecideCandidateRequest:
		checkName(&v, "name", r.GetName(), candidatesCollection)
		checkRequestID(&v, "request_id", r.GetRequestId())
		switch r.GetDecision() {
		case receivingv1.Decision_DECISION_ACCEPT:
		case receivingv1.Decision_DECISION_REJECT:
			checkText(&v, "reason", r.GetReason(), maxReason, true)
		default:
			v.Add("decision", "must be DECISION_ACCEPT or DECISION_REJECT")
		}
		if r.GetDecision() == receivingv1.Decision_DECISION_ACCEPT {
			checkText(&v, "reason", r.GetReason(), maxReason, false)
		}
	case *receivingv1.WithdrawCandidateRequest:
		checkName(&v, "name", r.GetName(), candidatesCollection)
		x.s.checkSendingRegion(&v, "sending_region", r.GetSendingRegion())
		checkText(&v, "reason", r.GetReason(), maxReason, false)
		checkRequestID(&v, "request_id", r.GetRequestId())
	case *receivingv1.WatchDecisionsRequest:
		x.s.checkSendingRegion(&v, "sending_region", r.GetSendingRegion())
		checkRevision(&v, r.GetAfterRevision())
	case *receivingv1.ListDecisionsRequest:
		x.s.checkSendingRegion(&v, "sending_region", r.GetSendingRegion())
		checkRevision(&v, r.GetAfterRevision())
		feedSize.Check(&v, r.GetPageSize())
	default:
		return apierror.NotValidated(req)
	}
	return v.Err()
}

// checkCandidate checks the fields a sending service sets on a candidate.
func (s *Service) checkCandidate(v *apierror.Violations, prefix, sending string, c *receivingv1.Candidate) {
	f := func(name string) string { return prefix + name }
	checkName(v, f("vacancy"), c.GetVacancy(), vacanciesCollection)
	checkWorkerID(v, f("worker_id"), c.GetWorkerId())
	if p := personNameProblem(c.GetFullName()); p != "" {
		v.Add(f("full_name"), p)
	}
	if c.GetSex() != commonv1.Sex_SEX_MALE && c.GetSex() != commonv1.Sex_SEX_FEMALE {
		v.Add(f("sex"), "must be SEX_MALE or SEX_FEMALE")
	}
	if a := c.GetAge(); a < minWorkAge || a > maxAge {
		v.Add(f("age"), fmt.Sprintf("must be %d to %d, got %d", minWorkAge, maxAge, a))
	}
	for i, o := range c.GetOccupations() {
		if !occupation.Known(o) {
			v.Add(fmt.Sprintf("%soccupations[%d]", prefix, i), fmt.Sprintf("%q is not an ISCO-08 unit group (4 digits, such as 8212)", o))
		}
	}
	if hc := c.GetHomeCounty(); hc == "" {
		v.Add(f("home_county"), "is required: a county-level code of the sending province")
	} else if s.regions.IsProvince(sending) {
		if err := s.regions.CheckCountyIn(hc, sending); err != nil {
			v.Add(f("home_county"), err.Error())
		}
	}
}

func getCandidate(tx *bbolt.Tx, id string) (*receivingv1.Candidate, error) {
	c := &receivingv1.Candidate{}
	ok, err := store.GetProto(tx.Bucket(store.BucketCandidates), []byte(id), c)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, apierror.NotFound("candidate %s/%s not found", candidatesCollection, id)
	}
	return c, nil
}

// recordDecision stores c after a state change, at the decision feed's next revision.
func (s *Service) recordDecision(tx *bbolt.Tx, c *receivingv1.Candidate, now time.Time) error {
	c.UpdateTime = timestamppb.New(now)
	if _, err := s.decisions.appendEntry(tx, func(rev int64) proto.Message {
		c.Revision = rev
		return c
	}); err != nil {
		return err
	}
	return store.PutProto(tx.Bucket(store.BucketCandidates), []byte(c.GetCandidateId()), c)
}

// checkSubmitted checks candidate i of a submission on its own: its fields, and that its worker
// is one of the submitting province's (a worker id starts with its province's code).
func (s *Service) checkSubmitted(i int, sending string, c *receivingv1.Candidate) error {
	var v apierror.Violations
	prefix := fmt.Sprintf("candidates[%d].", i)
	s.checkCandidate(&v, prefix, sending, c)
	if err := v.Err(); err != nil {
		return err
	}
	if !strings.HasPrefix(c.GetWorkerId(), sending+"-") {
		return apierror.InvalidField(commonv1.ErrorReason_ERROR_REASON_WORKER_NOT_OF_REGION, prefix+"worker_id",
			"worker %s is not a worker of %s: a province submits only its own workers", c.GetWorkerId(), sending)
	}
	return nil
}

// SubmitCandidates records candidates, answering each on its own: a candidate that is refused
// (bad fields, a worker of another province, an unknown vacancy) is listed in the response's
// refusals and the others are taken. A (sending region, worker, vacancy) already submitted
// returns the existing candidate.
func (x *candidateServer) SubmitCandidates(ctx context.Context, req *receivingv1.SubmitCandidatesRequest) (*receivingv1.SubmitCandidatesResponse, error) {
	s := x.s
	sending := req.GetSendingRegion()
	if err := s.requirePaired(ctx, sending); err != nil {
		return nil, err
	}
	resp := &receivingv1.SubmitCandidatesResponse{}
	err := s.updateOnce(receivingv1.CandidateService_SubmitCandidates_FullMethodName, req, resp, func(tx *bbolt.Tx) error {
		now := s.now()
		day := today(now)
		index := tx.Bucket(store.BucketCandidateIndex)
		resp.Candidates, resp.Refusals = nil, nil
		for i, in := range req.GetCandidates() {
			refuse := func(err error) error {
				r, ok := apierror.Refusal(i, in.GetWorkerId(), fmt.Sprintf("candidates[%d].", i), err)
				if !ok {
					return err
				}
				resp.Refusals = append(resp.Refusals, r)
				return nil
			}
			if err := s.checkSubmitted(i, sending, in); err != nil {
				if err := refuse(err); err != nil {
					return err
				}
				continue
			}
			vid := resourceID(in.GetVacancy(), vacanciesCollection)
			vac, err := getVacancy(tx, vid)
			if err != nil {
				if err := refuse(err); err != nil {
					return fmt.Errorf("candidates[%d]: %w", i, err)
				}
				continue
			}
			key := candidateIndexKey(sending, in.GetWorkerId(), vid)
			if id := index.Get(key); id != nil {
				c, err := getCandidate(tx, string(id))
				if err != nil {
					return err
				}
				resp.Candidates = append(resp.Candidates, c)
				continue
			}
			seq, err := nextCounter(tx, []byte("candidate.seq"))
			if err != nil {
				return err
			}
			id := fmt.Sprintf("%s-C%010d", s.cfg.Region, seq)
			c := &receivingv1.Candidate{
				Name:           candidatesCollection + "/" + id,
				CandidateId:    id,
				Vacancy:        vacancyName(vid),
				SendingRegion:  sending,
				WorkerId:       in.GetWorkerId(),
				FullName:       in.GetFullName(),
				Sex:            in.GetSex(),
				Age:            in.GetAge(),
				Occupations:    in.GetOccupations(),
				HomeCounty:     in.GetHomeCounty(),
				RegisteredPoor: in.GetRegisteredPoor(),
				State:          statePending,
				CreateTime:     timestamppb.New(now),
				UpdateTime:     timestamppb.New(now),
			}
			switch deriveStatus(vac, day) {
			case statusClosed:
				c.State, c.Reason = stateRejected, "vacancy closed"
			case statusExpired:
				c.State, c.Reason = stateRejected, "vacancy expired (valid through "+formatDate(vac.GetValidThrough())+")"
			}
			if c.State == stateRejected {
				err = s.recordDecision(tx, c, now)
			} else {
				err = store.PutProto(tx.Bucket(store.BucketCandidates), []byte(id), c)
			}
			if err != nil {
				return err
			}
			if err := index.Put(key, []byte(id)); err != nil {
				return err
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

// GetCandidate reads a candidate.
func (x *candidateServer) GetCandidate(_ context.Context, req *receivingv1.GetCandidateRequest) (*receivingv1.GetCandidateResponse, error) {
	c, err := viewOne(x.s.db, func(tx *bbolt.Tx) (*receivingv1.Candidate, error) {
		return getCandidate(tx, resourceID(req.GetName(), candidatesCollection))
	})
	if err != nil {
		return nil, err
	}
	return &receivingv1.GetCandidateResponse{Candidate: c}, nil
}

// ListCandidates lists candidates with filters, in id order.
func (x *candidateServer) ListCandidates(_ context.Context, req *receivingv1.ListCandidatesRequest) (*receivingv1.ListCandidatesResponse, error) {
	listing := paging.For("candidates", req.GetVacancy(), req.GetState().String(), req.GetSendingRegion())
	after, err := listing.Decode(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	size := listSize.Of(req.GetPageSize())
	resp := &receivingv1.ListCandidatesResponse{}
	err = x.s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(store.BucketCandidates).Cursor()
		var last []byte
		for k, data := c.Seek(startAfter(after)); k != nil; k, data = c.Next() {
			cand := &receivingv1.Candidate{}
			if err := proto.Unmarshal(data, cand); err != nil {
				return fmt.Errorf("decode candidate: %w", err)
			}
			if (req.GetVacancy() != "" && cand.GetVacancy() != req.GetVacancy()) ||
				(req.GetState() != 0 && cand.GetState() != req.GetState()) ||
				(req.GetSendingRegion() != "" && cand.GetSendingRegion() != req.GetSendingRegion()) {
				continue
			}
			if len(resp.Candidates) == size {
				resp.NextPageToken = listing.Token(last)
				return nil
			}
			resp.Candidates = append(resp.Candidates, cand)
			last = append(last[:0], k...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// DecideCandidate accepts or rejects a pending candidate. Repeating the decision a candidate
// already has returns it unchanged; the other decision is FAILED_PRECONDITION.
func (x *candidateServer) DecideCandidate(_ context.Context, req *receivingv1.DecideCandidateRequest) (*receivingv1.DecideCandidateResponse, error) {
	s := x.s
	resp := &receivingv1.DecideCandidateResponse{}
	err := s.updateOnce("/labour.receiving.v1.CandidateService/DecideCandidate", req, resp, func(tx *bbolt.Tx) error {
		c, err := getCandidate(tx, resourceID(req.GetName(), candidatesCollection))
		if err != nil {
			return err
		}
		accept := req.GetDecision() == receivingv1.Decision_DECISION_ACCEPT
		switch c.GetState() {
		case statePending:
		case stateAccepted, stateRejected:
			if (c.GetState() == stateAccepted) == accept {
				resp.Candidate = c
				return nil
			}
			return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_CANDIDATE_ALREADY_DECIDED, "candidate %s is already %s",
				c.GetName(), stateWord(c.GetState()))
		default:
			return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_CANDIDATE_WITHDRAWN, "candidate %s was withdrawn by the sending side", c.GetName())
		}
		now := s.now()
		if accept {
			vac, err := getVacancy(tx, resourceID(c.GetVacancy(), vacanciesCollection))
			if err != nil {
				return err
			}
			switch deriveStatus(vac, today(now)) {
			case statusClosed:
				return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_VACANCY_CLOSED, "vacancy %s is closed", vac.GetName())
			case statusExpired:
				return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_VACANCY_EXPIRED, "vacancy %s expired after %s", vac.GetName(), formatDate(vac.GetValidThrough()))
			}
			if vac.GetReserved() >= vac.GetHeadcount() {
				return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_HEADCOUNT_FULL, "every position of vacancy %s is reserved (%d of %d)",
					vac.GetName(), vac.GetReserved(), vac.GetHeadcount()).WithMetadata("vacancy", vac.GetName())
			}
			vac.Reserved++
			if err := s.saveVacancy(tx, vac, now); err != nil {
				return err
			}
			c.State, c.Reason = stateAccepted, req.GetReason()
		} else {
			c.State, c.Reason = stateRejected, req.GetReason()
		}
		if err := s.recordDecision(tx, c, now); err != nil {
			return err
		}
		resp.Candidate = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

func stateWord(st receivingv1.CandidateState) string {
	switch st {
	case statePending:
		return "pending"
	case stateAccepted:
		return "accepted"
	case stateRejected:
		return "rejected"
	case stateWithdrawn:
		return "withdrawn"
	}
	return st.String()
}

// WithdrawCandidate withdraws a candidate on the sending side's word, releasing an accepted
// candidate's reservation. Withdrawing a withdrawn or rejected candidate returns it unchanged; a
// worker already onboarded for the vacancy cannot be withdrawn (record that the job was left).
func (x *candidateServer) WithdrawCandidate(ctx context.Context, req *receivingv1.WithdrawCandidateRequest) (*receivingv1.WithdrawCandidateResponse, error) {
	s := x.s
	if err := s.requirePaired(ctx, req.GetSendingRegion()); err != nil {
		return nil, err
	}
	resp := &receivingv1.WithdrawCandidateResponse{}
	err := s.updateOnce("/labour.receiving.v1.CandidateService/WithdrawCandidate", req, resp, func(tx *bbolt.Tx) error {
		c, err := getCandidate(tx, resourceID(req.GetName(), candidatesCollection))
		if err != nil {
			return err
		}
		if c.GetSendingRegion() != req.GetSendingRegion() {
			return apierror.PermissionDenied(commonv1.ErrorReason_ERROR_REASON_NOT_OWNER, "candidate %s was submitted by %s, not %s",
				c.GetName(), c.GetSendingRegion(), req.GetSendingRegion())
		}
		switch c.GetState() {
		case stateWithdrawn, stateRejected:
			resp.Candidate = c
			return nil
		}
		now := s.now()
		if c.GetState() == stateAccepted {
			rec, found, err := getRecord(tx, c.GetWorkerId())
			if err != nil {
				return err
			}
			if found && rec.GetVacancy() == c.GetVacancy() && (rec.GetStatus() == employed || rec.GetStatus() == leftJob) {
				return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_ALREADY_ONBOARDED, "worker %s of candidate %s is already onboarded; record that the job was left instead",
					c.GetWorkerId(), c.GetName())
			}
			vac, err := getVacancy(tx, resourceID(c.GetVacancy(), vacanciesCollection))
			if err != nil {
				return err
			}
			if vac.GetReserved() > 0 {
				vac.Reserved--
			}
			if err := s.saveVacancy(tx, vac, now); err != nil {
				return err
			}
		}
		c.State, c.Reason = stateWithdrawn, req.GetReason()
		if err := s.recordDecision(tx, c, now); err != nil {
			return err
		}
		resp.Candidate = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// keepRegion returns a decision-feed filter for one sending province.
func keepRegion(region string) func([]byte) (bool, error) {
	return func(data []byte) (bool, error) {
		c := &receivingv1.Candidate{}
		if err := proto.Unmarshal(data, c); err != nil {
			return false, fmt.Errorf("decode decision: %w", err)
		}
		return c.GetSendingRegion() == region, nil
	}
}

func decodeCandidate(data []byte) (*receivingv1.Candidate, error) {
	c := &receivingv1.Candidate{}
	if err := proto.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("decode decision: %w", err)
	}
	return c, nil
}

// WatchDecisions streams the decisions on the region's candidates after the request's revision,
// then new ones.
func (x *candidateServer) WatchDecisions(req *receivingv1.WatchDecisionsRequest, stream receivingv1.CandidateService_WatchDecisionsServer) error {
	ctx := stream.Context()
	if err := x.s.requirePaired(ctx, req.GetSendingRegion()); err != nil {
		return err
	}
	return x.s.watch(ctx, x.s.decisions, req.GetSendingRegion(), uint64(req.GetAfterRevision()), keepRegion(req.GetSendingRegion()),
		decoded(decodeCandidate, func(c *receivingv1.Candidate) error {
			return stream.Send(&receivingv1.WatchDecisionsResponse{Candidate: c})
		}),
		func() error { return stream.Send(&receivingv1.WatchDecisionsResponse{}) })
}

// ListDecisions returns a page of the region's decisions after the request's revision. A
// consumer continues after the last candidate's revision, or after head_revision when the page
// is not full (every revision up to the head was looked at).
func (x *candidateServer) ListDecisions(ctx context.Context, req *receivingv1.ListDecisionsRequest) (*receivingv1.ListDecisionsResponse, error) {
	if err := x.s.requirePaired(ctx, req.GetSendingRegion()); err != nil {
		return nil, err
	}
	resp := &receivingv1.ListDecisionsResponse{}
	var err error
	resp.Candidates, resp.HeadRevision, err = listFeed(x.s, x.s.decisions, req.GetAfterRevision(), feedSize.Of(req.GetPageSize()),
		keepRegion(req.GetSendingRegion()), decodeCandidate)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

package matching

// Proposals: workers proposed for vacancies of paired receiving provinces, and what became of
// them.
//
// Storage (BucketProposals, store.go): proposal id -> sendingv1.Proposal. The proposal id is
// "<vacancy_id>~<worker_id>": a worker is proposed for a vacancy at most once (the receiving
// service keeps one candidate per sending province, worker and vacancy, so a second proposal
// would only get the first answer back), the decision feed's candidates find their proposal
// without an index, and the proposals of one vacancy are one key range. The nested bucket
// "candidateNames" maps a proposal id to the candidate's resource name in the receiving service
// (known once the submission or a decision came back), which a withdrawal needs.
//
// States: PENDING_SUBMISSION (committed, in the outbox) -> SUBMITTED (delivered) -> ACCEPTED or
// REJECTED (decision feed). A proposal given up by this side (a no-show who goes back to the
// pool, a refused submission, a withdrawal) becomes REJECTED with the reason.

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending/roster"
)

type workerStatus = sendingv1.WorkerStatus

const (
	stAvailable = sendingv1.WorkerStatus_WORKER_STATUS_AVAILABLE
	stProposed  = sendingv1.WorkerStatus_WORKER_STATUS_PROPOSED
	stAccepted  = sendingv1.WorkerStatus_WORKER_STATUS_ACCEPTED
)

const (
	proposalPending   = sendingv1.ProposalState_PROPOSAL_STATE_PENDING_SUBMISSION
	proposalSubmitted = sendingv1.ProposalState_PROPOSAL_STATE_SUBMITTED
	proposalAccepted  = sendingv1.ProposalState_PROPOSAL_STATE_ACCEPTED
	proposalRejected  = sendingv1.ProposalState_PROPOSAL_STATE_REJECTED

	proposalNamePrefix = "proposals/"
	vacancyNamePrefix  = "vacancies/"
	// proposalIDSep separates the vacancy id from the worker id in a proposal id.
	proposalIDSep = "~"
)

// proposalID is the id of the proposal of workerID for vacancyID.
func ProposalID(vacancyID, workerID string) string {
	return vacancyID + proposalIDSep + workerID
}

// vacancyIDOf returns the id of a vacancy resource name `vacancies/{id}` (or the name itself
// when it has no prefix).
func VacancyIDOf(name string) string { return strings.TrimPrefix(name, vacancyNamePrefix) }

// vacancyName returns the resource name of a vacancy id.
func VacancyName(id string) string { return vacancyNamePrefix + id }

func tsOf(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

// isLive reports whether a proposal still holds its worker: waiting for submission or a
// decision, or accepted.
func IsLive(st sendingv1.ProposalState) bool {
	return st == proposalPending || st == proposalSubmitted || st == proposalAccepted
}

// isUndecided reports whether a proposal waits for a decision (it counts against the vacancy's
// remaining openings).
func IsUndecided(st sendingv1.ProposalState) bool {
	return st == proposalPending || st == proposalSubmitted
}

// putCandidateName records the receiving service's name of the candidate of proposal id.
func PutCandidateName(tx *bbolt.Tx, id, name string) error {
	if name == "" {
		return nil
	}
	b, err := tx.Bucket(BucketProposals).CreateBucketIfNotExists(candidateNamesBucket)
	if err != nil {
		return err
	}
	if old := b.Get([]byte(id)); old != nil {
		cur := &wrapperspb.StringValue{}
		if proto.Unmarshal(old, cur) == nil && cur.GetValue() == name {
			return nil
		}
	}
	return store.PutProto(b, []byte(id), wrapperspb.String(name))
}

// candidateName returns the receiving service's name of the candidate of proposal id, or "".
func CandidateName(tx *bbolt.Tx, id string) (string, error) {
	b := tx.Bucket(BucketProposals).Bucket(candidateNamesBucket)
	if b == nil {
		return "", nil
	}
	v := &wrapperspb.StringValue{}
	if _, err := store.GetProto(b, []byte(id), v); err != nil {
		return "", err
	}
	return v.GetValue(), nil
}

// closeProposal ends a live proposal p: it becomes REJECTED with reason, and its worker, if
// still in status from (PROPOSED or ACCEPTED), goes back to AVAILABLE. A worker who moved on
// meanwhile (an operator changed the status) or was erased is left as is.
func (s *Service) CloseProposal(tx *bbolt.Tx, p *sendingv1.Proposal, reason string, from workerStatus) error {
	if !IsLive(p.GetState()) {
		return nil
	}
	p.State, p.Reason, p.UpdateTime = proposalRejected, Clip(reason, roster.MaxStatusReasonLen), tsOf(s.cfg.Now())
	if err := PutProposal(tx, p); err != nil {
		return err
	}
	return s.MoveIfIn(tx, p.GetWorkerId(), from, stAvailable, reason)
}

// moveIfIn moves worker id from status from to status to when it is in from; a worker in
// another status, missing or erased is left as is (logged), since feeds and relays must not
// stop on what an operator did meanwhile.
func (s *Service) MoveIfIn(tx *bbolt.Tx, id string, from, to workerStatus, reason string) error {
	w, err := roster.Read(tx, id)
	if err != nil {
		if errors.Is(err, apierror.ErrNotFound) {
			s.lg.Warn("worker of a proposal not found", zap.String("worker_id", id))
			return nil
		}
		return err
	}
	if w.GetStatus() != from {
		s.lg.Info("worker not moved: status changed meanwhile", zap.String("worker_id", id),
			zap.String("status", w.GetStatus().String()), zap.String("expected", from.String()), zap.String("to", to.String()))
		return nil
	}
	if err := roster.CheckMove(w, to); err != nil {
		s.lg.Info("worker not moved", zap.String("worker_id", id), zap.Error(err))
		return nil
	}
	_, err = s.roster.ChangeStatus(tx, id, to, Clip(reason, roster.MaxStatusReasonLen))
	return err
}

// --- ListProposals ---

// ListProposals lists proposals in id order (the proposals of one vacancy are one key range).
func (x *matchingServer) ListProposals(_ context.Context, req *sendingv1.ListProposalsRequest) (*sendingv1.ListProposalsResponse, error) {
	listing := proposalsListing(req)
	after, err := listing.Decode(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	size := proposalsSize.Of(req.GetPageSize())
	var prefix []byte
	if req.GetVacancy() != "" {
		prefix = []byte(VacancyIDOf(req.GetVacancy()) + proposalIDSep)
	}
	var page store.Page[*sendingv1.Proposal]
	err = x.s.db.View(func(tx *bbolt.Tx) error {
		var err error
		page, err = proposals.Page(tx, store.Range{Prefix: prefix, After: after}, size, func(k []byte, p *sendingv1.Proposal) bool {
			return !bytes.Equal(k, candidateNamesBucket) &&
				(req.GetReceivingRegion() == "" || p.GetReceivingRegion() == req.GetReceivingRegion()) &&
				(req.GetState() == 0 || p.GetState() == req.GetState())
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	resp := &sendingv1.ListProposalsResponse{Proposals: page.Items}
	if page.Last != nil {
		resp.NextPageToken = listing.Token(page.Last)
	}
	return resp, nil
}

// applyDecision applies the state of candidate c of province code to its proposal and worker:
// ACCEPTED makes an undecided proposal ACCEPTED and its worker PROPOSED -> ACCEPTED; REJECTED
// makes it REJECTED and the worker PROPOSED -> AVAILABLE; WITHDRAWN (always asked for by this
// side) ends a proposal still live, its worker going back to AVAILABLE if it is still PROPOSED
// or ACCEPTED. Anything else, or a repeat, changes nothing.
func (s *Service) ApplyDecision(tx *bbolt.Tx, code string, c *receivingv1.Candidate) error {
	id := ProposalID(VacancyIDOf(c.GetVacancy()), c.GetWorkerId())
	p, ok, err := GetProposal(tx, id)
	if err != nil {
		return err
	}
	if !ok || p.GetReceivingRegion() != code {
		s.lg.Debug("decision on a candidate without a proposal here", zap.String("receiving_region", code),
			zap.String("candidate", c.GetName()))
		return nil
	}
	if err := PutCandidateName(tx, id, c.GetName()); err != nil {
		return err
	}
	switch d := decide(p, c); d.effect {
	case decisionAccepts:
		p.State, p.Reason, p.UpdateTime = proposalAccepted, d.reason, tsOf(s.cfg.Now())
		if err := PutProposal(tx, p); err != nil {
			return err
		}
		return s.MoveIfIn(tx, p.GetWorkerId(), stProposed, stAccepted, "accepted for "+p.GetVacancy())
	case decisionCloses:
		return s.CloseProposal(tx, p, d.reason, d.from)
	}
	return nil
}

// decisionEffect is what a candidate's state does to its proposal.
type decisionEffect int

const (
	decisionNone    decisionEffect = iota // nothing (undecided, or a repeat)
	decisionAccepts                       // the proposal becomes ACCEPTED, its worker PROPOSED -> ACCEPTED
	decisionCloses                        // the proposal ends (CloseProposal), its worker from `from` back to AVAILABLE
)

// decision is the outcome of decide.
type decision struct {
	effect decisionEffect
	reason string       // the proposal's reason
	from   workerStatus // decisionCloses: the status the worker returns to the pool from
}

// decide is the rule of ApplyDecision: what the state of candidate c does to proposal p.
// ACCEPTED accepts an undecided proposal; REJECTED closes an undecided one (its worker was
// PROPOSED); WITHDRAWN closes one still live, its worker PROPOSED or, if it was accepted,
// ACCEPTED. A decision on a decided proposal, or any other state, does nothing.
func decide(p *sendingv1.Proposal, c *receivingv1.Candidate) decision {
	switch c.GetState() {
	case receivingv1.CandidateState_CANDIDATE_STATE_ACCEPTED:
		if IsUndecided(p.GetState()) {
			return decision{effect: decisionAccepts, reason: Clip(c.GetStateReason(), roster.MaxStatusReasonLen)}
		}
	case receivingv1.CandidateState_CANDIDATE_STATE_REJECTED:
		if IsUndecided(p.GetState()) {
			return decision{effect: decisionCloses, reason: rejectionReason(c.GetStateReason()), from: stProposed}
		}
	case receivingv1.CandidateState_CANDIDATE_STATE_WITHDRAWN:
		if IsLive(p.GetState()) {
			from := stProposed
			if p.GetState() == proposalAccepted {
				from = stAccepted
			}
			return decision{effect: decisionCloses, reason: "withdrawn: " + c.GetStateReason(), from: from}
		}
	}
	return decision{}
}

func rejectionReason(r string) string {
	if r == "" {
		return "rejected by the employer"
	}
	return r
}

// MarkSubmitted records in tx the receiving service's answer to a submission to province code:
// proposals still PENDING_SUBMISSION become SUBMITTED (at now), and each candidate's name is
// kept for a later withdrawal.
func MarkSubmitted(tx *bbolt.Tx, code string, cands []*receivingv1.Candidate, now time.Time) error {
	for _, c := range cands {
		id := ProposalID(VacancyIDOf(c.GetVacancy()), c.GetWorkerId())
		p, ok, err := GetProposal(tx, id)
		if err != nil {
			return err
		}
		if !ok || p.GetReceivingRegion() != code {
			continue
		}
		if err := PutCandidateName(tx, id, c.GetName()); err != nil {
			return err
		}
		if p.GetState() == proposalPending {
			p.State = proposalSubmitted
			p.UpdateTime = timestamppb.New(now)
			if err := PutProposal(tx, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// RefuseProposal takes back a proposal the receiving service refused (or that will never reach
// it): if still live it becomes REJECTED with the reason, and its worker goes back from PROPOSED
// to AVAILABLE.
func (s *Service) RefuseProposal(tx *bbolt.Tx, code string, c *receivingv1.Candidate, reason string) error {
	reason = "refused by the receiving service: " + Clip(reason, 300)
	id := ProposalID(VacancyIDOf(c.GetVacancy()), c.GetWorkerId())
	p, ok, err := GetProposal(tx, id)
	if err != nil {
		return err
	}
	if !ok || p.GetReceivingRegion() != code {
		return nil
	}
	return s.CloseProposal(tx, p, reason, stProposed)
}

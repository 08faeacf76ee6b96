package candidates

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/occupation"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/receiving/internal/check"
	"github.com/eastwest/labourlink/services/receiving/internal/province"
	"github.com/eastwest/labourlink/services/receiving/vacancies"
)

// The rules of a candidate: plain functions over messages, without gRPC or bbolt.

// States.
const (
	Pending   = receivingv1.CandidateState_CANDIDATE_STATE_PENDING
	Accepted  = receivingv1.CandidateState_CANDIDATE_STATE_ACCEPTED
	Rejected  = receivingv1.CandidateState_CANDIDATE_STATE_REJECTED
	Withdrawn = receivingv1.CandidateState_CANDIDATE_STATE_WITHDRAWN
)

const maxCandidatesPerRequest = 1000

// StateWord names a state in messages.
func StateWord(st receivingv1.CandidateState) string {
	switch st {
	case Pending:
		return "pending"
	case Accepted:
		return "accepted"
	case Rejected:
		return "rejected"
	case Withdrawn:
		return "withdrawn"
	}
	return st.String()
}

// checkCandidate checks the fields a sending service sets on a candidate.
func checkCandidate(v *apierror.Violations, p *province.Province, prefix, sending string, c *receivingv1.Candidate) {
	f := func(name string) string { return prefix + name }
	check.Name(v, f("vacancy"), c.GetVacancy(), check.Vacancies)
	check.WorkerID(v, f("worker_id"), c.GetWorkerId())
	if pr := check.PersonNameProblem(c.GetFullName()); pr != "" {
		v.Add(f("full_name"), pr)
	}
	if c.GetSex() != commonv1.Sex_SEX_MALE && c.GetSex() != commonv1.Sex_SEX_FEMALE {
		v.Add(f("sex"), "must be SEX_MALE or SEX_FEMALE")
	}
	if a := c.GetAge(); a < vacancies.MinWorkAge || a > vacancies.MaxAge {
		v.Addf(f("age"), "must be %d to %d, got %d", vacancies.MinWorkAge, vacancies.MaxAge, a)
	}
	for i, o := range c.GetOccupations() {
		if !occupation.Known(o) {
			v.Addf(fmt.Sprintf("%soccupations[%d]", prefix, i), "%q is not an ISCO-08 unit group (4 digits, such as 8212)", o)
		}
	}
	if hc := c.GetHomeCounty(); hc == "" {
		v.Add(f("home_county"), "is required: a county-level code of the sending province")
	} else if p.Regions.IsProvince(sending) {
		if err := p.Regions.CheckCountyIn(hc, sending); err != nil {
			v.Add(f("home_county"), err.Error())
		}
	}
}

// checkSubmitted checks candidate i of a submission on its own: its fields, and that its worker
// is one of the submitting province's (a worker id starts with its province's code).
func checkSubmitted(p *province.Province, i int, sending string, c *receivingv1.Candidate) error {
	var v apierror.Violations
	prefix := fmt.Sprintf("candidates[%d].", i)
	checkCandidate(&v, p, prefix, sending, c)
	if err := v.Err(); err != nil {
		return err
	}
	if !regions.IDOf(c.GetWorkerId(), sending) {
		return apierror.InvalidField(commonv1.ErrorReason_ERROR_REASON_WORKER_NOT_OF_REGION, prefix+"worker_id",
			"worker %s is not a worker of %s: a province submits only its own workers", c.GetWorkerId(), sending)
	}
	return nil
}

// submitted is the candidate id submitted by sending for vacancy vac at now, from the fields of
// in. A candidate for a vacancy that is CLOSED or EXPIRED is recorded and rejected at once
// (reason "vacancy closed" or "vacancy expired"), so that the sending side learns it from the
// decision feed instead of retrying the submission; a FILLED vacancy takes pending candidates
// (a place may free up).
func submitted(id, sending string, in *receivingv1.Candidate, vac *receivingv1.Vacancy, now time.Time) *receivingv1.Candidate {
	c := &receivingv1.Candidate{
		Name:           check.Candidates + "/" + id,
		CandidateId:    id,
		Vacancy:        vac.GetName(),
		SendingRegion:  sending,
		WorkerId:       in.GetWorkerId(),
		FullName:       in.GetFullName(),
		Sex:            in.GetSex(),
		Age:            in.GetAge(),
		Occupations:    in.GetOccupations(),
		HomeCounty:     in.GetHomeCounty(),
		RegisteredPoor: in.GetRegisteredPoor(),
		State:          Pending,
		CreateTime:     timestamppb.New(now),
		UpdateTime:     timestamppb.New(now),
	}
	switch vacancies.DeriveStatus(vac, civil.Today(now)) {
	case vacancies.Closed:
		c.State, c.StateReason = Rejected, "vacancy closed"
	case vacancies.Expired:
		c.State, c.StateReason = Rejected, "vacancy expired (valid through "+civil.Format(vac.GetValidThrough())+")"
	}
	return c
}

// decides says whether c takes the decision (accept, or reject): a pending candidate does;
// repeating the decision a candidate already has changes nothing (false, nil); the other
// decision, or any decision on a withdrawn candidate, is FAILED_PRECONDITION.
func decides(c *receivingv1.Candidate, accept bool) (bool, error) {
	switch c.GetState() {
	case Pending:
		return true, nil
	case Accepted, Rejected:
		if (c.GetState() == Accepted) == accept {
			return false, nil
		}
		return false, apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_CANDIDATE_ALREADY_DECIDED, "candidate %s is already %s",
			c.GetName(), StateWord(c.GetState()))
	default:
		return false, apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_CANDIDATE_WITHDRAWN, "candidate %s was withdrawn by the sending side", c.GetName())
	}
}

// withdraws says whether sending may withdraw c and it changes anything: only the province
// that submitted a candidate withdraws it (PERMISSION_DENIED otherwise); a withdrawn or
// rejected candidate stays as it is (false, nil).
func withdraws(c *receivingv1.Candidate, sending string) (bool, error) {
	if c.GetSendingRegion() != sending {
		return false, apierror.PermissionDenied(commonv1.ErrorReason_ERROR_REASON_NOT_OWNER, "candidate %s was submitted by %s, not %s",
			c.GetName(), c.GetSendingRegion(), sending)
	}
	switch c.GetState() {
	case Withdrawn, Rejected:
		return false, nil
	}
	return true, nil
}

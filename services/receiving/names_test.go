package receiving

import (
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/receiving/candidates"
	"github.com/eastwest/labourlink/services/receiving/vacancies"
)

// Short names the service tests use for the subsystems' states and helpers.
const (
	statusOpen    = vacancies.Open
	statusFilled  = vacancies.Filled
	statusClosed  = vacancies.Closed
	statusExpired = vacancies.Expired

	statePending  = candidates.Pending
	stateAccepted = candidates.Accepted
	stateRejected = candidates.Rejected

	expected = receivingv1.EmploymentStatus_EMPLOYMENT_STATUS_EXPECTED
	employed = receivingv1.EmploymentStatus_EMPLOYMENT_STATUS_EMPLOYED
	leftJob  = receivingv1.EmploymentStatus_EMPLOYMENT_STATUS_LEFT_JOB

	outcomeArrived = receivingv1.ArrivalOutcome_ARRIVAL_OUTCOME_ARRIVED
	outcomeNoShow  = receivingv1.ArrivalOutcome_ARRIVAL_OUTCOME_NO_SHOW

	importMessage = vacancies.ImportMessage
	importEnd     = vacancies.ImportEnd
)

var (
	today      = civil.Today
	formatDate = civil.Format
)

func vacancyName(id string) string { return vacancies.Name(id) }

const maxImportChunk = vacancies.MaxImportChunk

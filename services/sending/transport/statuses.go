package transport

import sendingv1 "github.com/eastwest/labourlink/proto/labour/sending/v1"

// Short names of the worker statuses (the lifecycle is services/sending/roster/lifecycle.go).
type workerStatus = sendingv1.WorkerStatus

const (
	stAvailable = sendingv1.WorkerStatus_WORKER_STATUS_AVAILABLE
	stProposed  = sendingv1.WorkerStatus_WORKER_STATUS_PROPOSED
	stAccepted  = sendingv1.WorkerStatus_WORKER_STATUS_ACCEPTED
	stScheduled = sendingv1.WorkerStatus_WORKER_STATUS_SCHEDULED
	stDeparted  = sendingv1.WorkerStatus_WORKER_STATUS_DEPARTED
	stArrived   = sendingv1.WorkerStatus_WORKER_STATUS_ARRIVED
	stEmployed  = sendingv1.WorkerStatus_WORKER_STATUS_EMPLOYED
	stWithdrawn = sendingv1.WorkerStatus_WORKER_STATUS_WITHDRAWN
)

// Short names of the proposal states (services/sending/matching/proposals.go).
const (
	proposalPending   = sendingv1.ProposalState_PROPOSAL_STATE_PENDING_SUBMISSION
	proposalSubmitted = sendingv1.ProposalState_PROPOSAL_STATE_SUBMITTED
	proposalAccepted  = sendingv1.ProposalState_PROPOSAL_STATE_ACCEPTED
	proposalRejected  = sendingv1.ProposalState_PROPOSAL_STATE_REJECTED
)

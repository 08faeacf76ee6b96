package sending

import sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"

// Short names of the worker statuses (the lifecycle is services/sending/roster/lifecycle.go).
const (
	stAvailable = sendingv1.WorkerStatus_WORKER_STATUS_AVAILABLE
	stProposed  = sendingv1.WorkerStatus_WORKER_STATUS_PROPOSED
	stAccepted  = sendingv1.WorkerStatus_WORKER_STATUS_ACCEPTED
	stScheduled = sendingv1.WorkerStatus_WORKER_STATUS_SCHEDULED
	stDeparted  = sendingv1.WorkerStatus_WORKER_STATUS_DEPARTED
	stEmployed  = sendingv1.WorkerStatus_WORKER_STATUS_EMPLOYED
	stWithdrawn = sendingv1.WorkerStatus_WORKER_STATUS_WITHDRAWN
)

// Short names of the proposal states (services/sending/matching/proposals.go).
const (
	proposalPending   = sendingv1.ProposalState_PROPOSAL_STATE_PENDING_SUBMISSION
	proposalSubmitted = sendingv1.ProposalState_PROPOSAL_STATE_SUBMITTED
	proposalRejected  = sendingv1.ProposalState_PROPOSAL_STATE_REJECTED
)

// Short names of the match run states.
const (
	runRunning   = sendingv1.MatchRunState_MATCH_RUN_STATE_RUNNING
	runSucceeded = sendingv1.MatchRunState_MATCH_RUN_STATE_SUCCEEDED
)

package sending

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

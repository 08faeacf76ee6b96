package apierror

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
)

// InternalMessage is the only message a client sees for an error that is not
// a known domain error. The real cause is logged by the server interceptor.
const InternalMessage = "internal error"

// kinds maps each sentinel to its gRPC code, in the order Status tries them, and, where the
// code's name would not say enough, to the ErrorInfo reason used when the error gives none.
var kinds = []struct {
	sentinel error
	code     codes.Code
	reason   commonv1.ErrorReason
}{
	// Before ErrUnavailable, so that an error wrapping both keeps the STORAGE_FULL reason.
	{ErrStorageFull, codes.Unavailable, commonv1.ErrorReason_ERROR_REASON_STORAGE_FULL},
	{ErrInvalidArgument, codes.InvalidArgument, commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED},
	{ErrNotFound, codes.NotFound, commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED},
	{ErrAlreadyExists, codes.AlreadyExists, commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED},
	{ErrFailedPrecondition, codes.FailedPrecondition, commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED},
	{ErrAborted, codes.Aborted, commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED},
	{ErrPermissionDenied, codes.PermissionDenied, commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED},
	{ErrResourceExhausted, codes.ResourceExhausted, commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED},
	{ErrUnavailable, codes.Unavailable, commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED},
	{ErrDeadlineExceeded, codes.DeadlineExceeded, commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED},
}

// defaultReason is the ErrorInfo reason used when the error gives none:
// the code's name in UPPER_SNAKE ("NOT_FOUND", ...).
var defaultReason = map[codes.Code]commonv1.ErrorReason{
	codes.InvalidArgument:    commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT,
	codes.NotFound:           commonv1.ErrorReason_ERROR_REASON_NOT_FOUND,
	codes.AlreadyExists:      commonv1.ErrorReason_ERROR_REASON_ALREADY_EXISTS,
	codes.FailedPrecondition: commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION,
	codes.Aborted:            commonv1.ErrorReason_ERROR_REASON_ABORTED,
	codes.PermissionDenied:   commonv1.ErrorReason_ERROR_REASON_PERMISSION_DENIED,
	codes.ResourceExhausted:  commonv1.ErrorReason_ERROR_REASON_RESOURCE_EXHAUSTED,
	codes.Unavailable:        commonv1.ErrorReason_ERROR_REASON_UNAVAILABLE,
	codes.DeadlineExceeded:   commonv1.ErrorReason_ERROR_REASON_DEADLINE_EXCEEDED,
}

// Status is the one mapping from errors to gRPC status in the suite.
//
//   - nil gives nil (an OK status).
//   - An error wrapping a domain sentinel (at any depth, through %w) gets the
//     sentinel's code, err.Error() as message and a google.rpc.ErrorInfo
//     (reason from the *Error in the chain, else the sentinel's own reason
//     (STORAGE_FULL for ErrStorageFull), else the code name; domain Domain). Invalid arguments also carry google.rpc.BadRequest with the
//     field violations of a *ViolationsError in the chain.
//   - context.Canceled and context.DeadlineExceeded give Canceled and
//     DeadlineExceeded.
//   - An error that already is a gRPC status (also wrapped) passes through.
//   - Anything else gives Internal with the generic message "internal error";
//     the caller logs the real error.
func Status(err error) *status.Status {
	if err == nil {
		return nil
	}
	for _, k := range kinds {
		if errors.Is(err, k.sentinel) {
			return domainStatus(k.code, k.reason, err)
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.New(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.New(codes.DeadlineExceeded, err.Error())
	}
	if st, ok := status.FromError(err); ok {
		return st
	}
	return status.New(codes.Internal, InternalMessage)
}

// Code returns Status(err).Code().
func Code(err error) codes.Code {
	return Status(err).Code()
}

// IsKnown reports whether Status gives err a meaningful status: err is nil,
// wraps a domain sentinel or a context error, or is a gRPC status. An unknown
// error is reported to the client as Internal "internal error" and should be
// logged in full by the caller.
func IsKnown(err error) bool {
	if err == nil {
		return true
	}
	for _, k := range kinds {
		if errors.Is(err, k.sentinel) {
			return true
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	_, ok := status.FromError(err)
	return ok
}

func domainStatus(code codes.Code, reason commonv1.ErrorReason, err error) *status.Status {
	st := status.New(code, err.Error())

	if reason == commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
		reason = defaultReason[code]
	}
	info := &errdetails.ErrorInfo{Reason: Reason(reason), Domain: Domain}
	var e *Error
	if errors.As(err, &e) {
		if e.reason != commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
			info.Reason = Reason(e.reason)
		}
		info.Metadata = e.Metadata()
	}
	details := []protoadapt.MessageV1{info}

	var ve *ViolationsError
	if code == codes.InvalidArgument && errors.As(err, &ve) {
		br := &errdetails.BadRequest{}
		for _, fv := range ve.list {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
				Field:       fv.Field,
				Description: fv.Description,
			})
		}
		details = append(details, br)
	}
	withDetails, derr := st.WithDetails(details...)
	if derr != nil {
		// Only fails if a detail cannot be marshalled; keep code and message.
		return st
	}
	return withDetails
}

// Package apierror holds the domain error sentinels of labourlink, the field
// violation builder used by request validation, and the one mapping from
// domain errors to gRPC status codes (Status).
//
// Domain code returns sentinels wrapped with %w (directly or through the
// helpers NotFound, FailedPrecondition, ...). The gRPC edge calls Status once;
// nothing else in the suite chooses gRPC codes.
//
// Every ErrorInfo (and ItemRefusal) reason is a labourlink.common.v1.ErrorReason value, the stable
// set documented in proto/labourlink/common/v1/common.proto: the helpers take the enum, Reason gives
// its wire form ("VACANCY_CLOSED") and ParseReason reads one back. A new reason is a new enum
// value, never a string literal (TestNoLiteralReasons).
package apierror

import (
	"errors"
	"fmt"

	"golang.org/x/text/language"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	"github.com/eastwest/labourlink/services/platform/i18n"
)

// Domain is the google.rpc.ErrorInfo domain of every error the suite returns.
const Domain = "labourlink.eastwest"

// Domain sentinels. Wrap them with %w (or use the helpers below); compare with
// errors.Is.
var (
	ErrNotFound           = errors.New("not found")
	ErrAlreadyExists      = errors.New("already exists")
	ErrFailedPrecondition = errors.New("failed precondition")
	ErrInvalidArgument    = errors.New("invalid argument")
	// ErrAborted is a concurrency conflict: the caller may retry the whole
	// read-modify-write sequence.
	ErrAborted           = errors.New("aborted")
	ErrPermissionDenied  = errors.New("permission denied")
	ErrUnavailable       = errors.New("unavailable")
	ErrResourceExhausted = errors.New("resource exhausted")
	// ErrDeadlineExceeded is a time limit of the server's own that ran out (for example a
	// stream that sent no message for too long); a caller's deadline is context.DeadlineExceeded.
	ErrDeadlineExceeded = errors.New("deadline exceeded")
	// ErrStorageFull is a write refused because the service's disk (or its quota) has no space
	// left: nothing was written. It maps to UNAVAILABLE with reason STORAGE_FULL, not to
	// RESOURCE_EXHAUSTED: no caller can change it by asking for less (RESOURCE_EXHAUSTED says
	// "you asked for too much"), it passes once an operator frees space, and UNAVAILABLE is
	// what every client of the suite already retries with backoff (services/platform/peers' retry
	// policy, the outbox). services/platform/store wraps it (store.ErrStorageFull).
	ErrStorageFull = errors.New("storage full")
)

// Error is a domain error with a human-readable message, an optional
// machine-readable reason (the wire form of a commonv1.ErrorReason, UPPER_SNAKE, sent as
// google.rpc.ErrorInfo.reason)
// and optional metadata. It wraps one of the sentinels.
type Error struct {
	kind     error
	msg      string
	text     i18n.Message // msg as format and arguments
	reason   commonv1.ErrorReason
	metadata map[string]string
}

// Error returns the message.
func (e *Error) Error() string { return e.msg }

// Unwrap returns the sentinel the error wraps.
func (e *Error) Unwrap() error { return e.kind }

// Reason returns the ErrorInfo reason in its wire form ("VACANCY_CLOSED"), or "" if none was
// given.
func (e *Error) Reason() string { return Reason(e.reason) }

// Localized returns the message in the language tag (services/platform/i18n).
func (e *Error) Localized(tag language.Tag) string {
	if len(e.text.Args) == 0 {
		return i18n.Translate(tag, e.msg)
	}
	return e.text.In(tag)
}

// ErrorReason returns the reason, or ERROR_REASON_UNSPECIFIED if none was given.
func (e *Error) ErrorReason() commonv1.ErrorReason { return e.reason }

// Metadata returns a copy of the ErrorInfo metadata (nil if none).
func (e *Error) Metadata() map[string]string {
	if len(e.metadata) == 0 {
		return nil
	}
	m := make(map[string]string, len(e.metadata))
	for k, v := range e.metadata {
		m[k] = v
	}
	return m
}

// WithMetadata returns a copy of e with key=value added to its ErrorInfo
// metadata. Never put personal data (identity numbers, phones, names) here.
func (e *Error) WithMetadata(key, value string) *Error {
	c := *e
	c.metadata = make(map[string]string, len(e.metadata)+1)
	for k, v := range e.metadata {
		c.metadata[k] = v
	}
	c.metadata[key] = value
	return &c
}

func newError(kind error, reason commonv1.ErrorReason, format string, args []any) *Error {
	return &Error{kind: kind, reason: reason, msg: fmt.Sprintf(format, args...), text: i18n.Message{Format: format, Args: args}}
}

// New returns an error wrapping the sentinel kind with the given reason
// (may be ERROR_REASON_UNSPECIFIED) and message.
func New(kind error, reason commonv1.ErrorReason, format string, args ...any) *Error {
	return newError(kind, reason, format, args)
}

// NotFound returns an error wrapping ErrNotFound.
func NotFound(format string, args ...any) *Error {
	return newError(ErrNotFound, commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED, format, args)
}

// AlreadyExists returns an error wrapping ErrAlreadyExists.
func AlreadyExists(format string, args ...any) *Error {
	return newError(ErrAlreadyExists, commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED, format, args)
}

// FailedPrecondition returns an error wrapping ErrFailedPrecondition with an
// ErrorInfo reason such as commonv1.ErrorReason_ERROR_REASON_VACANCY_CLOSED ("VACANCY_CLOSED").
func FailedPrecondition(reason commonv1.ErrorReason, format string, args ...any) *Error {
	return newError(ErrFailedPrecondition, reason, format, args)
}

// InvalidArgument returns an error wrapping ErrInvalidArgument without field
// violations. Prefer Violations when the bad field is known.
func InvalidArgument(format string, args ...any) *Error {
	return newError(ErrInvalidArgument, commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED, format, args)
}

// Aborted returns an error wrapping ErrAborted (conflict; retry may succeed).
func Aborted(reason commonv1.ErrorReason, format string, args ...any) *Error {
	return newError(ErrAborted, reason, format, args)
}

// PermissionDenied returns an error wrapping ErrPermissionDenied.
func PermissionDenied(reason commonv1.ErrorReason, format string, args ...any) *Error {
	return newError(ErrPermissionDenied, reason, format, args)
}

// Unavailable returns an error wrapping ErrUnavailable.
func Unavailable(format string, args ...any) *Error {
	return newError(ErrUnavailable, commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED, format, args)
}

// ResourceExhausted returns an error wrapping ErrResourceExhausted.
func ResourceExhausted(reason commonv1.ErrorReason, format string, args ...any) *Error {
	return newError(ErrResourceExhausted, reason, format, args)
}

// DeadlineExceeded returns an error wrapping ErrDeadlineExceeded.
func DeadlineExceeded(reason commonv1.ErrorReason, format string, args ...any) *Error {
	return newError(ErrDeadlineExceeded, reason, format, args)
}

// ErrNotValidated is wrapped by the error a ValidateRequest returns for a request type its
// switch does not name (NotValidated): a method added to the API without validation. The server
// refuses such a request (INTERNAL) instead of running its handler on unchecked input, and the
// test of every method (services/daemon) fails.
var ErrNotValidated = errors.New("no request validation")

// NotValidated returns the error of a ValidateRequest's default case.
func NotValidated(req any) error {
	return fmt.Errorf("%w for %T", ErrNotValidated, req)
}

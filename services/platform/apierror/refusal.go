package apierror

import (
	"errors"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
)

// Refusal describes err, the refusal of one item of a message answered item by item (a
// candidate of a submission, an entry of a manifest, a ledger event), as the response carries
// it: the code and reason Status gives err, the first field it names relative to the item
// (prefix, such as "events[3].", is cut), and its message. ok is false for an error that must
// fail the whole call instead: an unknown (internal) error, a context error, or UNAVAILABLE.
func Refusal(index int, item, prefix string, err error) (r *commonv1.ItemRefusal, ok bool) {
	if err == nil || !IsKnown(err) || errors.Is(err, ErrUnavailable) {
		return nil, false
	}
	st := Status(err)
	switch st.Code() {
	case codes.Canceled, codes.DeadlineExceeded, codes.Unavailable, codes.Internal, codes.Unknown:
		return nil, false
	}
	r = &commonv1.ItemRefusal{Index: int32(index), Item: item, Code: code.Code(st.Code()), Reason: Reason(defaultReason[st.Code()]), Message: st.Message()}
	reason, fields := DetailsOf(st)
	if reason != "" {
		r.Reason = reason
	}
	if len(fields) > 0 {
		r.Field = strings.TrimPrefix(fields[0].Field, prefix)
	}
	if prefix != "" {
		r.Message = strings.ReplaceAll(r.Message, prefix, "")
	}
	return r, true
}

// DetailsOf reads the details this package attaches to a status: the ErrorInfo reason ("" if
// none) and the BadRequest field violations. Both sides use it: the edge that builds a status,
// and a peer that reads one it was answered.
func DetailsOf(st *status.Status) (reason string, fields []FieldViolation) {
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			if d.GetReason() != "" {
				reason = d.GetReason()
			}
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				fields = append(fields, FieldViolation{Field: v.GetField(), Description: v.GetDescription()})
			}
		}
	}
	return reason, fields
}

// InvalidField is an INVALID_ARGUMENT error with a reason of its own that also
// names the field at fault: Status gives both the ErrorInfo reason and a BadRequest field
// violation (field, the message).
func InvalidField(reason commonv1.ErrorReason, field, format string, args ...any) error {
	e := newError(ErrInvalidArgument, reason, format, args)
	var v Violations
	v.Add(field, e.msg)
	return &fieldError{err: e, violations: v.Err()}
}

type fieldError struct {
	err        *Error
	violations error
}

func (e *fieldError) Error() string   { return e.err.Error() }
func (e *fieldError) Unwrap() []error { return []error{e.err, e.violations} }

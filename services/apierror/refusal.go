package apierror

import (
	"errors"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"

	commonv1 "github.com/eastwest/labourlink/proto/labour/common/v1"
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
	r = &commonv1.ItemRefusal{Index: int32(index), Item: item, Code: int32(st.Code()), Reason: Reason(defaultReason[st.Code()]), Message: st.Message()}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			if d.GetReason() != "" {
				r.Reason = d.GetReason()
			}
		case *errdetails.BadRequest:
			if vs := d.GetFieldViolations(); len(vs) > 0 && r.Field == "" {
				r.Field = strings.TrimPrefix(vs[0].GetField(), prefix)
			}
		}
	}
	if prefix != "" {
		r.Message = strings.ReplaceAll(r.Message, prefix, "")
	}
	return r, true
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

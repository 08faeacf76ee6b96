package outbox

import (
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
)

// Refusal is a peer's answer that sending the same message again cannot change: the message
// goes to the quarantine with it.
type Refusal struct {
	// Code is the gRPC code of the answer.
	Code codes.Code
	// Reason is the UPPER_SNAKE reason (google.rpc.ErrorInfo), or the code's name.
	Reason string
	// Message is the peer's message, with the fields at fault when it named them.
	Message string
}

func (r Refusal) String() string {
	return fmt.Sprintf("%s (%s): %s", r.Reason, r.Code, r.Message)
}

// RefusedForGood reports whether err is an answer a retry cannot change: the request itself is
// wrong for the peer (INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION,
// OUT_OF_RANGE). Everything else (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, INTERNAL,
// PERMISSION_DENIED from a misconfigured identity, ...) is retried: it may be the link, the
// peer's state or its configuration, which an operator fixes without touching the message.
func RefusedForGood(err error) bool {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.FailedPrecondition, codes.OutOfRange:
		return true
	}
	return false
}

// RefusalOf describes the gRPC error err as a Refusal: its code, the ErrorInfo reason (else the
// code's name) and its message followed by the BadRequest field violations it carries.
func RefusalOf(err error) Refusal {
	st := status.Convert(err)
	r := Refusal{Code: st.Code(), Reason: codeReason(st.Code()), Message: st.Message()}
	reason, violations := apierror.DetailsOf(st)
	if reason != "" {
		r.Reason = reason
	}
	var fields []string
	for _, v := range violations {
		fields = append(fields, v.Field+": "+v.Description)
	}
	if len(fields) > 0 && !strings.Contains(r.Message, fields[0]) {
		r.Message += " [" + strings.Join(fields, "; ") + "]"
	}
	return r
}

// ItemRefusal is the Refusal of one item refused inside a message that was answered item by item
// (commonv1.ItemRefusal).
func ItemRefusal(ir *commonv1.ItemRefusal) Refusal {
	r := Refusal{Code: codes.Code(ir.GetCode()), Reason: ir.GetReason(), Message: ir.GetMessage()}
	if r.Reason == "" {
		r.Reason = codeReason(r.Code)
	}
	if f := ir.GetField(); f != "" && !strings.Contains(r.Message, f) {
		r.Message = f + ": " + r.Message
	}
	return r
}

// codeReason is the UPPER_SNAKE name of c ("FAILED_PRECONDITION"): its google.rpc.Code name.
func codeReason(c codes.Code) string {
	return code.Code(c).String()
}

package grpcserver

import (
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/eastwest/labourlink/services/platform/privacy"
)

// The privacy guard (services/platform/privacy) runs on every request of every service, once, here at
// the edge: just before validation, so that it sees the request before any validator can quote
// a value in an error message (errors are logged and sent back), and before any handler can
// store or forward it. A request that holds an identity number or a phone number in a field
// that may not hold one is refused whole with INVALID_ARGUMENT, a field violation per field and
// never the value. That includes messages that carry several items and are otherwise answered
// item by item: personal data in one item refuses the message, before anything of it is
// recorded. Bulk imports are the exception their service declares (privacy.CheckedPerItem):
// their rows hold personal data on purpose and are checked, and rejected, one by one.

// PersonalDataFields is implemented by a registered service whose requests carry personal data
// in some fields on purpose (the sending roster's identity numbers and phones, an escort's
// phone). Every other field of every request is refused if it holds any; a service that does
// not implement it may receive none at all.
type PersonalDataFields interface {
	PersonalDataFields() privacy.Allow
}

// checkPersonalData applies the guard to req, with the allow-list of srv.
func checkPersonalData(srv, req any) error {
	m, ok := req.(proto.Message)
	if !ok {
		return nil
	}
	var allow privacy.Allow
	if p, ok := srv.(PersonalDataFields); ok {
		allow = p.PersonalDataFields()
	}
	if err := privacy.Check(m, allow); err != nil {
		return invalid(err)
	}
	return nil
}

func (ic *interceptors) streamPrivacy(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &stream{ServerStream: ss, ctx: ss.Context(), validate: func(m any) error {
		return checkPersonalData(srv, m)
	}})
}

// loggableRequestID returns id for the log line, or a placeholder when it holds an identity
// number: request ids are chosen by clients, and the log must not hold personal data.
func loggableRequestID(id string) string {
	if privacy.ContainsIDNumber(id) {
		return "(withheld: holds an identity number)"
	}
	return id
}

package apierror

import (
	"strings"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
)

// reasonPrefix is the prefix of every commonv1.ErrorReason value name that the wire drops.
const reasonPrefix = "ERROR_REASON_"

// Reason returns the wire form of r, the google.rpc.ErrorInfo.reason (and ItemRefusal.reason)
// string: the value's name without its ERROR_REASON_ prefix, such as "VACANCY_CLOSED" for
// commonv1.ErrorReason_ERROR_REASON_VACANCY_CLOSED. It returns "" for ERROR_REASON_UNSPECIFIED
// and for a number that names no value.
func Reason(r commonv1.ErrorReason) string {
	if r == commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
		return ""
	}
	name, ok := commonv1.ErrorReason_name[int32(r)]
	if !ok {
		return ""
	}
	return strings.TrimPrefix(name, reasonPrefix)
}

// ParseReason returns the commonv1.ErrorReason whose wire form is s ("VACANCY_CLOSED"), or
// ERROR_REASON_UNSPECIFIED when s is none (a reason of another domain, a newer peer's, or "").
// Consumers compare reasons with it: ParseReason(info.GetReason()) == commonv1.ErrorReason_...
func ParseReason(s string) commonv1.ErrorReason {
	if s == "" || strings.HasPrefix(s, reasonPrefix) {
		return commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED
	}
	return commonv1.ErrorReason(commonv1.ErrorReason_value[reasonPrefix+s])
}

package apierror

import (
	"errors"
	"strings"

	"golang.org/x/text/language"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/eastwest/labourlink/services/platform/i18n"
)

// StatusIn is Status with the message also in the language tag (AIP-193): a
// google.rpc.LocalizedMessage detail beside the ErrorInfo and the English BadRequest, and, for
// invalid arguments, each BadRequest field violation's localized_message. The status message
// and the field violations' descriptions stay English. tag is the language the caller asked
// for (i18n.FromAcceptLanguage of its accept-language header); the LocalizedMessage's locale
// is the catalog language it was rendered in ("zh-Hans" or "en").
func StatusIn(err error, tag language.Tag) *status.Status {
	st := Status(err)
	if st == nil || st.Code() == codes.OK {
		return st
	}
	tag = i18n.Match(tag)
	locale := tag.String()
	p := st.Proto()
	var ve *ViolationsError
	var e *Error
	var text string
	switch {
	case st.Code() == codes.InvalidArgument && errors.As(err, &ve):
		loc := ve.LocalizedDescriptions(tag)
		for _, d := range p.GetDetails() {
			if !d.MessageIs((*errdetails.BadRequest)(nil)) {
				continue
			}
			br := &errdetails.BadRequest{}
			if d.UnmarshalTo(br) != nil {
				continue
			}
			parts := make([]string, len(br.GetFieldViolations()))
			for i, fv := range br.GetFieldViolations() {
				if i < len(loc) {
					fv.LocalizedMessage = &errdetails.LocalizedMessage{Locale: locale, Message: loc[i]}
					parts[i] = i18n.Sprintf(tag, "%s: %s", fv.GetField(), loc[i])
				}
			}
			text = i18n.Sprintf(tag, "invalid argument: %s", strings.Join(parts, i18n.Sprintf(tag, "; ")))
			rebuilt := status.New(st.Code(), st.Message())
			var details []protoadapt.MessageV1
			for _, old := range st.Details() {
				switch old := old.(type) {
				case *errdetails.BadRequest:
					details = append(details, br)
				case protoadapt.MessageV1:
					details = append(details, old)
				}
			}
			if withDetails, derr := rebuilt.WithDetails(details...); derr == nil {
				st = withDetails
			}
			break
		}
	case errors.As(err, &e) && st.Message() == err.Error():
		text = e.Localized(tag)
	default:
		text = i18n.Translate(tag, st.Message())
	}
	if text == "" {
		text = st.Message()
	}
	withLocalized, derr := st.WithDetails(&errdetails.LocalizedMessage{Locale: locale, Message: text})
	if derr != nil {
		return st
	}
	return withLocalized
}

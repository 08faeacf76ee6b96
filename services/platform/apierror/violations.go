package apierror

import (
	"fmt"
	"strings"

	"golang.org/x/text/language"

	"github.com/eastwest/labourlink/services/platform/i18n"
)

// FieldViolation is one bad field of a request: the field path
// (e.g. "worker.phone" or "rows[3].id_number") and why it is bad.
type FieldViolation struct {
	Field       string
	Description string
}

// Violations collects field violations while validating a request.
// The zero value is ready to use:
//
//	var v apierror.Violations
//	v.Add("worker.phone", "must be an 11-digit mobile number")
//	if err := v.Err(); err != nil { return err }
type Violations struct {
	list []FieldViolation
	msgs []i18n.Message // per violation: its description as format and arguments
}

// Add records that field is invalid for the given reason. The description is rendered in
// another language by the catalog (services/platform/i18n) if it is one of its formats, or an
// instance of one; prefer Addf for a description with arguments.
func (v *Violations) Add(field, description string) {
	v.list = append(v.list, FieldViolation{Field: field, Description: description})
	v.msgs = append(v.msgs, i18n.Message{Format: description, Args: nil})
}

// Addf records that field is invalid for the reason fmt.Sprintf(format, args...), keeping the
// format (a key of the catalog, services/platform/i18n) and its arguments so that the reason
// can be rendered in the caller's language.
func (v *Violations) Addf(field, format string, args ...any) {
	v.list = append(v.list, FieldViolation{Field: field, Description: fmt.Sprintf(format, args...)})
	v.msgs = append(v.msgs, i18n.Message{Format: format, Args: args})
}

// AddUnder records item's violations under prefix, the path of one item of a request
// ("events[3]"): each field becomes prefix.field, and a violation of the item as a whole (field
// "") prefix itself. A validator of one item checks it with the item's own field names and its
// caller places them, so nothing is built for the items that pass.
func (v *Violations) AddUnder(prefix string, item *Violations) {
	for i, f := range item.list {
		if f.Field == "" {
			f.Field = prefix
		} else {
			f.Field = prefix + "." + f.Field
		}
		v.list = append(v.list, f)
		v.msgs = append(v.msgs, item.msgs[i])
	}
}

// Len returns the number of violations recorded.
func (v *Violations) Len() int { return len(v.list) }

// List returns a copy of the violations recorded so far.
func (v *Violations) List() []FieldViolation {
	return append([]FieldViolation(nil), v.list...)
}

// Err returns nil if no violation was recorded, else an error that wraps
// ErrInvalidArgument and carries a copy of the violations.
func (v *Violations) Err() error {
	if len(v.list) == 0 {
		return nil
	}
	return &ViolationsError{list: v.List(), msgs: append([]i18n.Message(nil), v.msgs...)}
}

// ViolationsError is the error returned by Violations.Err.
type ViolationsError struct {
	list []FieldViolation
	msgs []i18n.Message
}

// Error lists the violations, e.g.
// "invalid argument: worker.phone: must be an 11-digit mobile number".
func (e *ViolationsError) Error() string {
	var b strings.Builder
	b.WriteString("invalid argument: ")
	for i, fv := range e.list {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(fv.Field)
		b.WriteString(": ")
		b.WriteString(fv.Description)
	}
	return b.String()
}

// Unwrap returns ErrInvalidArgument.
func (e *ViolationsError) Unwrap() error { return ErrInvalidArgument }

// Violations returns a copy of the field violations.
func (e *ViolationsError) Violations() []FieldViolation {
	return append([]FieldViolation(nil), e.list...)
}

// LocalizedDescriptions returns the description of each violation in the language tag (in the
// order of Violations).
func (e *ViolationsError) LocalizedDescriptions(tag language.Tag) []string {
	out := make([]string, len(e.list))
	for i, fv := range e.list {
		out[i] = localize(tag, fv.Description, e.msgs, i)
	}
	return out
}

// localize renders violation i: from its format and arguments when it has them, else by
// matching its English text against the catalog.
func localize(tag language.Tag, english string, msgs []i18n.Message, i int) string {
	if i < len(msgs) && msgs[i].Args != nil {
		return msgs[i].In(tag)
	}
	return i18n.Translate(tag, english)
}

package apierror

import (
	"strings"
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
}

// Add records that field is invalid for the given reason.
func (v *Violations) Add(field, description string) {
	v.list = append(v.list, FieldViolation{Field: field, Description: description})
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
	return &ViolationsError{list: v.List()}
}

// ViolationsError is the error returned by Violations.Err.
type ViolationsError struct {
	list []FieldViolation
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

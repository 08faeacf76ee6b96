package receiving

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/eastwest/labourlink/services/codes/personname"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/store"
)

// textProblem returns why s is not acceptable plain text of at most maxRunes characters, or "".
func textProblem(s string, maxRunes int) string {
	if !utf8.ValidString(s) {
		return "is not UTF-8 text"
	}
	if n := utf8.RuneCountInString(s); n > maxRunes {
		return fmt.Sprintf("is %d characters long, at most %d are allowed", n, maxRunes)
	}
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) }) >= 0 {
		return "must not contain control characters (line breaks, tabs)"
	}
	return ""
}

// checkText adds a violation if s is not plain text; required also refuses blank text.
func checkText(v *apierror.Violations, field, s string, maxRunes int, required bool) {
	if required && strings.TrimSpace(s) == "" {
		v.Add(field, "is required")
		return
	}
	if p := textProblem(s, maxRunes); p != "" {
		v.Add(field, p)
	}
}

// personNameProblem returns why s is not a plain person name, or "" (services/codes/personname: the
// same rule the sending service applies on import).
func personNameProblem(s string) string {
	_, problem := personname.Check(s)
	return problem
}

// idProblem returns why s is not an acceptable opaque id (ours or a peer's), or "": 1 to 100
// printable ASCII characters without spaces or slashes.
func idProblem(s string) string {
	if s == "" {
		return "is required"
	}
	if len(s) > 100 {
		return fmt.Sprintf("is %d characters long, at most 100 are allowed", len(s))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' || c == '/' {
			return fmt.Sprintf("must be printable ASCII without spaces or slashes, got %q at %d", rune(c), i+1)
		}
	}
	return ""
}

// checkWorkerID adds a violation for a bad worker id. One that is or looks like an identity
// number never gets here: the privacy guard refuses it at the edge (privacy.go).
func checkWorkerID(v *apierror.Violations, field, s string) {
	if p := idProblem(s); p != "" {
		v.Add(field, p)
	}
}

// resourceID returns the id of name "collection/{id}", or "" when name has another form.
func resourceID(name, collection string) string {
	id, ok := strings.CutPrefix(name, collection+"/")
	if !ok || idProblem(id) != "" {
		return ""
	}
	return id
}

// checkName adds a violation unless name is "collection/{id}".
func checkName(v *apierror.Violations, field, name, collection string) {
	if resourceID(name, collection) == "" {
		if name == "" {
			v.Add(field, fmt.Sprintf("is required: %s/{id}", collection))
			return
		}
		v.Add(field, fmt.Sprintf("must be a resource name %s/{id}", collection))
	}
}

// checkRequestID adds a violation for an unusable request id (empty is allowed): at most 200
// characters of text without control characters.
func checkRequestID(v *apierror.Violations, field, id string) {
	store.CheckRequestID(v, field, id)
}

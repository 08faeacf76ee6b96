package receiving

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/eastwest/labourlink/services/apierror"
	"github.com/eastwest/labourlink/services/idnumber"
	"github.com/eastwest/labourlink/services/personname"
)

// No resident identity number may reach this service: workers are known here only by the
// opaque worker id of their sending province. Every request is scanned (scanIdentityNumbers)
// before its handler runs, and a worker id that has the shape of an identity number is refused
// even when its check character is wrong (a typo in a real number is still personal data).

// workerIDMessage is the description of a worker id that is (or looks like) an identity number.
const workerIDMessage = "worker_id must be the opaque worker id, never an identity number"

// identityMessage is the description of any other text holding an identity number.
const identityMessage = "must not contain a resident identity number (workers are known here only by their opaque worker id)"

// isDigit reports whether c is an ASCII digit.
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// looksLikeIDNumber reports whether s has the shape of an 18-character identity number: 17
// digits and a digit or X, valid check character or not.
func looksLikeIDNumber(s string) bool {
	if len(s) != idnumber.Length {
		return false
	}
	for i := 0; i < 17; i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	c := s[17]
	return isDigit(c) || c == 'X' || c == 'x'
}

// containsIDNumber reports whether s holds a valid identity number as a separate number: 18
// digits, or 17 digits and X, with no digit directly before or after (a number embedded in a
// longer run of digits is not one; letters around it do not matter, as in "ID52010219...").
func containsIDNumber(s string) bool {
	for i := 0; i+idnumber.Length <= len(s); i++ {
		if i > 0 && isDigit(s[i-1]) {
			continue
		}
		w := s[i : i+idnumber.Length]
		if !looksLikeIDNumber(w) {
			continue
		}
		if end := i + idnumber.Length; end < len(s) && isDigit(s[end]) {
			continue
		}
		if _, err := idnumber.Parse(w); err == nil {
			return true
		}
	}
	return false
}

// identityNumberError returns the violations of scanIdentityNumbers for m, or nil. Validation
// returns them alone, before any other check: other checks quote the values they refuse, and
// an identity number must not be echoed in an error (errors are logged).
func identityNumberError(m proto.Message) error {
	var v apierror.Violations
	scanIdentityNumbers(&v, m)
	return v.Err()
}

// isWorkerIDField reports whether a field holds worker ids.
func isWorkerIDField(name protoreflect.Name) bool {
	return name == "worker_id" || name == "boarded_worker_ids"
}

// scanIdentityNumbers adds a violation for every string field of m (at any depth) that holds
// an identity number, and for every worker id field that looks like one.
func scanIdentityNumbers(v *apierror.Violations, m proto.Message) {
	if m == nil {
		return
	}
	scanMessage(v, "", m.ProtoReflect())
}

func scanMessage(v *apierror.Violations, prefix string, m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, val protoreflect.Value) bool {
		path := prefix + string(fd.Name())
		switch {
		case fd.IsMap():
			// No map fields in the receiving API.
		case fd.IsList():
			l := val.List()
			for i := 0; i < l.Len(); i++ {
				scanValue(v, fmt.Sprintf("%s[%d]", path, i), fd, l.Get(i))
			}
		default:
			scanValue(v, path, fd, val)
		}
		return true
	})
}

func scanValue(v *apierror.Violations, path string, fd protoreflect.FieldDescriptor, val protoreflect.Value) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		s := val.String()
		if isWorkerIDField(fd.Name()) {
			if looksLikeIDNumber(strings.TrimSpace(s)) || containsIDNumber(s) {
				v.Add(path, workerIDMessage)
			}
			return
		}
		if containsIDNumber(s) {
			v.Add(path, identityMessage)
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		scanMessage(v, path+".", val.Message())
	}
}

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

// personNameProblem returns why s is not a plain person name, or "" (services/personname: the
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

// checkWorkerID adds violations for a bad worker id, with the identity-number message first.
func checkWorkerID(v *apierror.Violations, field, s string) {
	if looksLikeIDNumber(strings.TrimSpace(s)) || containsIDNumber(s) {
		return // scanIdentityNumbers reports it
	}
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
	if id == "" {
		return
	}
	if p := textProblem(id, 200); p != "" {
		v.Add(field, p)
	}
}

package store

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/eastwest/labourlink/services/platform/apierror"
)

// Identifiers a client chooses: request ids (every mutating RPC), import ids (ImportWorkers,
// ImportVacancies), ledger event ids (ReportEvents) and a vacancy's external_reference. They are
// kept as bbolt keys, so they have one documented length limit, MaxClientIDLen, here and
// nowhere else (docs/api.md "Limits on client-chosen ids"); their character rules follow.

// MaxClientIDLen is the longest identifier a client may choose, in characters (Unicode code
// points): 256. Generous enough for a UUID (36), a key derived from a client's own record, and
// any file name (at most 255 bytes on ext4, 255 UTF-16 units on NTFS: never more than 255
// characters), and not less than any limit these ids had before (request ids 200, import ids
// and external references 100, event ids 256): nothing accepted then is refused now. At most
// 1 KiB of UTF-8, well within a bbolt key.
const MaxClientIDLen = 256

// ClientIDLenProblem returns why id is longer than MaxClientIDLen characters, or "".
func ClientIDLenProblem(id string) string {
	if n := utf8.RuneCountInString(id); n > MaxClientIDLen {
		return fmt.Sprintf("is %d characters long, at most %d are allowed", n, MaxClientIDLen)
	}
	return ""
}

// textIDProblem returns why id is not UTF-8 text of at most MaxClientIDLen characters without
// control characters, or "".
func textIDProblem(id string) string {
	switch {
	case !utf8.ValidString(id):
		return "is not valid UTF-8"
	case ClientIDLenProblem(id) != "":
		return ClientIDLenProblem(id)
	case strings.IndexFunc(id, unicode.IsControl) >= 0:
		return "has a control character (a line break, a tab, ...)"
	}
	return ""
}

// CheckRequestID adds a violation on field (request_id) to v unless id is empty (the request is
// then not idempotent) or UTF-8 text of at most MaxClientIDLen characters without control
// characters: the one rule of request ids of every service.
func CheckRequestID(v *apierror.Violations, field, id string) {
	if id == "" {
		return
	}
	if p := textIDProblem(id); p != "" {
		v.Add(field, p)
	}
}

// ImportIDProblem returns why id is not an import id, or "": the one rule of both bulk imports
// (ImportWorkers, ImportVacancies) and the calls that read them. An import id is required, and
// it is 1 to MaxClientIDLen characters of UTF-8 text without control characters and without
// `/`. Operators name imports after their files, often in Chinese ("2026年春季名单.xlsx"), so
// any text a file name can hold is accepted, spaces included; `/` is the one character a file
// name cannot hold, and leaving it out keeps an import id a single segment of a resource name
// (`imports/{import_id}`). The NUL byte is a control character: no id is a prefix of another's
// keys (import id + NUL + row number).
func ImportIDProblem(id string) string {
	if id == "" {
		return "is required: the client's id of this import (for example the file name), the same on every message"
	}
	if p := textIDProblem(id); p != "" {
		return p
	}
	if strings.Contains(id, "/") {
		return "must not contain '/' (an import id is one segment of a resource name)"
	}
	return ""
}

// CheckImportID adds a violation on field (import_id) to v unless id is an import id
// (ImportIDProblem).
func CheckImportID(v *apierror.Violations, field, id string) {
	if p := ImportIDProblem(id); p != "" {
		v.Add(field, p)
	}
}

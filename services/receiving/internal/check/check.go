// Package check holds the request checks that several subsystems of the receiving service
// share: plain text, opaque ids, resource names, person names, dates in the past, feed
// revisions, page sizes, and the allow-list of the privacy guard.
package check

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/personname"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/paging"
	"github.com/eastwest/labourlink/services/platform/privacy"
)

// MaxReason is the longest reason text (a decision, a withdrawal, a cancellation, a job left).
const MaxReason = 500

// Resource collections (names are "collection/{id}").
const (
	Vacancies  = "vacancies"
	Candidates = "candidates"
	Batches    = "intakeBatches"
	Records    = "employmentRecords"
)

// Page tokens are paging tokens (services/platform/paging), bound to the List and its filters. Page sizes:
var (
	// ListSize: the Lists of vacancies, candidates, intake batches and employment records.
	ListSize = paging.Size{Default: 100, Max: 1000}
	// FeedSize: the demand and decision feeds and ListOpenDemand.
	FeedSize = paging.Size{Default: 500, Max: 5000}
	// RejectionsSize: ListVacancyImportRejections.
	RejectionsSize = paging.Size{Default: 1000, Max: 10000}
)

// TextProblem returns why s is not acceptable plain text of at most maxRunes characters, or "".
func TextProblem(s string, maxRunes int) string {
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

// Text adds a violation if s is not plain text; required also refuses blank text.
func Text(v *apierror.Violations, field, s string, maxRunes int, required bool) {
	if required && strings.TrimSpace(s) == "" {
		v.Add(field, "is required")
		return
	}
	if p := TextProblem(s, maxRunes); p != "" {
		v.Add(field, p)
	}
}

// PersonNameProblem returns why s is not a plain person name, or "" (services/codes/personname:
// the same rule the sending service applies on import).
func PersonNameProblem(s string) string {
	_, problem := personname.Check(s)
	return problem
}

// IDProblem returns why s is not an acceptable opaque id (ours or a peer's), or "": 1 to 100
// printable ASCII characters without spaces or slashes.
func IDProblem(s string) string {
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

// ID adds a violation at field if s is not an acceptable opaque id.
func ID(v *apierror.Violations, field, s string) {
	if p := IDProblem(s); p != "" {
		v.Add(field, p)
	}
}

// OwnedID adds a violation at field unless s is an acceptable opaque id that starts with the
// code of its owner province and a "-" (regions.IDOf): the batch id of a batch named with its
// sending_region. Nothing is said about the start while owner is empty (its own field has the
// violation).
func OwnedID(v *apierror.Violations, field, s, owner string) {
	if p := IDProblem(s); p != "" {
		v.Add(field, p)
	} else if p := regions.IDOfProblem(s, owner); owner != "" && p != "" {
		v.Add(field, p)
	}
}

// WorkerID adds a violation for a bad worker id. One that is or looks like an identity number
// never gets here: the privacy guard refuses it at the edge (PersonalData).
func WorkerID(v *apierror.Violations, field, s string) { ID(v, field, s) }

// ResourceID returns the id of name "collection/{id}", or "" when name has another form.
func ResourceID(name, collection string) string {
	id, ok := strings.CutPrefix(name, collection+"/")
	if !ok || IDProblem(id) != "" {
		return ""
	}
	return id
}

// Name adds a violation unless name is "collection/{id}".
func Name(v *apierror.Violations, field, name, collection string) {
	if ResourceID(name, collection) == "" {
		if name == "" {
			v.Addf(field, "is required: %s/{id}", collection)
			return
		}
		v.Addf(field, "must be a resource name %s/{id}", collection)
	}
}

// Revision adds a violation for a negative after_revision.
func Revision(v *apierror.Violations, rev int64) {
	if rev < 0 {
		v.Add("after_revision", "must not be negative")
	}
}

// PastDate adds a violation unless d is a valid date no later than day.
func PastDate(v *apierror.Violations, field string, d, day *commonv1.Date) {
	if p := civil.Problem(d); p != "" {
		v.Add(field, p)
	} else if civil.Compare(d, day) > 0 {
		v.Addf(field, "%s is in the future", civil.Format(d))
	}
}

// No resident identity number reaches this service: workers are known here only by the opaque
// worker id of their sending province. The grpcserver privacy guard (services/platform/privacy)
// scans every request before its handler runs, and refuses an identity number or a phone number
// in any field but those below; a worker id with the shape of an identity number is refused
// even with a wrong check character (a typo in a real number is still personal data).
//
// PersonalData lists the fields that carry a phone on purpose: an employer's recruiting contact
// and an escort's work contact. The rows of a vacancy import are checked one by one instead
// (vacancies: parseRow), so that a bad row is rejected and the others kept.
var PersonalData = privacy.Allow{
	"labourlink.receiving.v1.ImportVacanciesRequest.rows": privacy.CheckedPerItem,
	"labourlink.receiving.v1.VacancyRow.contact":          privacy.Phone,
	"labourlink.receiving.v1.Vacancy.contact":             privacy.Phone,
	"labourlink.receiving.v1.IntakeBatch.escort_contact":  privacy.Phone,
}

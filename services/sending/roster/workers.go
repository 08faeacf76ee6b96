package roster

// The worker records of the roster: how they are stored, identified, read, masked and checked.
//
// Storage: store.go.
//
// Functions for the other subsystems (matching, transport, the relays):
//   - Read(tx, id): one worker, unmasked, or an apierror.ErrNotFound error.
//   - s.ChangeStatus(tx, id, to, reason) in lifecycle.go: the one way to move a worker's status.
//   - ForEachAvailable(tx, fn): every worker in the pool, in worker-id order.
//   - Masked(w, view): the copy of a worker that may leave the service.

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/idnumber"
	"github.com/eastwest/labourlink/services/codes/occupation"
	"github.com/eastwest/labourlink/services/codes/personname"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/privacy"
)

// workerNamePrefix starts every worker resource name: `workers/{worker_id}`.
const workerNamePrefix = "workers/"

// workerIDRandomChars is the number of base32 characters after the province code and the dash
// in a worker id: 16 characters carry the 80 bits of 10 bytes.
const workerIDRandomChars = 16

// workerIDEncoding is base32 without padding over the RFC 4648 characters (A-Z, 2-7) in their
// byte order, so that ids sort as the numbers they encode: the ids of workers created one after
// the other sort in the order they were created.
var workerIDEncoding = base32.NewEncoding("234567ABCDEFGHIJKLMNOPQRSTUVWXYZ").WithPadding(base32.NoPadding)

// newWorkerID returns a fresh worker id for a worker of province, such as
// `520000-2AM22ANW24I65TTE`: the province code and 80 bits, the creation time in milliseconds
// (48 bits) and 32 bits from crypto/rand. It is opaque: it reveals nothing of the person (it is
// never derived from the identity number), and is unique in the federation because the province
// code prefixes it (the roster never overwrites a worker: a clash draws again). Ids in creation
// order keep an import's new workers together in the roster's buckets: a transaction of 5000
// new workers changes a few B+tree pages at the end of each bucket, not 5000 pages spread over
// it (BENCHMARKS.md, "Roster import").
func newWorkerID(province string, now time.Time) (string, error) {
	var b [10]byte
	ms := uint64(now.UnixMilli())
	for i := range 6 {
		b[i] = byte(ms >> (40 - 8*i))
	}
	if _, err := rand.Read(b[6:]); err != nil {
		return "", fmt.Errorf("worker id: %w", err)
	}
	return province + "-" + workerIDEncoding.EncodeToString(b[:]), nil
}

// ValidWorkerID reports whether id has the shape of a worker id (6 digits, a dash, 16 base32
// characters). It does not say the worker exists.
func ValidWorkerID(id string) bool {
	if len(id) != 6+1+workerIDRandomChars || id[6] != '-' {
		return false
	}
	for i := 0; i < 6; i++ {
		if id[i] < '0' || id[i] > '9' {
			return false
		}
	}
	for i := 7; i < len(id); i++ {
		c := id[i]
		if !(c >= 'A' && c <= 'Z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// WorkerName returns the resource name of a worker id.
func WorkerName(id string) string { return workerNamePrefix + id }

// ParseWorkerName returns the worker id of a resource name `workers/{worker_id}`, or a reason
// the name is wrong.
func ParseWorkerName(name string) (string, string) {
	if name == "" {
		return "", "is required: workers/{worker_id}"
	}
	id, ok := strings.CutPrefix(name, workerNamePrefix)
	if !ok || !ValidWorkerID(id) {
		return "", "must be workers/{worker_id}, such as workers/520000-K3Q7ZC2M4XJ5R6TA"
	}
	return id, ""
}

// errWorkerNotFound is returned for a worker id with no record.
func errWorkerNotFound(id string) error {
	return apierror.NotFound("worker %s not found", WorkerName(id))
}

// Masked returns a copy of w for a response: with WORKER_VIEW_FULL the identity number and
// phone in full, otherwise (BASIC, UNSPECIFIED) masked as 5201**********123X and 138****5678,
// and any identity number or phone number in the free text (status_reason, full_name) masked the
// same way by the privacy guard's own rule: text stored before the guard refused it at the edge
// may hold one.
func Masked(w *sendingv1.Worker, view sendingv1.WorkerView) *sendingv1.Worker {
	return maskOwned(proto.Clone(w).(*sendingv1.Worker), view)
}

// maskOwned is Masked for a worker the caller owns (decoded from the store for this answer,
// shared with nothing): it sets the name and etag and masks c itself, without a copy — the
// read path of GetWorker and ListWorkers.
func maskOwned(c *sendingv1.Worker, view sendingv1.WorkerView) *sendingv1.Worker {
	if c.Name == "" && c.WorkerId != "" {
		c.Name = WorkerName(c.WorkerId)
	}
	c.Etag = Etag(c)
	if view != sendingv1.WorkerView_WORKER_VIEW_FULL {
		if c.IdNumber != "" {
			c.IdNumber = idnumber.Mask(c.IdNumber)
		}
		c.Phone = maskPhone(c.Phone)
		c.StatusReason = privacy.Mask(c.StatusReason)
		c.FullName = privacy.Mask(c.FullName)
	}
	return c
}

// maskPhone keeps the first 3 and last 4 digits of a phone number: 138****5678. Shorter values
// are masked entirely.
func maskPhone(p string) string {
	if ascii(p) {
		if len(p) < 8 {
			return strings.Repeat("*", len(p))
		}
		b := []byte(p)
		for i := 3; i < len(b)-4; i++ {
			b[i] = '*'
		}
		return string(b)
	}
	r := []rune(p)
	if len(r) < 8 {
		return strings.Repeat("*", len(r))
	}
	return string(r[:3]) + strings.Repeat("*", len(r)-7) + string(r[len(r)-4:])
}

// sameImportedFields reports whether a and b agree on every field an import or UpdateWorker can
// set (the fields of importedFields).
func sameImportedFields(a, b *sendingv1.Worker) bool {
	return proto.Equal(importedFields(a), importedFields(b))
}

// importedFields returns the fields of w that an import row sets.
func importedFields(w *sendingv1.Worker) *sendingv1.Worker {
	return &sendingv1.Worker{
		FullName:              w.GetFullName(),
		Phone:                 w.GetPhone(),
		HomeCounty:            w.GetHomeCounty(),
		RegisteredPoor:        w.GetRegisteredPoor(),
		Occupations:           w.GetOccupations(),
		Education:             w.GetEducation(),
		PreferredDestinations: w.GetPreferredDestinations(),
		AvailableFrom:         w.GetAvailableFrom(),
		HealthCheckPassed:     w.GetHealthCheckPassed(),
		HealthCheckDate:       w.GetHealthCheckDate(),
	}
}

// copyImportedFields sets the importable fields of dst from src.
func copyImportedFields(dst, src *sendingv1.Worker) {
	dst.FullName = src.GetFullName()
	dst.Phone = src.GetPhone()
	dst.HomeCounty = src.GetHomeCounty()
	dst.RegisteredPoor = src.GetRegisteredPoor()
	dst.Occupations = slices.Clone(src.GetOccupations())
	dst.Education = src.GetEducation()
	dst.PreferredDestinations = slices.Clone(src.GetPreferredDestinations())
	dst.AvailableFrom = cloneDate(src.GetAvailableFrom())
	dst.HealthCheckPassed = src.GetHealthCheckPassed()
	dst.HealthCheckDate = cloneDate(src.GetHealthCheckDate())
}

func cloneDate(d *commonv1.Date) *commonv1.Date {
	if d == nil {
		return nil
	}
	return &commonv1.Date{Year: d.Year, Month: d.Month, Day: d.Day}
}

// --- field checks shared by the import row validator and UpdateWorker ---
//
// Each check returns the normalised value and a reason; an empty reason means the value is good.
// Reasons are plain English for an operator and never repeat an identity number or a phone.

// Limits of free-text fields.
const (
	maxOccupations     = 20
	maxDestinations    = 34 // every province
	minWorkerAge       = 16
	MaxStatusReasonLen = 500
)

// checker holds what field checks need to know about this service.
type checker struct {
	regions  *regions.Table
	province string // this sending province
}

// checker returns the field checker of this service's province.
func (s *Service) checker() checker {
	return checker{regions: s.regions, province: s.cfg.Region}
}

// checkFullName trims s and checks it is a plain person name (services/codes/personname: the same
// rule the receiving service applies to candidates).
func checkFullName(s string) (string, string) { return personname.Check(s) }

// checkPhone normalises a mobile number (spaces and dashes removed, a +86 or 86 country prefix
// dropped) and checks it is 11 digits matching 1[3-9]NNNNNNNNN. The reason never repeats it.
func checkPhone(s string) (string, string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", "is required: an 11-digit mobile number"
	}
	if looksScientific(s) {
		return "", "looks like a number a spreadsheet turned into scientific notation, which loses digits: format the column as text and enter the number again"
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == ' ' || r == '-' || r == '\u3000':
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && b.Len() == 0:
		default:
			return "", "must be an 11-digit mobile number (digits only; spaces, dashes and a +86 prefix are allowed)"
		}
	}
	p := b.String()
	if len(p) == 13 && strings.HasPrefix(p, "86") {
		p = p[2:]
	}
	if len(p) != 11 {
		return "", fmt.Sprintf("must be an 11-digit mobile number, got %d digits", len(p))
	}
	if p[0] != '1' || p[1] < '3' || p[1] > '9' {
		return "", "must be a mobile number: 11 digits starting with 13 to 19"
	}
	return p, ""
}

// looksScientific reports whether s looks like a spreadsheet's scientific notation of a long
// number, e.g. "1.38001E+10".
func looksScientific(s string) bool {
	i := strings.IndexAny(s, "Ee")
	if i < 1 || i+2 > len(s) || s[i+1] != '+' {
		return false
	}
	for _, c := range s[:i] + s[i+2:] {
		if (c < '0' || c > '9') && c != '.' {
			return false
		}
	}
	return true
}

// homeCounty checks a county-level code of this province.
func (c checker) homeCounty(s string) (string, string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Sprintf("is required: the 6-digit code of a county of %s (%s)", c.province, c.regions.Name(c.province))
	}
	if err := c.regions.CheckCountyIn(s, c.province); err != nil {
		return "", err.Error()
	}
	return s, ""
}

// checkOccupations checks ISCO-08 unit group codes and returns them sorted without repeats.
// GENERAL is refused: it is a vacancy's "any worker" and says nothing about a worker, who fits
// every general-labour vacancy anyway.
func checkOccupations(codes []string) ([]string, string) {
	out := make([]string, 0, len(codes))
	for _, code := range codes {
		code = strings.TrimSpace(code)
		switch {
		case code == "":
			continue
		case strings.EqualFold(code, occupation.General):
			return nil, "GENERAL is for vacancies (every worker fits a general-labour vacancy); list the worker's ISCO-08 codes such as 8212, or leave the field empty"
		case !occupation.Known(code):
			return nil, fmt.Sprintf("%q is not an ISCO-08 unit group code (4 digits, such as 8212 or 9313)", code)
		}
		out = append(out, code)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > maxOccupations {
		return nil, fmt.Sprintf("lists %d occupations; at most %d", len(out), maxOccupations)
	}
	if len(out) == 0 {
		return nil, ""
	}
	return out, ""
}

// provinceByName returns the code of the province whose Chinese name is s or starts with s (at
// least two characters: 广东 for 广东省, 广西 for 广西壮族自治区), if exactly one does. Codes
// (digits) are not names.
func (c checker) provinceByName(s string) (string, bool) {
	if utf8.RuneCountInString(s) < 2 || s[0] < utf8.RuneSelf {
		return "", false // Chinese names only; codes and Latin text are checked as codes
	}
	found := ""
	for _, p := range c.provinces() {
		if p.Name == s {
			return p.Code, true
		}
		if strings.HasPrefix(p.Name, s) {
			if found != "" {
				return "", false
			}
			found = p.Code
		}
	}
	return found, found != ""
}

// defaultProvinces is the province list of regions.Default(), read once.
var defaultProvinces = sync.OnceValue(func() []regions.Region { return regions.Default().Provinces() })

func (c checker) provinces() []regions.Region {
	if c.regions == regions.Default() {
		return defaultProvinces()
	}
	return c.regions.Provinces()
}

// destinations checks receiving provinces, given by code (440000) or Chinese name (广东省, 广东),
// and returns their codes sorted without repeats.
func (c checker) destinations(codes []string) ([]string, string) {
	out := make([]string, 0, len(codes))
	for _, code := range codes {
		code = strings.TrimSpace(code)
		if p, ok := c.provinceByName(code); ok {
			code = p
		}
		switch {
		case code == "":
			continue
		case !c.regions.IsProvince(code):
			if err := c.regions.CheckCode(code); err != nil {
				return nil, err.Error() + " (a destination must be a province code such as 440000)"
			}
			return nil, fmt.Sprintf("%s (%s) is not a province: use the province code, such as %s0000", code, c.regions.Name(code), code[:2])
		case code == c.province:
			return nil, fmt.Sprintf("%s is this sending province; destinations are the provinces the worker would go to", code)
		}
		out = append(out, code)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > maxDestinations {
		return nil, fmt.Sprintf("lists %d provinces; at most %d", len(out), maxDestinations)
	}
	if len(out) == 0 {
		return nil, ""
	}
	return out, ""
}

// CheckDate returns why an optional date d is not a real calendar date from 1900 to 9999
// (services/codes/civil), or "" when it is one or is not given.
func CheckDate(d *commonv1.Date) string {
	if d == nil {
		return ""
	}
	return civil.Problem(d)
}

// dateTime returns d as midnight UTC of the date (d must be valid): idnumber.AgeOn compares
// calendar dates, and the identity number's birth date is midnight UTC too.
func dateTime(d *commonv1.Date) time.Time {
	return time.Date(int(d.Year), time.Month(d.Month), int(d.Day), 0, 0, 0, 0, time.UTC)
}

// checkHealth checks the health-check pair: a date is required when the check passed, is not in
// the future, and is not given when the check did not pass. The reason is about the date field.
func checkHealth(passed bool, date, today *commonv1.Date) string {
	switch {
	case passed && date == nil:
		return "is required when health_check_passed is true (YYYY-MM-DD)"
	case !passed && date != nil:
		return "is given but health_check_passed is not true: set health_check_passed or clear the date"
	case date != nil:
		if r := CheckDate(date); r != "" {
			return r
		}
		if civil.Compare(date, today) > 0 {
			return fmt.Sprintf("%s is in the future", civil.Format(date))
		}
	}
	return ""
}

// educationNames maps accepted spellings (lower case) to education levels: the proto names with
// or without the EDUCATION_ prefix, and the usual Chinese names.
var educationNames = map[string]sendingv1.Education{}

func init() {
	for v, name := range sendingv1.Education_name {
		if v == 0 {
			continue
		}
		lower := strings.ToLower(name)
		educationNames[lower] = sendingv1.Education(v)
		educationNames[strings.TrimPrefix(lower, "education_")] = sendingv1.Education(v)
	}
	for _, e := range []struct {
		names []string
		level sendingv1.Education
	}{
		{[]string{"无", "文盲", "未上学", "小学以下"}, sendingv1.Education_EDUCATION_NONE},
		{[]string{"小学"}, sendingv1.Education_EDUCATION_PRIMARY},
		{[]string{"初中"}, sendingv1.Education_EDUCATION_JUNIOR_SECONDARY},
		{[]string{"高中"}, sendingv1.Education_EDUCATION_SENIOR_SECONDARY},
		{[]string{"中专", "技校", "职高", "中职", "中专/技校"}, sendingv1.Education_EDUCATION_VOCATIONAL},
		{[]string{"大专", "专科"}, sendingv1.Education_EDUCATION_JUNIOR_COLLEGE},
		{[]string{"本科", "本科及以上", "研究生", "硕士", "博士"}, sendingv1.Education_EDUCATION_BACHELOR_OR_HIGHER},
	} {
		for _, n := range e.names {
			educationNames[n] = e.level
		}
	}
}

// parseEducation reads an education level; empty is EDUCATION_UNSPECIFIED (not recorded).
func parseEducation(s string) (sendingv1.Education, string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return sendingv1.Education_EDUCATION_UNSPECIFIED, ""
	}
	if e, ok := educationNames[strings.ToLower(s)]; ok {
		return e, ""
	}
	return 0, fmt.Sprintf("%q is not an education level: use none, primary, junior_secondary, senior_secondary, vocational, junior_college, bachelor_or_higher (or 无, 小学, 初中, 高中, 中专, 大专, 本科)", s)
}

// parseFlag reads a yes/no cell: true/false, 1/0, yes/no, y/n, 是/否; empty is false.
func parseFlag(s string) (bool, string) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "false", "0", "no", "n", "否", "f":
		return false, ""
	case "true", "1", "yes", "y", "是", "t":
		return true, ""
	}
	return false, fmt.Sprintf("%q is not yes or no: use true/false, 1/0, yes/no or 是/否", s)
}

// parseDate reads YYYY-MM-DD; YYYY/M/D and YYYY-M-D (as spreadsheets write dates) are accepted
// too. Empty gives nil.
func parseDate(s string) (*commonv1.Date, string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, ""
	}
	bad := func() string { return fmt.Sprintf("must be a date YYYY-MM-DD, got %q", s) }
	sep := byte('-')
	if strings.IndexByte(s, '/') >= 0 {
		sep = '/'
	}
	// Three runs of digits between two separators: 4, then 1-2, then 1-2 digits.
	var n [3]int32
	part, digits := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == sep && part < 2:
			if digits == 0 || part == 0 && digits != 4 || part == 1 && digits > 2 {
				return nil, bad()
			}
			part, digits = part+1, 0
		case c >= '0' && c <= '9':
			n[part] = n[part]*10 + int32(c-'0')
			digits++
		default:
			return nil, bad()
		}
	}
	if part != 2 || digits == 0 || digits > 2 {
		return nil, bad()
	}
	d := &commonv1.Date{Year: n[0], Month: n[1], Day: n[2]}
	if r := CheckDate(d); r != "" {
		return nil, r
	}
	return d, ""
}

// splitList splits a cell listing codes separated by ';', ',', the Chinese '；', '，', '、', or
// white space.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		switch r {
		case ';', ',', '；', '，', '、', '|':
			return true
		}
		return unicode.IsSpace(r)
	})
}

// sexFromInfo converts the identity number's sex.
func sexFromInfo(s idnumber.Sex) commonv1.Sex {
	switch s {
	case idnumber.Male:
		return commonv1.Sex_SEX_MALE
	case idnumber.Female:
		return commonv1.Sex_SEX_FEMALE
	}
	return commonv1.Sex_SEX_UNSPECIFIED
}

// parseSex reads an optional sex cell: M/F, male/female, 男/女.
func parseSex(s string) (commonv1.Sex, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "m", "male", "男", "sex_male":
		return commonv1.Sex_SEX_MALE, true
	case "f", "female", "女", "sex_female":
		return commonv1.Sex_SEX_FEMALE, true
	}
	return commonv1.Sex_SEX_UNSPECIFIED, false
}

// ascii reports whether s is all ASCII.
func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

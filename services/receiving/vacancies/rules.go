package vacancies

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/creditcode"
	"github.com/eastwest/labourlink/services/codes/occupation"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/receiving/internal/check"
	"github.com/eastwest/labourlink/services/receiving/internal/province"
)

// The rules of a vacancy: plain functions over messages, without gRPC or bbolt.

// Plausibility limits of a vacancy. Wages are monthly, in CNY: the lowest is below every
// provincial minimum wage (the highest, Shanghai's, was 2690 in 2023; the lowest about 1500),
// so that a real offer is never refused, and the highest catches a yearly figure or a wage
// typed with extra zeros.
const (
	minWage      = 1000
	maxWage      = 100000
	maxHeadcount = 10000
	// MinWorkAge is the legal minimum working age in China.
	MinWorkAge = 16
	// MaxAge is the highest age a vacancy or a candidate may give.
	MaxAge       = 100
	maxNameRunes = 100 // employer name
	maxContact   = 100
)

// Statuses.
const (
	Open    = receivingv1.VacancyStatus_VACANCY_STATUS_OPEN
	Filled  = receivingv1.VacancyStatus_VACANCY_STATUS_FILLED
	Closed  = receivingv1.VacancyStatus_VACANCY_STATUS_CLOSED
	Expired = receivingv1.VacancyStatus_VACANCY_STATUS_EXPIRED
)

// DeriveStatus is the status of v on day: CLOSED stays closed; past its valid-through date a
// vacancy is EXPIRED; with every position reserved it is FILLED; otherwise OPEN. Stored
// vacancies hold the status derived when they last changed; reads derive it again, so a vacancy
// shows EXPIRED from the day after valid_through even before the sweep records the change.
func DeriveStatus(v *receivingv1.Vacancy, day *commonv1.Date) receivingv1.VacancyStatus {
	switch {
	case v.GetStatus() == Closed:
		return Closed
	case v.GetValidThrough() != nil && civil.Compare(day, v.GetValidThrough()) > 0:
		return Expired
	case v.GetReserved() >= v.GetHeadcount():
		return Filled
	}
	return Open
}

// present returns v as a client sees it on day: with its status derived again (DeriveStatus).
func present(v *receivingv1.Vacancy, day *commonv1.Date) *receivingv1.Vacancy {
	v.Status = DeriveStatus(v, day)
	v.Etag = Etag(v)
	return v
}

// Etag is the etag of v (AIP-154): its revision, which every change of the vacancy advances.
// The status derived at read time (an OPEN vacancy shown EXPIRED before the sweep) is not a
// change: the sweep's change gives the new etag.
func Etag(v *receivingv1.Vacancy) string {
	return fmt.Sprintf("r%d", v.GetRevision())
}

// checkEtag refuses an update that names a version of old other than the stored one (etag
// empty: any version).
func checkEtag(old *receivingv1.Vacancy, etag string) error {
	if etag == "" || etag == Etag(old) {
		return nil
	}
	return apierror.Aborted(commonv1.ErrorReason_ERROR_REASON_ETAG_MISMATCH, "vacancy %s changed since etag %q was read (now %q): read it again and re-apply the change",
		old.GetName(), etag, Etag(old)).WithMetadata("etag", Etag(old))
}

// Name returns the resource name of a vacancy id.
func Name(id string) string { return check.Vacancies + "/" + id }

// normalize trims the text fields and upper-cases the credit code, in place.
func normalize(v *receivingv1.Vacancy) {
	if v == nil {
		return
	}
	v.EmployerName = strings.TrimSpace(v.GetEmployerName())
	v.EmployerCreditCode = creditcode.Normalize(strings.TrimSpace(v.GetEmployerCreditCode()))
	v.WorkCounty = strings.TrimSpace(v.GetWorkCounty())
	v.Occupation = strings.ToUpper(strings.TrimSpace(v.GetOccupation()))
	v.Contact = strings.TrimSpace(v.GetContact())
	v.ExternalReference = strings.TrimSpace(v.GetExternalReference())
}

// updatableFields are the fields UpdateVacancy may change: the fields a client sets, except the
// credit code, which identifies the employer.
var updatableFields = map[string]bool{
	"employer_name": true, "work_county": true, "occupation": true, "headcount": true,
	"monthly_wage_min_yuan": true, "monthly_wage_max_yuan": true, "start_date": true, "valid_through": true,
	"min_age": true, "max_age": true, "housing_provided": true, "meals_provided": true,
	"contact": true,
}

// checkVacancy adds a violation for every bad client field of v, with paths prefix+field, for
// a vacancy of province p on day. newValidThrough says valid_through is being set now (create,
// import, or in an update mask): then it must not be in the past.
func checkVacancy(vs *apierror.Violations, p *province.Province, day *commonv1.Date, prefix string, v *receivingv1.Vacancy, newValidThrough bool) {
	f := func(name string) string { return prefix + name }
	check.Text(vs, f("employer_name"), v.GetEmployerName(), maxNameRunes, true)
	if code := v.GetEmployerCreditCode(); code == "" {
		vs.Add(f("employer_credit_code"), "is required: the employer's 18-character unified social credit code")
	} else if err := creditcode.Validate(code); err != nil {
		vs.Add(f("employer_credit_code"), "is not a unified social credit code: "+err.Error())
	}
	if c := v.GetWorkCounty(); c == "" {
		vs.Addf(f("work_county"), "is required: a county-level code of %s (%s)", p.Code, p.Name())
	} else if err := p.Regions.CheckCountyIn(c, p.Code); err != nil {
		vs.Add(f("work_county"), err.Error())
	}
	if o := v.GetOccupation(); o == "" {
		vs.Add(f("occupation"), "is required: a 4-digit ISCO-08 unit group such as 8212, or GENERAL")
	} else if !occupation.Known(o) {
		vs.Addf(f("occupation"), "%q is not an ISCO-08 unit group (4 digits, such as 8212) or GENERAL", o)
	}
	if h := v.GetHeadcount(); h < 1 || h > maxHeadcount {
		vs.Addf(f("headcount"), "must be 1 to %d, got %d", maxHeadcount, h)
	}
	wageOK := true
	for _, w := range []struct {
		field string
		value int32
	}{{"monthly_wage_min_yuan", v.GetMonthlyWageMinYuan()}, {"monthly_wage_max_yuan", v.GetMonthlyWageMaxYuan()}} {
		if w.value < minWage || w.value > maxWage {
			vs.Addf(f(w.field), "must be a monthly wage of %d to %d CNY, got %d", minWage, maxWage, w.value)
			wageOK = false
		}
	}
	if wageOK && v.GetMonthlyWageMaxYuan() < v.GetMonthlyWageMinYuan() {
		vs.Addf(f("monthly_wage_max_yuan"), "must be at least monthly_wage_min_yuan (%d), got %d", v.GetMonthlyWageMinYuan(), v.GetMonthlyWageMaxYuan())
	}
	startOK, endOK := true, true
	if p := civil.Problem(v.GetStartDate()); p != "" {
		vs.Add(f("start_date"), p)
		startOK = false
	}
	if p := civil.Problem(v.GetValidThrough()); p != "" {
		vs.Add(f("valid_through"), p)
		endOK = false
	}
	if startOK && endOK && civil.Compare(v.GetStartDate(), v.GetValidThrough()) >= 0 {
		vs.Addf(f("valid_through"), "must be after start_date (%s), got %s", civil.Format(v.GetStartDate()), civil.Format(v.GetValidThrough()))
	} else if endOK && newValidThrough && civil.Compare(v.GetValidThrough(), day) < 0 {
		vs.Addf(f("valid_through"), "%s is in the past", civil.Format(v.GetValidThrough()))
	}
	minAge := v.GetMinAge()
	if v.MinAge != nil && (minAge < MinWorkAge || minAge > MaxAge) {
		vs.Addf(f("min_age"), "must be %d to %d (unset for %d), got %d", MinWorkAge, MaxAge, MinWorkAge, minAge)
	}
	if v.MaxAge != nil {
		mx, lo := v.GetMaxAge(), max(minAge, MinWorkAge)
		if mx < lo || mx > MaxAge {
			vs.Addf(f("max_age"), "must be %d to %d (at least min_age), or unset for no limit, got %d", lo, MaxAge, mx)
		}
	}
	check.Text(vs, f("contact"), v.GetContact(), maxContact, false)
	check.Text(vs, f("external_reference"), v.GetExternalReference(), store.MaxClientIDLen, false)
}

// fromClient returns a new vacancy id of province region with the client fields of in.
func fromClient(id string, in *receivingv1.Vacancy) *receivingv1.Vacancy {
	return &receivingv1.Vacancy{
		Name:               Name(id),
		VacancyId:          id,
		EmployerName:       in.GetEmployerName(),
		EmployerCreditCode: in.GetEmployerCreditCode(),
		WorkCounty:         in.GetWorkCounty(),
		Occupation:         in.GetOccupation(),
		Headcount:          in.GetHeadcount(),
		MonthlyWageMinYuan: in.GetMonthlyWageMinYuan(),
		MonthlyWageMaxYuan: in.GetMonthlyWageMaxYuan(),
		StartDate:          in.GetStartDate(),
		ValidThrough:       in.GetValidThrough(),
		MinAge:             optional(in.MinAge),
		MaxAge:             optional(in.MaxAge),
		HousingProvided:    in.GetHousingProvided(),
		MealsProvided:      in.GetMealsProvided(),
		Contact:            in.GetContact(),
		ExternalReference:  in.GetExternalReference(),
	}
}

// referenceTaken is the error of a new vacancy whose natural key is vacancy id's.
func referenceTaken(in *receivingv1.Vacancy, id string) error {
	return apierror.AlreadyExists("vacancy %s of employer %s already has external_reference %q", Name(id), in.GetEmployerCreditCode(), in.GetExternalReference()).
		WithMetadata("vacancy", Name(id))
}

// optional returns a copy of an optional field's value (nil: unset).
func optional(p *int32) *int32 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// applyMask copies the masked fields of from into to.
func applyMask(to, from *receivingv1.Vacancy, paths []string) {
	for _, p := range paths {
		switch p {
		case "employer_name":
			to.EmployerName = from.GetEmployerName()
		case "work_county":
			to.WorkCounty = from.GetWorkCounty()
		case "occupation":
			to.Occupation = from.GetOccupation()
		case "headcount":
			to.Headcount = from.GetHeadcount()
		case "monthly_wage_min_yuan":
			to.MonthlyWageMinYuan = from.GetMonthlyWageMinYuan()
		case "monthly_wage_max_yuan":
			to.MonthlyWageMaxYuan = from.GetMonthlyWageMaxYuan()
		case "start_date":
			to.StartDate = from.GetStartDate()
		case "valid_through":
			to.ValidThrough = from.GetValidThrough()
		case "min_age":
			to.MinAge = optional(from.MinAge)
		case "max_age":
			to.MaxAge = optional(from.MaxAge)
		case "housing_provided":
			to.HousingProvided = from.GetHousingProvided()
		case "meals_provided":
			to.MealsProvided = from.GetMealsProvided()
		case "contact":
			to.Contact = from.GetContact()
		}
	}
}

// update is the rule of UpdateVacancy: it returns old with the masked fields of in (normalized)
// and whether that changes anything. The result is checked as a whole (so that, say, a new
// monthly_wage_min_yuan above the stored monthly_wage_max_yuan is refused); headcount cannot go below the reserved count;
// a closed vacancy cannot change.
func update(p *province.Province, day *commonv1.Date, old, in *receivingv1.Vacancy, paths []string) (*receivingv1.Vacancy, bool, error) {
	if old.GetStatus() == Closed {
		return nil, false, apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_VACANCY_CLOSED, "vacancy %s is closed and cannot change", old.GetName())
	}
	v := proto.Clone(old).(*receivingv1.Vacancy)
	applyMask(v, in, paths)
	var vs apierror.Violations
	newValidThrough := false
	for _, path := range paths {
		newValidThrough = newValidThrough || (path == "valid_through" && civil.Compare(v.GetValidThrough(), old.GetValidThrough()) != 0)
	}
	checkVacancy(&vs, p, day, "vacancy.", v, newValidThrough)
	if err := vs.Err(); err != nil {
		return nil, false, err
	}
	if v.GetHeadcount() < v.GetReserved() {
		return nil, false, apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_HEADCOUNT_BELOW_RESERVED,
			"headcount %d is below the %d positions already reserved by accepted candidates of %s", v.GetHeadcount(), v.GetReserved(), v.GetName())
	}
	return v, !proto.Equal(v, old), nil
}

// Reserve is the rule of accepting a candidate for v on day: a closed or expired vacancy, or
// one whose positions are all reserved, takes no one; otherwise one more position is reserved.
func Reserve(v *receivingv1.Vacancy, day *commonv1.Date) error {
	switch DeriveStatus(v, day) {
	case Closed:
		return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_VACANCY_CLOSED, "vacancy %s is closed", v.GetName())
	case Expired:
		return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_VACANCY_EXPIRED, "vacancy %s expired after %s", v.GetName(), civil.Format(v.GetValidThrough()))
	}
	if v.GetReserved() >= v.GetHeadcount() {
		return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_HEADCOUNT_FULL, "every position of vacancy %s is reserved (%d of %d)",
			v.GetName(), v.GetReserved(), v.GetHeadcount()).WithMetadata("vacancy", v.GetName())
	}
	v.Reserved++
	return nil
}

// Release gives back the position an accepted candidate of v reserved.
func Release(v *receivingv1.Vacancy) {
	if v.GetReserved() > 0 {
		v.Reserved--
	}
}

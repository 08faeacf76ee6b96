package matcher

// General is the occupation of a vacancy that takes general labour: every worker fits it.
const General = "GENERAL"

// DefaultMinAge is the youngest age a vacancy accepts when its MinAge is 0.
const DefaultMinAge = 16

// Worker is an available worker as the matcher sees it.
type Worker struct {
	// ID is the worker's opaque id; unique in the input.
	ID string
	// County is the worker's home county (GB/T 2260 code).
	County string
	// Poor is the registered-poor (建档立卡) flag.
	Poor bool
	// Occupations are the ISCO-08 unit groups (4 digits) the worker can do.
	Occupations []string
	// BirthDate is the worker's date of birth.
	BirthDate Date
	// Destinations are the province codes the worker will go to; empty means any.
	Destinations []string
	// AvailableFrom is the first day the worker can start work.
	AvailableFrom Date
	// HealthOK says the health check was passed.
	HealthOK bool
	// Excluded are the keys of vacancies the worker must not be placed on (for example ones
	// the worker was proposed for before). They are a hard constraint like the others; keys
	// of vacancies not in the input are ignored, and the order does not matter.
	Excluded []string
}

// Vacancy is open demand as the matcher sees it.
type Vacancy struct {
	// Key identifies the vacancy; unique in the input (for example
	// "440000/vacancies/440000-V000123").
	Key string
	// Province is the receiving province code of the work place.
	Province string
	// County is the work county.
	County string
	// Occupation is an ISCO-08 unit group (4 digits) or General.
	Occupation string
	// StartDate is the first working day.
	StartDate Date
	// MinAge is the youngest age accepted on StartDate; 0 means DefaultMinAge.
	MinAge int
	// MaxAge is the oldest age accepted on StartDate; 0 means no limit.
	MaxAge int
	// Openings is the remaining headcount.
	Openings int
}

// Eligible reports whether w may be placed on v under every matching constraint: health check
// passed, v not among w's exclusions, occupation fits (or v is General), v's province among
// w's destinations (or w has none), w available by v's start date, and w's age on the start
// date within v's limits.
func Eligible(w *Worker, v *Vacancy) bool {
	if !w.HealthOK || w.AvailableFrom > v.StartDate || contains(w.Excluded, v.Key) {
		return false
	}
	if v.Occupation != General && !contains(w.Occupations, v.Occupation) {
		return false
	}
	if len(w.Destinations) > 0 && !contains(w.Destinations, v.Province) {
		return false
	}
	age := AgeOn(w.BirthDate, v.StartDate)
	minAge := v.MinAge
	if minAge == 0 {
		minAge = DefaultMinAge
	}
	if age < minAge {
		return false
	}
	return v.MaxAge == 0 || age <= v.MaxAge
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

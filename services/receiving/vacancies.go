package receiving

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labour/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labour/receiving/v1"
	"github.com/eastwest/labourlink/services/codes/creditcode"
	"github.com/eastwest/labourlink/services/codes/occupation"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/paging"
	"github.com/eastwest/labourlink/services/platform/store"
)

// Plausibility limits of a vacancy. Wages are monthly, in CNY: the lowest is below every
// provincial minimum wage (the highest, Shanghai's, was 2690 in 2023; the lowest about 1500),
// so that a real offer is never refused, and the highest catches a yearly figure or a wage
// typed with extra zeros.
const (
	minWage      = 1000
	maxWage      = 100000
	maxHeadcount = 10000
	minWorkAge   = 16 // the legal minimum working age in China
	maxAge       = 100
	maxNameRunes = 100 // employer name
	maxContact   = 100
)

// Resource names.
const (
	vacanciesCollection  = "vacancies"
	candidatesCollection = "candidates"
	batchesCollection    = "intakeBatches"
	recordsCollection    = "employmentRecords"
)

const (
	statusOpen    = receivingv1.VacancyStatus_VACANCY_STATUS_OPEN
	statusFilled  = receivingv1.VacancyStatus_VACANCY_STATUS_FILLED
	statusClosed  = receivingv1.VacancyStatus_VACANCY_STATUS_CLOSED
	statusExpired = receivingv1.VacancyStatus_VACANCY_STATUS_EXPIRED
)

// deriveStatus is the status of v on day: CLOSED stays closed; past its valid-through date a
// vacancy is EXPIRED; with every position reserved it is FILLED; otherwise OPEN. Stored
// vacancies hold the status derived when they last changed; reads derive it again, so a vacancy
// shows EXPIRED from the day after valid_through even before the sweep records the change.
func deriveStatus(v *receivingv1.Vacancy, day *commonv1.Date) receivingv1.VacancyStatus {
	switch {
	case v.GetStatus() == statusClosed:
		return statusClosed
	case v.GetValidThrough() != nil && dateCmp(day, v.GetValidThrough()) > 0:
		return statusExpired
	case v.GetReserved() >= v.GetHeadcount():
		return statusFilled
	}
	return statusOpen
}

// vacancyName returns the resource name of a vacancy id.
func vacancyName(id string) string { return vacanciesCollection + "/" + id }

// normalizeVacancy trims the text fields and upper-cases the credit code, in place.
func normalizeVacancy(v *receivingv1.Vacancy) {
	if v == nil {
		return
	}
	v.EmployerName = strings.TrimSpace(v.GetEmployerName())
	v.EmployerCreditCode = creditcode.Normalize(strings.TrimSpace(v.GetEmployerCreditCode()))
	v.WorkCounty = strings.TrimSpace(v.GetWorkCounty())
	v.Occupation = strings.ToUpper(strings.TrimSpace(v.GetOccupation()))
	v.Contact = strings.TrimSpace(v.GetContact())
}

// updatableFields are the fields UpdateVacancy may change: the fields a client sets, except the
// credit code, which identifies the employer.
var updatableFields = map[string]bool{
	"employer_name": true, "work_county": true, "occupation": true, "headcount": true,
	"wage_min": true, "wage_max": true, "start_date": true, "valid_through": true,
	"min_age": true, "max_age": true, "housing_provided": true, "meals_provided": true,
	"contact": true,
}

// checkVacancy adds a violation for every bad client field of v, with paths prefix+field.
// newValidThrough says valid_through is being set now (create, import, or in an update mask):
// then it must not be in the past.
func (s *Service) checkVacancy(vs *apierror.Violations, prefix string, v *receivingv1.Vacancy, newValidThrough bool) {
	f := func(name string) string { return prefix + name }
	checkText(vs, f("employer_name"), v.GetEmployerName(), maxNameRunes, true)
	if code := v.GetEmployerCreditCode(); code == "" {
		vs.Add(f("employer_credit_code"), "is required: the employer's 18-character unified social credit code")
	} else if err := creditcode.Validate(code); err != nil {
		vs.Add(f("employer_credit_code"), "is not a unified social credit code: "+err.Error())
	}
	if c := v.GetWorkCounty(); c == "" {
		vs.Add(f("work_county"), fmt.Sprintf("is required: a county-level code of %s (%s)", s.cfg.Region, s.regions.Name(s.cfg.Region)))
	} else if err := s.regions.CheckCountyIn(c, s.cfg.Region); err != nil {
		vs.Add(f("work_county"), err.Error())
	}
	if o := v.GetOccupation(); o == "" {
		vs.Add(f("occupation"), "is required: a 4-digit ISCO-08 unit group such as 8212, or GENERAL")
	} else if !occupation.Known(o) {
		vs.Add(f("occupation"), fmt.Sprintf("%q is not an ISCO-08 unit group (4 digits, such as 8212) or GENERAL", o))
	}
	if h := v.GetHeadcount(); h < 1 || h > maxHeadcount {
		vs.Add(f("headcount"), fmt.Sprintf("must be 1 to %d, got %d", maxHeadcount, h))
	}
	wageOK := true
	for _, w := range []struct {
		field string
		value int32
	}{{"wage_min", v.GetWageMin()}, {"wage_max", v.GetWageMax()}} {
		if w.value < minWage || w.value > maxWage {
			vs.Add(f(w.field), fmt.Sprintf("must be a monthly wage of %d to %d CNY, got %d", minWage, maxWage, w.value))
			wageOK = false
		}
	}
	if wageOK && v.GetWageMax() < v.GetWageMin() {
		vs.Add(f("wage_max"), fmt.Sprintf("must be at least wage_min (%d), got %d", v.GetWageMin(), v.GetWageMax()))
	}
	startOK, endOK := true, true
	if p := dateProblem(v.GetStartDate()); p != "" {
		vs.Add(f("start_date"), p)
		startOK = false
	}
	if p := dateProblem(v.GetValidThrough()); p != "" {
		vs.Add(f("valid_through"), p)
		endOK = false
	}
	if startOK && endOK && dateCmp(v.GetStartDate(), v.GetValidThrough()) >= 0 {
		vs.Add(f("valid_through"), fmt.Sprintf("must be after start_date (%s), got %s", formatDate(v.GetStartDate()), formatDate(v.GetValidThrough())))
	} else if endOK && newValidThrough && dateCmp(v.GetValidThrough(), today(s.now())) < 0 {
		vs.Add(f("valid_through"), fmt.Sprintf("%s is in the past", formatDate(v.GetValidThrough())))
	}
	minAge := v.GetMinAge()
	if minAge != 0 && (minAge < minWorkAge || minAge > maxAge) {
		vs.Add(f("min_age"), fmt.Sprintf("must be %d to %d (or 0 for %d), got %d", minWorkAge, maxAge, minWorkAge, minAge))
	}
	if mx := v.GetMaxAge(); mx != 0 {
		lo := max(minAge, minWorkAge)
		if mx < lo || mx > maxAge {
			vs.Add(f("max_age"), fmt.Sprintf("must be %d to %d (at least min_age), or 0 for no limit, got %d", lo, maxAge, mx))
		}
	}
	checkText(vs, f("contact"), v.GetContact(), maxContact, false)
}

// ValidateRequest checks VacancyService requests before their handlers run. The rows of
// ImportVacancies are checked one by one in the handler (a bad row is rejected, not the stream).
func (x *vacancyServer) ValidateRequest(_ string, req any) error {
	var v apierror.Violations
	switch r := req.(type) {
	case *receivingv1.CreateVacancyRequest:
		checkRequestID(&v, "request_id", r.GetRequestId())
		if r.GetVacancy() == nil {
			v.Add("vacancy", "is required")
			break
		}
		normalizeVacancy(r.Vacancy)
		x.s.checkVacancy(&v, "vacancy.", r.GetVacancy(), true)
	case *receivingv1.ImportVacanciesRequest:
		if p := idProblem(r.GetImportId()); p != "" {
			v.Add("import_id", p)
		}
		if n := len(r.GetRows()); n > maxImportChunk {
			v.Add("rows", fmt.Sprintf("has %d rows, at most %d are allowed per message", n, maxImportChunk))
		}
		if p := totalRowsProblem(r); p != "" {
			v.Add("total_rows", p)
		}
	case *receivingv1.GetVacancyImportRequest:
		if p := idProblem(r.GetImportId()); p != "" {
			v.Add("import_id", p)
		}
	case *receivingv1.ListVacancyImportRejectionsRequest:
		if p := idProblem(r.GetImportId()); p != "" {
			v.Add("import_id", p)
		}
		rejectionsSize.Check(&v, r.GetPageSize())
	case *receivingv1.GetVacancyRequest:
		checkName(&v, "name", r.GetName(), vacanciesCollection)
	case *receivingv1.ListVacanciesRequest:
		listSize.Check(&v, r.GetPageSize())
		x.s.checkListFilters(&v, r)
	case *receivingv1.UpdateVacancyRequest:
		checkRequestID(&v, "request_id", r.GetRequestId())
		checkName(&v, "vacancy.name", r.GetVacancy().GetName(), vacanciesCollection)
		paths := r.GetUpdateMask().GetPaths()
		if len(paths) == 0 {
			v.Add("update_mask", "must name the fields to change")
		}
		for i, p := range paths {
			if !updatableFields[p] {
				v.Add(fmt.Sprintf("update_mask.paths[%d]", i), fmt.Sprintf("%q cannot be changed (changeable: employer_name, work_county, occupation, headcount, wage_min, wage_max, start_date, valid_through, min_age, max_age, housing_provided, meals_provided, contact)", p))
			}
		}
	case *receivingv1.CloseVacancyRequest:
		checkName(&v, "name", r.GetName(), vacanciesCollection)
		checkRequestID(&v, "request_id", r.GetRequestId())
	default:
		return apierror.NotValidated(req)
	}
	return v.Err()
}

// getVacancy reads a vacancy by id (NOT_FOUND if there is none).
func getVacancy(tx *bbolt.Tx, id string) (*receivingv1.Vacancy, error) {
	v := &receivingv1.Vacancy{}
	ok, err := store.GetProto(tx.Bucket(store.BucketVacancies), []byte(id), v)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, apierror.NotFound("vacancy %s not found", vacancyName(id))
	}
	return v, nil
}

// saveVacancy stores v as changed at now: it derives the status, gives v the demand feed's next
// revision and records the change in the feed, in tx.
func (s *Service) saveVacancy(tx *bbolt.Tx, v *receivingv1.Vacancy, now time.Time) error {
	v.Status = deriveStatus(v, today(now))
	v.UpdateTime = timestamppb.New(now)
	_, err := s.demand.appendEntry(tx, func(rev int64) proto.Message {
		v.Revision = rev
		return &receivingv1.DemandChange{Revision: rev, Vacancy: v, ChangeTime: timestamppb.New(now)}
	})
	if err != nil {
		return err
	}
	return store.PutProto(tx.Bucket(store.BucketVacancies), []byte(v.GetVacancyId()), v)
}

// createVacancy stores a new vacancy from the client fields of in (already valid), in tx.
func (s *Service) createVacancy(tx *bbolt.Tx, in *receivingv1.Vacancy, now time.Time) (*receivingv1.Vacancy, error) {
	seq, err := nextCounter(tx, []byte("vacancy.seq"))
	if err != nil {
		return nil, err
	}
	id := fmt.Sprintf("%s-V%010d", s.cfg.Region, seq)
	v := &receivingv1.Vacancy{
		Name:               vacancyName(id),
		VacancyId:          id,
		EmployerName:       in.GetEmployerName(),
		EmployerCreditCode: in.GetEmployerCreditCode(),
		WorkCounty:         in.GetWorkCounty(),
		Occupation:         in.GetOccupation(),
		Headcount:          in.GetHeadcount(),
		WageMin:            in.GetWageMin(),
		WageMax:            in.GetWageMax(),
		StartDate:          in.GetStartDate(),
		ValidThrough:       in.GetValidThrough(),
		MinAge:             in.GetMinAge(),
		MaxAge:             in.GetMaxAge(),
		HousingProvided:    in.GetHousingProvided(),
		MealsProvided:      in.GetMealsProvided(),
		Contact:            in.GetContact(),
		CreateTime:         timestamppb.New(now),
	}
	if err := s.saveVacancy(tx, v, now); err != nil {
		return nil, err
	}
	return v, nil
}

// present returns v as a client sees it at now: with its status derived again (see
// deriveStatus).
func present(v *receivingv1.Vacancy, now time.Time) *receivingv1.Vacancy {
	v.Status = deriveStatus(v, today(now))
	return v
}

// CreateVacancy publishes a vacancy.
func (x *vacancyServer) CreateVacancy(_ context.Context, req *receivingv1.CreateVacancyRequest) (*receivingv1.CreateVacancyResponse, error) {
	s := x.s
	in := proto.Clone(req.GetVacancy()).(*receivingv1.Vacancy)
	normalizeVacancy(in)
	resp := &receivingv1.CreateVacancyResponse{}
	err := s.updateOnce("/labour.receiving.v1.VacancyService/CreateVacancy", req, resp, func(tx *bbolt.Tx) error {
		v, err := s.createVacancy(tx, in, s.now())
		if err != nil {
			return err
		}
		resp.Vacancy = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	present(resp.Vacancy, s.now())
	return resp, nil
}

// GetVacancy reads a vacancy.
func (x *vacancyServer) GetVacancy(_ context.Context, req *receivingv1.GetVacancyRequest) (*receivingv1.GetVacancyResponse, error) {
	v, err := viewOne(x.s.db, func(tx *bbolt.Tx) (*receivingv1.Vacancy, error) {
		return getVacancy(tx, resourceID(req.GetName(), vacanciesCollection))
	})
	if err != nil {
		return nil, err
	}
	return &receivingv1.GetVacancyResponse{Vacancy: present(v, x.s.now())}, nil
}

// vacancyFilter selects vacancies; zero fields match everything.
type vacancyFilter struct {
	status     receivingv1.VacancyStatus
	occupation string
	county     string
	employer   string
}

// listing is what a page token of vacancies is bound to.
func (f vacancyFilter) listing() paging.Listing {
	return paging.For("vacancies", f.status.String(), f.occupation, f.county, f.employer)
}

func (f vacancyFilter) match(v *receivingv1.Vacancy) bool {
	return (f.status == 0 || v.GetStatus() == f.status) &&
		(f.occupation == "" || v.GetOccupation() == f.occupation) &&
		(f.county == "" || v.GetWorkCounty() == f.county) &&
		(f.employer == "" || v.GetEmployerCreditCode() == f.employer)
}

type vacancyPage struct {
	vacancies []*receivingv1.Vacancy
	next      string
	revision  int64
}

// listVacancies reads one page of vacancies matching f (status derived at read time) in id
// order, with the demand feed's head revision of the same snapshot.
func (s *Service) listVacancies(f vacancyFilter, token string, size int) (vacancyPage, error) {
	after, err := f.listing().Decode(token)
	if err != nil {
		return vacancyPage{}, err
	}
	now := s.now()
	day := today(now)
	var page vacancyPage
	err = s.db.View(func(tx *bbolt.Tx) error {
		page.revision = int64(counter(tx, s.demand.headKey))
		c := tx.Bucket(store.BucketVacancies).Cursor()
		var last []byte
		for k, data := c.Seek(startAfter(after)); k != nil; k, data = c.Next() {
			v := &receivingv1.Vacancy{}
			if err := proto.Unmarshal(data, v); err != nil {
				return fmt.Errorf("decode vacancy: %w", err)
			}
			v.Status = deriveStatus(v, day)
			if !f.match(v) {
				continue
			}
			if len(page.vacancies) == size {
				page.next = f.listing().Token(last)
				return nil
			}
			page.vacancies = append(page.vacancies, v)
			last = append(last[:0], k...)
		}
		return nil
	})
	return page, err
}

// ListVacancies lists vacancies with filters.
func (x *vacancyServer) ListVacancies(_ context.Context, req *receivingv1.ListVacanciesRequest) (*receivingv1.ListVacanciesResponse, error) {
	f := vacancyFilter{
		status:     req.GetStatus(),
		occupation: strings.ToUpper(strings.TrimSpace(req.GetOccupation())),
		county:     strings.TrimSpace(req.GetWorkCounty()),
		employer:   creditcode.Normalize(strings.TrimSpace(req.GetEmployerCreditCode())),
	}
	page, err := x.s.listVacancies(f, req.GetPageToken(), listSize.Of(req.GetPageSize()))
	if err != nil {
		return nil, err
	}
	return &receivingv1.ListVacanciesResponse{Vacancies: page.vacancies, NextPageToken: page.next, Revision: page.revision}, nil
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
		case "wage_min":
			to.WageMin = from.GetWageMin()
		case "wage_max":
			to.WageMax = from.GetWageMax()
		case "start_date":
			to.StartDate = from.GetStartDate()
		case "valid_through":
			to.ValidThrough = from.GetValidThrough()
		case "min_age":
			to.MinAge = from.GetMinAge()
		case "max_age":
			to.MaxAge = from.GetMaxAge()
		case "housing_provided":
			to.HousingProvided = from.GetHousingProvided()
		case "meals_provided":
			to.MealsProvided = from.GetMealsProvided()
		case "contact":
			to.Contact = from.GetContact()
		}
	}
}

// UpdateVacancy changes the fields named in the update mask. The result is checked as a whole
// (so that, say, a new wage_min above the stored wage_max is refused); headcount cannot go
// below the reserved count; a closed vacancy cannot change. An update that changes nothing
// returns the vacancy as it is, without a new revision.
func (x *vacancyServer) UpdateVacancy(_ context.Context, req *receivingv1.UpdateVacancyRequest) (*receivingv1.UpdateVacancyResponse, error) {
	s := x.s
	in := proto.Clone(req.GetVacancy()).(*receivingv1.Vacancy)
	normalizeVacancy(in)
	paths := req.GetUpdateMask().GetPaths()
	id := resourceID(in.GetName(), vacanciesCollection)
	resp := &receivingv1.UpdateVacancyResponse{}
	err := s.updateOnce("/labour.receiving.v1.VacancyService/UpdateVacancy", req, resp, func(tx *bbolt.Tx) error {
		old, err := getVacancy(tx, id)
		if err != nil {
			return err
		}
		if old.GetStatus() == statusClosed {
			return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_VACANCY_CLOSED, "vacancy %s is closed and cannot change", old.GetName())
		}
		v := proto.Clone(old).(*receivingv1.Vacancy)
		applyMask(v, in, paths)
		var vs apierror.Violations
		newValidThrough := false
		for _, p := range paths {
			newValidThrough = newValidThrough || (p == "valid_through" && dateCmp(v.GetValidThrough(), old.GetValidThrough()) != 0)
		}
		s.checkVacancy(&vs, "vacancy.", v, newValidThrough)
		if err := vs.Err(); err != nil {
			return err
		}
		if v.GetHeadcount() < v.GetReserved() {
			return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_HEADCOUNT_BELOW_RESERVED,
				"headcount %d is below the %d positions already reserved by accepted candidates of %s", v.GetHeadcount(), v.GetReserved(), v.GetName())
		}
		now := s.now()
		if proto.Equal(v, old) {
			resp.Vacancy = v
		} else {
			if err := s.saveVacancy(tx, v, now); err != nil {
				return err
			}
			resp.Vacancy = v
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	present(resp.Vacancy, s.now())
	return resp, nil
}

// CloseVacancy closes a vacancy; closing a closed vacancy returns it unchanged.
func (x *vacancyServer) CloseVacancy(_ context.Context, req *receivingv1.CloseVacancyRequest) (*receivingv1.CloseVacancyResponse, error) {
	s := x.s
	resp := &receivingv1.CloseVacancyResponse{}
	err := s.updateOnce("/labour.receiving.v1.VacancyService/CloseVacancy", req, resp, func(tx *bbolt.Tx) error {
		v, err := getVacancy(tx, resourceID(req.GetName(), vacanciesCollection))
		if err != nil {
			return err
		}
		if v.GetStatus() != statusClosed {
			v.Status = statusClosed
			if err := s.saveVacancy(tx, v, s.now()); err != nil {
				return err
			}
		}
		resp.Vacancy = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

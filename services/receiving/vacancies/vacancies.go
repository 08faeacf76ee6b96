// Package vacancies is the VacancyService of the receiving service: the province's vacancies,
// their imports from spreadsheets, and the demand feed's entries, appended in the transaction
// of each change (Save). Files: rules.go (status, checks, updates, reservations), store.go
// (tables, Get/Save/List, expiry sweep), vacancies.go (handlers), vacancyimport.go
// (ImportVacancies and its storage).
package vacancies

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/creditcode"
	"github.com/eastwest/labourlink/services/codes/occupation"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/metrics"
	"github.com/eastwest/labourlink/services/platform/privacy"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/receiving/internal/check"
	"github.com/eastwest/labourlink/services/receiving/internal/feedlog"
	"github.com/eastwest/labourlink/services/receiving/internal/province"
)

// Config configures the VacancyService.
type Config struct {
	DB       *feedlog.DB
	Log      *zap.Logger
	Now      func() time.Time
	Province *province.Province
	// ImportReplyRejections is the most rejected rows an import summary lists.
	ImportReplyRejections int
	// Draining, when not nil, is closed when the gRPC server begins its graceful stop: open
	// ImportVacancies streams then end with UNAVAILABLE, keeping the rows they committed.
	Draining <-chan struct{}
	// Metrics, when set, counts the rows imports commit (labourlink_import_rows_total).
	Metrics *metrics.Registry
}

// Server is the VacancyService.
type Server struct {
	receivingv1.UnimplementedVacancyServiceServer
	cfg Config
	// Draining is Config.Draining (settable until the first ImportVacancies stream).
	Draining <-chan struct{}
	// ImportHook, when set (tests), is called with ImportMessage when an ImportVacancies stream
	// has committed a message that does not end it and is about to wait for the next, and with
	// ImportEnd when the handler returns.
	ImportHook func(importID, event string)
}

// New returns the VacancyService.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	cfg.Metrics.InitializeImport(metrics.ImportVacancies)
	return &Server{cfg: cfg, Draining: cfg.Draining}
}

func (x *Server) now() time.Time { return x.cfg.Now() }

// PersonalDataFields gives the grpcserver privacy guard the vacancies' allow-list.
func (x *Server) PersonalDataFields() privacy.Allow { return check.PersonalData }

// ValidateRequest checks VacancyService requests before their handlers run. The rows of
// ImportVacancies are checked one by one in the handler (a bad row is rejected, not the stream).
func (x *Server) ValidateRequest(_ string, req any) error {
	var v apierror.Violations
	switch r := req.(type) {
	case *receivingv1.CreateVacancyRequest:
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
		if r.GetVacancy() == nil {
			v.Add("vacancy", "is required")
			break
		}
		normalize(r.Vacancy)
		checkVacancy(&v, x.cfg.Province, civil.Today(x.now()), "vacancy.", r.GetVacancy(), true)
	case *receivingv1.ImportVacanciesRequest:
		store.CheckImportID(&v, "import_id", r.GetImportId())
		if n := len(r.GetRows()); n > MaxImportChunk {
			v.Addf("rows", "has %d rows, at most %d are allowed per message", n, MaxImportChunk)
		}
		if p := totalRowsProblem(r); p != "" {
			v.Add("total_rows", p)
		}
	case *receivingv1.GetVacancyImportRequest:
		store.CheckImportID(&v, "import_id", r.GetImportId())
	case *receivingv1.ListVacancyImportRejectionsRequest:
		store.CheckImportID(&v, "import_id", r.GetImportId())
		check.RejectionsSize.Check(&v, r.GetPageSize())
	case *receivingv1.GetVacancyRequest:
		check.Name(&v, "name", r.GetName(), check.Vacancies)
	case *receivingv1.ListVacanciesRequest:
		check.ListSize.Check(&v, r.GetPageSize())
		x.checkListFilters(&v, r)
	case *receivingv1.UpdateVacancyRequest:
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
		check.Name(&v, "vacancy.name", r.GetVacancy().GetName(), check.Vacancies)
		paths := r.GetUpdateMask().GetPaths()
		if len(paths) == 0 {
			v.Add("update_mask", "must name the fields to change")
		}
		for i, p := range paths {
			if !updatableFields[p] {
				v.Addf(fmt.Sprintf("update_mask.paths[%d]", i), "%q cannot be changed (changeable: employer_name, work_county, occupation, headcount, monthly_wage_min_yuan, monthly_wage_max_yuan, start_date, valid_through, min_age, max_age, housing_provided, meals_provided, contact)", p)
			}
		}
	case *receivingv1.CloseVacancyRequest:
		check.Name(&v, "name", r.GetName(), check.Vacancies)
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
	default:
		return apierror.NotValidated(req)
	}
	return v.Err()
}

// checkListFilters adds a violation for every filter of ListVacancies that names nothing that
// can exist here, instead of answering an empty page as if it were a real question.
func (x *Server) checkListFilters(v *apierror.Violations, r *receivingv1.ListVacanciesRequest) {
	if _, ok := receivingv1.VacancyStatus_name[int32(r.GetStatus())]; !ok {
		v.Addf("status", "%d is not a VacancyStatus", r.GetStatus())
	}
	f := listFilter(r)
	if f.Occupation != "" && !occupation.Known(f.Occupation) {
		v.Addf("occupation", "%q is not an ISCO-08 unit group (4 digits, such as 8212) or GENERAL", r.GetOccupation())
	}
	if f.County != "" {
		if err := x.cfg.Province.Regions.CheckCountyIn(f.County, x.cfg.Province.Code); err != nil {
			v.Add("work_county", err.Error())
		}
	}
	if f.Employer != "" {
		if err := creditcode.Validate(f.Employer); err != nil {
			v.Add("employer_credit_code", "is not a unified social credit code: "+err.Error())
		}
	}
}

// listFilter is the filter of a ListVacancies request, normalised as vacancies are.
func listFilter(r *receivingv1.ListVacanciesRequest) Filter {
	return Filter{
		Status:     r.GetStatus(),
		Occupation: strings.ToUpper(strings.TrimSpace(r.GetOccupation())),
		County:     strings.TrimSpace(r.GetWorkCounty()),
		Employer:   creditcode.Normalize(strings.TrimSpace(r.GetEmployerCreditCode())),
	}
}

// CreateVacancy publishes a vacancy.
func (x *Server) CreateVacancy(_ context.Context, req *receivingv1.CreateVacancyRequest) (*receivingv1.CreateVacancyResponse, error) {
	in := proto.Clone(req.GetVacancy()).(*receivingv1.Vacancy)
	normalize(in)
	resp := &receivingv1.CreateVacancyResponse{}
	now := x.now()
	err := x.cfg.DB.UpdateOnce(now, receivingv1.VacancyService_CreateVacancy_FullMethodName, req, resp, func(tx *bbolt.Tx) error {
		if id, taken := FindByReference(tx, in.GetEmployerCreditCode(), in.GetExternalReference()); taken {
			return referenceTaken(in, id)
		}
		var err error
		resp.Vacancy, err = create(tx, x.cfg.Province.Code, in, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	present(resp.Vacancy, civil.Today(x.now()))
	return resp, nil
}

// GetVacancy reads a vacancy.
func (x *Server) GetVacancy(_ context.Context, req *receivingv1.GetVacancyRequest) (*receivingv1.GetVacancyResponse, error) {
	v, err := feedlog.Load(x.cfg.DB, Get, check.ResourceID(req.GetName(), check.Vacancies))
	if err != nil {
		return nil, err
	}
	return &receivingv1.GetVacancyResponse{Vacancy: present(v, civil.Today(x.now()))}, nil
}

// ListVacancies lists vacancies with filters.
func (x *Server) ListVacancies(_ context.Context, req *receivingv1.ListVacanciesRequest) (*receivingv1.ListVacanciesResponse, error) {
	page, err := List(x.cfg.DB, listFilter(req), req.GetPageToken(), check.ListSize.Of(req.GetPageSize()), x.now())
	if err != nil {
		return nil, err
	}
	return &receivingv1.ListVacanciesResponse{Vacancies: page.Vacancies, NextPageToken: page.Next, Revision: page.Revision}, nil
}

// UpdateVacancy changes the fields named in the update mask (the rule: update). An update that
// changes nothing returns the vacancy as it is, without a new revision.
func (x *Server) UpdateVacancy(_ context.Context, req *receivingv1.UpdateVacancyRequest) (*receivingv1.UpdateVacancyResponse, error) {
	in := proto.Clone(req.GetVacancy()).(*receivingv1.Vacancy)
	normalize(in)
	id := check.ResourceID(in.GetName(), check.Vacancies)
	resp := &receivingv1.UpdateVacancyResponse{}
	now := x.now()
	err := x.cfg.DB.UpdateOnce(now, receivingv1.VacancyService_UpdateVacancy_FullMethodName, req, resp, func(tx *bbolt.Tx) error {
		old, err := Get(tx, id)
		if err != nil {
			return err
		}
		if err := checkEtag(old, in.GetEtag()); err != nil {
			return err
		}
		v, changed, err := update(x.cfg.Province, civil.Today(now), old, in, req.GetUpdateMask().GetPaths())
		if err != nil {
			return err
		}
		resp.Vacancy = v
		if !changed {
			return nil
		}
		return Save(tx, v, now)
	})
	if err != nil {
		return nil, err
	}
	present(resp.Vacancy, civil.Today(x.now()))
	return resp, nil
}

// CloseVacancy closes a vacancy; closing a closed vacancy returns it unchanged.
func (x *Server) CloseVacancy(_ context.Context, req *receivingv1.CloseVacancyRequest) (*receivingv1.CloseVacancyResponse, error) {
	resp := &receivingv1.CloseVacancyResponse{}
	now := x.now()
	err := x.cfg.DB.UpdateOnce(now, receivingv1.VacancyService_CloseVacancy_FullMethodName, req, resp, func(tx *bbolt.Tx) error {
		v, err := Get(tx, check.ResourceID(req.GetName(), check.Vacancies))
		if err != nil {
			return err
		}
		resp.Vacancy = v
		if v.GetStatus() == Closed {
			return nil
		}
		v.Status = Closed
		return Save(tx, v, now)
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

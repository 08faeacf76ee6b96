// Package assessment is the coordination service's assessment (AssessmentService): per province
// and calendar year (China Standard Time), the registered-poor workers the ledger counts against
// a baseline.
//
// Numerator: distinct registered-poor workers with a DEPARTED event in the year whose sending
// region is the province (a sending province), or with an ONBOARDED event in the year whose
// receiving region is the province (a receiving province), from the ledger's assessment index
// (ledger.CountRegisteredPoor), so that a worker who goes out twice in a year counts once.
//
// Denominator: the operator's baseline for the province and year, else the province's numerator
// of the year before when it is at least 1 (BASELINE_SOURCE_LEDGER_PREVIOUS_YEAR), else none
// (BASELINE_SOURCE_NONE, denominator and percentage not set).
//
// The province's role comes from the registry (registry.Role); a province with no role cannot be
// assessed (FAILED_PRECONDITION, reason ROLE_UNKNOWN).
package assessment

import (
	"context"
	"encoding/binary"
	"strconv"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/coordination/check"
	"github.com/eastwest/labourlink/services/coordination/ledger"
	"github.com/eastwest/labourlink/services/coordination/registry"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/paging"
	"github.com/eastwest/labourlink/services/platform/store"
)

// Years an assessment or baseline may name (the ledger keeps times from 2000 to 2199).
const (
	minYear = 2000
	maxYear = 2199
)

// maxBaseline bounds an operator's baseline.
const maxBaseline = 1_000_000_000

// baselines holds the operators' baselines: province(6) year(2) -> Int64Value. The bucket name
// is that of the files written before this package existed.
var baselines = store.NewTable[*wrapperspb.Int64Value]([]byte("baselines"))

// Buckets are the assessment's buckets, for the service's store.Schema.
var Buckets = [][]byte{baselines.Name()}

// baselineKey is province(6) year(2).
func baselineKey(province string, year int) []byte {
	return binary.BigEndian.AppendUint16([]byte(province), uint16(year))
}

// Server is the AssessmentService.
type Server struct {
	coordinationv1.UnimplementedAssessmentServiceServer
	db      *store.DB
	w       store.Writer
	regions *regions.Table
	now     func() time.Time

	setBaseline *store.Mutation
}

// New returns the assessment over db, with the region table t and the clock now. Its writes go
// to db in this process until SetWriter.
func New(db *store.DB, t *regions.Table, now func() time.Time) *Server {
	x := &Server{db: db, w: store.Local{DB: db}, regions: t, now: now}
	x.setBaseline = store.NewMutation(coordinationv1.AssessmentService_SetBaseline_FullMethodName, x.applySetBaseline)
	return x
}

// SetWriter sends the assessment's writes to w.
func (x *Server) SetWriter(w store.Writer) { x.w = w }

// Mutations are the assessment's writes.
func (x *Server) Mutations() []*store.Mutation { return []*store.Mutation{x.setBaseline} }

// ValidateRequest checks assessment requests before the handlers run.
func (x *Server) ValidateRequest(method string, req any) error {
	t := x.regions
	var v apierror.Violations
	year := func(y int32) {
		if y < minYear || y > maxYear {
			v.Addf("year", "must be a calendar year from %d to %d", minYear, maxYear)
		}
	}
	switch r := req.(type) {
	case *coordinationv1.SetBaselineRequest:
		check.Province(&v, t, "region", r.GetRegion(), true)
		year(r.GetYear())
		if r.GetCount() < 1 || r.GetCount() > maxBaseline {
			v.Addf("count", "must be 1 to %d workers", maxBaseline)
		}
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
	case *coordinationv1.GetAssessmentRequest:
		check.Province(&v, t, "region", r.GetRegion(), true)
		year(r.GetYear())
	case *coordinationv1.ListAssessmentsRequest:
		year(r.GetYear())
		check.PageSize.Check(&v, r.GetPageSize())
		assessmentsListing(r).Check(&v, r.GetPageToken())
	default:
		return apierror.NotValidated(req)
	}
	return v.Err()
}

// SetBaseline sets or replaces the operator's baseline of a province and year.
func (x *Server) SetBaseline(ctx context.Context, req *coordinationv1.SetBaselineRequest) (*coordinationv1.SetBaselineResponse, error) {
	resp := &coordinationv1.SetBaselineResponse{}
	if err := x.w.Write(ctx, x.setBaseline, x.now(), req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

func (x *Server) applySetBaseline(tx *bbolt.Tx, _ time.Time, req *coordinationv1.SetBaselineRequest, resp *coordinationv1.SetBaselineResponse) error {
	role, err := x.role(tx, req.GetRegion())
	if err != nil {
		return err
	}
	if err := baselines.Put(tx, baselineKey(req.GetRegion(), int(req.GetYear())), wrapperspb.Int64(req.GetCount())); err != nil {
		return err
	}
	resp.Assessment, err = x.assess(tx, req.GetRegion(), int(req.GetYear()), role)
	return err
}

// GetAssessment assesses one province for one year.
func (x *Server) GetAssessment(ctx context.Context, req *coordinationv1.GetAssessmentRequest) (*coordinationv1.GetAssessmentResponse, error) {
	resp := &coordinationv1.GetAssessmentResponse{}
	err := x.db.View(func(tx *bbolt.Tx) error {
		role, err := x.role(tx, req.GetRegion())
		if err != nil {
			return err
		}
		resp.Assessment, err = x.assess(tx, req.GetRegion(), int(req.GetYear()), role)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// assessmentsListing is the listing of ListAssessments, bound to the year; a token holds the
// last province code returned.
func assessmentsListing(r *coordinationv1.ListAssessmentsRequest) paging.Listing {
	return paging.For("assessments", strconv.Itoa(int(r.GetYear()))).Keys(func(k []byte) bool {
		if len(k) != 6 {
			return false
		}
		for _, c := range k {
			if c < '0' || c > '9' {
				return false
			}
		}
		return true
	})
}

// ListAssessments assesses, in code order, every province in the region registry or in a
// registered pairing, a page at a time.
func (x *Server) ListAssessments(ctx context.Context, req *coordinationv1.ListAssessmentsRequest) (*coordinationv1.ListAssessmentsResponse, error) {
	listing := assessmentsListing(req)
	after, err := listing.Decode(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	n := check.PageSize.Of(req.GetPageSize())
	resp := &coordinationv1.ListAssessmentsResponse{}
	err = x.db.View(func(tx *bbolt.Tx) error {
		codes, err := registry.Provinces(tx)
		if err != nil {
			return err
		}
		for _, code := range codes {
			if code <= string(after) {
				continue
			}
			role, err := registry.Role(tx, code)
			if err != nil {
				return err
			}
			if role == commonv1.RegionRole_REGION_ROLE_UNSPECIFIED {
				continue
			}
			if len(resp.Assessments) == n {
				resp.NextPageToken = listing.Token([]byte(resp.Assessments[n-1].GetRegion()))
				return nil
			}
			a, err := x.assess(tx, code, int(req.GetYear()), role)
			if err != nil {
				return err
			}
			resp.Assessments = append(resp.Assessments, a)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// role returns the role of the province, refusing one without (ROLE_UNKNOWN).
func (x *Server) role(tx *bbolt.Tx, code string) (commonv1.RegionRole, error) {
	role, err := registry.Role(tx, code)
	if err != nil {
		return 0, err
	}
	if role == commonv1.RegionRole_REGION_ROLE_UNSPECIFIED {
		return 0, apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_ROLE_UNKNOWN,
			"province %s (%s) is neither registered nor in a pairing, so whether it sends or receives is not known",
			code, x.regions.Name(code)).WithMetadata("region", code)
	}
	return role, nil
}

// assess loads what the assessment of a province of the given role for year needs, and computes
// it (assessmentOf).
func (x *Server) assess(tx *bbolt.Tx, code string, year int, role commonv1.RegionRole) (*coordinationv1.Assessment, error) {
	kind := countedKind(role)
	num, err := ledger.CountRegisteredPoor(tx, code, year, kind)
	if err != nil {
		return nil, err
	}
	var prev int64
	if year > minYear {
		if prev, err = ledger.CountRegisteredPoor(tx, code, year-1, kind); err != nil {
			return nil, err
		}
	}
	base, _, err := baselines.Get(tx, baselineKey(code, year))
	if err != nil {
		return nil, err
	}
	return assessmentOf(code, x.regions.Name(code), role, year, num, prev, base.GetValue()), nil
}

// countedKind is the event kind the numerator of a province of role counts.
func countedKind(role commonv1.RegionRole) coordinationv1.EventKind {
	if role == commonv1.RegionRole_REGION_ROLE_RECEIVING {
		return coordinationv1.EventKind_EVENT_KIND_ONBOARDED
	}
	return coordinationv1.EventKind_EVENT_KIND_DEPARTED
}

// assessmentOf is the assessment of a province from its numerator num of the year, that of the
// year before prev, and the operator's baseline (0 when none): the baseline if set, else prev
// when at least 1, else no baseline.
func assessmentOf(code, name string, role commonv1.RegionRole, year int, num, prev, baseline int64) *coordinationv1.Assessment {
	a := &coordinationv1.Assessment{
		Region:      code,
		DisplayName: name,
		Role:        role,
		Year:        int32(year),
		Numerator:   num,
	}
	var den int64
	switch {
	case baseline > 0:
		den, a.BaselineSource = baseline, coordinationv1.BaselineSource_BASELINE_SOURCE_OPERATOR
	case prev > 0:
		den, a.BaselineSource = prev, coordinationv1.BaselineSource_BASELINE_SOURCE_LEDGER_PREVIOUS_YEAR
	default:
		a.BaselineSource = coordinationv1.BaselineSource_BASELINE_SOURCE_NONE
		return a
	}
	a.Denominator = proto.Int64(den)
	a.Percentage = proto.Float64(Percentage(num, den))
	return a
}

// Percentage is num/den*100 rounded half up to one decimal, computed in integers so that, for
// example, 954/1000 gives exactly 95.4.
func Percentage(num, den int64) float64 {
	tenths := (num*2000 + den) / (2 * den)
	return float64(tenths) / 10
}

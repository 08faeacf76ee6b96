package coordination

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sort"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/types/known/wrapperspb"

	commonv1 "github.com/eastwest/labourlink/proto/labour/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labour/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/store"
)

// Assessment per province and calendar year (China Standard Time).
//
// Numerator: distinct registered-poor workers with a DEPARTED event in the year whose sending
// region is the province (a sending province), or with an ONBOARDED event in the year whose
// receiving region is the province (a receiving province). BucketLedgerAssessment holds one key
// per (province, year, category, worker), so a worker who goes out twice in a year is one key.
//
// Denominator: the operator's baseline for the province and year (BucketBaselines,
// province(6) year(2) -> Int64Value), else the province's numerator of the year before when it is
// at least 1 (BASELINE_SOURCE_LEDGER_PREVIOUS_YEAR), else none (has_baseline false, percentage 0).
//
// The province's role comes from its registry entry, else from the registered pairings (a
// receiving side of a pairing is receiving), else from the default pairing table; a province with
// no role cannot be assessed (FAILED_PRECONDITION, reason ROLE_UNKNOWN).

// Years an assessment or baseline may name (the ledger keeps times from 2000 to 2199).
const (
	minYear = 2000
	maxYear = 2199
)

// maxBaseline bounds an operator's baseline.
const maxBaseline = 1_000_000_000

func baselineKey(province string, year int) []byte {
	return binary.BigEndian.AppendUint16([]byte(province), uint16(year))
}

// ValidateRequest checks assessment requests before the handlers run.
func (x *assessmentServer) ValidateRequest(method string, req any) error {
	t := x.s.regions
	var v apierror.Violations
	year := func(y int32) {
		if y < minYear || y > maxYear {
			v.Add("year", fmt.Sprintf("must be a calendar year from %d to %d", minYear, maxYear))
		}
	}
	switch r := req.(type) {
	case *coordinationv1.SetBaselineRequest:
		checkProvince(&v, t, "region", r.GetRegion(), true)
		year(r.GetYear())
		if r.GetCount() < 1 || r.GetCount() > maxBaseline {
			v.Add("count", fmt.Sprintf("must be 1 to %d workers", maxBaseline))
		}
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
	case *coordinationv1.GetAssessmentRequest:
		checkProvince(&v, t, "region", r.GetRegion(), true)
		year(r.GetYear())
	case *coordinationv1.ListAssessmentsRequest:
		year(r.GetYear())
	default:
		return apierror.NotValidated(req)
	}
	return v.Err()
}

// SetBaseline sets or replaces the operator's baseline of a province and year.
func (x *assessmentServer) SetBaseline(ctx context.Context, req *coordinationv1.SetBaselineRequest) (*coordinationv1.SetBaselineResponse, error) {
	const method = coordinationv1.AssessmentService_SetBaseline_FullMethodName
	s := x.s
	resp := &coordinationv1.SetBaselineResponse{}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if ok, err := store.Recall(tx, method, req, resp); err != nil || ok {
			return err
		}
		role := s.roleOf(tx, req.GetRegion())
		if role == commonv1.RegionRole_REGION_ROLE_UNSPECIFIED {
			return s.roleUnknown(req.GetRegion())
		}
		if err := store.PutProto(tx.Bucket(store.BucketBaselines), baselineKey(req.GetRegion(), int(req.GetYear())), wrapperspb.Int64(req.GetCount())); err != nil {
			return err
		}
		a, err := s.assess(tx, req.GetRegion(), int(req.GetYear()), role)
		if err != nil {
			return err
		}
		resp.Assessment = a
		return store.Remember(tx, s.cfg.Now(), method, req, resp)
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// GetAssessment assesses one province for one year.
func (x *assessmentServer) GetAssessment(ctx context.Context, req *coordinationv1.GetAssessmentRequest) (*coordinationv1.GetAssessmentResponse, error) {
	s := x.s
	resp := &coordinationv1.GetAssessmentResponse{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		role := s.roleOf(tx, req.GetRegion())
		if role == commonv1.RegionRole_REGION_ROLE_UNSPECIFIED {
			return s.roleUnknown(req.GetRegion())
		}
		var err error
		resp.Assessment, err = s.assess(tx, req.GetRegion(), int(req.GetYear()), role)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// ListAssessments assesses, in code order, every province in the region registry or in a
// registered pairing.
func (x *assessmentServer) ListAssessments(ctx context.Context, req *coordinationv1.ListAssessmentsRequest) (*coordinationv1.ListAssessmentsResponse, error) {
	s := x.s
	resp := &coordinationv1.ListAssessmentsResponse{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		set := map[string]bool{}
		c := tx.Bucket(store.BucketRegions).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			set[string(k)] = true
		}
		for _, p := range registeredPairings(tx) {
			set[p.Receiving], set[p.Sending] = true, true
		}
		codes := make([]string, 0, len(set))
		for code := range set {
			codes = append(codes, code)
		}
		sort.Strings(codes)
		for _, code := range codes {
			role := s.roleOf(tx, code)
			if role == commonv1.RegionRole_REGION_ROLE_UNSPECIFIED {
				continue
			}
			a, err := s.assess(tx, code, int(req.GetYear()), role)
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

func (s *Service) roleUnknown(code string) error {
	return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_ROLE_UNKNOWN,
		"province %s (%s) is neither registered nor in a pairing, so whether it sends or receives is not known",
		code, s.regions.Name(code)).WithMetadata("region", code)
}

// roleOf returns the province's role: from the registry, the registered pairings or the default
// pairing table, in that order; unspecified if none says.
func (s *Service) roleOf(tx *bbolt.Tx, code string) commonv1.RegionRole {
	reg := &coordinationv1.Region{}
	if ok, err := store.GetProto(tx.Bucket(store.BucketRegions), []byte(code), reg); err == nil && ok &&
		reg.GetRole() != commonv1.RegionRole_REGION_ROLE_UNSPECIFIED {
		return reg.GetRole()
	}
	if r := roleFromPairings(tx, code); r != commonv1.RegionRole_REGION_ROLE_UNSPECIFIED {
		return r
	}
	role := commonv1.RegionRole_REGION_ROLE_UNSPECIFIED
	for _, p := range regions.DefaultPairings() {
		switch code {
		case p.Receiving:
			return commonv1.RegionRole_REGION_ROLE_RECEIVING
		case p.Sending:
			role = commonv1.RegionRole_REGION_ROLE_SENDING
		}
	}
	return role
}

// numerator counts the distinct registered-poor workers of the province's category in year.
func numerator(tx *bbolt.Tx, code string, year int, role commonv1.RegionRole) int64 {
	cat := catDeparted
	if role == commonv1.RegionRole_REGION_ROLE_RECEIVING {
		cat = catOnboarded
	}
	prefix := assessmentPrefix(code, year, cat)
	var n int64
	c := tx.Bucket(store.BucketLedgerAssessment).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		n++
	}
	return n
}

// assess computes the assessment of a province of the given role for year.
func (s *Service) assess(tx *bbolt.Tx, code string, year int, role commonv1.RegionRole) (*coordinationv1.Assessment, error) {
	a := &coordinationv1.Assessment{
		Region:      code,
		DisplayName: s.regions.Name(code),
		Role:        role,
		Year:        int32(year),
		Numerator:   numerator(tx, code, year, role),
	}
	base := &wrapperspb.Int64Value{}
	ok, err := store.GetProto(tx.Bucket(store.BucketBaselines), baselineKey(code, year), base)
	if err != nil {
		return nil, err
	}
	switch {
	case ok && base.GetValue() > 0:
		a.Denominator, a.BaselineSource = base.GetValue(), coordinationv1.BaselineSource_BASELINE_SOURCE_OPERATOR
	case year > minYear:
		if prev := numerator(tx, code, year-1, role); prev > 0 {
			a.Denominator, a.BaselineSource = prev, coordinationv1.BaselineSource_BASELINE_SOURCE_LEDGER_PREVIOUS_YEAR
		}
	}
	if a.Denominator > 0 {
		a.HasBaseline = true
		a.Percentage = percentage(a.Numerator, a.Denominator)
	}
	return a, nil
}

// percentage is num/den*100 rounded half up to one decimal, computed in integers so that, for
// example, 954/1000 gives exactly 95.4.
func percentage(num, den int64) float64 {
	tenths := (num*2000 + den) / (2 * den)
	return float64(tenths) / 10
}

package receiving

import (
	"fmt"
	"strings"

	receivingv1 "github.com/eastwest/labourlink/proto/labour/receiving/v1"
	"github.com/eastwest/labourlink/services/codes/creditcode"
	"github.com/eastwest/labourlink/services/codes/occupation"
	"github.com/eastwest/labourlink/services/platform/apierror"
)

// checkListFilters adds a violation for every filter of a List request that names nothing that
// can exist here, instead of answering an empty page as if it were a real question: an enum
// value that is not defined, a county that is not one of this province's, a code that is not a
// province, an occupation or a credit code. Called by ValidateRequest for ListVacancies,
// ListCandidates, ListIntakeBatches and ListEmploymentRecords (the feed and decision Lists take
// a required sending_region, checked with checkSendingRegion).
func (s *Service) checkListFilters(v *apierror.Violations, req any) {
	switch r := req.(type) {
	case *receivingv1.ListVacanciesRequest:
		if _, ok := receivingv1.VacancyStatus_name[int32(r.GetStatus())]; !ok {
			v.Add("status", fmt.Sprintf("%d is not a VacancyStatus", r.GetStatus()))
		}
		// The same normalisation as the handler's (ListVacancies).
		if o := strings.ToUpper(strings.TrimSpace(r.GetOccupation())); o != "" && !occupation.Known(o) {
			v.Add("occupation", fmt.Sprintf("%q is not an ISCO-08 unit group (4 digits, such as 8212) or GENERAL", r.GetOccupation()))
		}
		if c := strings.TrimSpace(r.GetWorkCounty()); c != "" {
			if err := s.regions.CheckCountyIn(c, s.cfg.Region); err != nil {
				v.Add("work_county", err.Error())
			}
		}
		if c := creditcode.Normalize(strings.TrimSpace(r.GetEmployerCreditCode())); c != "" {
			if err := creditcode.Validate(c); err != nil {
				v.Add("employer_credit_code", "is not a unified social credit code: "+err.Error())
			}
		}
	case *receivingv1.ListCandidatesRequest:
		if _, ok := receivingv1.CandidateState_name[int32(r.GetState())]; !ok {
			v.Add("state", fmt.Sprintf("%d is not a CandidateState", r.GetState()))
		}
		s.checkSendingRegionFilter(v, r.GetSendingRegion())
	case *receivingv1.ListIntakeBatchesRequest:
		s.checkSendingRegionFilter(v, r.GetSendingRegion())
	case *receivingv1.ListEmploymentRecordsRequest:
		if _, ok := receivingv1.EmploymentStatus_name[int32(r.GetStatus())]; !ok {
			v.Add("status", fmt.Sprintf("%d is not an EmploymentStatus", r.GetStatus()))
		}
		s.checkSendingRegionFilter(v, r.GetSendingRegion())
	}
}

// checkSendingRegionFilter checks an optional sending_region filter: a province, not this one.
func (s *Service) checkSendingRegionFilter(v *apierror.Violations, code string) {
	switch {
	case code == "":
	case code == s.cfg.Region:
		v.Add("sending_region", fmt.Sprintf("%s is this receiving province: give the code of a sending province, such as 520000", code))
	default:
		s.checkSendingRegion(v, "sending_region", code)
	}
}

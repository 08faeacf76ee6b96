package candidates

import (
	"errors"
	"testing"
	"time"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/platform/apierror"
)

// reason is the ErrorReason of a rule's error (UNSPECIFIED when it has none).
func reason(err error) commonv1.ErrorReason {
	var e *apierror.Error
	if errors.As(err, &e) {
		return e.ErrorReason()
	}
	return commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED
}

func TestDecides(t *testing.T) {
	t.Parallel()
	tests := []struct {
		state  receivingv1.CandidateState
		accept bool
		want   bool
		reason commonv1.ErrorReason
	}{
		{Pending, true, true, 0},
		{Pending, false, true, 0},
		{Accepted, true, false, 0},
		{Rejected, false, false, 0},
		{Accepted, false, false, commonv1.ErrorReason_ERROR_REASON_CANDIDATE_ALREADY_DECIDED},
		{Rejected, true, false, commonv1.ErrorReason_ERROR_REASON_CANDIDATE_ALREADY_DECIDED},
		{Withdrawn, true, false, commonv1.ErrorReason_ERROR_REASON_CANDIDATE_WITHDRAWN},
		{Withdrawn, false, false, commonv1.ErrorReason_ERROR_REASON_CANDIDATE_WITHDRAWN},
	}
	for _, tt := range tests {
		got, err := decides(&receivingv1.Candidate{Name: "candidates/c1", State: tt.state}, tt.accept)
		if got != tt.want || reason(err) != tt.reason || (tt.reason == 0) != (err == nil) {
			t.Errorf("decides(%s, accept %t) = %t, %v; want %t, reason %v", StateWord(tt.state), tt.accept, got, err, tt.want, tt.reason)
		}
	}
}

func TestWithdraws(t *testing.T) {
	t.Parallel()
	tests := []struct {
		state   receivingv1.CandidateState
		sending string
		want    bool
		reason  commonv1.ErrorReason
	}{
		{Pending, "520000", true, 0},
		{Accepted, "520000", true, 0},
		{Rejected, "520000", false, 0},
		{Withdrawn, "520000", false, 0},
		{Pending, "450000", false, commonv1.ErrorReason_ERROR_REASON_NOT_OWNER},
	}
	for _, tt := range tests {
		got, err := withdraws(&receivingv1.Candidate{Name: "candidates/c1", SendingRegion: "520000", State: tt.state}, tt.sending)
		if got != tt.want || reason(err) != tt.reason || (tt.reason == 0) != (err == nil) {
			t.Errorf("withdraws(%s by %s) = %t, %v; want %t, reason %v", StateWord(tt.state), tt.sending, got, err, tt.want, tt.reason)
		}
	}
}

// A candidate for a closed or expired vacancy is recorded rejected at once; a filled one takes
// pending candidates.
func TestSubmittedState(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 10, 0, 0, 0, civil.Zone)
	open := &commonv1.Date{Year: 2025, Month: 6, Day: 30}
	tests := []struct {
		name       string
		vac        *receivingv1.Vacancy
		want       receivingv1.CandidateState
		wantReason string
	}{
		{"open", &receivingv1.Vacancy{Headcount: 2, ValidThrough: open}, Pending, ""},
		{"filled", &receivingv1.Vacancy{Headcount: 2, Reserved: 2, ValidThrough: open}, Pending, ""},
		{"closed", &receivingv1.Vacancy{Status: receivingv1.VacancyStatus_VACANCY_STATUS_CLOSED, Headcount: 2, ValidThrough: open}, Rejected, "vacancy closed"},
		{"expired", &receivingv1.Vacancy{Headcount: 2, ValidThrough: &commonv1.Date{Year: 2025, Month: 2, Day: 28}}, Rejected, "vacancy expired (valid through 2025-02-28)"},
	}
	for _, tt := range tests {
		tt.vac.Name = "vacancies/v1"
		c := submitted("440000-C1", "520000", &receivingv1.Candidate{WorkerId: "520000-w"}, tt.vac, now)
		if c.GetState() != tt.want || c.GetStateReason() != tt.wantReason || c.GetVacancy() != "vacancies/v1" || c.GetName() != "candidates/440000-C1" {
			t.Errorf("%s: submitted = %v, want state %v reason %q", tt.name, c, tt.want, tt.wantReason)
		}
	}
}

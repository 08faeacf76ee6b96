package receiving

import (
	"testing"

	receivingv1 "github.com/eastwest/labourlink/proto/labour/receiving/v1"
	"github.com/eastwest/labourlink/services/platform/paging"
)

// Every List refuses filters that name nothing that can exist here (the field named), and a page
// token it did not issue (a violation on page_token), instead of answering an empty page.
func TestListsRefuseBadFiltersAndTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createVacancy(goodVacancy(t))
	const beijingCounty = "110101"
	tests := []struct {
		name  string
		call  func() error
		field string
	}{
		{"vacancies: undefined status", func() error {
			_, err := e.vac.ListVacancies(ctx(t), &receivingv1.ListVacanciesRequest{Status: 77})
			return err
		}, "status"},
		{"vacancies: a county of another province", func() error {
			_, err := e.vac.ListVacancies(ctx(t), &receivingv1.ListVacanciesRequest{WorkCounty: beijingCounty})
			return err
		}, "work_county"},
		{"vacancies: a province as county", func() error {
			_, err := e.vac.ListVacancies(ctx(t), &receivingv1.ListVacanciesRequest{WorkCounty: region})
			return err
		}, "work_county"},
		{"vacancies: unknown occupation", func() error {
			_, err := e.vac.ListVacancies(ctx(t), &receivingv1.ListVacanciesRequest{Occupation: "12"})
			return err
		}, "occupation"},
		{"vacancies: bad credit code", func() error {
			_, err := e.vac.ListVacancies(ctx(t), &receivingv1.ListVacanciesRequest{EmployerCreditCode: "91440300MA5FN1234Z"})
			return err
		}, "employer_credit_code"},
		{"vacancies: garbage page token", func() error {
			_, err := e.vac.ListVacancies(ctx(t), &receivingv1.ListVacanciesRequest{PageToken: "garbage"})
			return err
		}, "page_token"},
		{"candidates: undefined state", func() error {
			_, err := e.cand.ListCandidates(ctx(t), &receivingv1.ListCandidatesRequest{State: 9})
			return err
		}, "state"},
		{"candidates: this province as sending region", func() error {
			_, err := e.cand.ListCandidates(ctx(t), &receivingv1.ListCandidatesRequest{SendingRegion: region})
			return err
		}, "sending_region"},
		{"candidates: a prefecture as sending region", func() error {
			_, err := e.cand.ListCandidates(ctx(t), &receivingv1.ListCandidatesRequest{SendingRegion: "520100"})
			return err
		}, "sending_region"},
		{"candidates: garbage page token", func() error {
			_, err := e.cand.ListCandidates(ctx(t), &receivingv1.ListCandidatesRequest{PageToken: "!!!"})
			return err
		}, "page_token"},
		{"intake batches: not a region code", func() error {
			_, err := e.intake.ListIntakeBatches(ctx(t), &receivingv1.ListIntakeBatchesRequest{SendingRegion: "abc"})
			return err
		}, "sending_region"},
		{"intake batches: garbage page token", func() error {
			_, err := e.intake.ListIntakeBatches(ctx(t), &receivingv1.ListIntakeBatchesRequest{PageToken: "garbage"})
			return err
		}, "page_token"},
		{"employment records: undefined status", func() error {
			_, err := e.intake.ListEmploymentRecords(ctx(t), &receivingv1.ListEmploymentRecordsRequest{Status: 42})
			return err
		}, "status"},
		{"employment records: unknown province", func() error {
			_, err := e.intake.ListEmploymentRecords(ctx(t), &receivingv1.ListEmploymentRecordsRequest{SendingRegion: "990000"})
			return err
		}, "sending_region"},
		{"employment records: garbage page token", func() error {
			_, err := e.intake.ListEmploymentRecords(ctx(t), &receivingv1.ListEmploymentRecordsRequest{PageToken: "garbage"})
			return err
		}, "page_token"},
		{"open demand: garbage page token", func() error {
			_, err := e.feed.ListOpenDemand(ctx(t), &receivingv1.ListOpenDemandRequest{SendingRegion: sending, PageToken: "garbage"})
			return err
		}, "page_token"},
		{"import rejections: garbage page token", func() error {
			if _, err := e.importRows("imp-1", []*receivingv1.VacancyRow{goodRow(t, 2)}); err != nil {
				t.Fatal(err)
			}
			_, err := e.vac.ListVacancyImportRejections(ctx(t), &receivingv1.ListVacancyImportRejectionsRequest{ImportId: "imp-1", PageToken: "garbage"})
			return err
		}, "page_token"},
		{"import rejections: a token of another import", func() error {
			tok := paging.For("import rejections", "imp-0").Token(make([]byte, 8))
			_, err := e.vac.ListVacancyImportRejections(ctx(t), &receivingv1.ListVacancyImportRejectionsRequest{ImportId: "imp-1", PageToken: tok})
			return err
		}, "page_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := violations(t, tt.call())
			if _, ok := got[tt.field]; !ok || len(got) != 1 {
				t.Fatalf("violations %v, want one on %s", got, tt.field)
			}
		})
	}
	// Good filters still list.
	resp, err := e.vac.ListVacancies(ctx(t), &receivingv1.ListVacanciesRequest{
		Status: receivingv1.VacancyStatus_VACANCY_STATUS_OPEN, WorkCounty: workCounty, Occupation: "8212",
		EmployerCreditCode: goodVacancy(t).GetEmployerCreditCode(),
	})
	if err != nil || len(resp.GetVacancies()) == 0 {
		t.Fatalf("ListVacancies with good filters: %v, %v", resp, err)
	}
	if _, err := e.cand.ListCandidates(ctx(t), &receivingv1.ListCandidatesRequest{SendingRegion: sending, State: receivingv1.CandidateState_CANDIDATE_STATE_PENDING}); err != nil {
		t.Errorf("ListCandidates with good filters: %v", err)
	}
}

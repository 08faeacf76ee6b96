package receiving

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
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

// ListIntakeBatches filters by state and by the day of the expected arrival, ListCandidates by
// worker; bad filters are refused on their field, and a page token is bound to the filters.
func TestListIntakeBatchesByStateAndArrivalAndCandidatesByWorker(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.intakeScenario("520000-B00000001", 2) // DEPARTED, arriving 2025-03-02 (CST)
	e.clock.Add(72 * time.Hour)
	b := e.intakeScenario("520000-B00000002", 2) // DEPARTED, arriving 2025-03-05
	// An announced batch, arriving 2025-03-05 too.
	v := e.createVacancy(goodVacancy(t))
	c := candidate(v.GetName(), "520000-B00000003-w-1")
	e.accept(e.submit(c)[0].GetName())
	dep := e.clock.Now()
	if _, err := e.intake.AnnounceBatch(ctx(t), &receivingv1.AnnounceBatchRequest{Batch: &receivingv1.IntakeBatch{
		BatchId: "520000-B00000003", SendingRegion: sending, Mode: commonv1.TransportMode_TRANSPORT_MODE_BUS,
		DestinationCounty: workCounty, ExpectedArrivalTime: timestamppb.New(dep.Add(20 * time.Hour)),
		Entries: []*receivingv1.IntakeEntry{{WorkerId: c.GetWorkerId(), Vacancy: v.GetName()}}}}); err != nil {
		t.Fatal(err)
	}
	ids := func(req *receivingv1.ListIntakeBatchesRequest) []string {
		t.Helper()
		resp, err := e.intake.ListIntakeBatches(ctx(t), req)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, b := range resp.GetBatches() {
			got = append(got, b.GetBatchId())
		}
		return got
	}
	departed := receivingv1.IntakeBatchState_INTAKE_BATCH_STATE_DEPARTED
	for _, tt := range []struct {
		name string
		req  *receivingv1.ListIntakeBatchesRequest
		want []string
	}{
		{"all", &receivingv1.ListIntakeBatchesRequest{}, []string{a.GetBatchId(), b.GetBatchId(), "520000-B00000003"}},
		{"departed", &receivingv1.ListIntakeBatchesRequest{State: departed}, []string{a.GetBatchId(), b.GetBatchId()}},
		{"announced", &receivingv1.ListIntakeBatchesRequest{State: receivingv1.IntakeBatchState_INTAKE_BATCH_STATE_ANNOUNCED}, []string{"520000-B00000003"}},
		{"cancelled", &receivingv1.ListIntakeBatchesRequest{State: receivingv1.IntakeBatchState_INTAKE_BATCH_STATE_CANCELLED}, nil},
		{"arriving from 03-03", &receivingv1.ListIntakeBatchesRequest{ExpectedArrivalFrom: date(2025, 3, 3)}, []string{b.GetBatchId(), "520000-B00000003"}},
		{"arriving on 03-02", &receivingv1.ListIntakeBatchesRequest{ExpectedArrivalFrom: date(2025, 3, 2), ExpectedArrivalTo: date(2025, 3, 2)}, []string{a.GetBatchId()}},
		{"departed, arriving to 03-05", &receivingv1.ListIntakeBatchesRequest{State: departed, ExpectedArrivalTo: date(2025, 3, 5)}, []string{a.GetBatchId(), b.GetBatchId()}},
	} {
		if got := ids(tt.req); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	for _, tt := range []struct {
		name  string
		req   *receivingv1.ListIntakeBatchesRequest
		field string
	}{
		{"unknown state", &receivingv1.ListIntakeBatchesRequest{State: 9}, "state"},
		{"bad date", &receivingv1.ListIntakeBatchesRequest{ExpectedArrivalFrom: date(2025, 2, 30)}, "expected_arrival_from"},
		{"to before from", &receivingv1.ListIntakeBatchesRequest{ExpectedArrivalFrom: date(2025, 3, 5), ExpectedArrivalTo: date(2025, 3, 2)}, "expected_arrival_to"},
	} {
		_, err := e.intake.ListIntakeBatches(ctx(t), tt.req)
		if _, ok := violations(t, err)[tt.field]; !ok {
			t.Errorf("%s: %v, want a violation on %s", tt.name, err, tt.field)
		}
	}
	page, err := e.intake.ListIntakeBatches(ctx(t), &receivingv1.ListIntakeBatchesRequest{State: departed, PageSize: 1})
	if err != nil || page.GetNextPageToken() == "" {
		t.Fatalf("first page: %v, %v", page, err)
	}
	_, err = e.intake.ListIntakeBatches(ctx(t), &receivingv1.ListIntakeBatchesRequest{PageSize: 1, PageToken: page.GetNextPageToken(), ExpectedArrivalFrom: date(2025, 3, 3)})
	if _, ok := violations(t, err)["page_token"]; !ok {
		t.Errorf("a token with other filters: %v", err)
	}

	// Candidates by worker.
	w := a.GetEntries()[0].GetWorkerId()
	resp, err := e.cand.ListCandidates(ctx(t), &receivingv1.ListCandidatesRequest{WorkerId: w})
	if err != nil || len(resp.GetCandidates()) != 1 || resp.GetCandidates()[0].GetWorkerId() != w {
		t.Fatalf("candidates of %s: %v, %v", w, resp, err)
	}
	_, err = e.cand.ListCandidates(ctx(t), &receivingv1.ListCandidatesRequest{WorkerId: "bad id with spaces"})
	if _, ok := violations(t, err)["worker_id"]; !ok {
		t.Errorf("a malformed worker id: %v", err)
	}
	all, err := e.cand.ListCandidates(ctx(t), &receivingv1.ListCandidatesRequest{PageSize: 1})
	if err != nil || all.GetNextPageToken() == "" {
		t.Fatalf("candidates page: %v, %v", all, err)
	}
	_, err = e.cand.ListCandidates(ctx(t), &receivingv1.ListCandidatesRequest{PageSize: 1, PageToken: all.GetNextPageToken(), WorkerId: w})
	if _, ok := violations(t, err)["page_token"]; !ok {
		t.Errorf("a candidates token with another worker filter: %v", err)
	}
}

package receiving

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
)

// Each bad field of a vacancy is refused with a violation on that field, and nothing is
// stored: no vacancy, and the demand feed stays at revision 0.
func TestCreateVacancyRefusesEachBadField(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id18 := idNumber("52010219900307123")
	tests := []struct {
		name  string
		field string
		edit  func(v *receivingv1.Vacancy)
	}{
		{"no employer name", "vacancy.employer_name", func(v *receivingv1.Vacancy) { v.EmployerName = "  " }},
		{"employer name too long", "vacancy.employer_name", func(v *receivingv1.Vacancy) { v.EmployerName = strings.Repeat("厂", 101) }},
		{"employer name with line break", "vacancy.employer_name", func(v *receivingv1.Vacancy) { v.EmployerName = "a\nb" }},
		{"no credit code", "vacancy.employer_credit_code", func(v *receivingv1.Vacancy) { v.EmployerCreditCode = "" }},
		{"credit code bad check", "vacancy.employer_credit_code", func(v *receivingv1.Vacancy) {
			c := []byte(v.EmployerCreditCode)
			c[17] = map[bool]byte{true: '1', false: '0'}[c[17] == '0']
			v.EmployerCreditCode = string(c)
		}},
		{"credit code short", "vacancy.employer_credit_code", func(v *receivingv1.Vacancy) { v.EmployerCreditCode = "91440300MA5" }},
		{"credit code with O", "vacancy.employer_credit_code", func(v *receivingv1.Vacancy) { v.EmployerCreditCode = "91440300MO5FN12345" }},
		{"no work county", "vacancy.work_county", func(v *receivingv1.Vacancy) { v.WorkCounty = "" }},
		{"work county in another province", "vacancy.work_county", func(v *receivingv1.Vacancy) { v.WorkCounty = homeCounty }},
		{"work county is a prefecture", "vacancy.work_county", func(v *receivingv1.Vacancy) { v.WorkCounty = "440300" }},
		{"work county unknown", "vacancy.work_county", func(v *receivingv1.Vacancy) { v.WorkCounty = "449999" }},
		{"no occupation", "vacancy.occupation", func(v *receivingv1.Vacancy) { v.Occupation = "" }},
		{"unknown occupation", "vacancy.occupation", func(v *receivingv1.Vacancy) { v.Occupation = "9999" }},
		{"three-digit occupation", "vacancy.occupation", func(v *receivingv1.Vacancy) { v.Occupation = "821" }},
		{"zero headcount", "vacancy.headcount", func(v *receivingv1.Vacancy) { v.Headcount = 0 }},
		{"negative headcount", "vacancy.headcount", func(v *receivingv1.Vacancy) { v.Headcount = -3 }},
		{"huge headcount", "vacancy.headcount", func(v *receivingv1.Vacancy) { v.Headcount = 1_000_000 }},
		{"wage min too low", "vacancy.monthly_wage_min_yuan", func(v *receivingv1.Vacancy) { v.MonthlyWageMinYuan = 300 }},
		{"wage max too high", "vacancy.monthly_wage_max_yuan", func(v *receivingv1.Vacancy) { v.MonthlyWageMaxYuan = 600000 }},
		{"wage range reversed", "vacancy.monthly_wage_max_yuan", func(v *receivingv1.Vacancy) { v.MonthlyWageMinYuan, v.MonthlyWageMaxYuan = 6000, 4500 }},
		{"no start date", "vacancy.start_date", func(v *receivingv1.Vacancy) { v.StartDate = nil }},
		{"start date 31 April", "vacancy.start_date", func(v *receivingv1.Vacancy) { v.StartDate = date(2025, 4, 31) }},
		{"no valid-through", "vacancy.valid_through", func(v *receivingv1.Vacancy) { v.ValidThrough = nil }},
		{"valid-through before start", "vacancy.valid_through", func(v *receivingv1.Vacancy) { v.ValidThrough = date(2025, 3, 20) }},
		{"valid-through equal to start", "vacancy.valid_through", func(v *receivingv1.Vacancy) { v.ValidThrough = date(2025, 4, 1) }},
		{"valid-through in the past", "vacancy.valid_through", func(v *receivingv1.Vacancy) {
			v.StartDate, v.ValidThrough = date(2025, 1, 1), date(2025, 2, 1)
		}},
		{"min age under 16", "vacancy.min_age", func(v *receivingv1.Vacancy) { v.MinAge = proto.Int32(15) }},
		{"min age 0 (unset is 16)", "vacancy.min_age", func(v *receivingv1.Vacancy) { v.MinAge = proto.Int32(0) }},
		{"max age 0 (unset is no limit)", "vacancy.max_age", func(v *receivingv1.Vacancy) { v.MaxAge = proto.Int32(0) }},
		{"max age below min age", "vacancy.max_age", func(v *receivingv1.Vacancy) { v.MinAge, v.MaxAge = proto.Int32(30), proto.Int32(25) }},
		{"max age under 16", "vacancy.max_age", func(v *receivingv1.Vacancy) { v.MinAge, v.MaxAge = nil, proto.Int32(14) }},
		{"contact too long", "vacancy.contact", func(v *receivingv1.Vacancy) { v.Contact = strings.Repeat("x", 101) }},
		{"identity number in contact", "vacancy.contact", func(v *receivingv1.Vacancy) { v.Contact = "张三 " + id18 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := goodVacancy(t)
			tt.edit(v)
			_, err := e.vac.CreateVacancy(ctx(t), &receivingv1.CreateVacancyRequest{Vacancy: v, RequestId: "bad-" + tt.name})
			got := violations(t, err)
			if _, ok := got[tt.field]; !ok {
				t.Fatalf("violations %v, want one on %s", got, tt.field)
			}
			if len(got) != 1 {
				t.Errorf("violations %v, want only %s", got, tt.field)
			}
		})
	}
	// Several bad fields at once are all reported.
	v := goodVacancy(t)
	v.Headcount, v.Occupation, v.WorkCounty = 0, "x", "110101"
	_, err := e.vac.CreateVacancy(ctx(t), &receivingv1.CreateVacancyRequest{Vacancy: v})
	if got := violations(t, err); len(got) != 3 {
		t.Errorf("violations %v, want headcount, occupation and work_county", got)
	}
	_, err = e.vac.CreateVacancy(ctx(t), &receivingv1.CreateVacancyRequest{})
	violations(t, err)

	list, err := e.vac.ListVacancies(ctx(t), &receivingv1.ListVacanciesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetVacancies()) != 0 || list.GetRevision() != 0 {
		t.Fatalf("after refused creates: %d vacancies at revision %d, want none at 0", len(list.GetVacancies()), list.GetRevision())
	}
	if h := e.head(); h != 0 {
		t.Fatalf("feed head = %d after refused creates, want 0", h)
	}
}

func TestCreateVacancy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in := goodVacancy(t)
	in.EmployerCreditCode = strings.ToLower(in.EmployerCreditCode)
	in.Status, in.Reserved, in.Filled = receivingv1.VacancyStatus_VACANCY_STATUS_CLOSED, 3, 2 // output only: ignored
	req := &receivingv1.CreateVacancyRequest{Vacancy: in, RequestId: "create-1"}
	first, err := e.vac.CreateVacancy(ctx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	v := first.GetVacancy()
	if !strings.HasPrefix(v.GetVacancyId(), region+"-") || v.GetName() != "vacancies/"+v.GetVacancyId() {
		t.Errorf("id %q, name %q", v.GetVacancyId(), v.GetName())
	}
	if v.GetStatus() != statusOpen || v.GetReserved() != 0 || v.GetFilled() != 0 || v.GetRevision() != 1 {
		t.Errorf("new vacancy: status %v reserved %d filled %d revision %d", v.GetStatus(), v.GetReserved(), v.GetFilled(), v.GetRevision())
	}
	if v.GetEmployerCreditCode() != strings.ToUpper(in.GetEmployerCreditCode()) {
		t.Errorf("credit code stored as %q, want upper case", v.GetEmployerCreditCode())
	}
	again, err := e.vac.CreateVacancy(ctx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(again.GetVacancy(), v) {
		t.Errorf("repeat with the same request id = %v, want the first response", again.GetVacancy())
	}
	if h := e.head(); h != 1 {
		t.Errorf("feed head = %d, want 1 (the repeat created nothing)", h)
	}
	got, err := e.vac.GetVacancy(ctx(t), &receivingv1.GetVacancyRequest{Name: v.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got.GetVacancy(), v) {
		t.Errorf("GetVacancy = %v, want %v", got.GetVacancy(), v)
	}
	_, err = e.vac.GetVacancy(ctx(t), &receivingv1.GetVacancyRequest{Name: "vacancies/440000-V9999999999"})
	wantCode(t, err, codes.NotFound, "")
	_, err = e.vac.GetVacancy(ctx(t), &receivingv1.GetVacancyRequest{Name: "workers/1"})
	violations(t, err)
}

func TestListVacanciesFiltersAndPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var ids []string
	for i := range 7 {
		v := goodVacancy(t)
		if i%2 == 1 {
			v.Occupation = "9313"
			v.WorkCounty = "440106"
		}
		ids = append(ids, e.createVacancy(v).GetVacancyId())
	}
	closed := ids[6]
	if _, err := e.vac.CloseVacancy(ctx(t), &receivingv1.CloseVacancyRequest{Name: vacancyName(closed)}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  *receivingv1.ListVacanciesRequest
		want []string
	}{
		{"all", &receivingv1.ListVacanciesRequest{}, ids},
		{"occupation", &receivingv1.ListVacanciesRequest{Occupation: "9313"}, []string{ids[1], ids[3], ids[5]}},
		{"county", &receivingv1.ListVacanciesRequest{WorkCounty: workCounty}, []string{ids[0], ids[2], ids[4], ids[6]}},
		{"open", &receivingv1.ListVacanciesRequest{Status: statusOpen}, ids[:6]},
		{"closed", &receivingv1.ListVacanciesRequest{Status: statusClosed}, []string{closed}},
		{"employer", &receivingv1.ListVacanciesRequest{EmployerCreditCode: strings.ToLower(creditCode(t, "MA5FN1234"))}, ids},
		{"other employer", &receivingv1.ListVacanciesRequest{EmployerCreditCode: creditCode(t, "MA5FN9999")}, nil},
	}
	for _, tt := range tests {
		for _, size := range []int32{1, 2, 3, 100} {
			t.Run(fmt.Sprintf("%s/page%d", tt.name, size), func(t *testing.T) {
				req := proto.Clone(tt.req).(*receivingv1.ListVacanciesRequest)
				req.PageSize = size
				var got []string
				for pages := 0; ; pages++ {
					if pages > 20 {
						t.Fatal("paging does not end")
					}
					resp, err := e.vac.ListVacancies(ctx(t), req)
					if err != nil {
						t.Fatal(err)
					}
					if int32(len(resp.GetVacancies())) > size {
						t.Fatalf("page of %d, size %d", len(resp.GetVacancies()), size)
					}
					if resp.GetRevision() != 8 {
						t.Errorf("revision = %d, want 8", resp.GetRevision())
					}
					for _, v := range resp.GetVacancies() {
						got = append(got, v.GetVacancyId())
					}
					if resp.GetNextPageToken() == "" {
						break
					}
					req.PageToken = resp.GetNextPageToken()
				}
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Errorf("got %v, want %v", got, tt.want)
				}
			})
		}
	}
	// A token used with other filters is refused.
	resp, err := e.vac.ListVacancies(ctx(t), &receivingv1.ListVacanciesRequest{PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.vac.ListVacancies(ctx(t), &receivingv1.ListVacanciesRequest{PageSize: 1, PageToken: resp.GetNextPageToken(), Occupation: "8212"})
	if _, ok := violations(t, err)["page_token"]; !ok {
		t.Error("token reused with other filters: no page_token violation")
	}
	_, err = e.vac.ListVacancies(ctx(t), &receivingv1.ListVacanciesRequest{PageToken: "!!"})
	violations(t, err)
	_, err = e.vac.ListVacancies(ctx(t), &receivingv1.ListVacanciesRequest{PageSize: -1})
	violations(t, err)
}

func TestUpdateVacancy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v := e.createVacancy(goodVacancy(t))
	mask := func(p ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: p} }
	upd := func(in *receivingv1.Vacancy, m *fieldmaskpb.FieldMask) (*receivingv1.Vacancy, error) {
		in.Name = v.GetName()
		resp, err := e.vac.UpdateVacancy(ctx(t), &receivingv1.UpdateVacancyRequest{Vacancy: in, UpdateMask: m})
		return resp.GetVacancy(), err
	}
	// Only masked fields change.
	got, err := upd(&receivingv1.Vacancy{Headcount: 9, MonthlyWageMaxYuan: 7000, Occupation: "9313"}, mask("headcount", "monthly_wage_max_yuan"))
	if err != nil {
		t.Fatal(err)
	}
	if got.GetHeadcount() != 9 || got.GetMonthlyWageMaxYuan() != 7000 || got.GetOccupation() != "8212" || got.GetRevision() != 2 {
		t.Errorf("after update: headcount %d wage_max %d occupation %s revision %d", got.GetHeadcount(), got.GetMonthlyWageMaxYuan(), got.GetOccupation(), got.GetRevision())
	}
	// The result is checked as a whole: wage_min above the stored wage_max.
	_, err = upd(&receivingv1.Vacancy{MonthlyWageMinYuan: 8000}, mask("monthly_wage_min_yuan"))
	if _, ok := violations(t, err)["vacancy.monthly_wage_max_yuan"]; !ok {
		t.Errorf("wage_min above stored wage_max: %v", err)
	}
	// Unknown and output-only paths, an empty mask.
	for _, m := range []*fieldmaskpb.FieldMask{mask("reserved"), mask("employer_credit_code"), mask("status"), nil} {
		_, err = upd(&receivingv1.Vacancy{}, m)
		violations(t, err)
	}
	// Unchanged values: no new revision.
	same, err := upd(&receivingv1.Vacancy{Headcount: 9}, mask("headcount"))
	if err != nil {
		t.Fatal(err)
	}
	if same.GetRevision() != 2 || e.head() != 2 {
		t.Errorf("no-op update made revision %d, head %d; want 2", same.GetRevision(), e.head())
	}
	// Headcount cannot go below the reserved count.
	cs := e.submit(candidate(v.GetName(), "520000-W1"), candidate(v.GetName(), "520000-W2"))
	e.accept(cs[0].GetName())
	e.accept(cs[1].GetName())
	_, err = upd(&receivingv1.Vacancy{Headcount: 1}, mask("headcount"))
	wantCode(t, err, codes.FailedPrecondition, "HEADCOUNT_BELOW_RESERVED")
	got, err = upd(&receivingv1.Vacancy{Headcount: 2}, mask("headcount"))
	if err != nil {
		t.Fatal(err)
	}
	if got.GetStatus() != statusFilled {
		t.Errorf("headcount = reserved: status %v, want FILLED", got.GetStatus())
	}
	// A closed vacancy does not change.
	if _, err := e.vac.CloseVacancy(ctx(t), &receivingv1.CloseVacancyRequest{Name: v.GetName()}); err != nil {
		t.Fatal(err)
	}
	_, err = upd(&receivingv1.Vacancy{Headcount: 20}, mask("headcount"))
	wantCode(t, err, codes.FailedPrecondition, "VACANCY_CLOSED")
	_, err = e.vac.UpdateVacancy(ctx(t), &receivingv1.UpdateVacancyRequest{Vacancy: &receivingv1.Vacancy{Name: "vacancies/nope", Headcount: 2}, UpdateMask: mask("headcount")})
	wantCode(t, err, codes.NotFound, "")
}

func TestCloseVacancy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v := e.createVacancy(goodVacancy(t))
	for i := range 2 {
		resp, err := e.vac.CloseVacancy(ctx(t), &receivingv1.CloseVacancyRequest{Name: v.GetName()})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetVacancy().GetStatus() != statusClosed || resp.GetVacancy().GetRevision() != 2 {
			t.Errorf("close #%d: status %v revision %d, want CLOSED at 2", i+1, resp.GetVacancy().GetStatus(), resp.GetVacancy().GetRevision())
		}
	}
	// Candidates submitted to a closed vacancy are rejected at once.
	c := e.submit(candidate(v.GetName(), "520000-W1"))[0]
	if c.GetState() != stateRejected || c.GetRevision() == 0 {
		t.Errorf("candidate for a closed vacancy: %v at revision %d", c.GetState(), c.GetRevision())
	}
}

// A vacancy past its valid-through date reads as EXPIRED at once; the sweep records the change
// in the feed, once.
func TestVacancyExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v := e.createVacancy(goodVacancy(t)) // valid through 2025-06-30
	e.clock.Add(24 * 125 * 60 * 60e9)    // 2025-07-04
	got, err := e.vac.GetVacancy(ctx(t), &receivingv1.GetVacancyRequest{Name: v.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetVacancy().GetStatus() != statusExpired || got.GetVacancy().GetRevision() != 1 {
		t.Errorf("read after valid-through: %v at revision %d, want EXPIRED at 1", got.GetVacancy().GetStatus(), got.GetVacancy().GetRevision())
	}
	open, err := e.feed.ListOpenDemand(ctx(t), &receivingv1.ListOpenDemandRequest{SendingRegion: sending})
	if err != nil {
		t.Fatal(err)
	}
	if len(open.GetVacancies()) != 0 {
		t.Errorf("expired vacancy listed as open demand")
	}
	for i, want := range []int{1, 0} {
		n, err := e.svc.sweepExpired(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("sweep #%d expired %d, want %d", i+1, n, want)
		}
	}
	changes, err := e.feed.ListDemandChanges(ctx(t), &receivingv1.ListDemandChangesRequest{SendingRegion: sending, AfterRevision: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(changes.GetChanges()) != 1 || changes.GetChanges()[0].GetVacancy().GetStatus() != statusExpired {
		t.Fatalf("changes after the sweep: %v, want one EXPIRED", changes.GetChanges())
	}
	// Accepting for an expired vacancy is refused; extending valid-through reopens it.
	e.clock.Add(-24 * 125 * 60 * 60e9)
	c := e.submit(candidate(v.GetName(), "520000-W1"))[0]
	e.clock.Add(24 * 125 * 60 * 60e9)
	_, err = e.cand.DecideCandidate(ctx(t), &receivingv1.DecideCandidateRequest{Name: c.GetName(), Decision: receivingv1.Decision_DECISION_ACCEPT})
	wantCode(t, err, codes.FailedPrecondition, "VACANCY_EXPIRED")
	resp, err := e.vac.UpdateVacancy(ctx(t), &receivingv1.UpdateVacancyRequest{
		Vacancy:    &receivingv1.Vacancy{Name: v.GetName(), ValidThrough: date(2025, 9, 30)},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"valid_through"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetVacancy().GetStatus() != statusOpen {
		t.Errorf("after extending valid-through: %v, want OPEN", resp.GetVacancy().GetStatus())
	}
}

// min_age and max_age are optional: unset is 16 and no limit, and an update that masks them
// without a value clears them.
func TestVacancyAgesOptional(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v := e.createVacancy(goodVacancy(t))
	if v.MinAge == nil || v.GetMinAge() != 18 || v.MaxAge == nil || v.GetMaxAge() != 45 {
		t.Fatalf("created ages %v, %v", v.MinAge, v.MaxAge)
	}
	resp, err := e.vac.UpdateVacancy(ctx(t), &receivingv1.UpdateVacancyRequest{
		Vacancy: &receivingv1.Vacancy{Name: v.GetName()}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"min_age", "max_age"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetVacancy(); got.MinAge != nil || got.MaxAge != nil {
		t.Fatalf("ages after clearing: %v, %v", got.MinAge, got.MaxAge)
	}
	plain := goodVacancy(t)
	plain.MinAge, plain.MaxAge = nil, nil
	if got := e.createVacancy(plain); got.MinAge != nil || got.MaxAge != nil {
		t.Fatalf("ages of a vacancy created without them: %v, %v", got.MinAge, got.MaxAge)
	}
}

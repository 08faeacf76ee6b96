package receiving

import (
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/platform/store"
)

// CreateVacancy keeps (employer_credit_code, external_reference) unique: the same pair again is
// ALREADY_EXISTS naming the existing vacancy; the same reference of another employer, and
// vacancies without a reference, are created. The reference is trimmed, limited to 100
// characters, and cannot be changed by UpdateVacancy.
func TestCreateVacancyExternalReferenceIsUnique(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v := goodVacancy(t)
	v.ExternalReference = " HR-2025-017 "
	first := e.createVacancy(v)
	if first.GetExternalReference() != "HR-2025-017" {
		t.Fatalf("reference %q, want it trimmed", first.GetExternalReference())
	}
	again := goodVacancy(t)
	again.ExternalReference = "HR-2025-017"
	again.Headcount = 9
	_, err := e.vac.CreateVacancy(ctx(t), &receivingv1.CreateVacancyRequest{Vacancy: again})
	st := wantCode(t, err, codes.AlreadyExists, "ALREADY_EXISTS")
	named := ""
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			named = info.GetMetadata()["vacancy"]
		}
	}
	if named != first.GetName() {
		t.Errorf("ALREADY_EXISTS names vacancy %q, want %q", named, first.GetName())
	}
	other := goodVacancy(t)
	other.EmployerCreditCode = creditCode(t, "MA5FN9999")
	other.ExternalReference = "HR-2025-017"
	if got := e.createVacancy(other); got.GetVacancyId() == first.GetVacancyId() {
		t.Fatal("another employer's vacancy with the same reference is the first one")
	}
	plain1, plain2 := e.createVacancy(goodVacancy(t)), e.createVacancy(goodVacancy(t))
	if plain1.GetVacancyId() == plain2.GetVacancyId() {
		t.Fatal("two vacancies without a reference are one")
	}
	long := goodVacancy(t)
	long.ExternalReference = strings.Repeat("岗", store.MaxClientIDLen+1)
	_, err = e.vac.CreateVacancy(ctx(t), &receivingv1.CreateVacancyRequest{Vacancy: long})
	if _, ok := violations(t, err)["vacancy.external_reference"]; !ok {
		t.Errorf("a %d-character reference: %v", store.MaxClientIDLen+1, err)
	}
	// As long as any client-chosen id may be: taken.
	long.ExternalReference = strings.Repeat("岗", store.MaxClientIDLen)
	if _, err = e.vac.CreateVacancy(ctx(t), &receivingv1.CreateVacancyRequest{Vacancy: long}); err != nil {
		t.Errorf("a %d-character reference: %v", store.MaxClientIDLen, err)
	}
	_, err = e.vac.UpdateVacancy(ctx(t), &receivingv1.UpdateVacancyRequest{
		Vacancy:    &receivingv1.Vacancy{Name: first.GetName(), ExternalReference: "HR-2025-018"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"external_reference"}}})
	if _, ok := violations(t, err)["update_mask.paths[0]"]; !ok {
		t.Errorf("changing the reference: %v", err)
	}
	// The index survives a restart.
	e.restart()
	_, err = e.vac.CreateVacancy(ctx(t), &receivingv1.CreateVacancyRequest{Vacancy: again})
	wantCode(t, err, codes.AlreadyExists, "ALREADY_EXISTS")
}

// Re-importing a spreadsheet with references (another import id) updates the vacancies the
// first import created instead of creating them again: a changed row is counted updated, an
// equal one unchanged, a row without a reference creates again; a row that cannot update its
// vacancy (closed) is rejected.
func TestImportVacanciesUpsertsByExternalReference(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	row := func(n int64, ref, headcount string) *receivingv1.VacancyRow {
		r := goodRow(t, n)
		r.ExternalReference, r.Headcount = ref, headcount
		return r
	}
	sum, err := e.importRows("sheet-v1", []*receivingv1.VacancyRow{row(2, "P-1", "12"), row(3, "P-2", "12"), row(4, "", "12"), row(5, "P-3", "12")})
	if err != nil {
		t.Fatal(err)
	}
	if sum.GetCreated() != 4 || sum.GetUpdated() != 0 || sum.GetRejected() != 0 {
		t.Fatalf("first import %v", sum)
	}
	byRef := func() map[string][]*receivingv1.Vacancy {
		resp, err := e.vac.ListVacancies(ctx(t), &receivingv1.ListVacanciesRequest{PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string][]*receivingv1.Vacancy{}
		for _, v := range resp.GetVacancies() {
			m[v.GetExternalReference()] = append(m[v.GetExternalReference()], v)
		}
		return m
	}
	before := byRef()
	p3 := before["P-3"][0]
	if _, err := e.vac.CloseVacancy(ctx(t), &receivingv1.CloseVacancyRequest{Name: p3.GetName()}); err != nil {
		t.Fatal(err)
	}

	sum, err = e.importRows("sheet-v2", []*receivingv1.VacancyRow{row(2, "P-1", "20"), row(3, "P-2", "12"), row(4, "", "12"), row(5, "P-3", "15"), row(6, "P-4", "3")})
	if err != nil {
		t.Fatal(err)
	}
	if sum.GetCreated() != 2 || sum.GetUpdated() != 1 || sum.GetUnchanged() != 1 || sum.GetRejected() != 1 {
		t.Fatalf("second import %v, want 2 created (no reference, P-4), 1 updated (P-1), 1 unchanged (P-2), 1 rejected (P-3 closed)", sum)
	}
	if rj := sum.GetRejections(); len(rj) != 1 || rj[0].GetRowNumber() != 5 || rj[0].GetField() != "external_reference" {
		t.Errorf("rejections %v, want row 5 on external_reference", rj)
	}
	after := byRef()
	for _, ref := range []string{"P-1", "P-2", "P-3", "P-4"} {
		if len(after[ref]) != 1 {
			t.Fatalf("%d vacancies with reference %s, want 1", len(after[ref]), ref)
		}
	}
	if len(after[""]) != 2 {
		t.Errorf("%d vacancies without a reference, want 2 (each import created one)", len(after[""]))
	}
	p1 := after["P-1"][0]
	if p1.GetVacancyId() != before["P-1"][0].GetVacancyId() || p1.GetHeadcount() != 20 || p1.GetRevision() <= before["P-1"][0].GetRevision() {
		t.Errorf("P-1 after the re-import: %v (before %v)", p1, before["P-1"][0])
	}
	if p2 := after["P-2"][0]; p2.GetRevision() != before["P-2"][0].GetRevision() {
		t.Errorf("the unchanged P-2 got a new revision: %d, was %d", p2.GetRevision(), before["P-2"][0].GetRevision())
	}
	if got := after["P-3"][0]; got.GetHeadcount() != 12 || got.GetStatus() != receivingv1.VacancyStatus_VACANCY_STATUS_CLOSED {
		t.Errorf("the closed P-3 changed: %v", got)
	}
}

package receiving

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
)

func goodRow(t testing.TB, n int64) *receivingv1.VacancyRow {
	return &receivingv1.VacancyRow{
		RowNumber: n, EmployerName: "东莞市长安五金制品厂", EmployerCreditCode: creditCode(t, "MA5FN1234"),
		WorkCounty: workCounty, Occupation: "8212", Headcount: "12", MonthlyWageMinYuan: "4,200", MonthlyWageMaxYuan: "5800",
		StartDate: "2025/4/1", ValidThrough: "2025-06-30", MinAge: "", MaxAge: "50",
		HousingProvided: "是", MealsProvided: "false", Contact: "0769-85000000",
	}
}

// importRows sends an import of the given chunks, the last one marked final with the total
// number of rows of all the chunks, and returns the reply's summary.
func (e *env) importRows(id string, chunks ...[]*receivingv1.VacancyRow) (*commonv1.ImportSummary, error) {
	e.t.Helper()
	stream, err := e.vac.ImportVacancies(ctx(e.t))
	if err != nil {
		return nil, err
	}
	total := 0
	for _, rows := range chunks {
		total += len(rows)
	}
	for i, rows := range chunks {
		final := i == len(chunks)-1
		req := &receivingv1.ImportVacanciesRequest{ImportId: id, Rows: rows, Final: final}
		if final {
			req.TotalRows = int64(total)
		}
		if err := stream.Send(req); err != nil {
			break // the server ended the stream; CloseAndRecv has its error
		}
	}
	resp, err := stream.CloseAndRecv()
	return resp.GetSummary(), err
}

func TestImportVacanciesRowByRow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bad := func(n int64, edit func(r *receivingv1.VacancyRow)) *receivingv1.VacancyRow {
		r := goodRow(t, n)
		edit(r)
		return r
	}
	chunk1 := []*receivingv1.VacancyRow{
		goodRow(t, 2),
		bad(3, func(r *receivingv1.VacancyRow) { r.Headcount = "twelve" }),
		bad(4, func(r *receivingv1.VacancyRow) { r.EmployerCreditCode = "91440300MA5FN12340" }),
		goodRow(t, 5),
	}
	chunk2 := []*receivingv1.VacancyRow{
		bad(6, func(r *receivingv1.VacancyRow) { r.MonthlyWageMinYuan, r.MonthlyWageMaxYuan = "6000", "5000" }),
		bad(7, func(r *receivingv1.VacancyRow) { r.StartDate = "2025-13-01" }),
		bad(8, func(r *receivingv1.VacancyRow) { r.WorkCounty = homeCounty; r.MinAge = "14" }),
		bad(9, func(r *receivingv1.VacancyRow) { r.HousingProvided = "maybe" }),
		bad(10, func(r *receivingv1.VacancyRow) { r.Contact = "李四 " + idNumber("44030119851231001") }),
		goodRow(t, 11),
	}
	sum, err := e.importRows("vac-2025-03", chunk1, chunk2)
	if err != nil {
		t.Fatal(err)
	}
	wantFields := map[int64]string{3: "headcount", 4: "employer_credit_code", 6: "wage_max", 7: "start_date", 8: "work_county", 9: "housing_provided", 10: "contact"}
	if sum.GetRowsReceived() != 10 || sum.GetCreated() != 3 || sum.GetRejected() != 7 || len(sum.GetRejections()) != 7 {
		t.Fatalf("summary = %v", sum)
	}
	for _, r := range sum.GetRejections() {
		if wantFields[r.GetRowNumber()] != r.GetField() || r.GetReason() == "" {
			t.Errorf("row %d rejected on %q (%s), want %q", r.GetRowNumber(), r.GetField(), r.GetReason(), wantFields[r.GetRowNumber()])
		}
	}
	if r := sum.GetRejections()[4]; !strings.Contains(r.GetReason(), "also min_age") {
		t.Errorf("row 8: every problem should be named, got %q", r.GetReason())
	}
	list, err := e.vac.ListVacancies(ctx(t), &receivingv1.ListVacanciesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetVacancies()) != 3 || list.GetRevision() != 3 {
		t.Fatalf("%d vacancies at revision %d, want 3 at 3", len(list.GetVacancies()), list.GetRevision())
	}
	v := list.GetVacancies()[0]
	if v.GetMonthlyWageMinYuan() != 4200 || !v.GetHousingProvided() || v.GetMealsProvided() || v.GetMinAge() != 0 || v.GetMaxAge() != 50 || formatDate(v.GetStartDate()) != "2025-04-01" {
		t.Errorf("imported vacancy = %v", v)
	}

	// Re-sending the import changes nothing and returns the same summary.
	again, err := e.importRows("vac-2025-03", append(chunk1, chunk2...), nil)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(again) != fmt.Sprint(sum) {
		t.Errorf("re-sent import summary = %v, want %v", again, sum)
	}
	// The import with one more row is another import: its id is refused, nothing changes.
	_, err = e.importRows("vac-2025-03", append(chunk1, chunk2...), []*receivingv1.VacancyRow{goodRow(t, 12)})
	if _, ok := violations(t, err)["import_id"]; !ok {
		t.Errorf("a complete import sent again with a new row: %v", err)
	}
	if h := e.head(); h != 3 {
		t.Errorf("head = %d after re-sending, want 3", h)
	}
}

// importState is what a refused stream must leave as it was: the import and the demand feed.
func (e *env) importState(id string) string {
	e.t.Helper()
	gi, err := e.vac.GetVacancyImport(ctx(e.t), &receivingv1.GetVacancyImportRequest{ImportId: id})
	if err != nil {
		e.t.Fatal(err)
	}
	return fmt.Sprint(gi, " head ", e.head())
}

// A used import id with other content is INVALID_ARGUMENT on import_id and changes nothing, for
// a complete import and for one whose stream was cut; the same rows again are a retry: the
// summary of a complete import, the rest of a cut one.
func TestImportVacanciesIDReusedWithOtherRows(t *testing.T) {
	t.Parallel()
	var rows []*receivingv1.VacancyRow
	for n := int64(2); n < 30; n++ {
		rows = append(rows, goodRow(t, n))
	}
	changed := func() []*receivingv1.VacancyRow {
		out := slices.Clone(rows)
		out[3] = proto.Clone(rows[3]).(*receivingv1.VacancyRow)
		out[3].Headcount = "77"
		return out
	}
	extra := goodRow(t, 40)

	t.Run("complete", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		sum, err := e.importRows("2026年用工需求.xlsx", rows[:14], rows[14:])
		if err != nil {
			t.Fatal(err)
		}
		before := e.importState("2026年用工需求.xlsx")
		for name, again := range map[string][][]*receivingv1.VacancyRow{
			"one row changed":         {changed()},
			"one row added":           {rows, {extra}},
			"one row added, no final": {{extra}, nil},
		} {
			_, err := e.importRows("2026年用工需求.xlsx", again...)
			if _, ok := violations(t, err)["import_id"]; !ok {
				t.Errorf("%s: %v", name, err)
			}
			if got := e.importState("2026年用工需求.xlsx"); got != before {
				t.Fatalf("%s changed the import: %s\nwas %s", name, got, before)
			}
		}
		again, err := e.importRows("2026年用工需求.xlsx", rows[:5], rows[5:])
		if err != nil || fmt.Sprint(again) != fmt.Sprint(sum) {
			t.Fatalf("the same rows again: %v, %v; want %v", again, err, sum)
		}
	})

	t.Run("cut", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		if _, err := e.svc.vacancies.ImportChunk("cut", rows[:10], false, 0); err != nil {
			t.Fatal(err)
		}
		before := e.importState("cut")
		// Row 5 (on disk) changed, sent with the rows not yet on disk: nothing of the message
		// is taken, the new rows neither.
		_, err := e.importRows("cut", changed())
		if _, ok := violations(t, err)["import_id"]; !ok {
			t.Errorf("a changed row on disk: %v", err)
		}
		if got := e.importState("cut"); got != before {
			t.Fatalf("the refused stream changed the import: %s\nwas %s", got, before)
		}
		sum, err := e.importRows("cut", rows[:15], rows[15:])
		if err != nil || sum.GetRowsReceived() != 28 || sum.GetCreated() != 28 {
			t.Fatalf("resumed with its rows: %v, %v; want 28 rows created", sum, err)
		}
		if h := e.head(); h != 28 {
			t.Errorf("head = %d, want 28 (no duplicates)", h)
		}
	})

	t.Run("begun before rows were compared", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		sum, err := e.importRows("old", rows)
		if err != nil {
			t.Fatal(err)
		}
		// An import of an older version has no "v" key in the imports bucket (vacancyimport.go)
		// and no row fingerprints ("h" keys): make this one such an import.
		if err := e.db.Update(func(tx *bbolt.Tx) error {
			b := tx.Bucket([]byte("imports"))
			if b.Get([]byte("vold")) == nil {
				return fmt.Errorf("no comparison key: the imports bucket's layout changed")
			}
			return b.Delete([]byte("vold"))
		}); err != nil {
			t.Fatal(err)
		}
		before := e.importState("old")
		again, err := e.importRows("old", changed(), []*receivingv1.VacancyRow{extra})
		if err != nil || fmt.Sprint(again) != fmt.Sprint(sum) {
			t.Fatalf("an old complete import sent again: %v, %v; want its summary, as before", again, err)
		}
		if got := e.importState("old"); got != before {
			t.Fatalf("changed: %s\nwas %s", got, before)
		}
	})
}

// An import whose stream was cut after some chunks is completed by sending it again, without
// duplicates.
func TestImportVacanciesResumesCutImport(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var rows []*receivingv1.VacancyRow
	for n := int64(2); n < 30; n++ {
		rows = append(rows, goodRow(t, n))
	}
	rows[5].Occupation = "0000"
	// The first 10 rows arrived and were committed, then the connection broke.
	if _, err := e.svc.vacancies.ImportChunk("cut", rows[:10], false, 0); err != nil {
		t.Fatal(err)
	}
	sum, err := e.importRows("cut", rows[:15], rows[15:])
	if err != nil {
		t.Fatal(err)
	}
	if sum.GetRowsReceived() != 28 || sum.GetCreated() != 27 || sum.GetRejected() != 1 {
		t.Errorf("summary = %v, want 28 rows: 27 created, 1 rejected", sum)
	}
	if h := e.head(); h != 27 {
		t.Errorf("head = %d, want 27 (no duplicates)", h)
	}
}

func TestImportVacanciesStreamErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, err := e.importRows("", []*receivingv1.VacancyRow{goodRow(t, 2)})
	violations(t, err)
	_, err = e.importRows("a", []*receivingv1.VacancyRow{goodRow(t, 2)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := e.vac.ImportVacancies(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(&receivingv1.ImportVacanciesRequest{ImportId: "b", Rows: []*receivingv1.VacancyRow{goodRow(t, 2)}})
	_ = stream.Send(&receivingv1.ImportVacanciesRequest{ImportId: "c", Rows: []*receivingv1.VacancyRow{goodRow(t, 3)}})
	_, err = stream.CloseAndRecv()
	if _, ok := violations(t, err)["import_id"]; !ok {
		t.Errorf("changing import id: %v", err)
	}
	big := make([]*receivingv1.VacancyRow, maxImportChunk+1)
	for i := range big {
		big[i] = goodRow(t, int64(i+2))
	}
	_, err = e.importRows("big", big)
	wantCode(t, err, codes.InvalidArgument, "")
	// An empty stream.
	stream, err = e.vac.ImportVacancies(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = stream.CloseAndRecv()
	violations(t, err)
}

// An import with more rejected rows than a summary lists: the reply and GetVacancyImport say
// so (rejections_truncated), and ListVacancyImportRejections pages through every one, in row
// order, whatever order the rows were sent in.
func TestListVacancyImportRejectionsPagesEveryRow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.ImportReplyRejections = 5 })

	// Rows 2..40, sent from the last to the first in two chunks; every third row is good.
	var rows []*receivingv1.VacancyRow
	var wantRejected []int64
	for n := int64(40); n >= 2; n-- {
		r := goodRow(t, n)
		if n%3 != 0 {
			r.Headcount = "many"
		}
		rows = append(rows, r)
	}
	for n := int64(2); n <= 40; n++ {
		if n%3 != 0 {
			wantRejected = append(wantRejected, n)
		}
	}
	sum, err := e.importRows("vac-many-bad", rows[:20], rows[20:])
	if err != nil {
		t.Fatal(err)
	}
	if sum.GetRejected() != int64(len(wantRejected)) || len(sum.GetRejections()) != 5 || !sum.GetRejectionsTruncated() {
		t.Fatalf("summary: %d rejected, %d listed, truncated %v; want %d, 5, true",
			sum.GetRejected(), len(sum.GetRejections()), sum.GetRejectionsTruncated(), len(wantRejected))
	}
	got, err := e.vac.GetVacancyImport(ctx(t), &receivingv1.GetVacancyImportRequest{ImportId: "vac-many-bad"})
	if err != nil {
		t.Fatal(err)
	}
	if !got.GetComplete() || fmt.Sprint(got.GetSummary()) != fmt.Sprint(sum) {
		t.Errorf("GetVacancyImport = complete %v, %v; want complete, %v", got.GetComplete(), got.GetSummary(), sum)
	}

	var listed []int64
	token, pages := "", 0
	for {
		page, err := e.vac.ListVacancyImportRejections(ctx(t), &receivingv1.ListVacancyImportRejectionsRequest{
			ImportId: "vac-many-bad", PageSize: 4, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(page.GetRejections()) > 4 {
			t.Fatalf("page %d has %d rejections, asked for 4", pages, len(page.GetRejections()))
		}
		for _, r := range page.GetRejections() {
			if r.GetField() != "headcount" || r.GetReason() == "" {
				t.Errorf("row %d rejected on %q (%s), want headcount", r.GetRowNumber(), r.GetField(), r.GetReason())
			}
			listed = append(listed, r.GetRowNumber())
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
		if pages > len(wantRejected) {
			t.Fatal("paging does not end")
		}
	}
	if fmt.Sprint(listed) != fmt.Sprint(wantRejected) {
		t.Errorf("listed rows %v, want %v", listed, wantRejected)
	}
	if want := (len(wantRejected) + 3) / 4; pages != want {
		t.Errorf("%d pages of 4, want %d", pages, want)
	}
}

func TestVacancyImportLookupErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// A cut import is known, not complete.
	bad := goodRow(t, 2)
	bad.MonthlyWageMinYuan = "x"
	if _, err := e.svc.vacancies.ImportChunk("cut", []*receivingv1.VacancyRow{bad, goodRow(t, 3), goodRow(t, 4)}, false, 0); err != nil {
		t.Fatal(err)
	}
	got, err := e.vac.GetVacancyImport(ctx(t), &receivingv1.GetVacancyImportRequest{ImportId: "cut"})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetComplete() || got.GetSummary().GetRowsReceived() != 3 || len(got.GetSummary().GetRejections()) != 1 {
		t.Errorf("cut import = complete %v, %v; want not complete, 3 rows, 1 rejection", got.GetComplete(), got.GetSummary())
	}
	page, err := e.vac.ListVacancyImportRejections(ctx(t), &receivingv1.ListVacancyImportRejectionsRequest{ImportId: "cut", PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.GetRejections()) != 1 || page.GetNextPageToken() != "" {
		t.Errorf("rejections of cut = %v, want row 2 and no next page", page)
	}

	_, err = e.vac.GetVacancyImport(ctx(t), &receivingv1.GetVacancyImportRequest{ImportId: "never"})
	wantCode(t, err, codes.NotFound, "")
	_, err = e.vac.ListVacancyImportRejections(ctx(t), &receivingv1.ListVacancyImportRejectionsRequest{ImportId: "never"})
	wantCode(t, err, codes.NotFound, "")
	_, err = e.vac.GetVacancyImport(ctx(t), &receivingv1.GetVacancyImportRequest{})
	violations(t, err)
	_, err = e.vac.ListVacancyImportRejections(ctx(t), &receivingv1.ListVacancyImportRejectionsRequest{ImportId: "cut", PageSize: -1})
	if _, ok := violations(t, err)["page_size"]; !ok {
		t.Errorf("negative page size: %v", err)
	}

	// A token of one import is refused for another.
	var rows []*receivingv1.VacancyRow
	for n := int64(2); n < 6; n++ {
		r := goodRow(t, n)
		r.Occupation = "0000"
		rows = append(rows, r)
	}
	if _, err := e.importRows("other", rows); err != nil {
		t.Fatal(err)
	}
	first, err := e.vac.ListVacancyImportRejections(ctx(t), &receivingv1.ListVacancyImportRejectionsRequest{ImportId: "other", PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if first.GetNextPageToken() == "" {
		t.Fatalf("first page of 2 of 4 rejections has no next page token")
	}
	_, err = e.vac.ListVacancyImportRejections(ctx(t), &receivingv1.ListVacancyImportRejectionsRequest{ImportId: "cut", PageToken: first.GetNextPageToken()})
	if _, ok := violations(t, err)["page_token"]; !ok {
		t.Errorf("token of another import: %v", err)
	}
}

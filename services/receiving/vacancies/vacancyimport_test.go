package vacancies

import (
	"testing"
	"time"

	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/receiving/internal/province"
)

// FuzzParseVacancyRow: any row text is either rejected with a field and a reason or gives a
// vacancy that passes the vacancy checks.
func FuzzParseVacancyRow(f *testing.F) {
	f.Add("东莞市长安五金制品厂", "91440300MA5FN1234X", "440305", "8212", "12", "4200", "5800", "2025-04-01", "2025-06-30", "", "50", "是", "0")
	f.Add("", "x", "", "general", "-1", "1e3", "", "2025/2/30", "9999-99-99", "abc", "0", "maybe", "")
	now := time.Date(2025, 3, 1, 10, 0, 0, 0, civil.Zone)
	here, _, err := province.New("440000", regions.Default(), "", nil, peers.Options{})
	if err != nil {
		f.Fatal(err)
	}
	s := New(Config{Province: here, Now: func() time.Time { return now }})
	f.Fuzz(func(t *testing.T, name, code, county, occ, head, wmin, wmax, start, end, minAge, maxAge, housing, meals string) {
		row := &receivingv1.VacancyRow{RowNumber: 2, EmployerName: name, EmployerCreditCode: code, WorkCounty: county,
			Occupation: occ, Headcount: head, MonthlyWageMinYuan: wmin, MonthlyWageMaxYuan: wmax, StartDate: start, ValidThrough: end,
			MinAge: minAge, MaxAge: maxAge, HousingProvided: housing, MealsProvided: meals}
		v, rej := s.parseVacancyRow(row)
		if (v == nil) == (rej == nil) {
			t.Fatalf("vacancy %v and rejection %v", v, rej)
		}
		if rej != nil {
			if rej.GetField() == "" || rej.GetReason() == "" || rej.GetRowNumber() != 2 {
				t.Fatalf("rejection without field or reason: %v", rej)
			}
			return
		}
		var vs apierror.Violations
		checkVacancy(&vs, here, civil.Today(now), "", v, true)
		if vs.Len() != 0 {
			t.Fatalf("accepted row fails the vacancy checks: %v", vs.List())
		}
	})
}

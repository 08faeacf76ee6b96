package vacancies

import (
	"errors"
	"testing"

	"google.golang.org/grpc/codes"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/codes/creditcode"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/receiving/internal/province"
)

func date(y, m, d int32) *commonv1.Date { return &commonv1.Date{Year: y, Month: m, Day: d} }

// reason is the ErrorReason of a rule's error (UNSPECIFIED when it has none).
func reason(err error) commonv1.ErrorReason {
	var e *apierror.Error
	if errors.As(err, &e) {
		return e.ErrorReason()
	}
	return commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED
}

func TestDeriveStatus(t *testing.T) {
	t.Parallel()
	day := date(2025, 3, 1)
	tests := []struct {
		name string
		v    *receivingv1.Vacancy
		want receivingv1.VacancyStatus
	}{
		{"open", &receivingv1.Vacancy{Headcount: 2, Reserved: 1, ValidThrough: date(2025, 3, 1)}, Open},
		{"filled", &receivingv1.Vacancy{Headcount: 2, Reserved: 2, ValidThrough: date(2025, 6, 1)}, Filled},
		{"expired the day after valid_through", &receivingv1.Vacancy{Headcount: 2, ValidThrough: date(2025, 2, 28)}, Expired},
		{"expired beats filled", &receivingv1.Vacancy{Headcount: 2, Reserved: 2, ValidThrough: date(2025, 2, 28)}, Expired},
		{"closed stays closed", &receivingv1.Vacancy{Status: Closed, Headcount: 2, ValidThrough: date(2025, 2, 28)}, Closed},
		{"a stored EXPIRED is derived again", &receivingv1.Vacancy{Status: Expired, Headcount: 2, ValidThrough: date(2025, 6, 1)}, Open},
	}
	for _, tt := range tests {
		if got := DeriveStatus(tt.v, day); got != tt.want {
			t.Errorf("%s: DeriveStatus = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestReserveAndRelease(t *testing.T) {
	t.Parallel()
	day := date(2025, 3, 1)
	tests := []struct {
		name         string
		v            *receivingv1.Vacancy
		want         commonv1.ErrorReason // UNSPECIFIED: reserved
		wantReserved int32
	}{
		{"a free position", &receivingv1.Vacancy{Headcount: 2, Reserved: 1, ValidThrough: date(2025, 6, 1)}, 0, 2},
		{"full", &receivingv1.Vacancy{Headcount: 2, Reserved: 2, ValidThrough: date(2025, 6, 1)}, commonv1.ErrorReason_ERROR_REASON_HEADCOUNT_FULL, 2},
		{"closed", &receivingv1.Vacancy{Status: Closed, Headcount: 2, ValidThrough: date(2025, 6, 1)}, commonv1.ErrorReason_ERROR_REASON_VACANCY_CLOSED, 0},
		{"expired", &receivingv1.Vacancy{Headcount: 2, ValidThrough: date(2025, 2, 1)}, commonv1.ErrorReason_ERROR_REASON_VACANCY_EXPIRED, 0},
	}
	for _, tt := range tests {
		err := Reserve(tt.v, day)
		if got := reason(err); got != tt.want || (tt.want == 0) != (err == nil) {
			t.Errorf("%s: Reserve = %v, want reason %v", tt.name, err, tt.want)
		}
		if tt.v.GetReserved() != tt.wantReserved {
			t.Errorf("%s: reserved = %d, want %d", tt.name, tt.v.GetReserved(), tt.wantReserved)
		}
	}
	v := &receivingv1.Vacancy{Reserved: 1}
	Release(v)
	Release(v)
	if v.GetReserved() != 0 {
		t.Errorf("reserved after two releases of one = %d, want 0", v.GetReserved())
	}
}

func TestUpdateRule(t *testing.T) {
	t.Parallel()
	here, _, err := province.New("440000", regions.Default(), "", nil, peers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	code := "91440300MA5FN1234"
	c, err := creditcode.CheckChar(code)
	if err != nil {
		t.Fatal(err)
	}
	day := date(2025, 3, 1)
	stored := func() *receivingv1.Vacancy {
		return &receivingv1.Vacancy{Name: "vacancies/v1", VacancyId: "v1", EmployerName: "厂", EmployerCreditCode: code + string(c),
			WorkCounty: "440305", Occupation: "8212", Headcount: 5, Reserved: 3, MonthlyWageMinYuan: 4000, MonthlyWageMaxYuan: 5000,
			StartDate: date(2025, 1, 1), ValidThrough: date(2025, 2, 1), Status: Open}
	}
	tests := []struct {
		name        string
		old         func() *receivingv1.Vacancy
		in          *receivingv1.Vacancy
		paths       []string
		wantChanged bool
		wantReason  commonv1.ErrorReason
		wantInvalid bool
	}{
		{"a new wage", stored, &receivingv1.Vacancy{MonthlyWageMaxYuan: 6000}, []string{"monthly_wage_max_yuan"}, true, 0, false},
		{"the same wage changes nothing", stored, &receivingv1.Vacancy{MonthlyWageMaxYuan: 5000}, []string{"monthly_wage_max_yuan"}, false, 0, false},
		{"checked as a whole", stored, &receivingv1.Vacancy{MonthlyWageMinYuan: 5500}, []string{"monthly_wage_min_yuan"}, false, 0, true},
		{"an unchanged past valid_through is kept", stored, &receivingv1.Vacancy{ValidThrough: date(2025, 2, 1), Headcount: 4}, []string{"valid_through", "headcount"}, true, 0, false},
		{"a new past valid_through is refused", stored, &receivingv1.Vacancy{ValidThrough: date(2025, 2, 2)}, []string{"valid_through"}, false, 0, true},
		{"headcount below reserved", stored, &receivingv1.Vacancy{Headcount: 2}, []string{"headcount"}, false, commonv1.ErrorReason_ERROR_REASON_HEADCOUNT_BELOW_RESERVED, false},
		{"closed", func() *receivingv1.Vacancy { v := stored(); v.Status = Closed; return v }, &receivingv1.Vacancy{MonthlyWageMaxYuan: 6000}, []string{"monthly_wage_max_yuan"}, false, commonv1.ErrorReason_ERROR_REASON_VACANCY_CLOSED, false},
	}
	for _, tt := range tests {
		old := tt.old()
		v, changed, err := update(here, day, old, tt.in, tt.paths)
		switch {
		case tt.wantInvalid:
			if apierror.Code(err) != codes.InvalidArgument {
				t.Errorf("%s: err = %v, want INVALID_ARGUMENT", tt.name, err)
			}
		case tt.wantReason != 0:
			if reason(err) != tt.wantReason {
				t.Errorf("%s: err = %v, want reason %v", tt.name, err, tt.wantReason)
			}
		case err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case changed != tt.wantChanged:
			t.Errorf("%s: changed = %t, want %t", tt.name, changed, tt.wantChanged)
		case v == old:
			t.Errorf("%s: update changed the stored vacancy in place", tt.name)
		}
	}
}

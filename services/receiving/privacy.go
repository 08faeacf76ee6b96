package receiving

import "github.com/eastwest/labourlink/services/platform/privacy"

// No resident identity number reaches this service: workers are known here only by the opaque
// worker id of their sending province. The grpcserver privacy guard (services/platform/privacy) scans
// every request before its handler runs, and refuses an identity number or a phone number in
// any field but those below; a worker id with the shape of an identity number is refused even
// with a wrong check character (a typo in a real number is still personal data).
//
// personalData lists the fields that carry a phone on purpose: an employer's recruiting contact
// and an escort's work contact. The rows of a vacancy import are checked one by one instead
// (parseVacancyRow), so that a bad row is rejected and the others kept.
var personalData = privacy.Allow{
	"labour.receiving.v1.ImportVacanciesRequest.rows": privacy.CheckedPerItem,
	"labour.receiving.v1.VacancyRow.contact":          privacy.Phone,
	"labour.receiving.v1.Vacancy.contact":             privacy.Phone,
	"labour.receiving.v1.IntakeBatch.escort_contact":  privacy.Phone,
}

// PersonalDataFields gives the grpcserver privacy guard the vacancies' allow-list.
func (x *vacancyServer) PersonalDataFields() privacy.Allow { return personalData }

// PersonalDataFields gives the grpcserver privacy guard the intake allow-list (escorts' phones).
func (x *intakeServer) PersonalDataFields() privacy.Allow { return personalData }

package receiving

import (
	"strings"
	"testing"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/platform/privacy"
)

// The descriptions the privacy guard gives (services/platform/privacy), as the tests expect them.
const (
	workerIDMessage = privacy.WorkerIDMessage
	identityMessage = privacy.IDNumberMessage
)

// Free text of the receiving side (incidents, reasons for leaving a job, cancellations,
// decisions) never takes an identity number or a phone: the guard refuses the request at the
// edge, names the field, does not repeat the value, and nothing is recorded or sent on to the
// ledger. The fields that carry a phone on purpose (a vacancy's recruiting contact) take one.
func TestFreeTextRefusesPersonalData(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.intakeScenario("520000-gz-bus-p", 2)
	const worker = "520000-gz-bus-p-w-1"
	if _, err := e.intake.ConfirmArrivals(ctx(t), &receivingv1.ConfirmArrivalsRequest{Name: b.GetName(), Confirmations: []*receivingv1.ArrivalConfirmation{{WorkerId: worker, Outcome: outcomeArrived}}}); err != nil {
		t.Fatal(err)
	}
	day := today(e.clock.Now())
	if _, err := e.intake.RecordOnboarding(ctx(t), &receivingv1.RecordOnboardingRequest{WorkerId: worker, OnboardDate: day}); err != nil {
		t.Fatal(err)
	}
	id := idNumber("52242719850615002")
	const phone = "13912345678"
	recordBefore, err := e.intake.GetEmploymentRecord(ctx(t), &receivingv1.GetEmploymentRecordRequest{Name: "employmentRecords/" + worker})
	if err != nil {
		t.Fatal(err)
	}
	eventsBefore := len(e.ledgerEvents())

	tests := []struct {
		name  string
		call  func() error
		field string
		want  string
	}{
		{"identity number in an incident", func() error {
			_, err := e.intake.RecordIncident(ctx(t), &receivingv1.RecordIncidentRequest{WorkerId: worker, Incident: &receivingv1.Incident{IncidentDate: day, IncidentKind: receivingv1.IncidentKind_INCIDENT_KIND_INJURY, Description: "工友身份证" + id + "受伤"}})
			return err
		}, "incident.description", identityMessage},
		{"phone as an incident detail", func() error {
			_, err := e.intake.RecordIncident(ctx(t), &receivingv1.RecordIncidentRequest{WorkerId: worker, Incident: &receivingv1.Incident{IncidentDate: day, IncidentKind: receivingv1.IncidentKind_INCIDENT_KIND_OTHER, Detail: "call " + phone}})
			return err
		}, "incident.detail", privacy.PhoneMessage},
		{"identity number in a reason for leaving", func() error {
			_, err := e.intake.RecordJobLeft(ctx(t), &receivingv1.RecordJobLeftRequest{WorkerId: worker, LeftDate: day, Reason: "returned home, id " + id})
			return err
		}, "reason", identityMessage},
		{"grouped phone in a reason for leaving", func() error {
			_, err := e.intake.RecordJobLeft(ctx(t), &receivingv1.RecordJobLeftRequest{WorkerId: worker, LeftDate: day, Reason: "reach him on 139-1234-5678"})
			return err
		}, "reason", privacy.PhoneMessage},
		{"identity number in a cancellation reason", func() error {
			_, err := e.intake.CancelIntakeBatch(ctx(t), &receivingv1.CancelIntakeBatchRequest{BatchId: b.GetBatchId(), SendingRegion: sending, Reason: "worker " + id + " ill"})
			return err
		}, "reason", identityMessage},
		{"phone in a decision reason", func() error {
			_, err := e.cand.DecideCandidate(ctx(t), &receivingv1.DecideCandidateRequest{Name: "candidates/x", Decision: receivingv1.Decision_DECISION_REJECT, Reason: "call " + phone})
			return err
		}, "reason", privacy.PhoneMessage},
		{"phone in an employer name", func() error {
			v := goodVacancy(t)
			v.EmployerName = "王老板 " + phone
			_, err := e.vac.CreateVacancy(ctx(t), &receivingv1.CreateVacancyRequest{Vacancy: v})
			return err
		}, "vacancy.employer_name", privacy.PhoneMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			got := violations(t, err)
			if len(got) != 1 || got[tt.field] != tt.want {
				t.Fatalf("violations %v, want only %s: %q", got, tt.field, tt.want)
			}
			if msg := status.Convert(err).Message(); strings.Contains(msg, id) || strings.Contains(msg, phone) || strings.Contains(msg, "1234-5678") {
				t.Errorf("the error repeats the value: %s", msg)
			}
		})
	}
	recordAfter, err := e.intake.GetEmploymentRecord(ctx(t), &receivingv1.GetEmploymentRecordRequest{Name: "employmentRecords/" + worker})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(recordBefore, recordAfter) {
		t.Errorf("a refused request changed the record:\n%v\n%v", recordBefore, recordAfter)
	}
	if n := len(e.ledgerEvents()); n != eventsBefore {
		t.Errorf("%d ledger events in the outbox after refused requests, want %d", n, eventsBefore)
	}
	if got, err := e.intake.GetIntakeBatch(ctx(t), &receivingv1.GetIntakeBatchRequest{Name: b.GetName()}); err != nil || got.GetBatch().GetCancelReason() != "" {
		t.Errorf("batch after a refused cancellation: %v, %v", got, err)
	}

	// A recruiting contact may be a mobile phone.
	v := goodVacancy(t)
	v.Contact = "人事部 王女士 " + phone
	if _, err := e.vac.CreateVacancy(ctx(t), &receivingv1.CreateVacancyRequest{Vacancy: v}); err != nil {
		t.Errorf("a mobile as recruiting contact: %v", err)
	}
}

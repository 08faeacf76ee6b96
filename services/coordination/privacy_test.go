package coordination

import (
	"strings"
	"testing"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/idnumber"
	"github.com/eastwest/labourlink/services/platform/privacy"
)

// testIDNumber is a valid identity number.
var testIDNumber = func() string {
	const first17 = "52010219900307123"
	return first17 + string(idnumber.CheckChar(first17))
}()

// No identity number or phone reaches the national ledger. The privacy guard refuses the whole
// report at the edge, before the handler: ReportEvents answers otherwise item by item, but
// personal data in any item is not a fact to record, and refusing the message means nothing of
// it is recorded, the good events included (the reporter sends them again without the number).
func TestReportEventsRefusesPersonalData(t *testing.T) {
	t.Parallel()
	h := startHarness(t, Config{LoadDefaultPairings: true})
	tests := []struct {
		name  string
		edit  func(e *coordinationv1.LedgerEvent)
		field string
		want  string
	}{
		{"identity number in an incident detail", func(e *coordinationv1.LedgerEvent) { setIncident(e, "injured, 身份证"+testIDNumber) }, "events[0].incident.kind", privacy.IDNumberMessage},
		{"phone in an incident detail", func(e *coordinationv1.LedgerEvent) { setIncident(e, "family: 139 1234 5678") }, "events[0].incident.kind", privacy.PhoneMessage},
		{"worker id of an old 15-digit number", func(e *coordinationv1.LedgerEvent) { e.WorkerId = "520102900307123" }, "events[0].worker_id", privacy.WorkerIDMessage},
		{"worker id with a wrong check character", func(e *coordinationv1.LedgerEvent) {
			e.WorkerId = testIDNumber[:17] + map[bool]string{true: "1", false: "0"}[testIDNumber[17] == '0']
		}, "events[0].worker_id", privacy.WorkerIDMessage},
		{"identity number in the vacancy", func(e *coordinationv1.LedgerEvent) { e.Vacancy = "vacancies/" + testIDNumber }, "events[0].vacancy", privacy.IDNumberMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := ev("440000:incident:B1:w1:x", incident, "", "w1", t0)
			tt.edit(bad)
			good := ev("440000:incident:B1:w2:x", incident, "", "w2", t0)
			_, err := h.ledger.ReportEvents(ctxT(t), &coordinationv1.ReportEventsRequest{Events: []*coordinationv1.LedgerEvent{bad, good}})
			got := fieldViolations(t, err)
			if len(got) != 1 || got[tt.field] != tt.want {
				t.Fatalf("violations %v, want only %s: %q", got, tt.field, tt.want)
			}
			if strings.Contains(err.Error(), testIDNumber[:17]) || strings.Contains(err.Error(), "1234 5678") {
				t.Errorf("the error repeats the value: %v", err)
			}
		})
	}
	list, err := h.ledger.ListEvents(ctxT(t), &coordinationv1.ListEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetEvents()) != 0 {
		t.Fatalf("%d events recorded from refused reports", len(list.GetEvents()))
	}
}

// A detail recorded before the guard existed (here: through the handler, past the guard) is
// masked when listed.
func TestListEventsMasksStoredDetail(t *testing.T) {
	t.Parallel()
	h := startHarness(t, Config{LoadDefaultPairings: true})
	e := ev("440000:incident:B1:w1:y", incident, "", "w1", t0)
	setIncident(e, "injured, 身份证"+testIDNumber+", 电话13912345678")
	if _, err := h.s.ledger.LedgerServer().ReportEvents(ctxT(t), &coordinationv1.ReportEventsRequest{Events: []*coordinationv1.LedgerEvent{e}}); err != nil {
		t.Fatal(err)
	}
	list, err := h.ledger.ListEvents(ctxT(t), &coordinationv1.ListEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := "injured, 身份证" + idnumber.Mask(testIDNumber) + ", 电话139****5678"
	if len(list.GetEvents()) != 1 || list.GetEvents()[0].GetIncident().GetKind() != want {
		t.Fatalf("listed %v, want the detail %q", list.GetEvents(), want)
	}
}

// setIncident sets the incident details of e.
func setIncident(e *coordinationv1.LedgerEvent, kind string) {
	e.Details = &coordinationv1.LedgerEvent_Incident{Incident: &coordinationv1.IncidentDetails{Kind: kind}}
}

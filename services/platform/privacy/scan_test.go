package privacy

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"pgregory.net/rapid"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/idnumber"
	"github.com/eastwest/labourlink/services/platform/apierror"
)

// rosterAllow is the kind of list the sending service gives (services/sending/privacy.go).
var rosterAllow = Allow{
	"labourlink.sending.v1.ImportWorkersRequest.rows": CheckedPerItem,
	"labourlink.sending.v1.WorkerRow.id_number":       IDNumber,
	"labourlink.sending.v1.WorkerRow.phone":           Phone,
	"labourlink.sending.v1.Worker.id_number":          IDNumber,
	"labourlink.sending.v1.Worker.phone":              Phone,
}

// violations returns the field violations of err by field.
func violations(t interface {
	Helper()
	Fatalf(string, ...any)
}, err error) map[string]string {
	t.Helper()
	if err == nil {
		return nil
	}
	var ve *apierror.ViolationsError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is not a violations error", err)
	}
	out := map[string]string{}
	for _, v := range ve.Violations() {
		out[v.Field] = v.Description
	}
	return out
}

func TestCheck(t *testing.T) {
	phone := "13812345678"
	tests := []struct {
		name  string
		req   proto.Message
		allow Allow
		want  map[string]string
	}{
		{"clean ledger report", &coordinationv1.ReportEventsRequest{RequestId: "r1", Events: []*coordinationv1.LedgerEvent{{EventId: "e1", WorkerId: "520000-K3Q7ZC2M4XJ5R6TA", Details: &coordinationv1.LedgerEvent_LeftJob{LeftJob: &coordinationv1.LeftJobDetails{Reason: "fell ill"}}}}}, nil, nil},
		{"identity number in an event detail", &coordinationv1.ReportEventsRequest{Events: []*coordinationv1.LedgerEvent{{EventId: "e1"}, {EventId: "e2", Details: &coordinationv1.LedgerEvent_LeftJob{LeftJob: &coordinationv1.LeftJobDetails{Reason: "worker " + idA}}}}}, nil,
			map[string]string{"events[1].left_job.reason": IDNumberMessage}},
		{"phone in an event detail", &coordinationv1.ReportEventsRequest{Events: []*coordinationv1.LedgerEvent{{Details: &coordinationv1.LedgerEvent_LeftJob{LeftJob: &coordinationv1.LeftJobDetails{Reason: "call " + phone}}}}}, nil,
			map[string]string{"events[0].left_job.reason": PhoneMessage}},
		{"worker id with a wrong check character", &coordinationv1.ReportEventsRequest{Events: []*coordinationv1.LedgerEvent{{WorkerId: wrongCheck(idA)}}}, nil,
			map[string]string{"events[0].worker_id": WorkerIDMessage}},
		{"worker id of an old 15-digit number", &coordinationv1.ReportEventsRequest{Events: []*coordinationv1.LedgerEvent{{WorkerId: "110105491231002"}}}, nil,
			map[string]string{"events[0].worker_id": WorkerIDMessage}},
		{"worker id holding a phone", &coordinationv1.ListEventsRequest{WorkerId: "w-" + phone}, nil,
			map[string]string{"worker_id": WorkerIDMessage}},
		{"boarded worker ids", &receivingv1.ReportBatchDepartureRequest{BoardedWorkerIds: []string{"w1", idX}}, nil,
			map[string]string{"boarded_worker_ids[1]": WorkerIDMessage}},
		{"identity number in a request id", &coordinationv1.ReportEventsRequest{RequestId: "req-" + idA}, nil,
			map[string]string{"request_id": IDNumberMessage}},
		{"11 digits in an id are not a phone", &coordinationv1.ReportEventsRequest{RequestId: "3fa9" + phone + "ab-7", Events: []*coordinationv1.LedgerEvent{{EventId: "x:" + phone, BatchId: phone}}}, nil, nil},
		{"status reason", &sendingv1.ChangeWorkerStatusRequest{Name: "workers/x", Reason: "身份证" + idA}, nil,
			map[string]string{"reason": IDNumberMessage}},
		{"nested incident description", &receivingv1.RecordIncidentRequest{WorkerId: "w1", Incident: &receivingv1.Incident{IncidentKind: receivingv1.IncidentKind_INCIDENT_KIND_INJURY, Description: "电话 138-1234-5678"}}, nil,
			map[string]string{"incident.description": PhoneMessage}},
		{"update of a worker's phone is allowed", &sendingv1.UpdateWorkerRequest{Worker: &sendingv1.Worker{Name: "workers/x", Phone: phone, IdNumber: idA}}, rosterAllow, nil},
		{"but not in another field", &sendingv1.UpdateWorkerRequest{Worker: &sendingv1.Worker{Name: "workers/x", FullName: phone, HomeCounty: idA}}, rosterAllow,
			map[string]string{"worker.full_name": PhoneMessage, "worker.home_county": IDNumberMessage}},
		{"an allowed phone field may not hold an identity number", &sendingv1.UpdateWorkerRequest{Worker: &sendingv1.Worker{Phone: idA}}, rosterAllow,
			map[string]string{"worker.phone": IDNumberMessage}},
		{"import rows are left to the handler", &sendingv1.ImportWorkersRequest{ImportId: "i1", Rows: []*sendingv1.WorkerRow{{IdNumber: idA, FullName: idX}}}, rosterAllow, nil},
		{"import rows without the allow list", &sendingv1.ImportWorkersRequest{Rows: []*sendingv1.WorkerRow{{IdNumber: idA, Phone: phone}}}, nil,
			map[string]string{"rows[0].id_number": IDNumberMessage, "rows[0].phone": PhoneMessage}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.req, tt.allow)
			got := violations(t, err)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("violations %v, want %v", got, tt.want)
			}
			if err != nil && (strings.Contains(err.Error(), idA) || strings.Contains(err.Error(), phone) || strings.Contains(err.Error(), idX)) {
				t.Errorf("the error repeats the value: %v", err)
			}
		})
	}
}

// A row checked by its handler: Scan with a prefix, the same allow list.
func TestScanRow(t *testing.T) {
	row := &sendingv1.WorkerRow{RowNumber: 3, IdNumber: idA, Phone: "13812345678", FullName: "王小明", Sex: idX}
	var v apierror.Violations
	Scan(&v, "", row, rosterAllow)
	got := violations(t, v.Err())
	if len(got) != 1 || got["sex"] != IDNumberMessage {
		t.Errorf("violations %v, want one on sex", got)
	}
}

// Wherever a request carries a valid identity number, Check names that field and does not
// repeat the number.
func TestPropertyCheckNamesTheField(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		id := genIDNumber(t)
		text := genText(t, "before") + id + genText(t, "after")
		n := rapid.IntRange(1, 4).Draw(t, "events")
		at := rapid.IntRange(0, n-1).Draw(t, "at")
		field := rapid.SampledFrom([]string{"left_job.reason", "vacancy", "batch_id", "worker_id", "event_id"}).Draw(t, "field")
		req := &coordinationv1.ReportEventsRequest{}
		for i := 0; i < n; i++ {
			req.Events = append(req.Events, &coordinationv1.LedgerEvent{EventId: fmt.Sprint("e", i), Details: &coordinationv1.LedgerEvent_LeftJob{LeftJob: &coordinationv1.LeftJobDetails{Reason: "ok"}}})
		}
		e := req.Events[at]
		switch field {
		case "left_job.reason":
			e.Details = &coordinationv1.LedgerEvent_LeftJob{LeftJob: &coordinationv1.LeftJobDetails{Reason: text}}
		case "vacancy":
			e.Vacancy = text
		case "batch_id":
			e.BatchId = text
		case "worker_id":
			e.WorkerId = text
		case "event_id":
			e.EventId = text
		}
		err := Check(req, nil)
		got := violations(t, err)
		path := fmt.Sprintf("events[%d].%s", at, field)
		if len(got) != 1 || got[path] == "" {
			t.Fatalf("violations %v, want one on %s", got, path)
		}
		if strings.Contains(err.Error(), id) || strings.Contains(err.Error(), idnumber.Normalize(id)) {
			t.Fatalf("error repeats the number: %v", err)
		}
	})
}

// The guard runs on every request: a clean one is checked without an allocation (the first walk
// only looks; paths and violations are built only for a request that holds something). Repeated
// fields are left out here: protobuf's reflection allocates a list view to read one.
func TestCheckCleanRequestAllocatesNothing(t *testing.T) {
	for _, req := range []proto.Message{
		&sendingv1.GetWorkerRequest{Name: "workers/520000-K3Q7ZC2M4XJ5R6TA"},
		&receivingv1.RecordIncidentRequest{WorkerId: "520000-K3Q7ZC2M4XJ5R6TA", Incident: &receivingv1.Incident{IncidentKind: receivingv1.IncidentKind_INCIDENT_KIND_INJURY, Description: "hurt a hand on line 3, 2 days off"}},
	} {
		if n := testing.AllocsPerRun(100, func() {
			if err := Check(req, nil); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("Check of a clean %T: %v allocations, want 0", req, n)
		}
	}
}

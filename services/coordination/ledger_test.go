package coordination

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/coordination/ledger"
)

func TestReportEventsValidation(t *testing.T) {
	t.Parallel()
	h := startHarness(t, Config{LoadDefaultPairings: true})
	good := func() *coordinationv1.LedgerEvent { return ev("e1", departed, "B1", "w1", t0) }
	tests := []struct {
		name   string
		change func(e *coordinationv1.LedgerEvent)
		field  string
	}{
		{"no event id", func(e *coordinationv1.LedgerEvent) { e.EventId = "" }, "events[0].event_id"},
		{"space in event id", func(e *coordinationv1.LedgerEvent) { e.EventId = "a b" }, "events[0].event_id"},
		{"no kind", func(e *coordinationv1.LedgerEvent) { e.Kind = 0 }, "events[0].kind"},
		{"unknown kind", func(e *coordinationv1.LedgerEvent) { e.Kind = 99 }, "events[0].kind"},
		{"no worker", func(e *coordinationv1.LedgerEvent) { e.WorkerId = "" }, "events[0].worker_id"},
		{"identity number as worker id", func(e *coordinationv1.LedgerEvent) { e.WorkerId = "11010519491231002X" }, "events[0].worker_id"},
		{"identity number with a wrong check digit", func(e *coordinationv1.LedgerEvent) { e.WorkerId = "110105194912310021" }, "events[0].worker_id"},
		{"old 15-digit identity number", func(e *coordinationv1.LedgerEvent) { e.WorkerId = "110105491231002" }, "events[0].worker_id"},
		{"slash in worker id", func(e *coordinationv1.LedgerEvent) { e.WorkerId = "workers/1" }, "events[0].worker_id"},
		{"sending region a county", func(e *coordinationv1.LedgerEvent) { e.SendingRegion, e.ReporterRegion = "520102", "520102" }, "events[0].sending_region"},
		{"receiving region unknown", func(e *coordinationv1.LedgerEvent) { e.ReceivingRegion = "990000" }, "events[0].receiving_region"},
		{"same region both sides", func(e *coordinationv1.LedgerEvent) { e.ReceivingRegion = "520000" }, "events[0].receiving_region"},
		{"departure reported by the receiving side", func(e *coordinationv1.LedgerEvent) { e.ReporterRegion = "440000" }, "events[0].reporter_region"},
		{"arrival reported by the sending side", func(e *coordinationv1.LedgerEvent) { e.Kind = arrived }, "events[0].reporter_region"},
		{"departure without batch", func(e *coordinationv1.LedgerEvent) { e.BatchId = "" }, "events[0].batch_id"},
		{"bare vacancy id", func(e *coordinationv1.LedgerEvent) { e.Vacancy = "440000-V0000000001" }, "events[0].vacancy"},
		{"vacancy of another collection", func(e *coordinationv1.LedgerEvent) { e.Vacancy = "candidates/440000-C0000000001" }, "events[0].vacancy"},
		{"vacancy name without an id", func(e *coordinationv1.LedgerEvent) { e.Vacancy = "vacancies/" }, "events[0].vacancy"},
		{"vacancy name with a slash in the id", func(e *coordinationv1.LedgerEvent) { e.Vacancy = "vacancies/440000/V1" }, "events[0].vacancy"},
		{"no time", func(e *coordinationv1.LedgerEvent) { e.OccurTime = nil }, "events[0].occur_time"},
		{"time before 2000", func(e *coordinationv1.LedgerEvent) {
			e.OccurTime = timestamppb.New(time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC))
		}, "events[0].occur_time"},
		{"time two days ahead", func(e *coordinationv1.LedgerEvent) { e.OccurTime = timestamppb.New(t0.Add(48 * time.Hour)) }, "events[0].occur_time"},
		{"months on a departure", func(e *coordinationv1.LedgerEvent) {
			e.Details = &coordinationv1.LedgerEvent_EmploymentCheckpoint{EmploymentCheckpoint: &coordinationv1.EmploymentCheckpointDetails{Months: 3, StillEmployed: false}}
		}, "events[0].employment_checkpoint"},
		{"a reason on a departure", func(e *coordinationv1.LedgerEvent) {
			e.Details = &coordinationv1.LedgerEvent_LeftJob{LeftJob: &coordinationv1.LeftJobDetails{Reason: "x"}}
		}, "events[0].left_job"},
		{"home county of another province", func(e *coordinationv1.LedgerEvent) {
			e.Details = &coordinationv1.LedgerEvent_Departed{Departed: &coordinationv1.DepartedDetails{HomeCounty: "450102", Occupation: "8212"}}
		}, "events[0].departed.home_county"},
		{"home county not a county", func(e *coordinationv1.LedgerEvent) {
			e.Details = &coordinationv1.LedgerEvent_Departed{Departed: &coordinationv1.DepartedDetails{HomeCounty: "520000"}}
		}, "events[0].departed.home_county"},
		{"unknown occupation", func(e *coordinationv1.LedgerEvent) {
			e.Details = &coordinationv1.LedgerEvent_Departed{Departed: &coordinationv1.DepartedDetails{HomeCounty: "520102", Occupation: "0000"}}
		}, "events[0].departed.occupation"},
		{"departure details on an arrival", func(e *coordinationv1.LedgerEvent) {
			e.Kind, e.ReporterRegion = arrived, "440000"
			e.Details = &coordinationv1.LedgerEvent_Departed{Departed: &coordinationv1.DepartedDetails{HomeCounty: "520102"}}
		}, "events[0].departed"},
		{"checkpoint without months", func(e *coordinationv1.LedgerEvent) {
			e.Kind, e.ReporterRegion = checkpoint, "440000"
		}, "events[0].employment_checkpoint"},
		{"checkpoint of 0 months", func(e *coordinationv1.LedgerEvent) {
			e.Kind, e.ReporterRegion, e.Details = checkpoint, "440000", &coordinationv1.LedgerEvent_EmploymentCheckpoint{EmploymentCheckpoint: &coordinationv1.EmploymentCheckpointDetails{Months: 0, StillEmployed: true}}
		}, "events[0].employment_checkpoint.months"},
		{"long incident kind", func(e *coordinationv1.LedgerEvent) {
			e.Kind, e.ReporterRegion = incident, "440000"
			e.Details = &coordinationv1.LedgerEvent_Incident{Incident: &coordinationv1.IncidentDetails{Kind: strings.Repeat("x", 3000)}}
		}, "events[0].incident.kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := good()
			tt.change(e)
			resp, err := h.ledger.ReportEvents(ctxT(t), &coordinationv1.ReportEventsRequest{Events: []*coordinationv1.LedgerEvent{ev("ok", departed, "B0", "w0", t0), e}})
			if strings.Contains(tt.name, "identity number") {
				// Personal data refuses the whole request at the edge (services/platform/privacy), before
				// any event is read; the reporter's relay then sends its events one by one.
				if _, ok := fieldViolations(t, err)[strings.Replace(tt.field, "events[0]", "events[1]", 1)]; !ok || strings.Contains(err.Error(), e.GetWorkerId()) {
					t.Fatalf("error %v, want INVALID_ARGUMENT on events[1].worker_id without the value", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("a bad event failed the whole report: %v", err)
			}
			r := refusalAt(t, resp, 1)
			if want := strings.TrimPrefix(tt.field, "events[0]."); r.GetField() != want || r.GetCode() != code.Code_INVALID_ARGUMENT {
				t.Fatalf("refusal %v, want INVALID_ARGUMENT on %s", r, want)
			}
			if resp.GetRecorded()+resp.GetDuplicates() != 1 || len(resp.GetRefusals()) != 1 {
				t.Fatalf("response %v: the good event must be taken, the bad one refused", resp)
			}
			if strings.Contains(tt.name, "identity number") && strings.Contains(r.GetMessage(), e.GetWorkerId()) {
				t.Fatalf("the refusal repeats the identity number: %v", r)
			}
		})
	}
	// Nothing of a refused event is recorded; the good event beside it is, once.
	resp, err := h.ledger.ListEvents(ctxT(t), &coordinationv1.ListEventsRequest{})
	if err != nil || len(resp.GetEvents()) != 1 || resp.GetEvents()[0].GetEventId() != "ok" {
		t.Fatalf("after refused events: %v, %v", resp, err)
	}

	_, err = h.ledger.ReportEvents(ctxT(t), &coordinationv1.ReportEventsRequest{})
	if _, ok := fieldViolations(t, err)["events"]; !ok {
		t.Fatalf("empty report: %v", err)
	}
	many := make([]*coordinationv1.LedgerEvent, ledger.MaxEventsPerReport+1)
	for i := range many {
		many[i] = ev(fmt.Sprintf("m%d", i), departed, "B1", fmt.Sprintf("w%d", i), t0)
	}
	_, err = h.ledger.ReportEvents(ctxT(t), &coordinationv1.ReportEventsRequest{Events: many})
	if _, ok := fieldViolations(t, err)["events"]; !ok {
		t.Fatalf("1001 events: %v", err)
	}
	resp2, err := h.ledger.ReportEvents(ctxT(t), &coordinationv1.ReportEventsRequest{Events: many[:ledger.MaxEventsPerReport]})
	if err != nil || resp2.GetRecorded() != ledger.MaxEventsPerReport {
		t.Fatalf("1000 events: %v, %v", resp2, err)
	}
	if got := h.batch(t, "B1").GetDeparted(); got != ledger.MaxEventsPerReport {
		t.Fatalf("departed %d", got)
	}

	// 1001 events are recorded now: a page size above the maximum (1000) is served as the
	// maximum (AIP-158), as in the sending and receiving services, and the rest follows.
	page, err := h.ledger.ListEvents(ctxT(t), &coordinationv1.ListEventsRequest{PageSize: 5000})
	if err != nil || len(page.GetEvents()) != 1000 || page.GetNextPageToken() == "" {
		t.Fatalf("page_size 5000: %d events, next page token %q, %v; want 1000 and a token", len(page.GetEvents()), page.GetNextPageToken(), err)
	}
	rest, err := h.ledger.ListEvents(ctxT(t), &coordinationv1.ListEventsRequest{PageSize: 5000, PageToken: page.GetNextPageToken()})
	if err != nil || len(rest.GetEvents()) != 1 || rest.GetNextPageToken() != "" {
		t.Fatalf("second page: %d events, next page token %q, %v; want the last one", len(rest.GetEvents()), rest.GetNextPageToken(), err)
	}
}

func TestReportEventsDuplicatesCountOnce(t *testing.T) {
	t.Parallel()
	h := startHarness(t, Config{LoadDefaultPairings: true})
	e1 := ev("520000:departed:B1:w1", departed, "B1", "w1", t0)
	e2 := ev("520000:departed:B1:w2", departed, "B1", "w2", t0)
	if resp := h.report(t, e1, e2, e1); resp.GetRecorded() != 2 || resp.GetDuplicates() != 1 {
		t.Fatalf("first report: %v", resp)
	}
	// The output-only fields a client might echo back do not make an event different.
	echo := proto.Clone(e2).(*coordinationv1.LedgerEvent)
	echo.RecordTime = timestamppb.New(t0.Add(time.Hour))
	echo.ReporterRole = commonv1.RegionRole_REGION_ROLE_SENDING
	if resp := h.report(t, echo, e1); resp.GetRecorded() != 0 || resp.GetDuplicates() != 2 {
		t.Fatalf("repeat: %v", resp)
	}
	if got := h.batch(t, "B1").GetDeparted(); got != 2 {
		t.Fatalf("departed %d, want 2", got)
	}
	list, err := h.ledger.ListEvents(ctxT(t), &coordinationv1.ListEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetEvents()) != 2 {
		t.Fatalf("%d events stored", len(list.GetEvents()))
	}
	got := list.GetEvents()[0]
	if got.GetReporterRole() != commonv1.RegionRole_REGION_ROLE_SENDING || !got.GetRecordTime().AsTime().Equal(t0) {
		t.Fatalf("output fields: %v", got)
	}

	// A request id returns the first response.
	req := &coordinationv1.ReportEventsRequest{RequestId: "r1", Events: []*coordinationv1.LedgerEvent{ev("a1", arrived, "B1", "w1", t0)}}
	for range 2 {
		resp, err := h.ledger.ReportEvents(ctxT(t), req)
		if err != nil || resp.GetRecorded() != 1 {
			t.Fatalf("request id repeat: %v, %v", resp, err)
		}
	}
}

func TestReportEventsRefusesReusedEventID(t *testing.T) {
	t.Parallel()
	h := startHarness(t, Config{LoadDefaultPairings: true})
	h.report(t, ev("e1", departed, "B1", "w1", t0))
	tests := []struct {
		name   string
		change func(e *coordinationv1.LedgerEvent)
	}{
		{"other worker", func(e *coordinationv1.LedgerEvent) { e.WorkerId = "w2" }},
		{"other time", func(e *coordinationv1.LedgerEvent) { e.OccurTime = timestamppb.New(t0.Add(time.Second)) }},
		{"registered poor", func(e *coordinationv1.LedgerEvent) { e.RegisteredPoor = true }},
		{"vacancy", func(e *coordinationv1.LedgerEvent) { e.Vacancy = "vacancies/440000-V0000000009" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ev("e1", departed, "B1", "w1", t0)
			tt.change(e)
			resp, err := h.ledger.ReportEvents(ctxT(t), &coordinationv1.ReportEventsRequest{Events: []*coordinationv1.LedgerEvent{
				ev("e9", departed, "B1", "w9", t0), e,
			}})
			if err != nil {
				t.Fatal(err)
			}
			r := refusalAt(t, resp, 1)
			if r.GetReason() != "EVENT_ID_REUSED" || r.GetField() != "event_id" || r.GetItem() != "e1" || r.GetCode() != code.Code_INVALID_ARGUMENT {
				t.Fatalf("refusal %v", r)
			}
		})
	}
	// The refused events were not recorded, the first event is unchanged; e9 beside them was.
	list, err := h.ledger.ListEvents(ctxT(t), &coordinationv1.ListEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetEvents()) != 2 || list.GetEvents()[0].GetWorkerId() != "w1" || list.GetEvents()[1].GetEventId() != "e9" {
		t.Fatalf("events %v", list.GetEvents())
	}
	if got := h.batch(t, "B1").GetDeparted(); got != 2 {
		t.Fatalf("departed %d", got)
	}
}

func TestReportEventsRefusesBatchOfOtherRegions(t *testing.T) {
	t.Parallel()
	h := startHarness(t, Config{LoadDefaultPairings: true})
	h.report(t, ev("e1", departed, "B1", "w1", t0))
	e := ev("e2", departed, "B1", "w2", t0)
	e.SendingRegion, e.ReporterRegion = "450000", "450000"
	resp, err := h.ledger.ReportEvents(ctxT(t), &coordinationv1.ReportEventsRequest{Events: []*coordinationv1.LedgerEvent{e}})
	if err != nil {
		t.Fatal(err)
	}
	if r := refusalAt(t, resp, 0); r.GetField() != "batch_id" || r.GetReason() != "BATCH_REGIONS_DIFFER" {
		t.Fatalf("refusal %v", r)
	}
	// Within one call too.
	a := ev("e3", departed, "B2", "w1", t0)
	b := ev("e4", arrived, "B2", "w1", t0)
	b.ReceivingRegion, b.ReporterRegion = "330000", "330000"
	resp, err = h.ledger.ReportEvents(ctxT(t), &coordinationv1.ReportEventsRequest{Events: []*coordinationv1.LedgerEvent{a, b}})
	if err != nil {
		t.Fatal(err)
	}
	if r := refusalAt(t, resp, 1); r.GetField() != "batch_id" || resp.GetRecorded() != 1 {
		t.Fatalf("response %v", resp)
	}
}

func TestReportEventsRefusesUnpairedProvinces(t *testing.T) {
	t.Parallel()
	h := startHarness(t, Config{LoadDefaultPairings: true})
	// 110000 (Beijing) sends to nobody: not a pairing of the registry.
	unpaired := ev("u1", departed, "U1", "w1", t0)
	unpaired.SendingRegion, unpaired.ReporterRegion = "110000", "110000"
	paired := ev("p1", departed, "P1", "w2", t0)
	resp, err := h.ledger.ReportEvents(ctxT(t), &coordinationv1.ReportEventsRequest{Events: []*coordinationv1.LedgerEvent{unpaired, paired}})
	if err != nil {
		t.Fatal(err)
	}
	if r := refusalAt(t, resp, 0); r.GetReason() != "NOT_PAIRED" || r.GetCode() != code.Code_FAILED_PRECONDITION || resp.GetRecorded() != 1 {
		t.Fatalf("response %v, want u1 refused NOT_PAIRED and p1 recorded", resp)
	}
	// Facts of a batch the ledger has keep coming after the pairing ends.
	if _, err := h.registry.DeletePairing(ctxT(t), &coordinationv1.DeletePairingRequest{Name: "pairings/440000-520000"}); err != nil {
		t.Fatal(err)
	}
	later := ev("p2", arrived, "P1", "w2", t0.Add(time.Hour))
	fresh := ev("p3", departed, "P2", "w3", t0)
	resp, err = h.ledger.ReportEvents(ctxT(t), &coordinationv1.ReportEventsRequest{Events: []*coordinationv1.LedgerEvent{later, fresh}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetRecorded() != 1 || len(resp.GetRefusals()) != 1 || resp.GetRefusals()[0].GetIndex() != 1 || resp.GetRefusals()[0].GetReason() != "NOT_PAIRED" {
		t.Fatalf("after unpairing: %v, want the arrival of known batch P1 recorded and the new batch P2 refused", resp)
	}
}

// refusalAt returns the refusal of event i in resp.
func refusalAt(t *testing.T, resp *coordinationv1.ReportEventsResponse, i int) *commonv1.ItemRefusal {
	t.Helper()
	for _, r := range resp.GetRefusals() {
		if int(r.GetIndex()) == i {
			return r
		}
	}
	t.Fatalf("no refusal of event %d in %v", i, resp)
	return nil
}

func TestListEventsFilters(t *testing.T) {
	t.Parallel()
	h := startHarness(t, Config{LoadDefaultPairings: true})
	other := ev("x1", departed, "C1", "w1", t0)
	other.SendingRegion, other.ReporterRegion = "450000", "450000"
	cp := ev("e4", checkpoint, "", "w1", t0)
	cp.Details = &coordinationv1.LedgerEvent_EmploymentCheckpoint{EmploymentCheckpoint: &coordinationv1.EmploymentCheckpointDetails{Months: 3, StillEmployed: true}}
	h.report(t,
		ev("e1", departed, "B1", "w1", t0),
		ev("e2", departed, "B1", "w2", t0),
		ev("e3", arrived, "B1", "w1", t0.Add(time.Hour)),
		other,
		cp,
	)
	h.report(t, ev("e5", arrived, "B1", "w2", t0.Add(2*time.Hour)))
	at := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(t0.Add(d)) }
	ids := func(req *coordinationv1.ListEventsRequest) string {
		t.Helper()
		var out []string
		for {
			resp, err := h.ledger.ListEvents(ctxT(t), req)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range resp.GetEvents() {
				out = append(out, e.GetEventId())
			}
			if resp.GetNextPageToken() == "" {
				return fmt.Sprint(out)
			}
			req = proto.Clone(req).(*coordinationv1.ListEventsRequest)
			req.PageToken = resp.GetNextPageToken()
		}
	}
	tests := []struct {
		name string
		req  *coordinationv1.ListEventsRequest
		want string
	}{
		{"all in order recorded", &coordinationv1.ListEventsRequest{PageSize: 2}, "[e1 e2 e3 x1 e4 e5]"},
		{"worker", &coordinationv1.ListEventsRequest{WorkerId: "w1", PageSize: 1}, "[e1 e3 x1 e4]"},
		{"batch", &coordinationv1.ListEventsRequest{BatchId: "B1", PageSize: 3}, "[e1 e2 e3 e5]"},
		{"kind", &coordinationv1.ListEventsRequest{Kind: arrived}, "[e3 e5]"},
		{"region", &coordinationv1.ListEventsRequest{Region: "450000"}, "[x1]"},
		{"worker and kind", &coordinationv1.ListEventsRequest{WorkerId: "w1", Kind: departed}, "[e1 x1]"},
		{"unknown worker", &coordinationv1.ListEventsRequest{WorkerId: "nobody"}, "[]"},
		{"from a time on (included)", &coordinationv1.ListEventsRequest{OccurTimeFrom: at(time.Hour), PageSize: 1}, "[e3 e5]"},
		{"before a time (excluded)", &coordinationv1.ListEventsRequest{OccurTimeBefore: at(time.Hour)}, "[e1 e2 x1 e4]"},
		{"time range and batch", &coordinationv1.ListEventsRequest{BatchId: "B1", OccurTimeFrom: at(time.Minute), OccurTimeBefore: at(3 * time.Hour), PageSize: 1}, "[e3 e5]"},
		{"time range and worker", &coordinationv1.ListEventsRequest{WorkerId: "w2", OccurTimeFrom: at(0), OccurTimeBefore: at(time.Hour)}, "[e2]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ids(tt.req); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
	if got := ids(&coordinationv1.ListEventsRequest{PageSize: 1001}); got != "[e1 e2 e3 x1 e4 e5]" {
		t.Fatalf("page size above the maximum: got %s, want every event", got)
	}
	_, err := h.ledger.ListEvents(ctxT(t), &coordinationv1.ListEventsRequest{PageSize: -1})
	if _, ok := fieldViolations(t, err)["page_size"]; !ok {
		t.Fatalf("negative page size: %v", err)
	}
	_, err = h.ledger.ListEvents(ctxT(t), &coordinationv1.ListEventsRequest{PageToken: "AAAA"})
	wantCode(t, err, codes.InvalidArgument)
	_, err = h.ledger.ListEvents(ctxT(t), &coordinationv1.ListEventsRequest{OccurTimeFrom: at(time.Hour), OccurTimeBefore: at(time.Hour)})
	if _, ok := fieldViolations(t, err)["occur_time_before"]; !ok {
		t.Fatalf("empty time range: %v", err)
	}
	_, err = h.ledger.ListEvents(ctxT(t), &coordinationv1.ListEventsRequest{OccurTimeFrom: &timestamppb.Timestamp{Nanos: -1}})
	if _, ok := fieldViolations(t, err)["occur_time_from"]; !ok {
		t.Fatalf("invalid time: %v", err)
	}
}

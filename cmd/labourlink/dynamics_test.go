package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending/roster"
)

// The dynamics table of a sending province: the published sentence with its numerators and
// denominators, the breakdowns, the workshops' recovery; -o json is the response.
func TestDynamicsShow(t *testing.T) {
	addr, db := rosterTestService(t)
	at := func(y, m, d int) *timestamppb.Timestamp {
		return timestamppb.New(time.Date(y, time.Month(m), d, 9, 0, 0, 0, civil.Zone))
	}
	workers := []*sendingv1.Worker{
		{WorkerId: "520000-W1", HomeCounty: "520102", RegisteredPoor: true, Trips: []*sendingv1.Trip{ // out since April 2025
			{BatchId: "520000-B1", ReceivingRegion: "440000", Occupation: "8212", DepartureTime: at(2025, 4, 1)}}},
		{WorkerId: "520000-W2", HomeCounty: "520102", RegisteredPoor: true, Trips: []*sendingv1.Trip{ // March to June 2025, then out again in 2026
			{BatchId: "520000-B2", ReceivingRegion: "440000", Occupation: "9313", DepartureTime: at(2025, 3, 1), ReturnTime: at(2025, 6, 1)},
			{BatchId: "520000-B5", ReceivingRegion: "330000", DepartureTime: at(2026, 3, 1)}}},
		{WorkerId: "520000-W3", HomeCounty: "520424", RegisteredPoor: true, Trips: []*sendingv1.Trip{ // left the job in February 2025
			{BatchId: "520000-B3", ReceivingRegion: "440000", Occupation: "8212", DepartureTime: at(2025, 1, 10), LeftJobDate: &commonv1.Date{Year: 2025, Month: 2, Day: 1}}}},
		{WorkerId: "520000-W4", HomeCounty: "520424", RegisteredPoor: false, Trips: []*sendingv1.Trip{ // not registered-poor: not counted
			{BatchId: "520000-B4", ReceivingRegion: "440000", DepartureTime: at(2025, 4, 1)}}},
	}
	err := db.Update(func(tx *bbolt.Tx) error {
		for _, w := range workers {
			if err := store.PutProto(tx.Bucket(roster.BucketWorkers), []byte(w.GetWorkerId()), w); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string { t.Helper(); return runOK(t, addr, args...) }
	out := run("dynamics", "show", "-as-of", "2026-04-30")
	for _, want := range []string{
		"As of 30 April 2026, poor labourers out at work: 2 = 100.0% of the same day last year (2); 66.7% of last year's total (3).",
		"by home county", "520102", "by destination", "330000", "by occupation", "not recorded", "same day 2025", "2025 total",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dynamics show: no %q in\n%s", want, out)
		}
	}
	out = run("dynamics", "show", "-as-of", "2026-04-30", "-county", "520424")
	if !strings.Contains(out, "As of 30 April 2026, poor labourers of 520424 关岭布依族苗族自治县 out at work: 0 = - of the same day last year (0); 0.0% of last year's total (1).") {
		t.Errorf("dynamics show -county 520424:\n%s", out)
	}
	run("local", "add", "-name", "花江镇扶贫车间", "-kind", "workshop", "-county", "520424", "-capacity", "3", "-resumed")
	run("local", "add", "-name", "关岭县扶贫车间", "-kind", "workshop", "-county", "520424", "-capacity", "3")
	if out := run("dynamics", "show"); !strings.Contains(out, "50.0% of workshops resumed (1/2).") || !strings.Contains(out, "workshop 扶贫车间") {
		t.Errorf("dynamics show (today): no recovery of workshops in\n%s", out)
	}
	var resp sendingv1.GetEmploymentDynamicsResponse
	if err := protojson.Unmarshal([]byte(run("dynamics", "show", "-as-of", "2026-04-30", "-o", "json")), &resp); err != nil {
		t.Fatal(err)
	}
	if tot := resp.GetTotal(); tot.GetOutAtWork() != 2 || tot.GetAgainstLastYearTotal().GetDenominator() != 3 || len(resp.GetByHomeCounty()) != 2 {
		t.Errorf("-o json: %v", &resp)
	}
	if code, _, errOut := runRoster(t, addr, "dynamics", "show", "-as-of", "2026-04-31"); code == 0 || !strings.Contains(errOut, "-as-of") {
		t.Errorf("a bad -as-of: exit %d %s", code, errOut)
	}
	if code, _, errOut := runRoster(t, addr, "dynamics", "show", "-as-of", "2999-01-01"); code == 0 || !strings.Contains(errOut, "as_of") {
		t.Errorf("a future -as-of: exit %d %s", code, errOut)
	}
}

// The national figures from the ledger, by sending and destination province.
func TestDynamicsShowNational(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, civil.Zone)
	addr := startCoordination(t, func() time.Time { return now })
	cc, err := peers.Dial(addr, peers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	var events []*coordinationv1.LedgerEvent
	for i, dep := range []time.Time{time.Date(2025, 4, 1, 9, 0, 0, 0, civil.Zone), time.Date(2026, 4, 1, 9, 0, 0, 0, civil.Zone), time.Date(2026, 4, 2, 9, 0, 0, 0, civil.Zone)} {
		events = append(events, &coordinationv1.LedgerEvent{
			EventId: fmt.Sprintf("d%d", i), Kind: coordinationv1.EventKind_EVENT_KIND_DEPARTED, ReporterRegion: "520000", SendingRegion: "520000", ReceivingRegion: "440000",
			WorkerId: fmt.Sprintf("520000-W%d", i), BatchId: fmt.Sprintf("520000-B%d", i), OccurTime: timestamppb.New(dep), RegisteredPoor: true,
		})
		if i > 0 { // the first departure carries no details: its county and occupation are not recorded
			events[i].Details = &coordinationv1.LedgerEvent_Departed{Departed: &coordinationv1.DepartedDetails{HomeCounty: "520102", Occupation: "8212"}}
		}
	}
	resp, err := coordinationv1.NewLedgerServiceClient(cc).ReportEvents(t.Context(), &coordinationv1.ReportEventsRequest{Events: events})
	if err != nil || len(resp.GetRefusals()) > 0 {
		t.Fatalf("ReportEvents: %v %v", err, resp.GetRefusals())
	}
	// Two workshops of Guizhou, one resumed since before the day, one only after it.
	registered := timestamppb.New(time.Date(2026, 3, 1, 9, 0, 0, 0, civil.Zone))
	workshop := func(id string, resumed bool, changes ...*sendingv1.ResumptionChange) *coordinationv1.LocalEmployerState {
		return &coordinationv1.LocalEmployerState{Name: "localEmployers/" + id, Kind: sendingv1.LocalEmployerKind_LOCAL_EMPLOYER_KIND_POVERTY_ALLEVIATION_WORKSHOP,
			County: "520102", Capacity: 5, Resumed: resumed, CreateTime: registered, ResumptionChanges: changes, Version: 1}
	}
	if _, err := coordinationv1.NewDynamicsServiceClient(cc).ReportLocalEmployers(t.Context(), &coordinationv1.ReportLocalEmployersRequest{ReporterRegion: "520000",
		Employers: []*coordinationv1.LocalEmployerState{
			workshop("520000-L00000001", true, &sendingv1.ResumptionChange{Resumed: true, ChangeTime: registered}),
			workshop("520000-L00000002", true, &sendingv1.ResumptionChange{Resumed: false, ChangeTime: registered},
				&sendingv1.ResumptionChange{Resumed: true, ChangeTime: timestamppb.New(time.Date(2026, 5, 1, 9, 0, 0, 0, civil.Zone))}),
		}}); err != nil {
		t.Fatalf("ReportLocalEmployers: %v", err)
	}
	code, out, errOut := runRoster(t, addr, "dynamics", "show", "-national", "-as-of", "2026-04-30")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	for _, want := range []string{
		"As of 30 April 2026, poor labourers out at work: 3 = 300.0% of the same day last year (1); 300.0% of last year's total (1).",
		"by sending province", "520000 贵州省", "by destination", "440000 广东省",
		"by home county", "520102", "by occupation", "8212", "not recorded",
		"50.0% of workshops resumed (1/2).", "Local employers resumed: 50.0% (1/2).", "local employers by sending province on 2026-04-30",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dynamics show -national: no %q in\n%s", want, out)
		}
	}
	if code, _, errOut := runRoster(t, addr, "dynamics", "show", "-national", "-county", "520102"); code == 0 || !strings.Contains(errOut, "-county") {
		t.Errorf("-national with -county: exit %d %s", code, errOut)
	}
}

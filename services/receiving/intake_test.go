package receiving

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/codes/idnumber"
	"github.com/eastwest/labourlink/services/platform/privacy"
	"github.com/eastwest/labourlink/services/platform/store"
)

// intakeScenario prepares a vacancy with accepted candidates w-1..w-n (w-1 registered poor) and
// an announced batch carrying them; w-1..w-(n-1) are reported boarded, the last is not.
func (e *env) intakeScenario(batchID string, n int) *receivingv1.IntakeBatch {
	e.t.Helper()
	return e.intakeScenarioFrom(sending, batchID, n)
}

// homeCounties are a home county of each paired sending province the tests use.
var homeCounties = map[string]string{sending: homeCounty, "450000": "450102"}

// intakeScenarioFrom is intakeScenario for sending province from (batchID starts with its code).
func (e *env) intakeScenarioFrom(from, batchID string, n int) *receivingv1.IntakeBatch {
	e.t.Helper()
	v := e.createVacancy(goodVacancy(e.t))
	var entries []*receivingv1.IntakeEntry
	for i := 1; i <= n; i++ {
		c := candidate(v.GetName(), fmt.Sprintf("%s-w-%d", batchID, i))
		c.RegisteredPoor = i == 1
		c.HomeCounty = homeCounties[from]
		e.accept(e.submitFrom(from, c)[0].GetName())
		entries = append(entries, &receivingv1.IntakeEntry{WorkerId: c.GetWorkerId(), Vacancy: v.GetName(), RegisteredPoor: true})
	}
	dep := e.clock.Now()
	resp, err := e.intake.AnnounceBatch(ctx(e.t), &receivingv1.AnnounceBatchRequest{RequestId: "announce-" + batchID, Batch: &receivingv1.IntakeBatch{
		BatchId: batchID, SendingRegion: from, Mode: commonv1.TransportMode_TRANSPORT_MODE_BUS, Origin: "贵阳市南明区人社局",
		DestinationCounty: workCounty, DepartureTime: timestamppb.New(dep), ExpectedArrivalTime: timestamppb.New(dep.Add(20 * time.Hour)),
		EscortName: "李 建国", EscortContact: "0851-85000000", Entries: entries,
	}})
	if err != nil {
		e.t.Fatalf("AnnounceBatch: %v", err)
	}
	var boarded []string
	for _, en := range entries[:n-1] {
		boarded = append(boarded, en.GetWorkerId())
	}
	if _, err := e.intake.ReportBatchDeparture(ctx(e.t), &receivingv1.ReportBatchDepartureRequest{
		BatchId: batchID, SendingRegion: from, BoardedWorkerIds: boarded, DepartureTime: timestamppb.New(dep), RequestId: "dep-" + batchID,
	}); err != nil {
		e.t.Fatalf("ReportBatchDeparture: %v", err)
	}
	return resp.GetBatch()
}

// Every arrival and follow-up record leaves exactly one outbox entry (a ledger event with a
// deterministic id); repeating a record, by request id or by content, leaves none; the entries
// are kept across a restart, and repeats after the restart still leave none.
func TestIntakeRecordsLeaveOneOutboxEntryEach(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.intakeScenario("520000-gz-bus-1", 3)
	if b.GetEntries()[0].GetRegisteredPoor() != true || b.GetEntries()[1].GetRegisteredPoor() != false {
		t.Errorf("registered_poor is taken from the candidates: %v", b.GetEntries())
	}
	if n := len(e.ledgerEvents()); n != 0 {
		t.Fatalf("announce and departure left %d outbox entries, want 0 (the sending side reports departures)", n)
	}
	w1, w2, w3 := "520000-gz-bus-1-w-1", "520000-gz-bus-1-w-2", "520000-gz-bus-1-w-3"
	e.clock.Add(20 * time.Hour)
	day := today(e.clock.Now())

	type step struct {
		name string
		run  func() error
		adds int // outbox entries the step adds
	}
	confirm := func(reqID string, cs ...*receivingv1.ArrivalConfirmation) func() error {
		return func() error {
			_, err := e.intake.ConfirmArrivals(ctx(t), &receivingv1.ConfirmArrivalsRequest{Name: b.GetName(), Confirmations: cs, RequestId: reqID})
			return err
		}
	}
	arrivedC := func(w string) *receivingv1.ArrivalConfirmation {
		return &receivingv1.ArrivalConfirmation{WorkerId: w, Outcome: outcomeArrived}
	}
	onboard := func(reqID, w string) func() error {
		return func() error {
			_, err := e.intake.RecordOnboarding(ctx(t), &receivingv1.RecordOnboardingRequest{WorkerId: w, OnboardDate: day, RequestId: reqID})
			return err
		}
	}
	steps := []step{
		{"w1 arrived, w2 no-show", confirm("arr-1", arrivedC(w1), &receivingv1.ArrivalConfirmation{WorkerId: w2, Outcome: outcomeNoShow}), 2},
		{"same request again", confirm("arr-1", arrivedC(w1), &receivingv1.ArrivalConfirmation{WorkerId: w2, Outcome: outcomeNoShow}), 0},
		{"same outcomes, new request id", confirm("arr-2", arrivedC(w1), &receivingv1.ArrivalConfirmation{WorkerId: w2, Outcome: outcomeNoShow}), 0},
		{"w3 arrived without departure (unexpected)", confirm("", arrivedC(w3)), 1},
		{"w2 arrives late", confirm("arr-3", arrivedC(w2)), 1},
		{"onboard w1", onboard("on-1", w1), 1},
		{"onboard w1 again", onboard("on-1", w1), 0},
		{"onboard w1 again, no request id", onboard("", w1), 0},
		{"onboard w3", onboard("", w3), 1},
	}
	run := func(steps []step) {
		t.Helper()
		for _, s := range steps {
			before := len(e.ledgerEvents())
			if err := s.run(); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if got := len(e.ledgerEvents()) - before; got != s.adds {
				t.Fatalf("%s: %d outbox entries added, want %d", s.name, got, s.adds)
			}
		}
	}
	run(steps)

	e.clock.Add(24 * 100 * time.Hour) // 100 days later
	later := today(e.clock.Now())
	checkpoint := func(reqID, w string, months int32, still bool) func() error {
		return func() error {
			_, err := e.intake.RecordCheckpoint(ctx(t), &receivingv1.RecordCheckpointRequest{WorkerId: w, RequestId: reqID,
				Checkpoint: &receivingv1.Checkpoint{CheckDate: later, Months: months, StillEmployed: still}})
			return err
		}
	}
	left := func(reqID, w string) func() error {
		return func() error {
			_, err := e.intake.RecordJobLeft(ctx(t), &receivingv1.RecordJobLeftRequest{WorkerId: w, LeftDate: later, Reason: "回乡照顾家人", RequestId: reqID})
			return err
		}
	}
	incident := func(reqID, w string, kind receivingv1.IncidentKind) func() error {
		return func() error {
			_, err := e.intake.RecordIncident(ctx(t), &receivingv1.RecordIncidentRequest{WorkerId: w, RequestId: reqID,
				Incident: &receivingv1.Incident{IncidentDate: later, IncidentKind: kind, Description: "手指轻伤，已就医"}})
			return err
		}
	}
	run([]step{
		{"checkpoint w1 at 3 months", checkpoint("cp-1", w1, 3, true), 1},
		{"same checkpoint again", checkpoint("cp-2", w1, 3, true), 0},
		{"incident w1", incident("inc-1", w1, receivingv1.IncidentKind_INCIDENT_KIND_INJURY), 1},
		{"same incident, no request id", incident("", w1, receivingv1.IncidentKind_INCIDENT_KIND_INJURY), 0},
		{"another incident", incident("", w1, receivingv1.IncidentKind_INCIDENT_KIND_WAGE_DISPUTE), 1},
		{"w3 left", left("left-1", w3), 1},
		{"w3 left again", left("", w3), 0},
		{"checkpoint w3 at 3 months, not employed", checkpoint("", w3, 3, false), 1},
	})
	want := len(e.ledgerEvents())
	if want != 11 {
		t.Fatalf("%d outbox entries, want 11", want)
	}
	check := func(events []*coordinationv1.LedgerEvent) {
		t.Helper()
		ids := map[string]bool{}
		kinds := map[coordinationv1.EventKind]int{}
		for _, ev := range events {
			if ids[ev.GetEventId()] {
				t.Errorf("event id %s twice", ev.GetEventId())
			}
			ids[ev.GetEventId()] = true
			kinds[ev.GetKind()]++
			if ev.GetReporterRegion() != region || ev.GetReceivingRegion() != region || ev.GetSendingRegion() != sending ||
				ev.GetBatchId() != b.GetBatchId() || ev.GetVacancy() == "" || ev.GetOccurTime() == nil || ev.GetWorkerId() == "" {
				t.Errorf("incomplete event %v", ev)
			}
			if ev.GetRegisteredPoor() != (ev.GetWorkerId() == w1) {
				t.Errorf("event %s: registered_poor %t", ev.GetEventId(), ev.GetRegisteredPoor())
			}
		}
		wantKinds := map[coordinationv1.EventKind]int{
			coordinationv1.EventKind_EVENT_KIND_ARRIVED: 3, coordinationv1.EventKind_EVENT_KIND_NO_SHOW: 1,
			coordinationv1.EventKind_EVENT_KIND_ONBOARDED: 2, coordinationv1.EventKind_EVENT_KIND_EMPLOYMENT_CHECKPOINT: 2,
			coordinationv1.EventKind_EVENT_KIND_INCIDENT: 2, coordinationv1.EventKind_EVENT_KIND_LEFT_JOB: 1,
		}
		if fmt.Sprint(kinds) != fmt.Sprint(wantKinds) {
			t.Errorf("event kinds %v, want %v", kinds, wantKinds)
		}
		if !ids[region+":arrived:520000-gz-bus-1:"+w1] || !ids[region+":checkpoint:520000-gz-bus-1:"+w1+":3"] {
			t.Errorf("event ids %v", ids)
		}
	}
	events := e.ledgerEvents()
	check(events)

	// Kept across a restart; repeats after the restart add nothing.
	e.restart()
	after := e.ledgerEvents()
	if len(after) != want {
		t.Fatalf("after restart: %d outbox entries, want %d", len(after), want)
	}
	for i := range after {
		if !proto.Equal(after[i], events[i]) {
			t.Fatalf("entry %d changed across restart", i)
		}
	}
	run([]step{
		{"arrivals again after restart", confirm("arr-1", arrivedC(w1), &receivingv1.ArrivalConfirmation{WorkerId: w2, Outcome: outcomeNoShow}), 0},
		{"onboarding again after restart", onboard("", w1), 0},
		{"checkpoint again after restart", checkpoint("", w1, 3, true), 0},
		{"job left again after restart", left("", w3), 0},
	})

	// The records.
	rec, err := e.intake.GetEmploymentRecord(ctx(t), &receivingv1.GetEmploymentRecordRequest{Name: "employmentRecords/" + w1})
	if err != nil {
		t.Fatal(err)
	}
	r := rec.GetRecord()
	if r.GetStatus() != employed || r.GetEmployerName() == "" || len(r.GetCheckpoints()) != 1 || len(r.GetIncidents()) != 2 || !r.GetRegisteredPoor() {
		t.Errorf("record of w1 = %v", r)
	}
	list, err := e.intake.ListEmploymentRecords(ctx(t), &receivingv1.ListEmploymentRecordsRequest{Status: leftJob})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetRecords()) != 1 || list.GetRecords()[0].GetWorkerId() != w3 {
		t.Errorf("LEFT_JOB records = %v", list.GetRecords())
	}
	vac, err := e.vac.GetVacancy(ctx(t), &receivingv1.GetVacancyRequest{Name: r.GetVacancy()})
	if err != nil {
		t.Fatal(err)
	}
	if vac.GetVacancy().GetFilled() != 2 || vac.GetVacancy().GetReserved() != 3 {
		t.Errorf("vacancy filled %d reserved %d, want 2 and 3", vac.GetVacancy().GetFilled(), vac.GetVacancy().GetReserved())
	}
	got, err := e.intake.GetIntakeBatch(ctx(t), &receivingv1.GetIntakeBatchRequest{Name: b.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	en := got.GetBatch().GetEntries()
	if got.GetBatch().GetState() != receivingv1.IntakeBatchState_INTAKE_BATCH_STATE_DEPARTED || !en[0].GetDeparted() || en[2].GetDeparted() || en[1].GetOutcome() != outcomeArrived {
		t.Errorf("batch = %v", got.GetBatch())
	}
}

func TestIntakeRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.intakeScenario("520000-gz-bus-2", 2)
	w1, w2 := "520000-gz-bus-2-w-1", "520000-gz-bus-2-w-2"
	day := today(e.clock.Now())
	_, err := e.intake.ConfirmArrivals(ctx(t), &receivingv1.ConfirmArrivalsRequest{Name: b.GetName(),
		Confirmations: []*receivingv1.ArrivalConfirmation{{WorkerId: "stranger", Outcome: outcomeArrived}}})
	if _, ok := violations(t, err)["confirmations[0].worker_id"]; !ok {
		t.Errorf("a worker not on the manifest: %v", err)
	}
	_, err = e.intake.RecordOnboarding(ctx(t), &receivingv1.RecordOnboardingRequest{WorkerId: w1, OnboardDate: day})
	wantCode(t, err, codes.FailedPrecondition, "NOT_ARRIVED")
	_, err = e.intake.ConfirmArrivals(ctx(t), &receivingv1.ConfirmArrivalsRequest{Name: b.GetName(),
		Confirmations: []*receivingv1.ArrivalConfirmation{{WorkerId: w1, Outcome: outcomeArrived}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.intake.ConfirmArrivals(ctx(t), &receivingv1.ConfirmArrivalsRequest{Name: b.GetName(),
		Confirmations: []*receivingv1.ArrivalConfirmation{{WorkerId: w1, Outcome: outcomeNoShow}}})
	wantCode(t, err, codes.FailedPrecondition, "ARRIVAL_ALREADY_CONFIRMED")
	_, err = e.intake.RecordCheckpoint(ctx(t), &receivingv1.RecordCheckpointRequest{WorkerId: w1, Checkpoint: &receivingv1.Checkpoint{CheckDate: day, Months: 3}})
	wantCode(t, err, codes.FailedPrecondition, "NOT_ONBOARDED")
	_, err = e.intake.RecordOnboarding(ctx(t), &receivingv1.RecordOnboardingRequest{WorkerId: w1, OnboardDate: date(2099, 1, 1)})
	violations(t, err)
	if _, err := e.intake.RecordOnboarding(ctx(t), &receivingv1.RecordOnboardingRequest{WorkerId: w1, OnboardDate: day}); err != nil {
		t.Fatal(err)
	}
	_, err = e.intake.RecordCheckpoint(ctx(t), &receivingv1.RecordCheckpointRequest{WorkerId: w1, Checkpoint: &receivingv1.Checkpoint{CheckDate: day, Months: 3}})
	if _, ok := violations(t, err)["checkpoint.months"]; !ok {
		t.Errorf("3-month checkpoint on the onboarding day: %v", err)
	}
	// An onboarded worker cannot be withdrawn.
	list, err := e.cand.ListCandidates(ctx(t), &receivingv1.ListCandidatesRequest{State: stateAccepted})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list.GetCandidates() {
		if c.GetWorkerId() == w1 {
			_, err = e.cand.WithdrawCandidate(ctx(t), &receivingv1.WithdrawCandidateRequest{Name: c.GetName(), SendingRegion: sending})
			wantCode(t, err, codes.FailedPrecondition, "ALREADY_ONBOARDED")
		}
	}
	_, err = e.intake.RecordJobLeft(ctx(t), &receivingv1.RecordJobLeftRequest{WorkerId: w2, LeftDate: day, Reason: "x"})
	wantCode(t, err, codes.FailedPrecondition, "NOT_ONBOARDED")
	_, err = e.intake.RecordIncident(ctx(t), &receivingv1.RecordIncidentRequest{WorkerId: "nobody", Incident: &receivingv1.Incident{IncidentDate: day, IncidentKind: receivingv1.IncidentKind_INCIDENT_KIND_INJURY}})
	wantCode(t, err, codes.NotFound, "")
	// Announcing: the same batch again returns it; a manifest worker who is not an accepted
	// candidate is refused; an unpaired province is refused.
	again, err := e.intake.AnnounceBatch(ctx(t), &receivingv1.AnnounceBatchRequest{Batch: &receivingv1.IntakeBatch{
		BatchId: b.GetBatchId(), SendingRegion: sending, Mode: commonv1.TransportMode_TRANSPORT_MODE_TRAIN, DestinationCounty: workCounty,
		ExpectedArrivalTime: timestamppb.Now(), Entries: []*receivingv1.IntakeEntry{{WorkerId: "other", Vacancy: b.GetEntries()[0].GetVacancy()}},
	}})
	if err != nil || again.GetBatch().GetMode() != commonv1.TransportMode_TRANSPORT_MODE_BUS {
		t.Errorf("announce again = %v, %v; want the recorded batch", again, err)
	}
	// A worker who is not an accepted candidate is refused on their own; a worker already here
	// (arrived on the earlier batch) too; the batch is recorded with the others.
	extra := candidate(b.GetEntries()[0].GetVacancy(), "520000-gz-bus-3-w-1")
	e.accept(e.submit(extra)[0].GetName())
	third, err := e.intake.AnnounceBatch(ctx(t), &receivingv1.AnnounceBatchRequest{Batch: &receivingv1.IntakeBatch{
		BatchId: "520000-gz-bus-3", SendingRegion: sending, Mode: commonv1.TransportMode_TRANSPORT_MODE_TRAIN, DestinationCounty: workCounty,
		ExpectedArrivalTime: timestamppb.Now(), Entries: []*receivingv1.IntakeEntry{
			{WorkerId: "other", Vacancy: b.GetEntries()[0].GetVacancy()},
			{WorkerId: extra.GetWorkerId(), Vacancy: extra.GetVacancy()},
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(third.GetRefusals()) != 1 || third.GetRefusals()[0].GetIndex() != 0 || third.GetRefusals()[0].GetReason() != "CANDIDATE_NOT_ACCEPTED" ||
		len(third.GetBatch().GetEntries()) != 1 || third.GetBatch().GetEntries()[0].GetWorkerId() != extra.GetWorkerId() {
		t.Fatalf("announce with a stranger: %v, want the stranger refused and the accepted worker taken", third)
	}
	_, err = e.intake.AnnounceBatch(ctx(t), &receivingv1.AnnounceBatchRequest{Batch: &receivingv1.IntakeBatch{BatchId: "x"}})
	got := violations(t, err)
	for _, f := range []string{"batch.sending_region", "batch.mode", "batch.destination_county", "batch.expected_arrival_time", "batch.entries"} {
		if _, ok := got[f]; !ok {
			t.Errorf("empty batch: no violation on %s (%v)", f, got)
		}
	}
	_, err = e.intake.ReportBatchDeparture(ctx(t), &receivingv1.ReportBatchDepartureRequest{BatchId: b.GetBatchId(), SendingRegion: sending, BoardedWorkerIds: []string{"x"}})
	if err != nil {
		t.Errorf("a second departure report changes nothing: %v", err)
	}
	batches, err := e.intake.ListIntakeBatches(ctx(t), &receivingv1.ListIntakeBatchesRequest{SendingRegion: sending})
	if err != nil || len(batches.GetBatches()) != 2 {
		t.Errorf("ListIntakeBatches = %v, %v; want the first batch and the third (with its accepted worker)", batches, err)
	}
}

// identityNumbersIn returns every 18-byte window of data that is a valid identity number.
func identityNumbersIn(data []byte) []string {
	var found []string
	for i := 0; i+idnumber.Length <= len(data); i++ {
		w := data[i : i+idnumber.Length]
		if !privacy.LooksLikeIDNumber(string(w)) {
			continue
		}
		if _, err := idnumber.Parse(string(w)); err == nil {
			found = append(found, idnumber.Mask(string(w)))
		}
	}
	sort.Strings(found)
	return found
}

// After a whole scenario, including requests that tried to pass identity numbers in every
// place, the data file holds no valid identity number anywhere in its bytes.
func TestNoIdentityNumberInDataFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := idNumber("52010219900307123")
	id2 := idNumber("52242719850615002")
	if len(identityNumbersIn([]byte("xx"+id+"yy"))) != 1 {
		t.Fatal("the scan does not find an identity number")
	}
	b := e.intakeScenario("520000-gz-bus-9", 2)
	v := b.GetEntries()[0].GetVacancy()
	attempts := []error{}
	try := func(err error) { attempts = append(attempts, err) }
	_, err := e.cand.SubmitCandidates(ctx(t), &receivingv1.SubmitCandidatesRequest{SendingRegion: sending, Candidates: []*receivingv1.Candidate{candidate(v, id)}})
	try(err)
	c := candidate(v, "520000-w-ok")
	c.FullName = id2
	_, err = e.cand.SubmitCandidates(ctx(t), &receivingv1.SubmitCandidatesRequest{SendingRegion: sending, Candidates: []*receivingv1.Candidate{c}, RequestId: id})
	try(err)
	in := goodVacancy(t)
	in.Contact = "联系 " + id
	_, err = e.vac.CreateVacancy(ctx(t), &receivingv1.CreateVacancyRequest{Vacancy: in})
	try(err)
	row := goodRow(t, 2)
	row.EmployerName = "厂 " + id2
	_, err = e.importRows("imp-id", []*receivingv1.VacancyRow{row, goodRow(t, 3)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.intake.ConfirmArrivals(ctx(t), &receivingv1.ConfirmArrivalsRequest{Name: b.GetName(), Confirmations: []*receivingv1.ArrivalConfirmation{{WorkerId: id, Outcome: outcomeArrived}}})
	try(err)
	_, err = e.intake.RecordIncident(ctx(t), &receivingv1.RecordIncidentRequest{WorkerId: "520000-gz-bus-9-w-1", Incident: &receivingv1.Incident{IncidentDate: today(e.clock.Now()), IncidentKind: receivingv1.IncidentKind_INCIDENT_KIND_INJURY, Description: "工友 " + id2 + " 受伤"}})
	try(err)
	_, err = e.cand.DecideCandidate(ctx(t), &receivingv1.DecideCandidateRequest{Name: "candidates/x", Decision: receivingv1.Decision_DECISION_REJECT, Reason: id})
	try(err)
	for i, err := range attempts {
		if wantCodeNoFatal(t, err, codes.InvalidArgument, "INVALID_ARGUMENT") != "" {
			t.Errorf("attempt %d: %v, want INVALID_ARGUMENT", i, err)
		}
	}
	// The rest of the flow, so that every kind of record is in the file.
	if _, err := e.intake.ConfirmArrivals(ctx(t), &receivingv1.ConfirmArrivalsRequest{Name: b.GetName(), Confirmations: []*receivingv1.ArrivalConfirmation{{WorkerId: "520000-gz-bus-9-w-1", Outcome: outcomeArrived}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.intake.RecordOnboarding(ctx(t), &receivingv1.RecordOnboardingRequest{WorkerId: "520000-gz-bus-9-w-1", OnboardDate: today(e.clock.Now())}); err != nil {
		t.Fatal(err)
	}
	e.stop()
	data, err := os.ReadFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	if found := identityNumbersIn(data); len(found) > 0 {
		t.Fatalf("the data file holds identity numbers: %v", found)
	}
}

// A batch cancelled by its sending service before departure: marked cancelled, its workers no
// longer expected, no departure or arrival taken; the same workers may come on a new batch. A
// batch whose departure was reported cannot be cancelled.
func TestCancelIntakeBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v := e.createVacancy(goodVacancy(t))
	var entries []*receivingv1.IntakeEntry
	for i := 1; i <= 3; i++ {
		c := candidate(v.GetName(), fmt.Sprintf("520000-cx-w-%d", i))
		e.accept(e.submit(c)[0].GetName())
		entries = append(entries, &receivingv1.IntakeEntry{WorkerId: c.GetWorkerId(), Vacancy: v.GetName()})
	}
	announce := func(batchID string) *receivingv1.IntakeBatch {
		t.Helper()
		dep := e.clock.Now()
		resp, err := e.intake.AnnounceBatch(ctx(t), &receivingv1.AnnounceBatchRequest{RequestId: "announce-" + batchID, Batch: &receivingv1.IntakeBatch{
			BatchId: batchID, SendingRegion: sending, Mode: commonv1.TransportMode_TRANSPORT_MODE_BUS,
			DestinationCounty: workCounty, DepartureTime: timestamppb.New(dep), ExpectedArrivalTime: timestamppb.New(dep.Add(20 * time.Hour)),
			Entries: entries,
		}})
		if err != nil {
			t.Fatalf("AnnounceBatch %s: %v", batchID, err)
		}
		return resp.GetBatch()
	}
	expectedOn := func() map[string]string {
		t.Helper()
		resp, err := e.intake.ListEmploymentRecords(ctx(t), &receivingv1.ListEmploymentRecordsRequest{Status: expected})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, r := range resp.GetRecords() {
			out[r.GetWorkerId()] = r.GetBatchId()
		}
		return out
	}
	cancel := func(batchID, region, requestID string) (*receivingv1.IntakeBatch, error) {
		resp, err := e.intake.CancelIntakeBatch(ctx(t), &receivingv1.CancelIntakeBatchRequest{
			BatchId: batchID, SendingRegion: region, Reason: "车辆故障", RequestId: requestID})
		return resp.GetBatch(), err
	}

	b := announce("520000-cx-1")
	if got := expectedOn(); len(got) != 3 {
		t.Fatalf("expected workers after the announcement: %v", got)
	}
	// A batch is named by its sending province and its id, which starts with that province's
	// code: another province's cancellation names another batch id.
	_, err := cancel("520000-cx-1", "450000", "c-other")
	if p := violations(t, err)["batch_id"]; !strings.Contains(p, "must start with 450000-") {
		t.Errorf("cancel by another province: batch_id violation %q (%v)", p, err)
	}
	_, err = cancel("nope", sending, "c-nope")
	if p := violations(t, err)["batch_id"]; !strings.Contains(p, "must start with 520000-") {
		t.Errorf("cancel of an id without the province: batch_id violation %q (%v)", p, err)
	}
	_, err = cancel("520000-nope", sending, "c-nope")
	wantCode(t, err, codes.NotFound, "")
	_, err = cancel("520000-cx-1", sending, "c-"+strings.Repeat("x", store.MaxClientIDLen-1))
	if _, ok := violations(t, err)["request_id"]; !ok {
		t.Errorf("a long request id: %v", err)
	}

	got, err := cancel("520000-cx-1", sending, "c-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.GetState() != receivingv1.IntakeBatchState_INTAKE_BATCH_STATE_CANCELLED || got.GetCancelReason() != "车辆故障" || len(got.GetEntries()) != 3 {
		t.Fatalf("cancelled batch = %v", got)
	}
	if left := expectedOn(); len(left) != 0 {
		t.Errorf("workers still expected after the cancellation: %v", left)
	}
	again, err := cancel("520000-cx-1", sending, "c-2")
	if err != nil || !proto.Equal(again, got) {
		t.Errorf("cancelling again = %v, %v; want the batch unchanged", again, err)
	}
	_, err = e.intake.ReportBatchDeparture(ctx(t), &receivingv1.ReportBatchDepartureRequest{
		BatchId: "520000-cx-1", SendingRegion: sending, BoardedWorkerIds: []string{"520000-cx-w-1"}, RequestId: "dep-cx-1"})
	wantCode(t, err, codes.FailedPrecondition, "BATCH_CANCELLED")
	_, err = e.intake.ConfirmArrivals(ctx(t), &receivingv1.ConfirmArrivalsRequest{Name: b.GetName(),
		Confirmations: []*receivingv1.ArrivalConfirmation{{WorkerId: "520000-cx-w-1", Outcome: outcomeArrived}}})
	wantCode(t, err, codes.FailedPrecondition, "BATCH_CANCELLED")

	// The same workers on a new batch: expected there; that batch departs and cannot be
	// cancelled any more.
	announce("520000-cx-2")
	for _, en := range entries {
		if got := expectedOn()[en.GetWorkerId()]; got != "520000-cx-2" {
			t.Errorf("worker %s expected on %q, want cx-2", en.GetWorkerId(), got)
		}
	}
	if _, err := e.intake.ReportBatchDeparture(ctx(t), &receivingv1.ReportBatchDepartureRequest{
		BatchId: "520000-cx-2", SendingRegion: sending, BoardedWorkerIds: []string{"520000-cx-w-1", "520000-cx-w-2", "520000-cx-w-3"}, RequestId: "dep-cx-2"}); err != nil {
		t.Fatal(err)
	}
	_, err = cancel("520000-cx-2", sending, "c-3")
	wantCode(t, err, codes.FailedPrecondition, "BATCH_DEPARTED")
	if n := len(expectedOn()); n != 3 {
		t.Errorf("%d workers expected after a refused cancellation, want 3", n)
	}
}

// RecordIncident takes a kind from IncidentKind: none, or a number that is not one, is refused;
// OTHER needs a detail, at most 50 characters.
func TestRecordIncidentKindChecked(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	day := today(e.clock.Now())
	for _, tt := range []struct {
		name  string
		in    *receivingv1.Incident
		field string
	}{
		{"no kind", &receivingv1.Incident{IncidentDate: day}, "incident.incident_kind"},
		{"unknown kind", &receivingv1.Incident{IncidentDate: day, IncidentKind: 99}, "incident.incident_kind"},
		{"other without detail", &receivingv1.Incident{IncidentDate: day, IncidentKind: receivingv1.IncidentKind_INCIDENT_KIND_OTHER}, "incident.detail"},
		{"detail too long", &receivingv1.Incident{IncidentDate: day, IncidentKind: receivingv1.IncidentKind_INCIDENT_KIND_INJURY, Detail: strings.Repeat("伤", 51)}, "incident.detail"},
	} {
		_, err := e.intake.RecordIncident(ctx(t), &receivingv1.RecordIncidentRequest{WorkerId: sending + "-w1", Incident: tt.in})
		if _, ok := violations(t, err)[tt.field]; !ok {
			t.Errorf("%s: %v, want a violation on %s", tt.name, err, tt.field)
		}
	}
}

// A batch is referred to by its sending province and its id, and the id starts with that
// province's code (docs/api.md, "Ids and references"): an announcement, a departure report or a
// cancellation whose batch id has another start is refused with INVALID_ARGUMENT on the batch id
// field, and changes nothing.
func TestIntakeBatchIDMustBeOfSendingRegion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v := e.createVacancy(goodVacancy(t))
	c := candidate(v.GetName(), "520000-own-w-1")
	e.accept(e.submit(c)[0].GetName())
	dep := e.clock.Now()
	batch := func(id string) *receivingv1.IntakeBatch {
		return &receivingv1.IntakeBatch{
			BatchId: id, SendingRegion: sending, Mode: commonv1.TransportMode_TRANSPORT_MODE_BUS,
			DestinationCounty: workCounty, DepartureTime: timestamppb.New(dep), ExpectedArrivalTime: timestamppb.New(dep.Add(20 * time.Hour)),
			Entries: []*receivingv1.IntakeEntry{{WorkerId: c.GetWorkerId(), Vacancy: v.GetName()}},
		}
	}
	if _, err := e.intake.AnnounceBatch(ctx(t), &receivingv1.AnnounceBatchRequest{Batch: batch("520000-own-1")}); err != nil {
		t.Fatalf("AnnounceBatch: %v", err)
	}
	for _, tc := range []struct {
		name, field string
		call        func() error
	}{
		{"announce with another province's id", "batch.batch_id", func() error {
			_, err := e.intake.AnnounceBatch(ctx(t), &receivingv1.AnnounceBatchRequest{Batch: batch("450000-own-2")})
			return err
		}},
		{"announce with a bare id", "batch.batch_id", func() error {
			_, err := e.intake.AnnounceBatch(ctx(t), &receivingv1.AnnounceBatchRequest{Batch: batch("own-2")})
			return err
		}},
		{"departure with the id under another province", "batch_id", func() error {
			_, err := e.intake.ReportBatchDeparture(ctx(t), &receivingv1.ReportBatchDepartureRequest{
				BatchId: "520000-own-1", SendingRegion: "450000", BoardedWorkerIds: []string{c.GetWorkerId()}})
			return err
		}},
		{"departure with the id without its province", "batch_id", func() error {
			_, err := e.intake.ReportBatchDeparture(ctx(t), &receivingv1.ReportBatchDepartureRequest{
				BatchId: "own-1", SendingRegion: sending, BoardedWorkerIds: []string{c.GetWorkerId()}})
			return err
		}},
		{"cancellation with the id under another province", "batch_id", func() error {
			_, err := e.intake.CancelIntakeBatch(ctx(t), &receivingv1.CancelIntakeBatchRequest{BatchId: "520000-own-1", SendingRegion: "450000"})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := violations(t, tc.call())
			if p := got[tc.field]; !strings.Contains(p, "must start with") {
				t.Errorf("violations %v, want one on %s saying what the id must start with", got, tc.field)
			}
		})
	}
	// Nothing changed: the batch is still only announced, with its one worker expected.
	got, err := e.intake.GetIntakeBatch(ctx(t), &receivingv1.GetIntakeBatchRequest{Name: "intakeBatches/520000-own-1"})
	if err != nil {
		t.Fatal(err)
	}
	if st := got.GetBatch().GetState(); st != receivingv1.IntakeBatchState_INTAKE_BATCH_STATE_ANNOUNCED {
		t.Errorf("batch state %v after the refused calls, want ANNOUNCED", st)
	}
	list, err := e.intake.ListIntakeBatches(ctx(t), &receivingv1.ListIntakeBatchesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(list.GetBatches()); n != 1 {
		t.Errorf("%d intake batches after the refused announcements, want 1", n)
	}
}

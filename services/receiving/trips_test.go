package receiving

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/platform/store"
)

// announceOne announces batch batchID from sending with worker on vacancy, reports its departure
// at the clock's now with the worker boarded, and returns the batch.
func (e *env) announceOne(batchID, worker, vacancy string, depart bool) *receivingv1.IntakeBatch {
	e.t.Helper()
	dep := e.clock.Now()
	resp, err := e.intake.AnnounceBatch(ctx(e.t), &receivingv1.AnnounceBatchRequest{RequestId: "announce-" + batchID, Batch: &receivingv1.IntakeBatch{
		BatchId: batchID, SendingRegion: sending, Mode: commonv1.TransportMode_TRANSPORT_MODE_BUS,
		DestinationCounty: workCounty, DepartureTime: timestamppb.New(dep), ExpectedArrivalTime: timestamppb.New(dep.Add(20 * time.Hour)),
		Entries: []*receivingv1.IntakeEntry{{WorkerId: worker, Vacancy: vacancy}},
	}})
	if err != nil || len(resp.GetRefusals()) > 0 {
		e.t.Fatalf("AnnounceBatch %s: %v, %v", batchID, resp, err)
	}
	if depart {
		if _, err := e.intake.ReportBatchDeparture(ctx(e.t), &receivingv1.ReportBatchDepartureRequest{
			BatchId: batchID, SendingRegion: sending, BoardedWorkerIds: []string{worker}, DepartureTime: timestamppb.New(dep),
		}); err != nil {
			e.t.Fatalf("ReportBatchDeparture %s: %v", batchID, err)
		}
	}
	return resp.GetBatch()
}

// record reads an employment record by name.
func (e *env) record(name string) *receivingv1.EmploymentRecord {
	e.t.Helper()
	resp, err := e.intake.GetEmploymentRecord(ctx(e.t), &receivingv1.GetEmploymentRecordRequest{Name: name})
	if err != nil {
		e.t.Fatalf("GetEmploymentRecord %s: %v", name, err)
	}
	return resp.GetRecord()
}

// workerRecords lists every record of worker, page by page.
func (e *env) workerRecords(worker string) []*receivingv1.EmploymentRecord {
	e.t.Helper()
	var out []*receivingv1.EmploymentRecord
	token := ""
	for {
		resp, err := e.intake.ListEmploymentRecords(ctx(e.t), &receivingv1.ListEmploymentRecordsRequest{WorkerId: worker, PageSize: 1, PageToken: token})
		if err != nil {
			e.t.Fatalf("ListEmploymentRecords %s: %v", worker, err)
		}
		out = append(out, resp.GetRecords()...)
		if token = resp.GetNextPageToken(); token == "" {
			return out
		}
	}
}

// A worker out twice (two batches, two arrivals): the first trip's record keeps its arrival,
// onboarding, checkpoint, incident and leaving after the second trip is announced, arrives and is
// onboarded; each trip has its own name; the bare worker name reads the current trip; a batch
// cancelled in between leaves the earlier trip current; a fact of the first trip recorded by its
// record name after the second began goes to the first trip only; all of it over gRPC and across
// a restart.
func TestWorkerOutTwiceKeepsBothTrips(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const w = sending + "-K3Q7ZC2M4XJ5R6TA"
	other := sending + "-OTHERWORKER00001"
	v1 := e.createVacancy(goodVacancy(t))
	e.accept(e.submit(candidate(v1.GetName(), w), candidate(v1.GetName(), other))[0].GetName())

	// Trip 1: arrives, onboarded, a 1-month checkpoint, leaves the job.
	b1 := e.announceOne("520000-B00000001", w, v1.GetName(), true)
	e.clock.Add(20 * time.Hour)
	if _, err := e.intake.ConfirmArrivals(ctx(t), &receivingv1.ConfirmArrivalsRequest{Name: b1.GetName(),
		Confirmations: []*receivingv1.ArrivalConfirmation{{WorkerId: w, Outcome: outcomeArrived}}}); err != nil {
		t.Fatal(err)
	}
	onboardDay := today(e.clock.Now())
	if _, err := e.intake.RecordOnboarding(ctx(t), &receivingv1.RecordOnboardingRequest{WorkerId: w, OnboardDate: onboardDay}); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(40 * 24 * time.Hour)
	cpDay := today(e.clock.Now())
	if _, err := e.intake.RecordCheckpoint(ctx(t), &receivingv1.RecordCheckpointRequest{WorkerId: w,
		Checkpoint: &receivingv1.Checkpoint{CheckDate: cpDay, Months: 1, StillEmployed: true}}); err != nil {
		t.Fatal(err)
	}
	leftDay := today(e.clock.Now())
	if _, err := e.intake.RecordJobLeft(ctx(t), &receivingv1.RecordJobLeftRequest{WorkerId: w, LeftDate: leftDay, Reason: "回乡照顾家人"}); err != nil {
		t.Fatal(err)
	}
	trip1Name := "employmentRecords/" + w + "~" + b1.GetBatchId()
	trip1 := e.record(trip1Name)
	if trip1.GetName() != trip1Name || trip1.GetStatus() != receivingv1.EmploymentStatus_EMPLOYMENT_STATUS_LEFT_JOB ||
		len(trip1.GetCheckpoints()) != 1 || trip1.GetLeftDate() == nil || trip1.GetArrivalTime() == nil {
		t.Fatalf("trip 1 after leaving: %v", trip1)
	}

	// A batch announced, then cancelled: the earlier trip is the current one again.
	e.clock.Add(24 * time.Hour)
	v2 := e.createVacancy(goodVacancy(t))
	e.accept(e.submit(candidate(v2.GetName(), w))[0].GetName())
	cancelled := e.announceOne("520000-B00000002", w, v2.GetName(), false)
	if got := e.record("employmentRecords/" + w); got.GetBatchId() != cancelled.GetBatchId() {
		t.Fatalf("current trip after announcing batch 2: %v, want batch 2's", got)
	}
	if _, err := e.intake.CancelIntakeBatch(ctx(t), &receivingv1.CancelIntakeBatchRequest{BatchId: cancelled.GetBatchId(), SendingRegion: sending}); err != nil {
		t.Fatal(err)
	}
	if got := e.record("employmentRecords/" + w); !proto.Equal(got, trip1) {
		t.Fatalf("current trip after the cancellation: %v, want trip 1 %v", got, trip1)
	}
	_, err := e.intake.GetEmploymentRecord(ctx(t), &receivingv1.GetEmploymentRecordRequest{Name: "employmentRecords/" + w + "~" + cancelled.GetBatchId()})
	wantCode(t, err, codes.NotFound, "NOT_FOUND")

	// Trip 2: out again, arrives, onboarded.
	b3 := e.announceOne("520000-B00000003", w, v2.GetName(), true)
	e.clock.Add(20 * time.Hour)
	if _, err := e.intake.ConfirmArrivals(ctx(t), &receivingv1.ConfirmArrivalsRequest{Name: b3.GetName(),
		Confirmations: []*receivingv1.ArrivalConfirmation{{WorkerId: w, Outcome: outcomeArrived}}}); err != nil {
		t.Fatal(err)
	}
	onboard2, err := e.intake.RecordOnboarding(ctx(t), &receivingv1.RecordOnboardingRequest{WorkerId: w, OnboardDate: today(e.clock.Now())})
	if err != nil {
		t.Fatal(err)
	}
	trip2Name := "employmentRecords/" + w + "~" + b3.GetBatchId()
	if onboard2.GetRecord().GetName() != trip2Name || len(onboard2.GetRecord().GetCheckpoints()) != 0 {
		t.Fatalf("onboarding without a record name went to %v, want the current trip %s", onboard2.GetRecord(), trip2Name)
	}

	// A late fact of trip 1, named by its record, goes to trip 1 only.
	late := &receivingv1.Incident{IncidentDate: leftDay, IncidentKind: receivingv1.IncidentKind_INCIDENT_KIND_WAGE_DISPUTE}
	inc, err := e.intake.RecordIncident(ctx(t), &receivingv1.RecordIncidentRequest{WorkerId: w, Record: trip1Name, Incident: late})
	if err != nil || inc.GetRecord().GetName() != trip1Name {
		t.Fatalf("incident of trip 1 by its record name: %v, %v", inc, err)
	}
	trip1.Incidents = []*receivingv1.Incident{late}
	// Naming another worker's trip, or a malformed name, is refused.
	_, err = e.intake.RecordIncident(ctx(t), &receivingv1.RecordIncidentRequest{WorkerId: other, Record: trip1Name, Incident: late})
	if _, ok := violations(t, err)["record"]; !ok {
		t.Errorf("another worker's record: %v, want a violation on record", err)
	}
	for _, bad := range []string{"employmentRecords/" + w + "~", "employmentRecords/~" + b1.GetBatchId(), "employmentRecords/" + w + "~a~b"} {
		_, err = e.intake.GetEmploymentRecord(ctx(t), &receivingv1.GetEmploymentRecordRequest{Name: bad})
		if _, ok := violations(t, err)["name"]; !ok {
			t.Errorf("GetEmploymentRecord %q: %v, want a violation on name", bad, err)
		}
	}

	for _, phase := range []string{"before", "after"} {
		if phase == "after" {
			e.restart()
		}
		if got := e.record(trip1Name); !proto.Equal(got, trip1) {
			t.Errorf("%s a restart, trip 1 = %v\nwant %v", phase, got, trip1)
		}
		got2 := e.record(trip2Name)
		if got2.GetStatus() != receivingv1.EmploymentStatus_EMPLOYMENT_STATUS_EMPLOYED || got2.GetVacancy() != v2.GetName() ||
			len(got2.GetCheckpoints()) != 0 || got2.GetLeftDate() != nil || len(got2.GetIncidents()) != 0 {
			t.Errorf("%s a restart, trip 2 = %v", phase, got2)
		}
		if cur := e.record("employmentRecords/" + w); !proto.Equal(cur, got2) {
			t.Errorf("%s a restart, the current trip = %v, want trip 2", phase, cur)
		}
		var names []string
		for _, r := range e.workerRecords(w) {
			names = append(names, r.GetName())
		}
		if !slices.Equal(names, []string{trip1Name, trip2Name}) {
			t.Errorf("%s a restart, the worker's records are %v, want both trips", phase, names)
		}
	}
	// Every trip is listed without a filter too, the other worker's none (never announced).
	all, err := e.intake.ListEmploymentRecords(ctx(t), &receivingv1.ListEmploymentRecordsRequest{})
	if err != nil || len(all.GetRecords()) != 2 {
		t.Errorf("ListEmploymentRecords: %v, %v; want the two trips", all, err)
	}
	// A worker id or batch id holding the trip separator is refused at the announcement.
	_, err = e.intake.AnnounceBatch(ctx(t), &receivingv1.AnnounceBatchRequest{Batch: &receivingv1.IntakeBatch{
		BatchId: "520000-B~4", SendingRegion: sending, Mode: commonv1.TransportMode_TRANSPORT_MODE_BUS,
		DestinationCounty: workCounty, ExpectedArrivalTime: timestamppb.New(e.clock.Now()),
		Entries: []*receivingv1.IntakeEntry{{WorkerId: sending + "-a~b", Vacancy: v2.GetName()}},
	}})
	got := violations(t, err)
	if _, ok := got["batch.batch_id"]; !ok {
		t.Errorf("batch id with ~: violations %v", got)
	}
	if _, ok := got["batch.entries[0].worker_id"]; !ok {
		t.Errorf("worker id with ~: violations %v", got)
	}
}

// schemaV3 is the receiving schema as version 3 wrote it: without the index of trips.
var schemaV3 = store.Schema{Name: "receiving", Version: 3, Buckets: slices.DeleteFunc(slices.Clone(Schema.Buckets),
	func(b []byte) bool { return string(b) == "employmentTrips" })}

// A file of schema version 3 holds one employment record per worker under the worker id: it
// opens with version 4, each record is the trip of its batch, under its new name (and the bare
// worker name as the current trip), with every other field as it was, nothing is left under the
// old keys, and the service acts on the converted trip (a job left recorded by worker id).
func TestOpenVersion3FileKeepsRecordsAsTrips(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "receiving.db")
	olds := []*receivingv1.EmploymentRecord{
		{Name: "employmentRecords/520000-w1", WorkerId: "520000-w1", SendingRegion: sending, Vacancy: "vacancies/440000-V0000000001",
			BatchId: "520000-B00000001", RegisteredPoor: true, Status: receivingv1.EmploymentStatus_EMPLOYMENT_STATUS_EMPLOYED,
			ArrivalTime: timestamppb.New(time.Date(2025, 1, 10, 9, 0, 0, 0, time.UTC)), EmployerName: "深圳市南山电子装配有限公司",
			OnboardDate: date(2025, 1, 11), Checkpoints: []*receivingv1.Checkpoint{{CheckDate: date(2025, 2, 11), Months: 1, StillEmployed: true}}},
		{Name: "employmentRecords/520000-w2", WorkerId: "520000-w2", SendingRegion: sending, Vacancy: "vacancies/440000-V0000000001",
			BatchId: "520000-B00000002", Status: receivingv1.EmploymentStatus_EMPLOYMENT_STATUS_NO_SHOW},
	}
	old, err := store.Open(path, schemaV3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Update(func(tx *bbolt.Tx) error {
		for _, r := range olds {
			if err := store.PutProto(tx.Bucket([]byte("employment")), []byte(r.GetWorkerId()), r); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	e := envOn(t, path)
	for _, o := range olds {
		want := proto.Clone(o).(*receivingv1.EmploymentRecord)
		want.Name = "employmentRecords/" + o.GetWorkerId() + "~" + o.GetBatchId()
		for _, name := range []string{want.GetName(), o.GetName()} {
			if got := e.record(name); !proto.Equal(got, want) {
				t.Errorf("%s after the migration = %v\nwant %v", name, got, want)
			}
		}
		if got := e.workerRecords(o.GetWorkerId()); len(got) != 1 || !proto.Equal(got[0], want) {
			t.Errorf("records of %s after the migration: %v", o.GetWorkerId(), got)
		}
	}
	if err := e.db.View(func(tx *bbolt.Tx) error {
		for _, o := range olds {
			if tx.Bucket([]byte("employment")).Get([]byte(o.GetWorkerId())) != nil {
				t.Errorf("the record of %s is still under its version 3 key", o.GetWorkerId())
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	left, err := e.intake.RecordJobLeft(ctx(t), &receivingv1.RecordJobLeftRequest{WorkerId: "520000-w1", LeftDate: date(2025, 2, 20), Reason: "合同期满"})
	if err != nil || left.GetRecord().GetName() != "employmentRecords/520000-w1~520000-B00000001" ||
		left.GetRecord().GetStatus() != receivingv1.EmploymentStatus_EMPLOYMENT_STATUS_LEFT_JOB {
		t.Fatalf("RecordJobLeft on the converted trip: %v, %v", left, err)
	}
	e.restart() // version 4 now: opens without a migration
	if got := e.record("employmentRecords/520000-w1"); got.GetStatus() != receivingv1.EmploymentStatus_EMPLOYMENT_STATUS_LEFT_JOB {
		t.Errorf("after a restart: %v", got)
	}
}

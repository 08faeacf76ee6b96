package receiving

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/receiving/vacancies"
)

// schemaV1 is the receiving schema as version 1 wrote it: without the index of vacancy
// references.
var schemaV1 = store.Schema{Name: "receiving", Version: 1, Buckets: slices.DeleteFunc(slices.Clone(Schema.Buckets),
	func(b []byte) bool { return string(b) == "vacancyByReference" })}

// writeV1File writes a receiving file of schema version 1 at path, with fill's records in it.
func writeV1File(t *testing.T, path string, fill func(tx *bbolt.Tx) error) {
	t.Helper()
	old, err := store.Open(path, schemaV1, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Update(fill); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
}

// envOn starts a receiving service on the file at path.
func envOn(t *testing.T, path string) *env {
	t.Helper()
	start, err := time.Parse(time.RFC3339, testStartAt)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, path: path, clock: &clock{t: start}}
	e.cfg = Config{Region: region, Now: e.clock.Now}
	e.start()
	t.Cleanup(e.stop)
	return e
}

// withBool appends bool field num = v to the encoding of a message, as version 1 wrote it.
func withBool(b []byte, num protowire.Number, v bool) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, protowire.EncodeBool(v))
}

// A file of schema version 1 holds intake batches with the flags departed (12) and cancelled
// (13): it opens with version 2, each batch reads back in the state its flags said, with its
// other fields (the entries' own departed flags and outcomes, the cancel reason) as they were,
// the old fields are gone from the file, and the service acts on the state (a departed batch
// cannot be cancelled, a cancelled one takes no departure).
func TestOpenVersion1FileConvertsBatchFlagsToState(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "receiving.db")
	arrival := timestamppb.New(time.Date(2025, 3, 2, 8, 0, 0, 0, time.UTC))
	batch := func(id string) *receivingv1.IntakeBatch {
		return &receivingv1.IntakeBatch{
			Name: "intakeBatches/" + id, BatchId: id, SendingRegion: sending, Mode: commonv1.TransportMode_TRANSPORT_MODE_BUS,
			DestinationCounty: workCounty, ExpectedArrivalTime: arrival,
			Entries: []*receivingv1.IntakeEntry{
				{WorkerId: sending + "-w1", Vacancy: "vacancies/440000-V0000000001", Departed: true, Outcome: receivingv1.ArrivalOutcome_ARRIVAL_OUTCOME_ARRIVED},
				{WorkerId: sending + "-w2", Vacancy: "vacancies/440000-V0000000001"},
			},
		}
	}
	type old struct {
		id                  string
		departed, cancelled bool
		reason              string
		want                receivingv1.IntakeBatchState
	}
	olds := []old{
		{"520000-B00000001", false, false, "", receivingv1.IntakeBatchState_INTAKE_BATCH_STATE_ANNOUNCED},
		{"520000-B00000002", true, false, "", receivingv1.IntakeBatchState_INTAKE_BATCH_STATE_DEPARTED},
		{"520000-B00000003", false, true, "车辆故障", receivingv1.IntakeBatchState_INTAKE_BATCH_STATE_CANCELLED},
		// Version 1 wrote false flags too when a batch was decoded and stored again (never, but
		// the migration must not care).
		{"520000-B00000004", false, false, "", receivingv1.IntakeBatchState_INTAKE_BATCH_STATE_ANNOUNCED},
	}
	want := map[string]*receivingv1.IntakeBatch{}
	writeV1File(t, path, func(tx *bbolt.Tx) error {
		for i, o := range olds {
			b := batch(o.id)
			b.CancelReason = o.reason
			raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(b)
			if err != nil {
				return err
			}
			if o.departed || i == 3 {
				raw = withBool(raw, 12, o.departed)
			}
			if o.cancelled || i == 3 {
				raw = withBool(raw, 13, o.cancelled)
			}
			if err := tx.Bucket([]byte("intakeBatches")).Put([]byte(o.id), raw); err != nil {
				return err
			}
			b.State = o.want
			want[o.id] = b
		}
		return nil
	})

	e := envOn(t, path)
	for _, o := range olds {
		got, err := e.intake.GetIntakeBatch(ctx(t), &receivingv1.GetIntakeBatchRequest{Name: "intakeBatches/" + o.id})
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got.GetBatch(), want[o.id]) {
			t.Errorf("batch %s after the migration:\n%v\nwant\n%v", o.id, got.GetBatch(), want[o.id])
		}
		if len(got.GetBatch().ProtoReflect().GetUnknown()) != 0 {
			t.Errorf("batch %s keeps unknown fields %x", o.id, got.GetBatch().ProtoReflect().GetUnknown())
		}
	}
	if err := e.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("intakeBatches")).ForEach(func(k, v []byte) error {
			for len(v) > 0 {
				num, _, n := protowire.ConsumeField(v)
				if n < 0 {
					t.Fatalf("batch %s: bad encoding", k)
				}
				if num == 12 || num == 13 {
					t.Errorf("batch %s still holds old field %d on disk", k, num)
				}
				v = v[n:]
			}
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}

	// The service acts on the converted states.
	_, err := e.intake.CancelIntakeBatch(ctx(t), &receivingv1.CancelIntakeBatchRequest{BatchId: olds[1].id, SendingRegion: sending})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("cancelling the departed batch: %v, want FAILED_PRECONDITION", err)
	}
	_, err = e.intake.ReportBatchDeparture(ctx(t), &receivingv1.ReportBatchDepartureRequest{BatchId: olds[2].id, SendingRegion: sending})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("reporting the departure of the cancelled batch: %v, want FAILED_PRECONDITION", err)
	}
	dep, err := e.intake.ReportBatchDeparture(ctx(t), &receivingv1.ReportBatchDepartureRequest{BatchId: olds[0].id, SendingRegion: sending,
		BoardedWorkerIds: []string{sending + "-w2"}})
	if err != nil || dep.GetBatch().GetState() != receivingv1.IntakeBatchState_INTAKE_BATCH_STATE_DEPARTED {
		t.Errorf("reporting the departure of the announced batch: %v, %v", dep, err)
	}

	// Opened again, the file is version 2 and needs no migration.
	e.restart()
	got, err := e.intake.GetIntakeBatch(ctx(t), &receivingv1.GetIntakeBatchRequest{Name: "intakeBatches/" + olds[2].id})
	if err != nil || !proto.Equal(got.GetBatch(), want[olds[2].id]) {
		t.Errorf("cancelled batch after a restart: %v, %v", got, err)
	}
}

// A file of schema version 1 has vacancies (without references) and no index of references:
// it opens with version 2, the index exists, the old vacancy reads back as it was, and a vacancy
// created with a reference is then unique by it.
func TestOpenVersion1FileAddsReferenceIndex(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "receiving.db")
	old := goodVacancy(t)
	old.VacancyId, old.Name, old.Status, old.Revision = "440000-V0000009999", "vacancies/440000-V0000009999", receivingv1.VacancyStatus_VACANCY_STATUS_OPEN, 1
	writeV1File(t, path, func(tx *bbolt.Tx) error {
		if tx.Bucket([]byte("vacancyByReference")) != nil {
			t.Fatal("the version 1 file has the index already")
		}
		return store.PutProto(tx.Bucket([]byte("vacancies")), []byte(old.GetVacancyId()), old)
	})
	e := envOn(t, path)
	if err := e.db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket([]byte("vacancyByReference")) == nil {
			t.Error("no index of references after the migration")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	old.Etag = vacancies.Etag(old) // computed from the revision for a vacancy stored without one
	got, err := e.vac.GetVacancy(ctx(t), &receivingv1.GetVacancyRequest{Name: old.GetName()})
	if err != nil || !proto.Equal(got.GetVacancy(), old) {
		t.Fatalf("the version 1 vacancy after the migration: %v, %v; want %v", got, err, old)
	}
	v := goodVacancy(t)
	v.ExternalReference = "HR-1"
	e.createVacancy(v)
	_, err = e.vac.CreateVacancy(ctx(t), &receivingv1.CreateVacancyRequest{Vacancy: v})
	wantCode(t, err, codes.AlreadyExists, "ALREADY_EXISTS")
}

// withString appends string field num = v to the encoding of a message, as version 1 wrote it.
func withString(b []byte, num protowire.Number, v string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, v)
}

// A file of schema version 1 holds employment records whose incidents have a free-text kind
// (field 2): it opens with version 2, a known text becomes its IncidentKind, any other text
// OTHER with the text in detail, the dates and descriptions are kept, and the same incident
// recorded again in the new shape is recognised (no second ledger event).
func TestOpenVersion1FileConvertsIncidentKinds(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "receiving.db")
	worker := sending + "-w1"
	day := func(d int32) *commonv1.Date { return date(2025, 2, d) }
	olds := []struct {
		text, description string
		want              *receivingv1.Incident
	}{
		{"injury", "手指轻伤", &receivingv1.Incident{IncidentDate: day(10), Description: "手指轻伤", IncidentKind: receivingv1.IncidentKind_INCIDENT_KIND_INJURY}},
		{"Wage Dispute", "", &receivingv1.Incident{IncidentDate: day(11), IncidentKind: receivingv1.IncidentKind_INCIDENT_KIND_WAGE_DISPUTE}},
		{"工伤", "", &receivingv1.Incident{IncidentDate: day(12), IncidentKind: receivingv1.IncidentKind_INCIDENT_KIND_INJURY}},
		{"宿舍失火", "无人受伤", &receivingv1.Incident{IncidentDate: day(13), Description: "无人受伤", IncidentKind: receivingv1.IncidentKind_INCIDENT_KIND_OTHER, Detail: "宿舍失火"}},
	}
	rec := &receivingv1.EmploymentRecord{Name: "employmentRecords/" + worker, WorkerId: worker, SendingRegion: sending,
		Vacancy: "vacancies/440000-V0000000001", BatchId: "520000-B00000001", Status: receivingv1.EmploymentStatus_EMPLOYMENT_STATUS_EMPLOYED,
		EmployerName: "深圳市南山电子装配有限公司", OnboardDate: day(1)}
	want := proto.Clone(rec).(*receivingv1.EmploymentRecord)
	want.Name = "employmentRecords/" + worker + "~" + rec.GetBatchId() // version 4: a record per trip
	writeV1File(t, path, func(tx *bbolt.Tx) error {
		// The record without incidents, then each incident as version 1 wrote it (field 14).
		raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(rec)
		if err != nil {
			return err
		}
		for _, o := range olds {
			in := &receivingv1.Incident{IncidentDate: o.want.GetIncidentDate(), Description: o.description}
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(in)
			if err != nil {
				return err
			}
			b = withString(b, 2, o.text)
			raw = protowire.AppendTag(raw, 14, protowire.BytesType)
			raw = protowire.AppendBytes(raw, b)
			want.Incidents = append(want.Incidents, o.want)
		}
		return tx.Bucket([]byte("employment")).Put([]byte(worker), raw)
	})

	e := envOn(t, path)
	got, err := e.intake.GetEmploymentRecord(ctx(t), &receivingv1.GetEmploymentRecordRequest{Name: "employmentRecords/" + worker})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got.GetRecord(), want) {
		t.Fatalf("record after the migration:\n%v\nwant\n%v", got.GetRecord(), want)
	}
	for i, in := range got.GetRecord().GetIncidents() {
		if len(in.ProtoReflect().GetUnknown()) != 0 {
			t.Errorf("incident %d keeps unknown fields %x", i, in.ProtoReflect().GetUnknown())
		}
	}
	// The converted incident recorded again is the same incident: nothing new.
	again, err := e.intake.RecordIncident(ctx(t), &receivingv1.RecordIncidentRequest{WorkerId: worker, Incident: olds[3].want})
	if err != nil || len(again.GetRecord().GetIncidents()) != len(olds) {
		t.Fatalf("recording a converted incident again: %v, %v", again, err)
	}
}

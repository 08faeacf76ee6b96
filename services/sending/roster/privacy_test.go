package roster

import (
	"context"
	"strings"
	"testing"

	"go.etcd.io/bbolt"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/idnumber"
	"github.com/eastwest/labourlink/services/platform/privacy"
	"github.com/eastwest/labourlink/services/platform/store"
)

// fieldViolations returns the field -> description of an INVALID_ARGUMENT error.
func fieldViolations(t *testing.T, err error) map[string]string {
	t.Helper()
	st := wantCode(t, err, codes.InvalidArgument)
	out := map[string]string{}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, fv := range br.GetFieldViolations() {
				out[fv.GetField()] = fv.GetDescription()
			}
		}
	}
	return out
}

// otherID is a valid identity number that is not a generated row's.
var otherID = makeIDNumber("520102", fixedClock().AddDate(-30, 0, 0), 77)

// ChangeWorkerStatus takes no identity number or phone in its reason (the BASIC view shows the
// reason to read-only operators), and UpdateWorker takes a phone only as the phone.
func TestRosterRequestsRefusePersonalData(t *testing.T) {
	t.Parallel()
	env := startRoster(t, nil, "")
	ctx := context.Background()
	name := importOne(t, env, 0)
	tests := []struct {
		name  string
		call  func() error
		field string
		want  string
	}{
		{"identity number in a status reason", func() error {
			_, err := env.client.ChangeWorkerStatus(ctx, &sendingv1.ChangeWorkerStatusRequest{Name: name, Status: stWithdrawn, Reason: "身份证" + otherID + "本人申请"})
			return err
		}, "reason", privacy.IDNumberMessage},
		{"phone in a status reason", func() error {
			_, err := env.client.ChangeWorkerStatus(ctx, &sendingv1.ChangeWorkerStatusRequest{Name: name, Status: stWithdrawn, Reason: "call 13912345678"})
			return err
		}, "reason", privacy.PhoneMessage},
		{"phone in a name", func() error {
			_, err := env.client.UpdateWorker(ctx, &sendingv1.UpdateWorkerRequest{Worker: &sendingv1.Worker{Name: name, FullName: "王 13912345678"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"full_name"}}})
			return err
		}, "worker.full_name", privacy.PhoneMessage},
		{"identity number in a request id", func() error {
			_, err := env.client.DeleteWorker(ctx, &sendingv1.DeleteWorkerRequest{Name: name, RequestId: "del-" + otherID})
			return err
		}, "request_id", privacy.IDNumberMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			got := fieldViolations(t, err)
			if len(got) != 1 || got[tt.field] != tt.want {
				t.Fatalf("violations %v, want only %s: %q", got, tt.field, tt.want)
			}
			if strings.Contains(err.Error(), otherID) || strings.Contains(err.Error(), "13912345678") {
				t.Errorf("the error repeats the value: %v", err)
			}
		})
	}
	got, err := env.client.GetWorker(ctx, &sendingv1.GetWorkerRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if w := got.GetWorker(); w.GetStatus() != stAvailable || w.GetErased() {
		t.Errorf("refused requests changed the worker: %v", w)
	}
	// The phone itself, and a worker sent back as read (identity number included), are fine.
	_, err = env.client.UpdateWorker(ctx, &sendingv1.UpdateWorkerRequest{
		Worker:     &sendingv1.Worker{Name: name, Phone: "13912345678", IdNumber: genRow(0).GetIdNumber()},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"phone"}},
	})
	if err != nil {
		t.Errorf("UpdateWorker of the phone: %v", err)
	}
}

// Text stored before the guard existed may hold an identity number or a phone: the BASIC view
// masks it with the guard's rule; the FULL view, for the province's own operators, shows it.
func TestBasicViewMasksStoredFreeText(t *testing.T) {
	t.Parallel()
	env := startRoster(t, nil, "")
	ctx := context.Background()
	name := importOne(t, env, 1)
	id, _ := ParseWorkerName(name)
	const reason = "withdrawn: 身份证 %s, 电话 13912345678"
	stored := strings.Replace(reason, "%s", otherID, 1)
	if err := env.db.Update(func(tx *bbolt.Tx) error {
		w, err := Read(tx, id)
		if err != nil {
			return err
		}
		w.StatusReason = stored
		return putWorker(tx, w)
	}); err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(reason, "%s", idnumber.Mask(otherID), 1)
	want = strings.Replace(want, "13912345678", "139****5678", 1)
	basic, err := env.client.GetWorker(ctx, &sendingv1.GetWorkerRequest{Name: name, View: sendingv1.WorkerView_WORKER_VIEW_BASIC})
	if err != nil {
		t.Fatal(err)
	}
	if got := basic.GetWorker().GetStatusReason(); got != want {
		t.Errorf("BASIC status_reason %q, want %q", got, want)
	}
	list, err := env.client.ListWorkers(ctx, &sendingv1.ListWorkersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range list.GetWorkers() {
		if privacy.Find(w.GetStatusReason(), privacy.Any) != 0 || privacy.Find(w.GetFullName(), privacy.Any) != 0 {
			t.Errorf("ListWorkers shows personal data in free text: %q", w.GetStatusReason())
		}
	}
	full, err := env.client.GetWorker(ctx, &sendingv1.GetWorkerRequest{Name: name, View: sendingv1.WorkerView_WORKER_VIEW_FULL})
	if err != nil {
		t.Fatal(err)
	}
	if got := full.GetWorker().GetStatusReason(); got != stored {
		t.Errorf("FULL status_reason %q, want it as stored", got)
	}
}

// An import row with an identity number or a phone in a column that may not hold one is
// rejected, for that alone and without repeating the value; the other rows are kept.
func TestImportRejectsPersonalDataInOtherColumns(t *testing.T) {
	t.Parallel()
	env := startRoster(t, nil, "")
	rows := []*sendingv1.WorkerRow{genRow(0), genRow(1), genRow(2)}
	rows[1].Sex = otherID                   // the sex check would quote the value
	rows[2].HealthCheckDate = "13912345678" // the date check would quote the value
	resp, err := importRows(context.Background(), env.client, "imp-pd", rows, 10)
	if err != nil {
		t.Fatal(err)
	}
	s := resp.GetSummary()
	if s.GetCreated() != 1 || s.GetRejected() != 2 || len(s.GetRejections()) != 2 {
		t.Fatalf("summary %v, want 1 created and 2 rejected", s)
	}
	want := map[int64][2]string{
		rows[1].GetRowNumber(): {"sex", privacy.IDNumberMessage},
		rows[2].GetRowNumber(): {"health_check_date", privacy.PhoneMessage},
	}
	for _, rj := range s.GetRejections() {
		if w := want[rj.GetRowNumber()]; rj.GetField() != w[0] || rj.GetReason() != w[1] {
			t.Errorf("row %d rejected on %s: %q, want %v", rj.GetRowNumber(), rj.GetField(), rj.GetReason(), w)
		}
	}
}

// A rejection reason stored before the guard checked rows (here written directly) is masked
// when read back.
func TestStoredRejectionReasonsMasked(t *testing.T) {
	t.Parallel()
	env := startRoster(t, nil, "")
	ctx := context.Background()
	if _, err := importRows(ctx, env.client, "imp-old", []*sendingv1.WorkerRow{genRow(0)}, 1); err != nil {
		t.Fatal(err)
	}
	old := &commonv1.RowRejection{RowNumber: 9, Field: "sex", Reason: `"` + otherID + `" is not a sex`}
	if err := env.db.Update(func(tx *bbolt.Tx) error {
		return store.PutProto(tx.Bucket(BucketImportRejections), rejectionKey("imp-old", 9, 0), old)
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := env.client.ListImportRejections(ctx, &sendingv1.ListImportRejectionsRequest{ImportId: "imp-old"})
	if err != nil {
		t.Fatal(err)
	}
	want := `"` + idnumber.Mask(otherID) + `" is not a sex`
	if len(resp.GetRejections()) != 1 || resp.GetRejections()[0].GetReason() != want {
		t.Fatalf("rejections %v, want the reason %q", resp.GetRejections(), want)
	}
}

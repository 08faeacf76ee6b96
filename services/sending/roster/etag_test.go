package roster

import (
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
)

// TestUpdateWorkerEtag (AIP-154): two clients read the same version of a worker and both update
// it with the etag they read; the first update is made, the second is ABORTED with
// ETAG_MISMATCH and the worker holds the first change. The etag is the same while the worker
// does not change, another after any change (an update, a status change, an import row); an
// update without etag overwrites, as before etags; ChangeWorkerStatus checks an etag the same way.
func TestUpdateWorkerEtag(t *testing.T) {
	t.Parallel()
	env := startRoster(t, nil, "")
	ctx := t.Context()
	rows := []*sendingv1.WorkerRow{genRow(0), genRow(1)}
	if _, err := importRows(ctx, env.client, "etag", rows, 10); err != nil {
		t.Fatal(err)
	}
	roster, _ := rosterSnapshot(t, env.db)
	name := roster[rows[0].IdNumber].GetName()
	get := func() *sendingv1.Worker {
		t.Helper()
		resp, err := env.client.GetWorker(ctx, &sendingv1.GetWorkerRequest{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetWorker()
	}
	wantMismatch := func(err error) {
		t.Helper()
		st := wantCode(t, err, codes.Aborted)
		for _, d := range st.Details() {
			if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == apierror.Reason(commonv1.ErrorReason_ERROR_REASON_ETAG_MISMATCH) {
				return
			}
		}
		t.Fatalf("error %v has no ErrorInfo with reason ETAG_MISMATCH", err)
	}
	nameMask := &fieldmaskpb.FieldMask{Paths: []string{"full_name"}}

	// Two clients read the same version.
	a, b := get(), get()
	if a.GetEtag() == "" || a.GetEtag() != b.GetEtag() {
		t.Fatalf("etags of two reads of an unchanged worker: %q and %q, want the same, not empty", a.GetEtag(), b.GetEtag())
	}
	first, err := env.client.UpdateWorker(ctx, &sendingv1.UpdateWorkerRequest{
		Worker: &sendingv1.Worker{Name: name, FullName: "张甲", Etag: a.GetEtag()}, UpdateMask: nameMask})
	if err != nil {
		t.Fatal(err)
	}
	if first.GetWorker().GetEtag() == a.GetEtag() || first.GetWorker().GetEtag() == "" {
		t.Fatalf("etag after the update %q, want a new one (was %q)", first.GetWorker().GetEtag(), a.GetEtag())
	}
	_, err = env.client.UpdateWorker(ctx, &sendingv1.UpdateWorkerRequest{
		Worker: &sendingv1.Worker{Name: name, FullName: "李乙", Etag: b.GetEtag()}, UpdateMask: nameMask})
	wantMismatch(err)
	now := get()
	if now.GetFullName() != "张甲" || now.GetEtag() != first.GetWorker().GetEtag() {
		t.Fatalf("worker after the refused update: name %q etag %q, want the first change (张甲, %q)", now.GetFullName(), now.GetEtag(), first.GetWorker().GetEtag())
	}

	// Without an etag the update overwrites whatever version it is.
	over, err := env.client.UpdateWorker(ctx, &sendingv1.UpdateWorkerRequest{
		Worker: &sendingv1.Worker{Name: name, FullName: "李乙"}, UpdateMask: nameMask})
	if err != nil || over.GetWorker().GetFullName() != "李乙" {
		t.Fatalf("update without etag: %v, %v", over, err)
	}

	// A status change gives a new etag; ChangeWorkerStatus checks the etag it is given.
	read := get()
	moved, err := env.client.ChangeWorkerStatus(ctx, &sendingv1.ChangeWorkerStatusRequest{
		Name: name, Status: sendingv1.WorkerStatus_WORKER_STATUS_WITHDRAWN, Etag: read.GetEtag()})
	if err != nil {
		t.Fatal(err)
	}
	if moved.GetWorker().GetEtag() == read.GetEtag() {
		t.Fatalf("etag after a status change unchanged: %q", read.GetEtag())
	}
	_, err = env.client.ChangeWorkerStatus(ctx, &sendingv1.ChangeWorkerStatusRequest{
		Name: name, Status: sendingv1.WorkerStatus_WORKER_STATUS_AVAILABLE, Etag: read.GetEtag()})
	wantMismatch(err)
	if got := get(); got.GetStatus() != sendingv1.WorkerStatus_WORKER_STATUS_WITHDRAWN {
		t.Fatalf("status after the refused change %s, want WITHDRAWN", got.GetStatus())
	}

	// An import row that changes the worker gives a new etag; one that changes nothing keeps it.
	before := get().GetEtag()
	same := []*sendingv1.WorkerRow{genRow(1)}
	if _, err := importRows(ctx, env.client, "etag-same", same, 10); err != nil {
		t.Fatal(err)
	}
	if got := get().GetEtag(); got != before {
		t.Fatalf("etag after an import that did not touch the worker %q, want %q", got, before)
	}
	changed := genRow(0)
	changed.FullName = "王丙"
	if _, err := importRows(ctx, env.client, "etag-row", []*sendingv1.WorkerRow{changed}, 10); err != nil {
		t.Fatal(err)
	}
	if got := get(); got.GetFullName() != "王丙" || got.GetEtag() == before {
		t.Fatalf("after an import row that changed the worker: name %q etag %q (was %q)", got.GetFullName(), got.GetEtag(), before)
	}
}

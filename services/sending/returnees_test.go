package sending

import (
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending/roster"
)

const (
	kindWorkshop = sendingv1.LocalEmployerKind_LOCAL_EMPLOYER_KIND_POVERTY_ALLEVIATION_WORKSHOP
	kindPost     = sendingv1.LocalEmployerKind_LOCAL_EMPLOYER_KIND_PUBLIC_WELFARE_POST
	kindLeading  = sendingv1.LocalEmployerKind_LOCAL_EMPLOYER_KIND_LEADING_ENTERPRISE
)

// homeCounty is a county of the tests' sending province.
var homeCounty = testCounties[0]

// TestLocalTakeOver: local employers take returnees up to their capacity and only once they
// have resumed work; a placement ends with the status change out of PLACED_LOCALLY and frees its
// place; the summary counts employers, resumed ones, places and placements by kind; all of it
// survives a restart.
func TestLocalTakeOver(t *testing.T) {
	t.Parallel()
	n := startSending(t, "", Config{Region: rosterRegion}, false)
	ctx := testCtx(t)
	rs := func() sendingv1.ReturneeServiceClient { return sendingv1.NewReturneeServiceClient(n.conn) }

	// Refused registrations name the field.
	for _, tt := range []struct {
		e     *sendingv1.LocalEmployer
		field string
	}{
		{&sendingv1.LocalEmployer{DisplayName: "车间", Kind: kindWorkshop, County: "440106", Capacity: 2}, "local_employer.county"},
		{&sendingv1.LocalEmployer{DisplayName: "车间", County: homeCounty, Capacity: 2}, "local_employer.kind"},
		{&sendingv1.LocalEmployer{DisplayName: "车间", Kind: kindWorkshop, County: homeCounty}, "local_employer.capacity"},
		{&sendingv1.LocalEmployer{Kind: kindWorkshop, County: homeCounty, Capacity: 2}, "local_employer.display_name"},
	} {
		_, err := rs().CreateLocalEmployer(ctx, &sendingv1.CreateLocalEmployerRequest{LocalEmployer: tt.e})
		if _, ok := fieldViolations(t, err)[tt.field]; !ok {
			t.Errorf("create %v: %v, want a violation on %s", tt.e, err, tt.field)
		}
	}
	create := func(name string, kind sendingv1.LocalEmployerKind, capacity int32, resumed bool) *sendingv1.LocalEmployer {
		t.Helper()
		resp, err := rs().CreateLocalEmployer(ctx, &sendingv1.CreateLocalEmployerRequest{RequestId: "create-" + name,
			LocalEmployer: &sendingv1.LocalEmployer{DisplayName: name, Kind: kind, County: homeCounty, Capacity: capacity, Resumed: resumed}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetLocalEmployer()
	}
	workshop := create("花江镇扶贫车间", kindWorkshop, 2, true)
	post := create("公益性岗位（护林员）", kindPost, 1, false)
	create("县茶叶龙头企业", kindLeading, 5, true)
	if workshop.GetLocalEmployerId() != rosterRegion+"-L00000001" || workshop.GetName() != "localEmployers/"+workshop.GetLocalEmployerId() {
		t.Fatalf("first employer = %v", workshop)
	}

	rows := make([]*sendingv1.WorkerRow, 4)
	for i := range rows {
		rows[i] = testWorkerRow(i, homeCounty, "8212", true)
	}
	ws := n.importWorkers(rows)
	place := func(w *sendingv1.Worker, e *sendingv1.LocalEmployer, reqID string) (*sendingv1.PlaceWorkerLocallyResponse, error) {
		return rs().PlaceWorkerLocally(ctx, &sendingv1.PlaceWorkerLocallyRequest{Worker: w.GetName(), LocalEmployer: e.GetName(), RequestId: reqID})
	}
	first, err := place(ws[0], workshop, "place-0")
	if err != nil {
		t.Fatal(err)
	}
	today := civil.Today(time.Now())
	if w := first.GetWorker(); w.GetStatus() != sendingv1.WorkerStatus_WORKER_STATUS_PLACED_LOCALLY || len(w.GetLocalPlacements()) != 1 ||
		!proto.Equal(w.GetLocalPlacements()[0], &sendingv1.LocalPlacement{LocalEmployer: workshop.GetName(), Kind: kindWorkshop, StartDate: today}) ||
		first.GetLocalEmployer().GetPlaced() != 1 {
		t.Fatalf("first placement = %v", first)
	}
	again, err := place(ws[0], workshop, "place-0")
	if err != nil || !proto.Equal(again, first) {
		t.Fatalf("retry: %v, %v; want the first answer", again, err)
	}
	if _, err := place(ws[1], workshop, "place-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := place(ws[2], workshop, "place-2"); !hasCode(err, codes.FailedPrecondition) || errorInfo(err).GetReason() != "LOCAL_EMPLOYER_FULL" {
		t.Fatalf("third worker in a workshop of 2: %v, want LOCAL_EMPLOYER_FULL", err)
	}
	if _, err := place(ws[2], post, "place-2b"); !hasCode(err, codes.FailedPrecondition) || errorInfo(err).GetReason() != "LOCAL_EMPLOYER_NOT_RESUMED" {
		t.Fatalf("worker at a post not resumed: %v, want LOCAL_EMPLOYER_NOT_RESUMED", err)
	}
	if _, err := rs().UpdateLocalEmployer(ctx, &sendingv1.UpdateLocalEmployerRequest{
		LocalEmployer: &sendingv1.LocalEmployer{Name: post.GetName(), Resumed: true, Etag: "stale"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"resumed"}},
	}); !hasCode(err, codes.Aborted) {
		t.Fatalf("update with a stale etag: %v, want ABORTED", err)
	}
	up, err := rs().UpdateLocalEmployer(ctx, &sendingv1.UpdateLocalEmployerRequest{
		LocalEmployer: &sendingv1.LocalEmployer{Name: post.GetName(), Resumed: true, Etag: post.GetEtag()}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"resumed"}},
	})
	if err != nil || !up.GetLocalEmployer().GetResumed() || up.GetLocalEmployer().GetCapacity() != 1 {
		t.Fatalf("resume the post: %v, %v", up, err)
	}
	if _, err := place(ws[2], post, "place-2c"); err != nil {
		t.Fatal(err)
	}
	if _, err := rs().UpdateLocalEmployer(ctx, &sendingv1.UpdateLocalEmployerRequest{
		LocalEmployer: &sendingv1.LocalEmployer{Name: workshop.GetName(), Capacity: 1}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"capacity"}},
	}); !hasCode(err, codes.FailedPrecondition) {
		t.Fatalf("capacity below the workers placed: %v, want FAILED_PRECONDITION", err)
	}
	if _, err := rs().UpdateLocalEmployer(ctx, &sendingv1.UpdateLocalEmployerRequest{
		LocalEmployer: &sendingv1.LocalEmployer{Name: workshop.GetName(), Kind: kindPost}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"kind"}},
	}); len(fieldViolations(t, err)) == 0 {
		t.Fatalf("changing the kind: %v, want INVALID_ARGUMENT", err)
	}
	if _, err := n.roster.ChangeWorkerStatus(ctx, &sendingv1.ChangeWorkerStatusRequest{Name: ws[3].GetName(), Status: sendingv1.WorkerStatus_WORKER_STATUS_PLACED_LOCALLY}); len(fieldViolations(t, err)) == 0 {
		t.Fatalf("PLACED_LOCALLY by hand: %v, want INVALID_ARGUMENT on status", err)
	}

	summary := func() *sendingv1.GetLocalEmploymentSummaryResponse {
		t.Helper()
		resp, err := rs().GetLocalEmploymentSummary(ctx, &sendingv1.GetLocalEmploymentSummaryRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	want := &sendingv1.GetLocalEmploymentSummaryResponse{
		ByKind: []*sendingv1.LocalEmploymentCount{
			{Kind: kindWorkshop, Registered: 1, Resumed: 1, Capacity: 2, Placed: 2},
			{Kind: kindLeading, Registered: 1, Resumed: 1, Capacity: 5, Placed: 0},
			{Kind: kindPost, Registered: 1, Resumed: 1, Capacity: 1, Placed: 1},
		},
		Total: &sendingv1.LocalEmploymentCount{Registered: 3, Resumed: 3, Capacity: 8, Placed: 3},
	}
	if got := summary(); !proto.Equal(got, want) {
		t.Fatalf("summary = %v, want %v", got, want)
	}

	// Leaving the placement frees its place; the placement keeps its end date.
	if _, err := n.roster.ChangeWorkerStatus(ctx, &sendingv1.ChangeWorkerStatusRequest{Name: ws[0].GetName(), Status: stAvailable}); err != nil {
		t.Fatal(err)
	}
	if p := n.worker(ws[0].GetWorkerId()).GetLocalPlacements(); len(p) != 1 || !proto.Equal(p[0].GetEndDate(), today) {
		t.Fatalf("placements after leaving = %v, want one ended today", p)
	}
	if _, err := place(ws[3], workshop, "place-3"); err != nil {
		t.Fatalf("the freed place: %v", err)
	}

	// All of it is on disk.
	n.restart(false)
	got, err := rs().GetLocalEmployer(ctx, &sendingv1.GetLocalEmployerRequest{Name: workshop.GetName()})
	if err != nil || got.GetLocalEmployer().GetPlaced() != 2 || got.GetLocalEmployer().GetDisplayName() != "花江镇扶贫车间" {
		t.Fatalf("workshop after a restart: %v, %v", got, err)
	}
	if s := summary(); s.GetTotal().GetPlaced() != 3 {
		t.Fatalf("placed after a restart = %d, want 3", s.GetTotal().GetPlaced())
	}
	list, err := rs().ListLocalEmployers(ctx, &sendingv1.ListLocalEmployersRequest{Kind: kindPost})
	if err != nil || len(list.GetLocalEmployers()) != 1 || list.GetLocalEmployers()[0].GetPlaced() != 1 {
		t.Fatalf("list of posts: %v, %v", list, err)
	}
}

// A returnee's local placement cannot start before the day the worker came home.
func TestLocalPlacementStartsAfterTheReturn(t *testing.T) {
	t.Parallel()
	n := startSending(t, "", Config{Region: rosterRegion}, false)
	ctx := testCtx(t)
	rs := sendingv1.NewReturneeServiceClient(n.conn)
	e, err := rs.CreateLocalEmployer(ctx, &sendingv1.CreateLocalEmployerRequest{LocalEmployer: &sendingv1.LocalEmployer{
		DisplayName: "扶贫车间", Kind: kindWorkshop, County: homeCounty, Capacity: 3, Resumed: true}})
	if err != nil {
		t.Fatal(err)
	}
	const id = "520000-AAAAAAAAAAAAAAAA"
	back := time.Now().AddDate(0, 0, -10)
	err = n.db.Update(func(tx *bbolt.Tx) error {
		return store.PutProto(tx.Bucket(roster.BucketWorkers), []byte(id), &sendingv1.Worker{WorkerId: id, Status: sendingv1.WorkerStatus_WORKER_STATUS_RETURNED_HOME,
			Trips: []*sendingv1.Trip{{BatchId: "520000-B00000001", ReceivingRegion: "440000", DepartureTime: timestamppb.New(back.AddDate(0, -5, 0)), ReturnTime: timestamppb.New(back)}}})
	})
	if err != nil {
		t.Fatal(err)
	}
	req := &sendingv1.PlaceWorkerLocallyRequest{Worker: "workers/" + id, LocalEmployer: e.GetLocalEmployer().GetName(), StartDate: civil.Today(back.AddDate(0, 0, -1))}
	if _, err := rs.PlaceWorkerLocally(ctx, req); fieldViolations(t, err)["start_date"] == "" {
		t.Fatal("a placement starting before the return was not refused on start_date")
	}
	req.StartDate = civil.Today(back)
	resp, err := rs.PlaceWorkerLocally(ctx, req)
	if err != nil || resp.GetWorker().GetStatus() != sendingv1.WorkerStatus_WORKER_STATUS_PLACED_LOCALLY {
		t.Fatalf("placement on the day of the return: %v, %v", resp, err)
	}
	if p := resp.GetWorker().GetLocalPlacements(); len(p) != 1 || p[0].GetKind() != kindWorkshop || !proto.Equal(p[0].GetStartDate(), civil.Today(back)) {
		t.Fatalf("placement = %v", p)
	}
}

package sending

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/platform/apierror"
)

// scriptedEmployment is a receiving province that serves only the employment feed: every
// watch sends the changes the test has scripted after the watch's after_revision, then a
// caught-up notice, then what the test adds.
type scriptedEmployment struct {
	receivingv1.UnimplementedEmploymentFeedServiceServer
	mu      sync.Mutex
	changes []*receivingv1.EmploymentChange // revision i+1 at index i
	afters  []int64                         // after_revision of every watch
	wake    chan struct{}
}

func (f *scriptedEmployment) add(cs ...*receivingv1.EmploymentChange) {
	f.mu.Lock()
	for _, c := range cs {
		c.Revision = int64(len(f.changes) + 1)
		f.changes = append(f.changes, c)
	}
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// replace replaces the feed by cs, as a receiving service whose data was replaced.
func (f *scriptedEmployment) replace(cs ...*receivingv1.EmploymentChange) {
	f.mu.Lock()
	f.changes = nil
	f.mu.Unlock()
	f.add(cs...)
}

func (f *scriptedEmployment) watches() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int64(nil), f.afters...)
}

func (f *scriptedEmployment) WatchEmployment(req *receivingv1.WatchEmploymentRequest, stream receivingv1.EmploymentFeedService_WatchEmploymentServer) error {
	f.mu.Lock()
	f.afters = append(f.afters, req.GetAfterRevision())
	f.mu.Unlock()
	next := req.GetAfterRevision()
	f.mu.Lock()
	head := int64(len(f.changes))
	f.mu.Unlock()
	if next > head {
		return apierror.Status(apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_REVISION_AHEAD, "revision %d is ahead of the feed (%d)", next, head)).Err()
	}
	for {
		f.mu.Lock()
		pending := append([]*receivingv1.EmploymentChange(nil), f.changes[min(next, int64(len(f.changes))):]...)
		head := int64(len(f.changes))
		f.mu.Unlock()
		for _, c := range pending {
			if err := stream.Send(&receivingv1.WatchEmploymentResponse{HeadRevision: head, Event: &receivingv1.WatchEmploymentResponse_Change{Change: c}}); err != nil {
				return err
			}
			next = c.GetRevision()
		}
		if err := stream.Send(&receivingv1.WatchEmploymentResponse{HeadRevision: head, Event: &receivingv1.WatchEmploymentResponse_Progress{Progress: &receivingv1.FeedProgress{CaughtUp: true}}}); err != nil {
			return err
		}
		select {
		case <-stream.Context().Done():
			return stream.Context().Err()
		case <-f.wake:
		}
	}
}

// scriptFeed restarts n following a scripted employment feed, which it returns, in place of its
// receiving province.
func scriptFeed(t *testing.T, n *sendNode) *scriptedEmployment {
	t.Helper()
	src := &scriptedEmployment{wake: make(chan struct{}, 1)}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	receivingv1.RegisterEmploymentFeedServiceServer(gs, src)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	n.stop()
	n.cfg.Receiving = map[string]string{flowReceiving: lis.Addr().String()}
	n.start(true)
	return src
}

// factOf returns a maker of employment changes of batch b.
func factOf(b *sendingv1.Batch) func(kind receivingv1.EmploymentChangeKind, worker string, at time.Time) *receivingv1.EmploymentChange {
	return func(kind receivingv1.EmploymentChangeKind, worker string, at time.Time) *receivingv1.EmploymentChange {
		return &receivingv1.EmploymentChange{Kind: kind, WorkerId: worker, BatchId: b.GetBatchId(),
			Record: "employmentRecords/" + worker + "~" + b.GetBatchId(), Vacancy: b.GetManifest()[0].GetVacancy(),
			EmployerName: "深圳市南山电子有限公司", WorkCounty: flowCounty, OccurTime: timestamppb.New(at)}
	}
}

// The whole point of the employment feed: the sending roster follows every worker without a
// hand-made status change. Two workers depart (transport); the receiving province's feed then
// reports ARRIVED and ONBOARDED for one (EMPLOYED), the sending service restarts and resumes
// after the stored position, the feed reports a checkpoint at 3 months and the leaving of the
// job (LEFT_JOB, every fact on the trip), and a no-show for the other, who stays DEPARTED with
// the trip marked, and so is on no new plan.
func TestRosterFollowsTheEmploymentFeed(t *testing.T) {
	r := startReceiving(t)
	r.createVacancy(testVacancy(t, 1, flowCounty, "8212", 2))
	clock := &testClock{t: time.Now()}
	cfg := fastConfig(r.addr)
	cfg.Now = clock.now
	n := startSending(t, "", cfg, true)
	rows := []*sendingv1.WorkerRow{testWorkerRow(0, testCounties[0], "8212", true), testWorkerRow(1, testCounties[1], "8212", false)}
	ctx := testCtx(t)
	left := time.Date(2027, 2, 27, 8, 5, 0, 0, civil.Zone)
	b := departAll(t, r, n, clock, rows, left)
	a, c := b.GetManifest()[0].GetWorkerId(), b.GetManifest()[1].GetWorkerId()

	// From here on the receiving province is one that serves the employment feed.
	src := scriptFeed(t, n)
	fact := factOf(b)
	arrived := left.Add(30 * time.Hour)
	onboard := time.Date(2027, 3, 1, 0, 0, 0, 0, civil.Zone)
	statusIs := func(worker string, want sendingv1.WorkerStatus) func() (bool, string) {
		return func() (bool, string) {
			got := n.worker(worker).GetStatus()
			return got == want, got.String()
		}
	}
	src.add(fact(receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_ARRIVED, a, arrived),
		fact(receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_ONBOARDED, a, onboard))
	eventually(t, "the worker employed", statusIs(a, stEmployed))

	// A restart mid-way: the follower resumes after revision 2.
	eventually(t, "position 2 stored", func() (bool, string) {
		p, err := n.followPosition(ctx)
		return err == nil && p.GetEmploymentRevision() == 2, fmt.Sprint(p, err)
	})
	n.restart(true)
	eventually(t, "a watch after the restart", func() (bool, string) { w := src.watches(); return len(w) >= 2, fmt.Sprint(w) })
	if w := src.watches(); w[len(w)-1] != 2 {
		t.Errorf("the watch after the restart asked after revision %d, want 2", w[len(w)-1])
	}

	cp := fact(receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_CHECKPOINT, a, onboard.AddDate(0, 3, 0))
	cp.Detail = &receivingv1.EmploymentChange_Checkpoint{Checkpoint: &receivingv1.EmploymentCheckpointDetail{Months: 3, StillEmployed: true}}
	lj := fact(receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_LEFT_JOB, a, onboard.AddDate(0, 4, 0))
	lj.Detail = &receivingv1.EmploymentChange_LeftJob{LeftJob: &receivingv1.LeftJobDetail{Reason: "合同期满"}}
	src.add(cp, fact(receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_NO_SHOW, c, arrived), lj)
	eventually(t, "the worker left the job", statusIs(a, sendingv1.WorkerStatus_WORKER_STATUS_LEFT_JOB))
	eventually(t, "position 5", func() (bool, string) {
		p, err := n.followPosition(ctx)
		return err == nil && p.GetEmploymentRevision() == 5, fmt.Sprint(p, err)
	})

	trip := n.worker(a).GetTrips()
	if len(trip) != 1 {
		t.Fatalf("trips of %s: %v, want one", a, trip)
	}
	tr := trip[0]
	if !tr.GetArrivalTime().AsTime().Equal(arrived) || civil.Format(tr.GetOnboardDate()) != "2027-03-01" ||
		len(tr.GetCheckpoints()) != 1 || tr.GetCheckpoints()[0].GetMonths() != 3 || !tr.GetCheckpoints()[0].GetStillEmployed() ||
		civil.Format(tr.GetLeftJobDate()) != "2027-07-01" || tr.GetLeftJobReason() != "合同期满" ||
		tr.GetEmployerName() != "深圳市南山电子有限公司" || tr.GetWorkCounty() != flowCounty || tr.GetNoShow() {
		t.Errorf("trip of %s: %v", a, tr)
	}
	other := n.worker(c)
	if other.GetStatus() != stDeparted || len(other.GetTrips()) != 1 || !other.GetTrips()[0].GetNoShow() {
		t.Errorf("the no-show %s: %s, trips %v; want DEPARTED, the trip marked", c, other.GetStatus(), other.GetTrips())
	}
	again, err := n.transport.PlanBatches(ctx, &sendingv1.PlanBatchesRequest{RequestId: "plan-2"})
	if err == nil && len(again.GetBatches()) != 0 {
		t.Errorf("a new plan after the no-show: %v, want no batch", again.GetBatches())
	}
}

// A receiving service whose data was replaced (its feed now shorter than our position:
// REVISION_AHEAD) is followed again from revision 0: the facts delivered again change nothing,
// the incidents among them are not counted twice, and the position ends at the new head.
func TestReplacedEmploymentFeedReplaysWithoutDoubleCounting(t *testing.T) {
	r, n, clock := startFlow(t, 1)
	ctx := testCtx(t)
	left := time.Date(2027, 2, 27, 8, 5, 0, 0, civil.Zone)
	b := departAll(t, r, n, clock, []*sendingv1.WorkerRow{testWorkerRow(0, testCounties[0], "8212", true)}, left)
	a := b.GetManifest()[0].GetWorkerId()
	src := scriptFeed(t, n)
	fact := factOf(b)
	incident := func(day int, kind receivingv1.IncidentKind) *receivingv1.EmploymentChange {
		c := fact(receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_INCIDENT, a, time.Date(2027, 3, day, 0, 0, 0, 0, civil.Zone))
		c.Detail = &receivingv1.EmploymentChange_Incident{Incident: &receivingv1.IncidentDetail{IncidentKind: kind}}
		return c
	}
	arrived := fact(receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_ARRIVED, a, left.Add(30*time.Hour))
	onboarded := fact(receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_ONBOARDED, a, time.Date(2027, 3, 1, 0, 0, 0, 0, civil.Zone))
	src.add(arrived, onboarded, incident(10, receivingv1.IncidentKind_INCIDENT_KIND_INJURY), incident(12, receivingv1.IncidentKind_INCIDENT_KIND_WAGE_DISPUTE))
	position := func(want int64) func() (bool, string) {
		return func() (bool, string) {
			p, err := n.followPosition(ctx)
			return err == nil && p.GetEmploymentRevision() == want, fmt.Sprint(p, err)
		}
	}
	eventually(t, "position 4", position(4))
	want := n.worker(a)
	if want.GetStatus() != stEmployed || len(want.GetTrips()) != 1 || want.GetTrips()[0].GetIncidents() != 2 {
		t.Fatalf("after the feed: %s, trips %v; want EMPLOYED with 2 incidents", want.GetStatus(), want.GetTrips())
	}

	// The receiving data replaced: the same facts, fewer of them, in another order.
	src.replace(incident(10, receivingv1.IncidentKind_INCIDENT_KIND_INJURY), arrived, onboarded)
	n.restart(true)
	eventually(t, "a watch from the start", func() (bool, string) { w := src.watches(); return w[len(w)-1] == 0, fmt.Sprint(w) })
	eventually(t, "position 3 of the new feed", position(3))
	got := n.worker(a)
	if got.GetStatus() != stEmployed || !tripsEqual(got.GetTrips(), want.GetTrips()) {
		t.Errorf("after the replay: %s, trips %v;\nwant %s, trips %v", got.GetStatus(), got.GetTrips(), want.GetStatus(), want.GetTrips())
	}
}

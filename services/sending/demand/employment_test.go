package demand

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/devtools/wait"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/store"
)

// employmentSource is an EmploymentFeedService whose watch sends what the test puts in msgs and
// nothing else; a watch asked for revisions after less than compacted (when set) is refused
// with REVISION_COMPACTED, as the receiving service does.
type employmentSource struct {
	receivingv1.UnimplementedEmploymentFeedServiceServer
	msgs      chan *receivingv1.WatchEmploymentResponse
	mu        sync.Mutex
	afters    []int64 // after_revision of every watch opened
	compacted int64
}

func (f *employmentSource) watches() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int64(nil), f.afters...)
}

func (f *employmentSource) WatchEmployment(req *receivingv1.WatchEmploymentRequest, stream receivingv1.EmploymentFeedService_WatchEmploymentServer) error {
	f.mu.Lock()
	f.afters = append(f.afters, req.GetAfterRevision())
	compacted := f.compacted
	f.mu.Unlock()
	if req.GetAfterRevision() < compacted {
		return apierror.Status(apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_REVISION_COMPACTED,
			"compacted").WithMetadata("compacted_revision", strconv.FormatInt(compacted, 10))).Err()
	}
	return sendAll(stream, f.msgs)
}

// serveFake serves what register registers on a real listener and returns a connection to it.
func serveFake(t *testing.T, register func(gs *grpc.Server)) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	register(gs)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// serveEmployment serves src (nil: no employment feed) and returns a client of it.
func serveEmployment(t *testing.T, src receivingv1.EmploymentFeedServiceServer) receivingv1.EmploymentFeedServiceClient {
	t.Helper()
	return receivingv1.NewEmploymentFeedServiceClient(serveFake(t, func(gs *grpc.Server) {
		if src != nil {
			receivingv1.RegisterEmploymentFeedServiceServer(gs, src)
		}
	}))
}

func employmentChange(rev, head int64, kind receivingv1.EmploymentChangeKind) *receivingv1.WatchEmploymentResponse {
	return &receivingv1.WatchEmploymentResponse{HeadRevision: head, Event: &receivingv1.WatchEmploymentResponse_Change{Change: &receivingv1.EmploymentChange{
		Revision: rev, Kind: kind, WorkerId: fmt.Sprintf("520000-W%08d", rev), BatchId: "520000-B0001",
	}}}
}

func employmentCaughtUp(head int64) *receivingv1.WatchEmploymentResponse {
	return &receivingv1.WatchEmploymentResponse{HeadRevision: head, Event: &receivingv1.WatchEmploymentResponse_Progress{Progress: &receivingv1.FeedProgress{CaughtUp: true}}}
}

// employmentFollower is a follower of one province's employment feed over the data file at
// path, recording the revisions it hands to ApplyEmployment; stop ends it (a process stopping).
type employmentFollower struct {
	s       *Service
	mu      sync.Mutex
	applied []int64
	stop    func()
}

func (f *employmentFollower) revisions() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int64(nil), f.applied...)
}

func followEmployment(t *testing.T, path string, client receivingv1.EmploymentFeedServiceClient) *employmentFollower {
	t.Helper()
	db, err := store.Open(path, store.Schema{Name: "sending", Version: 2, Buckets: append(Buckets(), store.BucketCounters)}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	f := &employmentFollower{}
	f.s = New(db, zaptest.NewLogger(t), Config{Region: "520000", FeedSilence: time.Hour,
		ApplyEmployment: func(_ *bbolt.Tx, _ string, c *receivingv1.EmploymentChange) (bool, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.applied = append(f.applied, c.GetRevision())
			return c.GetWorkerId() != "520000-W00000007", nil // worker 7 is not in the roster
		}})
	f.s.Track("440000", "test")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.s.FollowEmployment(ctx, "440000", client)
	}()
	stopped := false
	f.stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
			db.Close()
		}
	}
	t.Cleanup(f.stop)
	return f
}

func (f *employmentFollower) position(t *testing.T) *sendingv1.FollowPosition {
	t.Helper()
	resp, err := f.s.GetFollowStatus(context.Background(), &sendingv1.GetFollowStatusRequest{})
	if err != nil || len(resp.GetPositions()) != 1 {
		t.Fatalf("GetFollowStatus: %v %v", resp, err)
	}
	return resp.GetPositions()[0]
}

// The employment follower hands each new change to ApplyEmployment once, in revision order:
// a change delivered again (at or below the position) and a change of a kind this version does
// not know are skipped, keeping the feed moving; follow status shows the position and the lag;
// after a restart the follower resumes after the stored position.
func TestFollowEmploymentAppliesOnceAndResumes(t *testing.T) {
	t.Parallel()
	src := &employmentSource{msgs: make(chan *receivingv1.WatchEmploymentResponse, 32)}
	client := serveEmployment(t, src)
	path := filepath.Join(t.TempDir(), "sending.db")
	f := followEmployment(t, path, client)

	const arrived = receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_ARRIVED
	src.msgs <- employmentChange(1, 4, arrived)
	src.msgs <- employmentChange(2, 4, arrived)
	src.msgs <- employmentChange(1, 4, arrived)                                                         // delivered twice
	src.msgs <- employmentChange(3, 4, receivingv1.EmploymentChangeKind(99))                            // a later version's kind
	src.msgs <- employmentChange(2, 4, receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_NO_SHOW) // out of order: behind the position
	src.msgs <- employmentChange(4, 4, arrived)
	var l *sendingv1.FeedLag
	wait.For(t, "revision 4 applied", func() bool { l = f.position(t).GetEmploymentLag(); return l.GetAppliedRevision() == 4 })
	if l.GetCaughtUp() || l.GetHeadRevision() != 4 {
		t.Errorf("before the notice: %v, want head 4, not caught up", l)
	}
	src.msgs <- employmentCaughtUp(6) // the notice covers revisions that hold nothing for us
	wait.For(t, "caught up", func() bool { l = f.position(t).GetEmploymentLag(); return l.GetCaughtUp() })
	if p := f.position(t); p.GetEmploymentRevision() != 6 {
		t.Errorf("position %v, want employment revision 6", p)
	}
	if got, want := fmt.Sprint(f.revisions()), "[1 2 4]"; got != want {
		t.Errorf("applied %s, want %s", got, want)
	}
	counters, err := f.s.FeedCounters("440000")
	if err != nil || counters["employment.applied"] != 3 || counters["employment.repeated"] != 2 || counters["employment.unknown"] != 1 {
		t.Errorf("counters %v (%v), want 3 applied, 2 repeated, 1 unknown", counters, err)
	}

	// A restart: the new process asks for what follows revision 6 and applies only that.
	f.stop()
	f = followEmployment(t, path, client)
	wait.For(t, "a second watch", func() bool { return len(src.watches()) == 2 })
	if w := src.watches(); w[1] != 6 {
		t.Errorf("after the restart the watch asked after revision %d, want 6", w[1])
	}
	src.msgs <- employmentChange(6, 8, arrived) // at the position: already covered
	src.msgs <- employmentChange(7, 8, arrived) // worker 7 is not in the roster: skipped, the feed moves on
	src.msgs <- employmentChange(8, 8, arrived)
	wait.For(t, "revision 8 applied", func() bool { return f.position(t).GetEmploymentLag().GetAppliedRevision() == 8 })
	if got, want := fmt.Sprint(f.revisions()), "[7 8]"; got != want {
		t.Errorf("applied after the restart %s, want %s", got, want)
	}
	counters, _ = f.s.FeedCounters("440000")
	if counters["employment.skipped"] != 1 || counters["employment.applied"] != 4 {
		t.Errorf("counters after the restart %v, want 1 skipped, 4 applied", counters)
	}
}

// A feed compacted past the position: the follower counts the revisions lost and follows from
// the compacted revision.
func TestFollowEmploymentAfterCompaction(t *testing.T) {
	t.Parallel()
	src := &employmentSource{msgs: make(chan *receivingv1.WatchEmploymentResponse, 8), compacted: 5}
	f := followEmployment(t, filepath.Join(t.TempDir(), "sending.db"), serveEmployment(t, src))
	wait.For(t, "a watch after the compacted revision", func() bool {
		w := src.watches()
		return len(w) >= 2 && w[len(w)-1] == 5
	})
	src.msgs <- employmentChange(6, 6, receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_ONBOARDED)
	wait.For(t, "revision 6 applied", func() bool { return f.position(t).GetEmploymentRevision() == 6 })
	counters, err := f.s.FeedCounters("440000")
	if err != nil || counters["employment.gap"] != 5 || counters["employment.applied"] != 1 {
		t.Errorf("counters %v (%v), want a gap of 5, 1 applied", counters, err)
	}
}

// A receiving service without the employment feed (an older version, UNIMPLEMENTED): the feed
// does not count against the link; nothing is applied.
func TestFollowEmploymentUnservedDoesNotCount(t *testing.T) {
	t.Parallel()
	f := followEmployment(t, filepath.Join(t.TempDir(), "sending.db"), serveEmployment(t, nil))
	wait.For(t, "the feed known unserved", func() bool {
		snap := f.s.follow.snapshot()["440000"]
		return snap.feeds[feedEmployment].unserved && snap.feeds[feedEmployment].answers()
	})
	if p := f.position(t); p.GetEmploymentLag() != nil || p.GetEmploymentRevision() != 0 {
		t.Errorf("position %v, want no employment lag or revision", p)
	}
}

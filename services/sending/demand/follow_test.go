package demand

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"

	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/devtools/wait"
)

// feedSource is a DemandFeedService whose watch sends what the test puts in msgs, and nothing
// else: the test decides what the follower has been sent, without timing.
type feedSource struct {
	receivingv1.UnimplementedDemandFeedServiceServer
	msgs chan *receivingv1.WatchDemandResponse
}

func (f *feedSource) ListOpenDemand(context.Context, *receivingv1.ListOpenDemandRequest) (*receivingv1.ListOpenDemandResponse, error) {
	return &receivingv1.ListOpenDemandResponse{}, nil // nothing open, at revision 0
}

func (f *feedSource) WatchDemand(_ *receivingv1.WatchDemandRequest, stream receivingv1.DemandFeedService_WatchDemandServer) error {
	return sendAll(stream, f.msgs)
}

// sendAll sends what comes on msgs on a watch stream until the stream ends.
func sendAll[T any](stream interface {
	Context() context.Context
	Send(T) error
}, msgs <-chan T) error {
	for {
		select {
		case <-stream.Context().Done():
			return stream.Context().Err()
		case m := <-msgs:
			if err := stream.Send(m); err != nil {
				return err
			}
		}
	}
}

func change(rev, head int64) *receivingv1.WatchDemandResponse {
	return &receivingv1.WatchDemandResponse{HeadRevision: head, Event: &receivingv1.WatchDemandResponse_Change{Change: &receivingv1.DemandChange{
		Revision: rev, Vacancy: &receivingv1.Vacancy{VacancyId: fmt.Sprintf("440000-V%010d", rev), Status: receivingv1.VacancyStatus_VACANCY_STATUS_OPEN},
	}}}
}

func caughtUp(head int64) *receivingv1.WatchDemandResponse {
	return &receivingv1.WatchDemandResponse{HeadRevision: head, Event: &receivingv1.WatchDemandResponse_Progress{Progress: &receivingv1.FeedProgress{CaughtUp: true}}}
}

// A demand follower over a real listener, fed by a source the test controls: after the backlog
// it is at the head but not caught up until the caught-up notice comes; then follow status
// shows it caught up with lag 0; a change whose head is further on (changes come faster than
// they are sent) shows it behind by the difference, until the rest and the next notice come.
// A message of a kind this version does not know is skipped, its head still counted.
func TestFollowerCaughtUpAndLag(t *testing.T) {
	t.Parallel()
	src := &feedSource{msgs: make(chan *receivingv1.WatchDemandResponse, 32)}
	conn := serveFake(t, func(gs *grpc.Server) { receivingv1.RegisterDemandFeedServiceServer(gs, src) })

	const code = "440000"
	s := New(testDB(t), zaptest.NewLogger(t), Config{Region: "520000", FeedSilence: time.Hour})
	s.Track(code, conn.Target())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.FollowDemand(ctx, code, receivingv1.NewDemandFeedServiceClient(conn))
	}()
	t.Cleanup(func() { cancel(); <-done })

	lag := func() *sendingv1.FeedLag {
		resp, err := s.GetFollowStatus(ctx, &sendingv1.GetFollowStatusRequest{})
		if err != nil || len(resp.GetPositions()) != 1 {
			t.Fatalf("GetFollowStatus: %v %v", resp, err)
		}
		return resp.GetPositions()[0].GetDemandLag()
	}
	waitLag := func(what string, cond func(l *sendingv1.FeedLag) bool) *sendingv1.FeedLag {
		t.Helper()
		var l *sendingv1.FeedLag
		wait.For(t, what, func() bool { l = lag(); return cond(l) })
		return l
	}
	applied := func(rev int64) func(*sendingv1.FeedLag) bool {
		return func(l *sendingv1.FeedLag) bool { return l.GetAppliedRevision() == rev }
	}

	// The backlog: applied up to the head, but no caught-up notice yet.
	for rev := int64(1); rev <= 3; rev++ {
		src.msgs <- change(rev, 3)
	}
	if l := waitLag("the backlog applied", applied(3)); l.GetCaughtUp() || l.GetRevisionsBehind() != 0 || l.GetHeadRevision() != 3 {
		t.Errorf("after the backlog, before the notice: %v, want head 3, 0 behind, not caught up", l)
	}
	src.msgs <- caughtUp(3)
	l := waitLag("caught up", func(l *sendingv1.FeedLag) bool { return l.GetCaughtUp() })
	if l.GetRevisionsBehind() != 0 || l.GetHeadRevision() != 3 || l.GetCaughtUpTime() == nil {
		t.Errorf("caught up: %v, want head 3, 0 behind, with its time", l)
	}

	// Changes come faster: revision 4 is sent while the head is at 10.
	src.msgs <- change(4, 10)
	l = waitLag("revision 4 applied", applied(4))
	if l.GetCaughtUp() || l.GetRevisionsBehind() != 6 || l.GetHeadRevision() != 10 {
		t.Errorf("behind: %v, want head 10, 6 behind, not caught up", l)
	}
	// A kind this version does not know (an empty event): skipped, its head counted.
	src.msgs <- &receivingv1.WatchDemandResponse{HeadRevision: 11}
	waitLag("the head of the unknown message", func(l *sendingv1.FeedLag) bool { return l.GetHeadRevision() == 11 })
	for rev := int64(5); rev <= 11; rev++ {
		src.msgs <- change(rev, 11)
	}
	src.msgs <- caughtUp(11)
	l = waitLag("caught up again", func(l *sendingv1.FeedLag) bool { return l.GetCaughtUp() && l.GetAppliedRevision() == 11 })
	if l.GetRevisionsBehind() != 0 {
		t.Errorf("caught up again: %v, want 0 behind", l)
	}
	counters, err := s.FeedCounters(code)
	if err != nil || counters["demand.applied"] != 11 || counters["demand.repeated"] != 0 {
		t.Errorf("counters %v (%v), want 11 applied, none repeated", counters, err)
	}
}

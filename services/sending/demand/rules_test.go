package demand

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
)

// How current a replica is: the later of what this process saw and what the stored position
// says, and how long ago that was (never negative).
func TestFreshness(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	seen := func(open bool, at time.Time) followInfo {
		var fi followInfo
		fi.feeds[feedDemand] = feedState{open: open, currentAsOf: at}
		return fi
	}
	stored := func(at time.Time) *sendingv1.FollowPosition {
		return &sendingv1.FollowPosition{DemandFreshness: &sendingv1.ReplicaFreshness{CurrentAsOf: timestamppb.New(at)}}
	}
	tests := []struct {
		name   string
		fi     followInfo
		stored *sendingv1.FollowPosition
		want   *sendingv1.ReplicaFreshness
	}{
		{"never known current", followInfo{}, nil, &sendingv1.ReplicaFreshness{ReceivingRegion: "440000"}},
		{"open and seen now", seen(true, now), nil, &sendingv1.ReplicaFreshness{ReceivingRegion: "440000", Connected: true,
			CurrentAsOf: timestamppb.New(now), Staleness: durationpb.New(0)}},
		{"only the stored position (after a restart)", followInfo{}, stored(now.Add(-time.Minute)), &sendingv1.ReplicaFreshness{ReceivingRegion: "440000",
			CurrentAsOf: timestamppb.New(now.Add(-time.Minute)), Staleness: durationpb.New(time.Minute)}},
		{"the later of memory and disk", seen(false, now.Add(-10*time.Second)), stored(now.Add(-time.Minute)), &sendingv1.ReplicaFreshness{ReceivingRegion: "440000",
			CurrentAsOf: timestamppb.New(now.Add(-10 * time.Second)), Staleness: durationpb.New(10 * time.Second)}},
		{"a clock that went back", seen(true, now.Add(time.Second)), nil, &sendingv1.ReplicaFreshness{ReceivingRegion: "440000", Connected: true,
			CurrentAsOf: timestamppb.New(now.Add(time.Second)), Staleness: durationpb.New(0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := freshness("440000", tt.fi, tt.stored, now); !proto.Equal(got, tt.want) {
				t.Errorf("freshness = %v, want %v", got, tt.want)
			}
		})
	}
}

// A batch of watch messages: the entries (not the notices, nor a message of a kind this
// version does not know), when the last arrived, the last one that showed the replica current,
// the head the last message gave, the head the last caught-up notice covers, and whether the
// stream was live by the end.
func TestSplitBatch(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	msgs := []watchMsg[string]{
		{entry: "a", isEntry: true, head: 3, at: t0},
		{notice: true, caughtUp: true, head: 3, live: true, at: t0.Add(time.Second), current: true},
		{head: 4, live: true, at: t0.Add(2 * time.Second)}, // an unknown kind
		{entry: "b", isEntry: true, head: 6, live: true, at: t0.Add(3 * time.Second)},
	}
	b := splitBatch(msgs)
	want := batchInfo{last: t0.Add(3 * time.Second), current: t0.Add(time.Second), head: 6, covered: 3, live: true}
	if !slices.Equal(b.entries, []string{"a", "b"}) || b.batchInfo != want {
		t.Errorf("splitBatch = %v %+v, want [a b] %+v", b.entries, b.batchInfo, want)
	}
	if b := splitBatch[string](nil); b.entries != nil || b.batchInfo != (batchInfo{}) {
		t.Errorf("splitBatch(nil) = %+v", b)
	}
}

// The stored position takes the batch's times; only the demand feed records freshness; a
// caught-up notice moves the feed's revision up to the head it covers, never down.
func TestStampPosition(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	p := &sendingv1.FollowPosition{ReceivingRegion: "440000"}
	stampPosition(p, feedDemand, batchInfo{last: t0, current: t0.Add(-time.Second)})
	want := &sendingv1.FollowPosition{ReceivingRegion: "440000", LastMessageTime: timestamppb.New(t0),
		DemandFreshness: &sendingv1.ReplicaFreshness{ReceivingRegion: "440000", CurrentAsOf: timestamppb.New(t0.Add(-time.Second))}}
	if !proto.Equal(p, want) {
		t.Errorf("demand position = %v, want %v", p, want)
	}
	d := &sendingv1.FollowPosition{ReceivingRegion: "440000", DecisionRevision: 4}
	stampPosition(d, feedDecisions, batchInfo{last: t0, current: t0, covered: 9})
	if !proto.Equal(d, &sendingv1.FollowPosition{ReceivingRegion: "440000", DecisionRevision: 9, LastMessageTime: timestamppb.New(t0)}) {
		t.Errorf("decision position = %v", d)
	}
	stampPosition(d, feedDecisions, batchInfo{covered: 7})
	if d.GetDecisionRevision() != 9 {
		t.Errorf("an older caught-up notice moved the decision position back to %d", d.GetDecisionRevision())
	}
	unchanged := proto.Clone(want).(*sendingv1.FollowPosition)
	stampPosition(unchanged, feedDemand, batchInfo{})
	if !proto.Equal(unchanged, want) {
		t.Errorf("a batch without times changed the position: %v", unchanged)
	}
}

// The lag of a feed in follow status: unknown before a watch answered; behind while the head
// is ahead of the position (never negative); caught up only with the watch open, its caught-up
// notice applied and the position at the head.
func TestFeedLag(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		fs   feedState
		want *sendingv1.FeedLag
	}{
		{"never followed", feedState{}, nil},
		{"caught up", feedState{open: true, live: true, head: 5, applied: 5, lastMessage: t0, caughtUpTime: t0},
			&sendingv1.FeedLag{HeadRevision: 5, AppliedRevision: 5, CaughtUp: true, CaughtUpTime: timestamppb.New(t0)}},
		{"replaying the backlog", feedState{open: true, head: 9, applied: 5, lastMessage: t0},
			&sendingv1.FeedLag{HeadRevision: 9, AppliedRevision: 5, RevisionsBehind: 4}},
		{"live but changes come faster", feedState{open: true, live: true, head: 9, applied: 5, lastMessage: t0, caughtUpTime: t0},
			&sendingv1.FeedLag{HeadRevision: 9, AppliedRevision: 5, RevisionsBehind: 4, CaughtUpTime: timestamppb.New(t0)}},
		{"at the head, no caught-up notice yet", feedState{open: true, head: 5, applied: 5, lastMessage: t0},
			&sendingv1.FeedLag{HeadRevision: 5, AppliedRevision: 5}},
		{"watch closed", feedState{live: false, head: 5, applied: 5, lastMessage: t0},
			&sendingv1.FeedLag{HeadRevision: 5, AppliedRevision: 5}},
		{"a head behind the position (data replaced)", feedState{open: true, live: true, head: 2, applied: 5, lastMessage: t0},
			&sendingv1.FeedLag{HeadRevision: 2, AppliedRevision: 5, CaughtUp: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.fs.lag(); !proto.Equal(got, tt.want) {
				t.Errorf("lag = %v, want %v", got, tt.want)
			}
		})
	}
}

package demand

import (
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

// A batch of watch messages: the changes (not the notices), when the last arrived, and the last
// one that showed the replica current.
func TestSplitBatch(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	msgs := []watchMsg[string]{
		{entry: "a", at: t0},
		{notice: true, at: t0.Add(time.Second), current: true},
		{entry: "b", at: t0.Add(2 * time.Second)},
	}
	entries, last, current := splitBatch(msgs)
	if len(entries) != 2 || entries[0] != "a" || entries[1] != "b" || !last.Equal(t0.Add(2*time.Second)) || !current.Equal(t0.Add(time.Second)) {
		t.Errorf("splitBatch = %v, %v, %v", entries, last, current)
	}
	if entries, last, current := splitBatch[string](nil); entries != nil || !last.IsZero() || !current.IsZero() {
		t.Errorf("splitBatch(nil) = %v, %v, %v", entries, last, current)
	}
}

// The stored position takes the batch's times; only the demand feed records freshness.
func TestStampPosition(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	p := &sendingv1.FollowPosition{ReceivingRegion: "440000"}
	stampPosition(p, feedDemand, t0, t0.Add(-time.Second))
	want := &sendingv1.FollowPosition{ReceivingRegion: "440000", LastMessageTime: timestamppb.New(t0),
		DemandFreshness: &sendingv1.ReplicaFreshness{ReceivingRegion: "440000", CurrentAsOf: timestamppb.New(t0.Add(-time.Second))}}
	if !proto.Equal(p, want) {
		t.Errorf("demand position = %v, want %v", p, want)
	}
	d := &sendingv1.FollowPosition{ReceivingRegion: "440000"}
	stampPosition(d, feedDecisions, t0, t0)
	if !proto.Equal(d, &sendingv1.FollowPosition{ReceivingRegion: "440000", LastMessageTime: timestamppb.New(t0)}) {
		t.Errorf("decision position = %v", d)
	}
	unchanged := proto.Clone(want).(*sendingv1.FollowPosition)
	stampPosition(unchanged, feedDemand, time.Time{}, time.Time{})
	if !proto.Equal(unchanged, want) {
		t.Errorf("a batch without times changed the position: %v", unchanged)
	}
}

package feedlog

import (
	"context"
	"errors"
	"maps"
	"path/filepath"
	"slices"
	"testing"

	"go.etcd.io/bbolt"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/store"
)

var testFeed = Feed[*receivingv1.DemandChange]{
	Name:    "test",
	Table:   store.NewTable[*receivingv1.DemandChange]([]byte("testChanges")),
	HeadKey: []byte("test.head"), CompactedKey: []byte("test.compacted"),
	Relist: "re-list",
}

// testFeeds is a family of logs in one table, as the employment feed.
var testFeeds = Feeds[*receivingv1.DemandChange]{
	Name:   "fam",
	Table:  store.NewTable[*receivingv1.DemandChange]([]byte("famChanges")),
	Relist: "re-read",
}

func openTest(t *testing.T) *DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "feed.db"),
		store.Schema{Name: "feedtest", Version: 1, Buckets: [][]byte{testFeed.Table.Name(), testFeeds.Table.Name(), store.BucketCounters}}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return NewDB(db)
}

func reason(err error) commonv1.ErrorReason {
	var e *apierror.Error
	if errors.As(err, &e) {
		return e.ErrorReason()
	}
	return commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED
}

// Revisions have no gaps, a read continues after any revision kept, compaction keeps the newest
// entries, and positions compacted away or ahead of the head are refused with their reasons.
func TestAppendReadCompact(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	wake := db.changed()
	for i := 1; i <= 10; i++ {
		err := db.Update(func(tx *bbolt.Tx) error {
			rev, err := testFeed.Append(tx, func(rev int64) *receivingv1.DemandChange { return &receivingv1.DemandChange{Revision: rev} })
			if err == nil && rev != int64(i) {
				t.Errorf("revision %d, want %d", rev, i)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-wake:
	default:
		t.Error("a commit through DB did not wake the watchers")
	}
	even := func(c *receivingv1.DemandChange) bool { return c.GetRevision()%2 == 0 }
	tests := []struct {
		name        string
		after       int64
		size        int
		keep        func(*receivingv1.DemandChange) bool
		want        []int64
		wantReason  commonv1.ErrorReason
		compactKeep int // compact to this many first (0: not)
	}{
		{"from the start", 0, 3, nil, []int64{1, 2, 3}, 0, 0},
		{"after a revision", 7, 5, nil, []int64{8, 9, 10}, 0, 0},
		{"filtered", 2, 2, even, []int64{4, 6}, 0, 0},
		{"at the head", 10, 5, nil, nil, 0, 0},
		{"ahead of the head", 11, 5, nil, nil, commonv1.ErrorReason_ERROR_REASON_REVISION_AHEAD, 0},
		{"compacted away", 3, 5, nil, nil, commonv1.ErrorReason_ERROR_REASON_REVISION_COMPACTED, 6},
		{"right after the compacted", 4, 5, nil, []int64{5, 6, 7, 8, 9}, 0, 6},
	}
	for _, tt := range tests {
		if tt.compactKeep > 0 {
			if _, err := testFeed.Compact(context.Background(), db, tt.compactKeep); err != nil {
				t.Fatal(err)
			}
		}
		got, head, err := testFeed.List(db, tt.after, tt.size, tt.keep)
		if reason(err) != tt.wantReason || (tt.wantReason == 0) != (err == nil) {
			t.Errorf("%s: err = %v, want reason %v", tt.name, err, tt.wantReason)
			continue
		}
		if err != nil {
			continue
		}
		var revs []int64
		for _, c := range got {
			revs = append(revs, c.GetRevision())
		}
		if head != 10 || len(revs) != len(tt.want) {
			t.Errorf("%s: revisions %v head %d, want %v head 10", tt.name, revs, head, tt.want)
			continue
		}
		for i := range revs {
			if revs[i] != tt.want[i] {
				t.Errorf("%s: revisions %v, want %v", tt.name, revs, tt.want)
				break
			}
		}
	}
	if n, err := testFeed.Compact(context.Background(), db, 6); err != nil || n != 0 {
		t.Errorf("compacting again removed %d (%v), want 0", n, err)
	}
}

// The logs of a family share a table but nothing else: each has revisions from 1 without gaps,
// reads only its own entries (also when one key is a prefix of another), is compacted on its
// own, and Keys lists the logs that have entries. A log of its own table (testFeed) is not
// touched by them.
func TestFeedsKeyedLogs(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	appends := []struct {
		key string
		n   int
	}{{"520000", 3}, {"52", 2}, {"450000", 4}, {"520000", 2}}
	for _, a := range appends {
		for range a.n {
			if err := db.Update(func(tx *bbolt.Tx) error {
				_, err := testFeeds.Of(a.key).Append(tx, func(rev int64) *receivingv1.DemandChange {
					return &receivingv1.DemandChange{Revision: rev, Vacancy: &receivingv1.Vacancy{Name: a.key}}
				})
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := map[string]int{"520000": 5, "52": 2, "450000": 4}
	for key, n := range want {
		got, head, err := testFeeds.Of(key).List(db, 0, 0, nil)
		if err != nil || head != int64(n) || len(got) != n {
			t.Fatalf("log %s: %d entries, head %d, %v; want %d", key, len(got), head, err, n)
		}
		for i, c := range got {
			if c.GetRevision() != int64(i+1) || c.GetVacancy().GetName() != key {
				t.Errorf("log %s entry %d: revision %d of %s", key, i, c.GetRevision(), c.GetVacancy().GetName())
			}
		}
	}
	if _, head, err := testFeed.List(db, 0, 0, nil); err != nil || head != 0 {
		t.Errorf("the separate feed: head %d, %v", head, err)
	}
	var keys []string
	if err := db.View(func(tx *bbolt.Tx) error { keys = testFeeds.Keys(tx); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"450000", "52", "520000"}) {
		t.Errorf("keys %v", keys)
	}
	removed, err := testFeeds.Compact(context.Background(), db, 3)
	if err != nil || !maps.Equal(removed, map[string]int{"520000": 2, "450000": 1}) {
		t.Fatalf("compaction removed %v (%v), want 2 of 520000 and 1 of 450000", removed, err)
	}
	_, _, err = testFeeds.Of("520000").List(db, 1, 0, nil)
	if reason(err) != commonv1.ErrorReason_ERROR_REASON_REVISION_COMPACTED {
		t.Errorf("after a compacted revision: %v", err)
	}
	if got, _, err := testFeeds.Of("520000").List(db, 2, 0, nil); err != nil || len(got) != 3 || got[0].GetRevision() != 3 {
		t.Errorf("from the compacted revision: %v, %v", got, err)
	}
	if got, _, err := testFeeds.Of("52").List(db, 0, 0, nil); err != nil || len(got) != 2 {
		t.Errorf("a log within retention is kept: %v, %v", got, err)
	}
}

// Respond makes the responses of both watches from a Sent: the entry or the progress notice in
// the oneof, the head on every message; a response type without the watch shape refuses.
func TestRespond(t *testing.T) {
	t.Parallel()
	progress := &receivingv1.FeedProgress{CaughtUp: true}
	change := &receivingv1.DemandChange{Revision: 4}
	cand := &receivingv1.Candidate{Name: "candidates/440000-C0000000001", Revision: 6}
	var demand []*receivingv1.WatchDemandResponse
	sendDemand := Respond[*receivingv1.DemandChange](func(r *receivingv1.WatchDemandResponse) error { demand = append(demand, r); return nil })
	var decisions []*receivingv1.WatchDecisionsResponse
	sendDecision := Respond[*receivingv1.Candidate](func(r *receivingv1.WatchDecisionsResponse) error { decisions = append(decisions, r); return nil })
	for _, err := range []error{
		sendDemand(Sent[*receivingv1.DemandChange]{Entry: change, Head: 9}),
		sendDemand(Sent[*receivingv1.DemandChange]{Progress: progress, Head: 9}),
		sendDecision(Sent[*receivingv1.Candidate]{Entry: cand, Head: 7}),
		sendDecision(Sent[*receivingv1.Candidate]{Progress: progress, Head: 7}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	wantDemand := []*receivingv1.WatchDemandResponse{
		{HeadRevision: 9, Event: &receivingv1.WatchDemandResponse_Change{Change: change}},
		{HeadRevision: 9, Event: &receivingv1.WatchDemandResponse_Progress{Progress: progress}},
	}
	wantDecisions := []*receivingv1.WatchDecisionsResponse{
		{HeadRevision: 7, Event: &receivingv1.WatchDecisionsResponse_Candidate{Candidate: cand}},
		{HeadRevision: 7, Event: &receivingv1.WatchDecisionsResponse_Progress{Progress: progress}},
	}
	for i := range wantDemand {
		if !proto.Equal(demand[i], wantDemand[i]) {
			t.Errorf("demand message %d = %v, want %v", i, demand[i], wantDemand[i])
		}
		if !proto.Equal(decisions[i], wantDecisions[i]) {
			t.Errorf("decision message %d = %v, want %v", i, decisions[i], wantDecisions[i])
		}
	}
	sent := false
	wrong := Respond[*receivingv1.DemandChange](func(*receivingv1.ListDemandChangesResponse) error { sent = true; return nil })
	if err := wrong(Sent[*receivingv1.DemandChange]{Entry: change, Head: 1}); err == nil || sent {
		t.Errorf("a response without the watch shape: sent %v, error %v", sent, err)
	}
}

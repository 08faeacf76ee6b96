package feedlog

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"
	"go.uber.org/zap/zaptest"

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

func openTest(t *testing.T) *DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "feed.db"),
		store.Schema{Name: "feedtest", Version: 1, Buckets: [][]byte{testFeed.Table.Name(), store.BucketCounters}}, zaptest.NewLogger(t))
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

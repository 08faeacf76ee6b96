package sending

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"go.etcd.io/bbolt"
	"go.uber.org/zap/zaptest"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending/roster"
)

// A file of sending schema 9 (no county indexes) opens with this version: the migration builds
// the indexes by county and by county and name from the workers, so FindWorkers' index finds
// every live worker by county and name (middle-dot variants as one) and no erased one.
func TestOpenVersion9FileBuildsCountyIndexes(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sending.db")
	lg := zaptest.NewLogger(t)
	v9 := Schema
	v9.Version = 9
	v9.Migrate = nil
	v9.Buckets = slices.DeleteFunc(slices.Clone(Schema.Buckets), func(b []byte) bool {
		return bytes.Equal(b, roster.BucketWorkersByCounty) || bytes.Equal(b, roster.BucketWorkersByCountyName)
	})
	old, err := store.Open(path, v9, lg)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"张三", "阿依古丽•买买提", "李四"}
	counties := []string{"520102", "520103"}
	want := map[string][]string{} // county NUL name as asked -> worker ids
	err = old.Update(func(tx *bbolt.Tx) error {
		for i := range 24 {
			w := &sendingv1.Worker{
				WorkerId: fmt.Sprintf("520000-AAAAAAAAAAAAA%c%cQ", 'A'+i/26, 'A'+i%26),
				Status:   stAvailable, HomeCounty: counties[i%2], FullName: names[i%3],
				IdNumber: makeIDNumber(counties[i%2], fixedClock().AddDate(-30, 0, -i), i),
			}
			if i%5 == 4 {
				w = &sendingv1.Worker{WorkerId: w.WorkerId, Status: w.Status, Erased: true}
			} else {
				k := w.HomeCounty + "\x00" + w.FullName
				want[k] = append(want[k], w.WorkerId)
			}
			if err := store.PutProto(tx.Bucket(roster.BucketWorkers), []byte(w.WorkerId), w); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := store.Open(path, Schema, lg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		total := 0
		for _, c := range counties {
			for _, n := range names {
				asked := n
				if n == "阿依古丽•买买提" {
					asked = "阿依古丽·买买提" // found by the other spelling of the dot
				}
				got, _, err := roster.WorkerIDsByCountyName(tx, c, asked, false, nil, 0)
				if err != nil {
					return err
				}
				if w := want[c+"\x00"+n]; !slices.Equal(got, w) {
					t.Errorf("%s %s: %v, want %v", c, n, got, w)
				}
				total += len(got)
			}
			ids, err := roster.WorkerIDsInCounty(tx, c)
			if err != nil {
				return err
			}
			var wantIDs []string
			for _, n := range names {
				wantIDs = append(wantIDs, want[c+"\x00"+n]...)
			}
			slices.Sort(wantIDs)
			if !slices.Equal(ids, wantIDs) {
				t.Errorf("county %s: %v, want %v", c, ids, wantIDs)
			}
		}
		if total != 24-4 {
			t.Errorf("%d workers indexed, want %d live ones", total, 24-4)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

package store_test

import (
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	storagev1 "github.com/eastwest/labourlink/proto/labourlink/storage/v1"
	"github.com/eastwest/labourlink/services/platform/store"
)

func TestRenamedNames(t *testing.T) {
	tests := []struct {
		rename   func(string) (string, bool)
		in, want string
		renamed  bool
	}{
		{store.RenamedMethod, "/labour.sending.v1.RosterService/UpdateWorker", "/labourlink.sending.v1.RosterService/UpdateWorker", true},
		{store.RenamedMethod, "/labourlink.sending.v1.RosterService/UpdateWorker", "/labourlink.sending.v1.RosterService/UpdateWorker", false},
		{store.RenamedMethod, "/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Check", false},
		{store.RenamedTypeURL, "type.googleapis.com/labour.common.v1.Date", "type.googleapis.com/labourlink.common.v1.Date", true},
		{store.RenamedTypeURL, "type.googleapis.com/labourlink.common.v1.Date", "type.googleapis.com/labourlink.common.v1.Date", false},
		{store.RenamedTypeURL, "type.googleapis.com/google.protobuf.Empty", "type.googleapis.com/google.protobuf.Empty", false},
		{store.RenamedTypeURL, "labour.common.v1.Date", "labourlink.common.v1.Date", true}, // a bare name is a URL without a host
	}
	for _, tt := range tests {
		if got, renamed := tt.rename(tt.in); got != tt.want || renamed != tt.renamed {
			t.Errorf("rename(%q) = %q, %v; want %q, %v", tt.in, got, renamed, tt.want, tt.renamed)
		}
	}
}

// TestMigratePackageRootKeepsRetriesAnswered remembers a response the way a data file written
// before the rename holds it (method and type URL under labour.*), migrates, and retries the
// request under the new method name: it gets the first answer, and the id stays taken for the
// other methods.
func TestMigratePackageRootKeepsRetriesAnswered(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "x.db"), testSchema)
	const oldMethod = "/labour.sending.v1.RosterService/ChangeWorkerStatus"
	const newMethod = "/labourlink.sending.v1.RosterService/ChangeWorkerStatus"
	req := &sendingv1.ChangeWorkerStatusRequest{RequestId: "r-1", Reason: "left"}
	first := &commonv1.Date{Year: 2026, Month: 3, Day: 9}
	err := db.Update(func(tx *bbolt.Tx) error {
		if err := store.Remember(tx, time.Now(), oldMethod, req, first); err != nil {
			return err
		}
		// Put the type URL back as the old binary wrote it.
		b := tx.Bucket(store.BucketIdempotency)
		k := append(append([]byte(oldMethod), 0), "r-1"...)
		var m storagev1.RememberedResponse
		if err := proto.Unmarshal(b.Get(k), &m); err != nil {
			return err
		}
		m.Response.TypeUrl = "type.googleapis.com/labour.common.v1.Date"
		return store.PutProto(b, k, &m)
	})
	if err != nil {
		t.Fatal(err)
	}

	for round, want := range []int{1, 0} {
		var n int
		if err := db.Update(func(tx *bbolt.Tx) error { n, err = store.MigratePackageRoot(tx); return err }); err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("run %d rewrote %d records, want %d", round+1, n, want)
		}
	}

	err = db.View(func(tx *bbolt.Tx) error {
		var got commonv1.Date
		ok, err := store.Recall(tx, newMethod, req, &got)
		if err != nil || !ok || !proto.Equal(&got, first) {
			t.Errorf("retry after migration: %v, %v, %v; want the first answer %v", &got, ok, err, first)
		}
		if ok, err := store.Recall(tx, "/labourlink.sending.v1.RosterService/DeleteWorker", req, &got); ok || err == nil {
			t.Errorf("the id under another method after migration: %v, %v; want it refused as used", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

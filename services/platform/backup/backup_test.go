package backup_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	backupv1 "github.com/eastwest/labourlink/proto/labourlink/backup/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/devtools/wait"
	"github.com/eastwest/labourlink/services/platform/backup"
	"github.com/eastwest/labourlink/services/platform/grpcserver"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending"
	"github.com/eastwest/labourlink/services/sending/roster"
	"github.com/eastwest/labourlink/services/sending/roster/rostertest"
)

// serve runs a sending service with the backup service over a real listener.
func serve(t *testing.T) (*grpc.ClientConn, *store.DB) {
	t.Helper()
	lg := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	db, err := store.Open(filepath.Join(t.TempDir(), "sending.db"), sending.Schema, lg)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := sending.New(db, lg, sending.Config{Region: "520000"})
	if err != nil {
		t.Fatal(err)
	}
	srv := grpcserver.New(grpcserver.Config{ShutdownTimeout: 2 * time.Second}, lg)
	svc.Register(srv.GRPC())
	backup.NewServer(db, lg).Register(srv.GRPC())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cc.Close()
		srv.Stop(context.Background())
		db.Close()
	})
	return cc, db
}

func row(i int) *sendingv1.WorkerRow {
	county := regions.Default().CountiesOf("520000")[i%5]
	return &sendingv1.WorkerRow{
		RowNumber: int64(i + 2), IdNumber: rostertest.IDNumber(county, time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i/1000), i),
		FullName: "王小明", Phone: fmt.Sprintf("139%08d", i), HomeCounty: county,
	}
}

// TestBackupDuringAnImportHasEveryAcknowledgedRow takes a backup while an import is in the
// middle of its stream, restores it into an empty folder, and finds there every row the service
// had committed before the backup began, the import incomplete as it was then; the live service
// meanwhile completes the import.
func TestBackupDuringAnImportHasEveryAcknowledgedRow(t *testing.T) {
	cc, _ := serve(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rc := sendingv1.NewRosterServiceClient(cc)
	stream, err := rc.ImportWorkers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const chunk, chunks = 5000, 3
	send := func(c int) {
		t.Helper()
		req := &sendingv1.ImportWorkersRequest{ImportId: "spring"}
		for i := c * chunk; i < (c+1)*chunk; i++ {
			req.Rows = append(req.Rows, row(i))
		}
		if c == chunks-1 {
			req.Final, req.TotalRows = true, chunk*chunks
		}
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
	}
	send(0)
	var before int64
	wait.Until(30*time.Second, func() bool {
		resp, err := rc.GetImport(ctx, &sendingv1.GetImportRequest{ImportId: "spring"})
		before = resp.GetLastRowNumber()
		return err == nil && before > 0
	})
	if before == 0 {
		t.Fatal("no row of the import was committed")
	}

	file := filepath.Join(t.TempDir(), "sending.backup")
	var reported int64
	saved, err := backup.Save(ctx, backupv1.NewBackupServiceClient(cc), file, func(done, total int64) { reported = done })
	if err != nil {
		t.Fatal(err)
	}
	send(1)
	send(2)
	if _, err := stream.CloseAndRecv(); err != nil {
		t.Fatal(err)
	}
	if saved.Header.GetSchema() != "sending" || reported != saved.Header.GetSize() {
		t.Fatalf("saved %v, progress reported %d bytes", saved.Header, reported)
	}
	sum, err := os.ReadFile(file + ".sha256")
	if err != nil || !strings.HasPrefix(string(sum), saved.SHA256+"  sending.backup") {
		t.Fatalf("checksum file %q, %v", sum, err)
	}

	dst := filepath.Join(t.TempDir(), "data", "sending.db")
	info, err := backup.Restore(file, dst, "sending")
	if err != nil {
		t.Fatal(err)
	}
	if info.Instance != saved.Header.GetInstance() || info.Version != sending.Schema.Version {
		t.Fatalf("restored %+v, header %v", info, saved.Header)
	}
	if _, err := backup.Restore(file, dst, "sending"); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("restore over a data file: %v, want refused", err)
	}
	restored, err := store.Open(dst, sending.Schema, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	var workers int
	err = restored.View(func(tx *bbolt.Tx) error {
		workers = tx.Bucket(roster.BucketWorkers).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Rows are numbered from 2: every row up to `before` is in the backup.
	if int64(workers) < before-1 || workers >= chunk*chunks {
		t.Fatalf("restored backup has %d workers; %d rows were committed before it began, %d in all", workers, before-1, chunk*chunks)
	}
	for _, i := range []int{0, int(before) - 2} {
		ok, err := workerWithIDNumber(restored, row(i).GetIdNumber())
		if err != nil || !ok {
			t.Fatalf("row %d (committed before the backup) not in the restored file: %v", i+2, err)
		}
	}
}

func workerWithIDNumber(db *store.DB, id string) (bool, error) {
	var ok bool
	err := db.View(func(tx *bbolt.Tx) error {
		wid, err := roster.WorkerIDByIDNumber(tx, id)
		ok = wid != ""
		return err
	})
	return ok, err
}

// A damaged backup, a backup of another kind of service and a file that is no data file are
// refused, and nothing is left where the service would open it.
func TestRestoreRefusesWhatIsNotASoundBackup(t *testing.T) {
	cc, _ := serve(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "b")
	if _, err := backup.Save(context.Background(), backupv1.NewBackupServiceClient(cc), file, nil); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	damaged := filepath.Join(dir, "damaged")
	bad := append([]byte(nil), good...)
	bad[len(bad)/2] ^= 0xff
	if err := os.WriteFile(damaged, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	sum, _ := os.ReadFile(file + ".sha256")
	if err := os.WriteFile(damaged+".sha256", sum, 0o600); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, "junk")
	if err := os.WriteFile(junk, []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, src, schema, want string
	}{
		{"damaged", damaged, "sending", "checksum"},
		{"another kind", file, "receiving", "not of a receiving"},
		{"not a data file", junk, "sending", "not a sound data file"},
	} {
		dst := filepath.Join(t.TempDir(), "sending.db")
		if _, err := backup.Restore(tt.src, dst, tt.schema); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error saying %q", tt.name, err, tt.want)
		}
		if _, err := os.Stat(dst); !os.IsNotExist(err) {
			t.Errorf("%s: %s was left behind (%v)", tt.name, dst, err)
		}
	}
}

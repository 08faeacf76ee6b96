package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/bbolt"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/platform/backup"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending"
	"github.com/eastwest/labourlink/services/sending/roster"
)

// both registers two services on one server.
type both []registrar

func (b both) Register(gs *grpc.Server) {
	for _, r := range b {
		r.Register(gs)
	}
}

// `labourlink backup` saves a running sending service's data with its checksum; `labourlink
// restore` puts it in an empty data folder, where a service opens it with the same workers.
func TestBackupAndRestoreCommands(t *testing.T) {
	lg := zaptest.NewLogger(t)
	addr, db := serveForTest(t, lg, "sending", sending.Schema, func(db *store.DB) (registrar, error) {
		svc, err := sending.New(db, lg, sending.Config{Region: "520000"})
		return both{svc, backup.NewServer(db, lg)}, err
	})
	const id = "520000-AAAAAAAAAAAAAAAA"
	err := db.Update(func(tx *bbolt.Tx) error {
		return store.PutProto(tx.Bucket(roster.BucketWorkers), []byte(id), &sendingv1.Worker{WorkerId: id, Status: sendingv1.WorkerStatus_WORKER_STATUS_AVAILABLE})
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "guizhou.backup")
	code, out, errOut := runRoster(t, addr, "backup", "-service", "sending", "-o", file)
	if code != 0 || !strings.Contains(out, "saved "+file) || !strings.Contains(out, "SHA-256") || !strings.Contains(errOut, "backup") {
		t.Fatalf("backup: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, err := os.Stat(file + ".sha256"); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runRoster(t, addr, "backup", "-service", "sending", "-o", file)
	if code == 0 {
		t.Fatalf("a second backup over the first: exit 0\n%s", errOut)
	}

	data := filepath.Join(dir, "restored")
	var stdout, stderr strings.Builder
	code = runCLI(t.Context(), &cliEnv{stdout: &stdout, stderr: &stderr}, []string{"restore", "-service", "sending", "-i", file, "-data-dir", data})
	if code != 0 || !strings.Contains(stdout.String(), "restored") {
		t.Fatalf("restore: exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	restored, err := store.Open(filepath.Join(data, "sending.db"), sending.Schema, lg)
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	err = restored.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(roster.BucketWorkers).Get([]byte(id)) == nil {
			t.Errorf("worker %s missing from the restored file", id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	if code := runCLI(t.Context(), &cliEnv{stdout: &stdout, stderr: &stderr}, []string{"restore", "-service", "receiving", "-i", file, "-data-dir", t.TempDir()}); code == 0 {
		t.Fatalf("restoring a sending backup for a receiving service: exit 0\n%s", stdout.String())
	}
}

package roster

import (
	"context"
	"fmt"
	"github.com/eastwest/labourlink/services/sending/roster/rostertest"
	"net"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/grpcserver"
	"github.com/eastwest/labourlink/services/platform/store"
)

// rosterRegion is the sending province of the roster tests (Guizhou).
const rosterRegion = "520000"

// testSchema holds the roster's buckets, as the sending service's schema does.
var testSchema = store.Schema{Name: "sending", Version: 2, Buckets: Buckets(), Migrate: func(tx *bbolt.Tx, _ uint64) error {
	return BuildAvailableIndex(tx)
}}

// fixedClock is a Friday morning in China.
func fixedClock() time.Time { return time.Date(2026, 11, 20, 9, 0, 0, 0, civil.Zone) }

// rosterEnv is a sending service on a real listener with a real bbolt file.
type rosterEnv struct {
	svc    *Service
	db     *store.DB
	path   string
	client sendingv1.RosterServiceClient
	stop   func()
}

// startRoster opens (or reopens) the data file at path and serves the sending service on
// 127.0.0.1:0 with the real grpcserver. An empty path makes a new file in t.TempDir().
func startRoster(t testing.TB, lg *zap.Logger, path string) *rosterEnv {
	t.Helper()
	return startRosterWith(t, lg, path, Config{Region: rosterRegion})
}

// startRosterWith is startRoster with the service's Config (for example its clock).
func startRosterWith(t testing.TB, lg *zap.Logger, path string, cfg Config) *rosterEnv {
	t.Helper()
	if lg == nil {
		lg = zaptest.NewLogger(t)
	}
	if path == "" {
		path = filepath.Join(t.TempDir(), "sending.db")
	}
	db, err := store.Open(path, testSchema, lg)
	if err != nil {
		t.Fatal(err)
	}
	svc := New(db, lg, cfg)
	srv := grpcserver.New(grpcserver.Config{ServiceName: "sending"}, lg)
	svc.Register(srv.GRPC())
	srv.SetServing()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	env := &rosterEnv{svc: svc, db: db, path: path, client: sendingv1.NewRosterServiceClient(cc)}
	stopped := false
	env.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cc.Close()
		srv.Stop(context.Background())
		<-served
		db.Close()
	}
	t.Cleanup(env.stop)
	return env
}

// testCounties are county codes of Guizhou.
var testCounties = regions.Default().CountiesOf(rosterRegion)

// makeIDNumber returns a valid identity number issued in county for someone born on birth.
func makeIDNumber(county string, birth time.Time, seq int) string {
	return rostertest.IDNumber(county, birth, seq)
}

// genRow returns the i-th generated good row (row number i+2, as after a CSV header). Every i
// gives a distinct identity number and phone.
func genRow(i int) *sendingv1.WorkerRow {
	birth := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i/1000)
	county := testCounties[i%len(testCounties)]
	poor := "否"
	if i%3 == 0 {
		poor = "是"
	}
	return &sendingv1.WorkerRow{
		RowNumber:             int64(i + 2),
		IdNumber:              makeIDNumber(county, birth, i),
		FullName:              testName(i),
		Phone:                 fmt.Sprintf("139%08d", i),
		HomeCounty:            county,
		RegisteredPoor:        poor,
		Occupations:           []string{"8212", "9313;8153", "", "9333"}[i%4],
		Education:             []string{"初中", "junior_secondary", "高中", ""}[i%4],
		PreferredDestinations: []string{"440000", "", "330000;440000"}[i%3],
		AvailableFrom:         "2026-04-01",
		HealthCheckPassed:     "是",
		HealthCheckDate:       "2025-12-01",
	}
}

// importRows sends rows in chunks of chunk rows, the last marked final (rostertest.ImportRows).
func importRows(ctx context.Context, c sendingv1.RosterServiceClient, importID string, rows []*sendingv1.WorkerRow, chunk int) (*sendingv1.ImportWorkersResponse, error) {
	return rostertest.ImportRows(ctx, c, importID, rows, chunk)
}

// rosterSnapshot returns every stored worker (unmasked) keyed by identity number, and the
// number of index entries.
func rosterSnapshot(t testing.TB, db *store.DB) (map[string]*sendingv1.Worker, int) {
	t.Helper()
	out := map[string]*sendingv1.Worker{}
	indexN := 0
	err := db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(BucketWorkers).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			w, err := Read(tx, string(k))
			if err != nil {
				return err
			}
			if !w.GetErased() {
				if _, dup := out[w.GetIdNumber()]; dup {
					return fmt.Errorf("two workers with one identity number")
				}
				out[w.GetIdNumber()] = w
			}
		}
		indexN = tx.Bucket(BucketWorkerByIDHash).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, indexN
}

// wantCode fails the test unless err is a gRPC status with code.
func wantCode(t testing.TB, err error, code codes.Code) *status.Status {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code {
		t.Fatalf("error = %v, want code %s", err, code)
	}
	return st
}

// testName is a plain, distinct name for the i-th test worker: names carry no digits
// (services/codes/personname), so i is written with Chinese numerals.
func testName(i int) string {
	const numerals = "零一二三四五六七八九"
	digits := []rune(numerals)
	name := []rune("工人")
	for _, c := range fmt.Sprint(i) {
		name = append(name, digits[c-'0'])
	}
	return string(name)
}

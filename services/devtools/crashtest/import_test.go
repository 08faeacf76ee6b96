package crashtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/idnumber"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/failpoint"
	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending"
	"github.com/eastwest/labourlink/services/sending/roster"
)

// importRegion is the sending province of the import test (Guizhou).
const importRegion = "520000"

// counties are Guizhou's counties, for home_county and the identity numbers.
var counties = regions.Default().CountiesOf(importRegion)

// rowOf returns the i-th generated worker row (every i gives another identity number); every
// 97th row is bad (a home county outside Guizhou) and is rejected.
func rowOf(i int) (row *sendingv1.WorkerRow, good bool) {
	county := counties[i%len(counties)]
	n := i / len(counties)
	birth := time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, n/1000)
	first17 := fmt.Sprintf("%s%s%03d", county, birth.Format("20060102"), n%1000)
	surnames := []rune("王李张刘陈杨黄赵吴周徐孙马朱胡")
	given := []string{"伟", "芳", "娜", "敏", "静", "磊", "洋", "勇", "军", "杰", "强", "霞"}
	row = &sendingv1.WorkerRow{
		IdNumber:          first17 + string(idnumber.CheckChar(first17)),
		FullName:          string(surnames[i%len(surnames)]) + given[i/len(surnames)%len(given)],
		Phone:             fmt.Sprintf("139%08d", i%100_000_000),
		HomeCounty:        county,
		RegisteredPoor:    []string{"是", "否"}[i%2],
		Occupations:       []string{"8212", "9313", "8153;9333"}[i%3],
		AvailableFrom:     "2026-03-01",
		HealthCheckPassed: "是",
		HealthCheckDate:   "2026-01-15",
	}
	if i%97 == 5 {
		row.HomeCounty = "110101"
		return row, false
	}
	return row, true
}

// rosterImport is one import of the workload: its rows and, once acknowledged, the summary the
// service replied with.
type rosterImport struct {
	id    string
	rows  []*sendingv1.WorkerRow
	good  []string // identity numbers of the good rows
	bad   int
	acked *sendingv1.ImportWorkersResponse
}

// importWorkload sends imports one after the other, each until it is acknowledged.
type importWorkload struct {
	mu      sync.Mutex
	imports []*rosterImport // acknowledged ones, then at most one in progress
	nextRow int
	rng     *rand.Rand
}

// current returns the import in progress, making a new one after an acknowledged one: mostly
// small (one batch), sometimes several batches of the service (5000 rows each).
func (w *importWorkload) current() *rosterImport {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.imports); n > 0 && w.imports[n-1].acked == nil {
		return w.imports[n-1]
	}
	size := 1 + w.rng.IntN(2500)
	if w.rng.IntN(4) == 0 {
		size = 5001 + w.rng.IntN(5000)
	}
	imp := &rosterImport{id: fmt.Sprintf("crash-import-%d", len(w.imports))}
	for k := range size {
		row, good := rowOf(w.nextRow)
		w.nextRow++
		row.RowNumber = int64(k + 2) // as after a spreadsheet's header row
		imp.rows = append(imp.rows, row)
		if good {
			imp.good = append(imp.good, idnumber.Normalize(row.IdNumber))
		} else {
			imp.bad++
		}
	}
	w.imports = append(w.imports, imp)
	return imp
}

func (w *importWorkload) ack(imp *rosterImport, resp *sendingv1.ImportWorkersResponse) {
	w.mu.Lock()
	defer w.mu.Unlock()
	imp.acked = resp
}

// acked returns the acknowledged imports.
func (w *importWorkload) acked() []*rosterImport {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*rosterImport
	for _, imp := range w.imports {
		if imp.acked != nil {
			out = append(out, imp)
		}
	}
	return out
}

// run sends imports to the service at addr until ctx ends (or, with one set, until the import
// in progress is acknowledged), retrying a failed import with the same id and rows: a stream
// cut by a crash leaves it resumable. It returns the first error that no crash explains.
func (w *importWorkload) run(ctx context.Context, addr string, untilAcked bool) error {
	cc, err := peers.Dial(addr, peers.Options{})
	if err != nil {
		return err
	}
	defer cc.Close()
	client := sendingv1.NewRosterServiceClient(cc)
	for ctx.Err() == nil {
		imp := w.current()
		resp, err := sendImport(ctx, client, imp)
		if err == nil {
			w.ack(imp, resp)
			if untilAcked {
				return nil
			}
			continue
		}
		if permanent(err) {
			return fmt.Errorf("import %s: %w", imp.id, err)
		}
		select { // the process is crashing or restarting; try again
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// sendImport streams imp in messages of 1000 rows and returns the reply.
func sendImport(ctx context.Context, client sendingv1.RosterServiceClient, imp *rosterImport) (*sendingv1.ImportWorkersResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	stream, err := client.ImportWorkers(ctx)
	if err != nil {
		return nil, err
	}
	for start := 0; start < len(imp.rows); start += 1000 {
		end := min(start+1000, len(imp.rows))
		msg := &sendingv1.ImportWorkersRequest{ImportId: imp.id, Rows: imp.rows[start:end]}
		if end == len(imp.rows) {
			msg.Final, msg.TotalRows = true, int64(len(imp.rows)) // the import ends only when said so
		}
		if err := stream.Send(msg); err != nil {
			if errors.Is(err, io.EOF) {
				break // the service answered early (a complete import): the reply says it
			}
			return nil, err
		}
	}
	return stream.CloseAndRecv()
}

// importPlan draws the crash point a sending process starts with.
func importPlan(rng *rand.Rand) plan {
	switch rng.IntN(9) {
	case 0: // (a fresh service commits twice while it starts)
		return killAt(failpoint.StoreBeforeCommit, rng.IntN(10))
	case 1:
		return killAt(failpoint.StoreAfterCommit, rng.IntN(10))
	case 2:
		return panicAt(failpoint.StoreBeforeCommit, rng.IntN(10))
	case 3:
		return killAt(failpoint.ImportAfterBatchCommit, rng.IntN(3))
	case 4:
		return panicAt(failpoint.ImportAfterBatchCommit, rng.IntN(3))
	case 5:
		return killAt(failpoint.ImportBeforeReply, rng.IntN(3))
	case 6:
		return panicAt(failpoint.ImportBeforeReply, rng.IntN(3)) // recovered: the caller gets INTERNAL
	default:
		return plan{} // killed from outside only
	}
}

// TestCrashDuringImport crashes a sending process again and again while it imports rosters,
// and checks after every crash that every acknowledged import is on disk, row by row.
func TestCrashDuringImport(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts and crashes real processes")
	}
	rng := newRand(t)
	dir := t.TempDir()
	send := &node{t: t, kind: "sending", file: filepath.Join(dir, "sending.db"), schema: sending.Schema, addr: fixedAddr(t),
		args: []string{"-region", importRegion, "-data", dir, "-coordination", "", "-log-level", "warn"}}
	w := &importWorkload{rng: rng}
	c := newTally()
	verified := 0 // acknowledged imports checked on disk so far

	for cycle := range cycles() {
		c.cycles++
		pl := importPlan(rng)
		if !send.start(pl) {
			send.account(c, true)
			send.checkFile(c, nil)
			t.Logf("cycle %d: %s fired before the service was ready", cycle, pl)
			continue
		}
		// What the previous cycles acknowledged is what the restarted service reports.
		checkSummaries(t, send.addr, w.acked()[verified:])

		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.run(ctx, send.addr, false) }()
		select {
		case <-time.After(time.Duration(rng.IntN(1200)) * time.Millisecond): // a large import takes some 300 ms
		case <-send.p.Done(): // a crash point fired
		}
		send.kill()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("cycle %d (%s): %v\n%s", cycle, pl, err, send.logTail())
		}
		send.account(c, false)
		acked := w.acked()
		send.checkFile(c, func(db *store.DB) { checkRowsOnDisk(t, db, acked[verified:]) })
		t.Logf("cycle %d: %s; %d imports acknowledged, %d rows sent", cycle, pl, len(acked), w.nextRow)
		verified = len(acked)
	}

	// No more crashes: the import cut by the last one completes, and everything adds up.
	if !send.start(plan{}) {
		t.Fatalf("sending did not start without a crash point\n%s", send.logTail())
	}
	if err := w.run(context.Background(), send.addr, true); err != nil {
		t.Fatal(err)
	}
	all := w.acked()
	checkSummaries(t, send.addr, all)
	send.p.Stop()
	var rows, good int
	for _, imp := range all {
		s := imp.acked.GetSummary()
		rows += len(imp.rows)
		good += len(imp.good)
		if s.GetRowsReceived() != int64(len(imp.rows)) || s.GetCreated() != int64(len(imp.good)) || s.GetRejected() != int64(imp.bad) ||
			s.GetUpdated() != 0 || s.GetUnchanged() != 0 {
			t.Errorf("import %s (%d rows, %d good): summary %v; every row must count once", imp.id, len(imp.rows), len(imp.good), s)
		}
	}
	send.checkFile(c, func(db *store.DB) {
		checkRowsOnDisk(t, db, all)
		if err := db.View(func(tx *bbolt.Tx) error {
			workers, index := tx.Bucket(roster.BucketWorkers).Stats().KeyN, tx.Bucket(roster.BucketWorkerByIDHash).Stats().KeyN
			if workers != good || index != good {
				t.Errorf("%d workers and %d identity index entries on disk, want %d (one per good row sent)", workers, index, good)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("import crash test: %s; %d imports, %d rows (%d good) checked on disk after every crash", c, len(all), rows, good)
}

// checkSummaries checks that the service at addr reports each import as complete with the
// summary it acknowledged.
func checkSummaries(t *testing.T, addr string, imps []*rosterImport) {
	t.Helper()
	if len(imps) == 0 {
		return
	}
	cc, err := peers.Dial(addr, peers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := sendingv1.NewRosterServiceClient(cc)
	for _, imp := range imps {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		gi, err := client.GetImport(ctx, &sendingv1.GetImportRequest{ImportId: imp.id})
		cancel()
		if err != nil {
			t.Fatalf("GetImport %s: %v", imp.id, err)
		}
		if !gi.GetComplete() || !proto.Equal(gi.GetSummary(), imp.acked.GetSummary()) {
			t.Fatalf("import %s after a crash: complete=%v %v; it was acknowledged with %v", imp.id, gi.GetComplete(), gi.GetSummary(), imp.acked.GetSummary())
		}
	}
}

// checkRowsOnDisk checks that every good row of imps is in the roster of the data file.
func checkRowsOnDisk(t *testing.T, db *store.DB, imps []*rosterImport) {
	t.Helper()
	if err := db.View(func(tx *bbolt.Tx) error {
		workers := tx.Bucket(roster.BucketWorkers)
		for _, imp := range imps {
			for k, id := range imp.good {
				wid, err := roster.WorkerIDByIDNumber(tx, id)
				if err != nil {
					return err
				}
				if wid == "" || workers.Get([]byte(wid)) == nil {
					t.Fatalf("acknowledged import %s: good row %d (of %d) is not on disk", imp.id, k, len(imp.good))
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

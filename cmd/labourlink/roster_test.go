package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/unicode"
	"google.golang.org/grpc"

	"github.com/eastwest/labourlink/services/codes/csvimport"
	"github.com/eastwest/labourlink/services/codes/idnumber"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/grpcserver"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending"
	"github.com/eastwest/labourlink/services/sending/roster"
)

// registrar is a service that adds its gRPC services to a server.
type registrar interface{ Register(*grpc.Server) }

// serveForTest runs, in this process on a loopback listener, the service build makes on a fresh
// store (bbolt file NAME.db in a temporary directory) until the test ends; it returns the
// address and the store. Background work (Run) is not started.
func serveForTest(t *testing.T, lg *zap.Logger, name string, schema store.Schema, build func(*store.DB) (registrar, error)) (string, *store.DB) {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), name+".db"), schema, lg)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := build(db)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpcserver.New(grpcserver.Config{ServiceName: name}, lg)
	svc.Register(srv.GRPC())
	srv.SetServing()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop(context.Background())
		<-done
		db.Close()
	})
	return lis.Addr().String(), db
}

// rosterTestService runs a sending service for Guizhou in this process and returns its address
// and data file.
func rosterTestService(t *testing.T) (string, *store.DB) {
	t.Helper()
	lg := zaptest.NewLogger(t)
	return serveForTest(t, lg, "sending", sending.Schema, func(db *store.DB) (registrar, error) {
		return sending.New(db, lg, sending.Config{Region: "520000"})
	})
}

// runRoster runs `labourlink ARGS... -addr addr` and returns the exit code, stdout and stderr.
func runRoster(t *testing.T, addr string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := &cliEnv{stdout: &out, stderr: &errOut}
	code := runCLI(context.Background(), env, append(args, "-addr", addr))
	return code, out.String(), errOut.String()
}

// runOK runs `labourlink ARGS... -addr addr`, fails the test unless it exits 0, and returns its
// stdout.
func runOK(t *testing.T, addr string, args ...string) string {
	t.Helper()
	code, out, errOut := runRoster(t, addr, args...)
	if code != 0 {
		t.Fatalf("%v: exit %d\n%s\n%s", args, code, out, errOut)
	}
	return out
}

func workerCount(t *testing.T, db *store.DB) int {
	t.Helper()
	n := 0
	if err := db.View(func(tx *bbolt.Tx) error {
		n = tx.Bucket(roster.BucketWorkers).Stats().KeyN
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func testIDNumber(county string, birth string, seq int) string {
	first17 := fmt.Sprintf("%s%s%03d", county, birth, seq)
	return first17 + string(idnumber.CheckChar(first17))
}

// spreadsheetCSV is a roster as Excel saves it with "CSV UTF-8": BOM, CRLF, Chinese headers,
// cells quoted where the program chose to (lists with commas inside quotes), an empty trailing
// column, a blank row. Rows 4 and 7 are bad (phone, county); row 6 is blank.
func spreadsheetCSV() (string, []string) {
	counties := regions.Default().CountiesOf("520000")
	ids := []string{
		testIDNumber(counties[0], "19900101", 123),
		testIDNumber(counties[1], "19850615", 456),
		testIDNumber(counties[2], "19951231", 78),
		testIDNumber(counties[3], "20000229", 11),
		testIDNumber(counties[4], "19780808", 202),
	}
	lines := []string{
		`身份证号,姓名,手机号,户籍县,建档立卡,工种,学历,意向省份,可出发日期,体检合格,体检日期,`,
		fmt.Sprintf(`%s,张三,13800138000,%s,是,8212,初中,440000,2026/4/1,是,2026/1/5,`, ids[0], counties[0]),
		fmt.Sprintf(`%s,"李四",13900139000,%s,否,"8212;9313",高中,"440000,330000",2026-04-01,否,,`, ids[1], counties[1]),
		fmt.Sprintf(`%s,王五,1380013800,%s,否,,,,,否,,`, ids[2], counties[2]),
		fmt.Sprintf(`%s,"赵六",13700137000,%s,是,9333,大专,,2026-05-01,是,2026-02-01,`, ids[3], counties[3]),
		`,,,,,,,,,,,`,
		fmt.Sprintf(`%s,孙七,13600136000,440103,否,,,,,否,,`, ids[4]),
	}
	return "\ufeff" + strings.Join(lines, "\r\n") + "\r\n", ids
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func readRejects(t *testing.T, path string) ([]string, []csvimport.Row) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := csvimport.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	var rows []csvimport.Row
	for {
		row, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row)
	}
	return r.Header(), rows
}

// A new user's path: import a spreadsheet export, read the rejects file, fix it, import it, and
// run the first import again by mistake.
func TestRosterImportSpreadsheetCSV(t *testing.T) {
	t.Parallel()
	addr, db := rosterTestService(t)
	dir := t.TempDir()
	content, ids := spreadsheetCSV()
	path := filepath.Join(dir, "花名册.csv")
	writeFile(t, path, []byte(content))

	code, out, errOut := runRoster(t, addr, "roster", "import", path)
	if code != exitRejected {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"created", "rejected", "花名册.rejects.csv", "phone", "home_county", "not a county of 520000"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, id := range ids {
		if strings.Contains(out+errOut, id) {
			t.Fatal("the CLI printed an identity number")
		}
	}
	if n := workerCount(t, db); n != 3 {
		t.Fatalf("%d workers stored, want 3", n)
	}

	rejectsPath := filepath.Join(dir, "花名册.rejects.csv")
	raw, err := os.ReadFile(rejectsPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte("\ufeff")) || !bytes.Contains(raw, []byte("\r\n")) {
		t.Error("rejects file is not UTF-8 with BOM and CRLF")
	}
	header, rows := readRejects(t, rejectsPath)
	wantHeader := []string{"身份证号", "姓名", "手机号", "户籍县", "建档立卡", "工种", "学历", "意向省份", "可出发日期", "体检合格", "体检日期", "row_number", "field", "reason"}
	if strings.Join(header, "|") != strings.Join(wantHeader, "|") {
		t.Fatalf("rejects header = %q", header)
	}
	if len(rows) != 2 || rows[0].Get("row_number") != "4" || rows[0].Get("field") != "phone" ||
		rows[1].Get("row_number") != "7" || rows[1].Get("field") != "home_county" || rows[1].Get("reason") == "" {
		t.Fatalf("rejects rows: %v", rows)
	}
	if rows[0].Get("身份证号") != ids[2] || rows[0].Get("姓名") != "王五" {
		t.Errorf("rejected row lost its cells: %v", rows[0])
	}

	// The operator fixes the two cells and imports the rejects file.
	counties := regions.Default().CountiesOf("520000")
	fixed := strings.Replace(string(raw), "1380013800,", "13800138001,", 1)
	fixed = strings.Replace(fixed, ",440103,", ","+counties[5]+",", 1)
	writeFile(t, rejectsPath, []byte(fixed))
	code, out, errOut = runRoster(t, addr, "roster", "import", rejectsPath)
	if code != 0 {
		t.Fatalf("re-import of the fixed rejects: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "created") || strings.Contains(out, "rejected rows") {
		t.Errorf("fixed rejects import:\n%s", out)
	}
	if n := workerCount(t, db); n != 5 {
		t.Fatalf("%d workers after the fixed rows, want 5", n)
	}

	// The first file again: a no-op.
	code, out, _ = runRoster(t, addr, "roster", "import", path)
	if code != exitRejected || !strings.Contains(out, "imported before") {
		t.Fatalf("second run of the same file: exit %d\n%s", code, out)
	}
	if n := workerCount(t, db); n != 5 {
		t.Fatalf("second run changed the roster: %d workers", n)
	}

	// roster list and get.
	code, out, errOut = runRoster(t, addr, "roster", "list")
	if code != 0 || !strings.Contains(out, "张三") || !strings.Contains(out, "138****8000") || strings.Contains(out, ids[0]) {
		t.Fatalf("roster list: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = runRoster(t, addr, "roster", "list", "-county", counties[1], "-status", "available", "-poor", "no")
	if code != 0 || !strings.Contains(out, "李四") || strings.Contains(out, "张三") {
		t.Fatalf("roster list with filters:\n%s", out)
	}
	var workerID string
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "520000-") {
			workerID = f
		}
	}
	code, out, _ = runRoster(t, addr, "roster", "get", workerID)
	if code != 0 || !strings.Contains(out, idnumber.Mask(ids[1])) || strings.Contains(out, ids[1]) {
		t.Fatalf("roster get:\n%s", out)
	}
	code, out, _ = runRoster(t, addr, "roster", "get", "-full", "workers/"+workerID)
	if code != 0 || !strings.Contains(out, ids[1]) || !strings.Contains(out, "13900139000") {
		t.Fatalf("roster get -full:\n%s", out)
	}
	code, _, errOut = runRoster(t, addr, "roster", "list", "-status", "asleep")
	if code == 0 || !strings.Contains(errOut, "available") {
		t.Fatalf("bad -status: exit %d %s", code, errOut)
	}
}

// Excel on Chinese Windows saves "CSV (逗号分隔)" in GBK: accepted. UTF-16 ("Unicode Text") and a
// file without the required columns are refused before anything is sent.
func TestRosterImportEncodings(t *testing.T) {
	t.Parallel()
	addr, db := rosterTestService(t)
	dir := t.TempDir()
	content, _ := spreadsheetCSV()
	content = strings.TrimPrefix(content, "\ufeff")

	gbk, err := simplifiedchinese.GBK.NewEncoder().String(content)
	if err != nil {
		t.Fatal(err)
	}
	gbkPath := filepath.Join(dir, "gbk.csv")
	writeFile(t, gbkPath, []byte(gbk))
	code, out, errOut := runRoster(t, addr, "roster", "import", "-chunk", "1", gbkPath)
	if code != exitRejected || !strings.Contains(errOut, "GBK") {
		t.Fatalf("GBK import: exit %d\n%s\n%s", code, out, errOut)
	}
	if n := workerCount(t, db); n != 3 {
		t.Fatalf("%d workers from the GBK file, want 3", n)
	}
	_, rows := readRejects(t, filepath.Join(dir, "gbk.rejects.csv"))
	if len(rows) != 2 || rows[0].Get("姓名") != "王五" {
		t.Fatalf("GBK rejects: %v", rows)
	}

	u16, err := unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewEncoder().String(content)
	if err != nil {
		t.Fatal(err)
	}
	u16Path := filepath.Join(dir, "utf16.csv")
	writeFile(t, u16Path, []byte(u16))
	code, _, errOut = runRoster(t, addr, "roster", "import", u16Path)
	if code == 0 || !strings.Contains(errOut, "UTF-16") || !strings.Contains(errOut, "UTF-8") {
		t.Fatalf("UTF-16 file: exit %d, %s", code, errOut)
	}

	noPhone := filepath.Join(dir, "nophone.csv")
	writeFile(t, noPhone, []byte("身份证号,姓名,户籍县\n520102199001011234,张三,520102\n"))
	code, _, errOut = runRoster(t, addr, "roster", "import", noPhone)
	if code == 0 || !strings.Contains(errOut, "required column phone is missing") {
		t.Fatalf("file without phone column: exit %d, %s", code, errOut)
	}
	if n := workerCount(t, db); n != 3 {
		t.Fatalf("refused files changed the roster: %d workers", n)
	}
}

func TestRosterImportFlags(t *testing.T) {
	t.Parallel()
	addr, _ := rosterTestService(t)
	for _, args := range [][]string{
		{"roster", "import"},
		{"roster", "import", "a.csv", "b.csv"},
		{"roster", "import", "-chunk", "0", "a.csv"},
		{"roster", "import", "-chunk", "5001", "a.csv"},
		{"roster", "import", filepath.Join(t.TempDir(), "missing.csv")},
	} {
		if code, _, _ := runRoster(t, addr, args...); code != 1 {
			t.Errorf("%q: exit %d, want 1", args, code)
		}
	}
}

// An import id the operator chose belongs to its file: the same file again under it changes
// nothing; another file under it is refused by the service (which compares the rows), not
// answered "imported before" by the CLI, and changes nothing.
func TestRosterImportChosenIDReused(t *testing.T) {
	t.Parallel()
	addr, db := rosterTestService(t)
	dir := t.TempDir()
	content, _ := spreadsheetCSV()
	spring := filepath.Join(dir, "2026年春季名单.csv")
	writeFile(t, spring, []byte(content))
	if code, out, errOut := runRoster(t, addr, "roster", "import", "-import-id", "2026年春季名单.xlsx", spring); code != exitRejected {
		t.Fatalf("first import (%d): %s%s", code, out, errOut)
	}
	workers := workerCount(t, db)
	if code, out, errOut := runRoster(t, addr, "roster", "import", "-import-id", "2026年春季名单.xlsx", spring); code != exitRejected || !strings.Contains(out, "created        3") || workerCount(t, db) != workers {
		t.Fatalf("the same file again (%d): %s%s", code, out, errOut)
	}
	// The same roster with one phone changed: another file under the same id.
	autumn := filepath.Join(dir, "2026年秋季名单.csv")
	writeFile(t, autumn, []byte(strings.Replace(content, "13800138000", "13800138001", 1)))
	code, out, errOut := runRoster(t, addr, "roster", "import", "-import-id", "2026年春季名单.xlsx", autumn)
	if code != exitFailed || !strings.Contains(errOut, "import_id") || strings.Contains(out, "imported before") {
		t.Fatalf("another file under a used import id (%d): %s%s", code, out, errOut)
	}
	if n := workerCount(t, db); n != workers {
		t.Fatalf("%d workers after the refused import, want %d", n, workers)
	}
}

// FuzzWorkerRowFrom feeds arbitrary bytes through csvimport with the roster columns and the
// mapping to WorkerRow: no panic, row numbers increase, cells are trimmed text.
func FuzzWorkerRowFrom(f *testing.F) {
	content, _ := spreadsheetCSV()
	f.Add([]byte(content))
	gbk, _ := simplifiedchinese.GBK.NewEncoder().String(strings.TrimPrefix(content, "\ufeff"))
	f.Add([]byte(gbk))
	f.Add([]byte("id_number,full_name,phone,home_county,row_number,field,reason\n1,\"a\nb\",3,4,5,6,7\n"))
	f.Add([]byte("身份证号,姓名,手机号,户籍县\n\"x\"\"y\",  z  ,1,2\n,,,\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := csvimport.Open(bytes.NewReader(data), rosterColumns...)
		if err != nil {
			return
		}
		prev := 0
		for i := 0; i < 1000; i++ {
			row, err := r.Next()
			if err != nil {
				if _, ok := err.(*csvimport.RowError); ok {
					continue
				}
				return
			}
			wr := workerRowFrom(row)
			if wr.GetRowNumber() != int64(row.Number) || row.Number <= prev {
				t.Fatalf("row number %d after %d", wr.GetRowNumber(), prev)
			}
			prev = row.Number
			for _, cell := range []string{wr.GetIdNumber(), wr.GetFullName(), wr.GetPhone(), wr.GetHomeCounty(), wr.GetRegisteredPoor(),
				wr.GetOccupations(), wr.GetEducation(), wr.GetPreferredDestinations(), wr.GetAvailableFrom(),
				wr.GetHealthCheckPassed(), wr.GetHealthCheckDate(), wr.GetSex(), wr.GetBirthDate()} {
				if !utf8.ValidString(cell) || strings.TrimSpace(cell) != cell {
					t.Fatalf("cell %q is not trimmed UTF-8", cell)
				}
			}
			if wr.GetIdNumber() != row.Get("id_number") || wr.GetPhone() != row.Get("phone") {
				t.Fatal("cells mapped to the wrong fields")
			}
		}
	})
}

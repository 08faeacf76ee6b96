package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRosterImportLibreOfficeExports imports CSV files that LibreOffice Calc itself exported
// from a spreadsheet (testdata/README.md says how), in UTF-8 and in GBK: the good rows are
// stored, the two bad ones are named with their row and reason, and after the operator fixes
// the phone in the rejects file, importing that file creates the worker.
func TestRosterImportLibreOfficeExports(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ file, encoding string }{
		{"libreoffice-utf8.csv", "UTF-8"},
		{"libreoffice-gbk.csv", "GBK"},
	} {
		t.Run(tc.encoding, func(t *testing.T) {
			addr, db := rosterTestService(t)
			dir := t.TempDir()
			data, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "花名册.csv")
			writeFile(t, path, data)

			code, out, errOut := runRoster(t, addr, "roster", "import", path)
			if code != exitRejected || !strings.Contains(errOut, tc.encoding) {
				t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
			}
			if n := workerCount(t, db); n != 2 {
				t.Fatalf("%d workers stored, want 2\n%s", n, out)
			}
			header, rows := readRejects(t, filepath.Join(dir, "花名册.rejects.csv"))
			if len(rows) != 2 {
				t.Fatalf("rejects file has %d rows, want 2: %v", len(rows), rows)
			}
			if rows[0].Get("row_number") != "4" || rows[0].Get("field") != "id_number" ||
				rows[1].Get("row_number") != "5" || rows[1].Get("field") != "phone" {
				t.Fatalf("rejected rows: %v / %v (header %v)", rows[0], rows[1], header)
			}

			// The operator fixes the phone in the rejects file (UTF-8, whatever the input was)
			// and imports it: one more worker; the under-age row stays rejected.
			fixed, err := os.ReadFile(filepath.Join(dir, "花名册.rejects.csv"))
			if err != nil {
				t.Fatal(err)
			}
			fixedText := strings.Replace(string(fixed), "1370013700,", "13700137003,", 1)
			fixedPath := filepath.Join(dir, "fixed.csv")
			writeFile(t, fixedPath, []byte(fixedText))
			if code, out, errOut := runRoster(t, addr, "roster", "import", fixedPath); code != exitRejected { // the under-age row is still rejected
				t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
			}
			if n := workerCount(t, db); n != 3 {
				t.Fatalf("%d workers after the fixed import, want 3", n)
			}
		})
	}
}

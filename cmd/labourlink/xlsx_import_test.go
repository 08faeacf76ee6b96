package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
)

// readWorkbookRejects reads a rejects workbook: its header, its rows as maps by header name, and
// whether every cell of the identity-number and phone columns is stored as text.
func readWorkbookRejects(t *testing.T, path string) (header []string, rows []map[string]string, textIDs bool) {
	t.Helper()
	f, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sheet := f.GetSheetList()[0]
	all, err := f.GetRows(sheet)
	if err != nil || len(all) == 0 {
		t.Fatalf("rows of %s: %v %v", path, all, err)
	}
	header, textIDs = all[0], true
	for r, cells := range all[1:] {
		row := map[string]string{}
		for i, h := range header {
			if i < len(cells) {
				row[h] = cells[i]
			}
			if h == "身份证号" || h == "手机号" {
				name, _ := excelize.CoordinatesToCellName(i+1, r+2)
				typ, err := f.GetCellType(sheet, name)
				if err != nil {
					t.Fatal(err)
				}
				if typ != excelize.CellTypeSharedString && typ != excelize.CellTypeInlineString {
					textIDs = false
				}
			}
		}
		rows = append(rows, row)
	}
	return header, rows, textIDs
}

// A county clerk in a zh_CN.UTF-8 locale imports the rosters LibreOffice Calc saved as .xlsx
// (cmd/labourlink/testdata): the good rows are created, the bad ones come back in a rejects
// workbook whose identity numbers and phones are text cells (all 18 digits kept) and whose
// reasons are Chinese; a workbook whose roster is on a named sheet is read with -sheet; an
// identity number stored as a number (Excel would have rounded it) is refused on that row. Not
// parallel: the language is the run's.
func TestRosterImportXLSXInChinese(t *testing.T) {
	t.Setenv("LC_ALL", "")
	t.Setenv("LC_MESSAGES", "")
	t.Setenv("LANG", "zh_CN.UTF-8")
	prev := cliLang // the run's language, which the parallel tests after this one read
	t.Cleanup(func() { cliLang = prev })
	dir := t.TempDir()
	copyFixture := func(name string) string {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		writeFile(t, path, data)
		return path
	}
	tests := []struct {
		file        string
		args        []string
		created     int
		rejectedIDs []string // identity numbers of the rejected rows, in order
		reasonHas   string   // a word of the first reason
	}{
		{"roster.xlsx", nil, 2, []string{"520111201501010213", "520102199207080353"}, ""},
		{"roster-two-sheets.xlsx", []string{"-sheet", "花名册"}, 2, []string{"520111201501010213", "520102199207080353"}, ""},
		{"roster-numeric-id.xlsx", nil, 1, nil, "文本"},
	}
	for _, tt := range tests {
		addr, db := rosterTestService(t)
		path := copyFixture(tt.file)
		args := append([]string{"roster", "import"}, tt.args...)
		code, out, errOut := runRoster(t, addr, append(args, path)...)
		if code != exitRejected {
			t.Fatalf("%s: exit %d\n%s\n%s", tt.file, code, out, errOut)
		}
		if n := workerCount(t, db); n != tt.created {
			t.Errorf("%s: %d workers created, want %d\n%s", tt.file, n, tt.created, out)
		}
		rejects := strings.TrimSuffix(path, ".xlsx") + ".rejects.xlsx"
		header, rows, textIDs := readWorkbookRejects(t, rejects)
		if got := strings.Join(header[len(header)-3:], "|"); got != "行号|错误字段|错误原因" {
			t.Errorf("%s: rejects header ends %q", tt.file, got)
		}
		if !textIDs {
			t.Errorf("%s: an identity number or phone in the rejects workbook is not a text cell", tt.file)
		}
		if tt.rejectedIDs != nil {
			var ids []string
			for _, r := range rows {
				ids = append(ids, r["身份证号"])
			}
			if strings.Join(ids, " ") != strings.Join(tt.rejectedIDs, " ") {
				t.Errorf("%s: rejected identity numbers %v, want %v (all 18 digits)", tt.file, ids, tt.rejectedIDs)
			}
		}
		if len(rows) == 0 {
			t.Fatalf("%s: no rejected rows", tt.file)
		}
		for _, r := range rows {
			if reason := r["错误原因"]; !hasHan(reason) {
				t.Errorf("%s: row %s reason %q is not Chinese", tt.file, r["行号"], reason)
			}
		}
		if tt.reasonHas != "" && !strings.Contains(rows[0]["错误原因"], tt.reasonHas) {
			t.Errorf("%s: reason %q does not say %q", tt.file, rows[0]["错误原因"], tt.reasonHas)
		}
	}
}

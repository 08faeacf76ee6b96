package main

// Workbooks in imports: `roster import` and `vacancies import` read a sheet of an .xlsx file
// (package xlsximport) through the same row pipeline as CSV, and write the rejected rows as a
// workbook when the rejects file's name ends in .xlsx (the default for a workbook input).

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/xuri/excelize/v2"

	"github.com/eastwest/labourlink/services/codes/csvimport"
	"github.com/eastwest/labourlink/services/codes/xlsximport"
)

// The user-facing messages of workbook imports, plain English fmt formats (for a catalog).
const (
	msgSheetFlag     = "the sheet of an .xlsx file to import (default: the first sheet)"
	msgSheetOnlyXLSX = "-sheet is for .xlsx files; %s is read as CSV"
	msgFileSheet     = "sheet %q"
	msgNeedOneFile   = "give exactly one CSV or .xlsx file"
)

// importFile is the file an import reads: a CSV file, or a sheet of a workbook.
type importFile struct {
	path  string
	sheet string // the sheet asked for ("" the first); workbooks only
}

// isWorkbook reports whether a file name is an Excel workbook's (.xlsx).
func isWorkbook(path string) bool { return strings.EqualFold(filepath.Ext(path), ".xlsx") }

func (f importFile) workbook() bool { return isWorkbook(f.path) }

// open reads the file's header with columns; close releases the file.
func (f importFile) open(columns ...csvimport.Column) (r *csvimport.Reader, sheet string, close func() error, err error) {
	if f.workbook() {
		s, err := xlsximport.Open(f.path, f.sheet)
		if err != nil {
			return nil, "", nil, err
		}
		r, err := csvimport.OpenSource(s, columns...)
		if err != nil {
			s.Close()
			return nil, "", nil, fmt.Errorf("%s, "+msgFileSheet+": %w", f.path, s.Name(), err)
		}
		return r, s.Name(), s.Close, nil
	}
	if f.sheet != "" {
		return nil, "", nil, fmt.Errorf(msgSheetOnlyXLSX, f.path)
	}
	o, err := os.Open(f.path)
	if err != nil {
		return nil, "", nil, err
	}
	r, err = csvimport.Open(o, columns...)
	if err != nil {
		o.Close()
		return nil, "", nil, fmt.Errorf("%s: %w", f.path, err)
	}
	return r, "", o.Close, nil
}

// hash returns the hex SHA-256 of the file's bytes, and for a workbook of the sheet's name
// after them (another sheet is other rows).
func (f importFile) hash(sheet string) (string, error) {
	o, err := os.Open(f.path)
	if err != nil {
		return "", err
	}
	defer o.Close()
	h := sha256.New()
	if _, err := io.Copy(h, o); err != nil {
		return "", err
	}
	if f.workbook() {
		fmt.Fprintf(h, "\x00sheet:%s", sheet)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// rowWriter writes the rows of a rejects file.
type rowWriter interface {
	write(cells []string) error
	close() error // finishes the file
}

// xlsxRejects writes a rejects workbook: one sheet, the header row bold and frozen, every cell
// a text cell with the text format (@), so that Excel keeps all 18 digits of an identity number
// and the leading digits of a phone, and shows them as they were typed.
type xlsxRejects struct {
	path  string
	f     *excelize.File
	sw    *excelize.StreamWriter
	text  int // style ids
	bold  int
	row   int
	width int
}

const rejectsSheet = "rejects"

func newXLSXRejects(path string, columns int) (*xlsxRejects, error) {
	return newXLSXSheet(path, rejectsSheet, columns)
}

// newXLSXSheet starts a workbook of one sheet named sheet, of text cells under a bold, frozen
// header row (as a rejects workbook).
func newXLSXSheet(path, sheet string, columns int) (*xlsxRejects, error) {
	f := excelize.NewFile()
	x := &xlsxRejects{path: path, f: f}
	err := f.SetSheetName("Sheet1", sheet)
	if err == nil {
		x.text, err = f.NewStyle(&excelize.Style{NumFmt: 49})
	}
	if err == nil {
		x.bold, err = f.NewStyle(&excelize.Style{NumFmt: 49, Font: &excelize.Font{Bold: true}})
	}
	if err == nil {
		x.sw, err = f.NewStreamWriter(sheet)
	}
	if err == nil && columns > 0 {
		err = x.sw.SetColWidth(1, columns, 20)
	}
	if err == nil {
		err = x.sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"})
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return x, nil
}

func (x *xlsxRejects) write(cells []string) error {
	x.row++
	style := x.text
	if x.row == 1 {
		style = x.bold
	}
	row := make([]any, len(cells))
	for i, c := range cells {
		row[i] = excelize.Cell{StyleID: style, Value: c}
	}
	cell, err := excelize.CoordinatesToCellName(1, x.row)
	if err != nil {
		return err
	}
	return x.sw.SetRow(cell, row)
}

func (x *xlsxRejects) close() error {
	err := x.sw.Flush()
	if err == nil {
		err = x.f.SaveAs(x.path)
	}
	if cerr := x.f.Close(); err == nil {
		err = cerr
	}
	return err
}

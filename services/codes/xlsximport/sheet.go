// Package xlsximport reads a sheet of an Excel workbook (.xlsx) as a csvimport.Source, so that
// imports read workbooks with the same header handling and row diagnostics as CSV files.
//
// Rows are streamed (excelize's Rows iterator): a sheet of a million rows is never held in
// memory. Cells read as the spreadsheet shows them: shared and inline strings as they are,
// dates (serial numbers with a date format) as 2027/1/5 or 2027-01-05, numbers in full where a
// double holds them. Besides the values, a second streaming pass over the sheet's XML notes
// which cells are stored as numbers, so that csvimport can refuse an identity number that Excel
// turned into 5.20502199001011E+17.
package xlsximport

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/xuri/excelize/v2"

	"github.com/eastwest/labourlink/services/codes/csvimport"
)

// The messages of this package, plain English fmt formats (for a message catalog).
const (
	msgNotWorkbook = "%s is not an Excel workbook (.xlsx): %v"
	msgNoSheet     = "the workbook has no sheet named %q (its sheets: %s)"
	msgNoSheets    = "the workbook has no sheets"
	msgBadSheet    = "sheet %q: %v"
)

// Sheet is one sheet of a workbook, open for reading rows. It is a csvimport.Source.
type Sheet struct {
	name  string
	file  *excelize.File
	rows  *excelize.Rows
	types *typeScanner
	zip   *zip.ReadCloser
	n     int // rows read
}

// Open opens the sheet called name of the workbook at path, or its first sheet when name is "".
func Open(path, name string) (*Sheet, error) {
	f, err := excelize.OpenFile(path, excelize.Options{ShortDatePattern: "yyyy-mm-dd"})
	if err != nil {
		return nil, fmt.Errorf(msgNotWorkbook, path, err)
	}
	s := &Sheet{file: f}
	if err := s.open(path, name); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Sheet) open(path, name string) error {
	sheets := s.file.GetSheetList()
	if len(sheets) == 0 {
		return errors.New(msgNoSheets)
	}
	index := 0
	if name != "" {
		index = -1
		for i, sh := range sheets {
			if sh == name {
				index = i
			}
		}
		if index < 0 {
			return fmt.Errorf(msgNoSheet, name, strings.Join(sheets, ", "))
		}
	}
	s.name = sheets[index]
	var err error
	if s.rows, err = s.file.Rows(s.name); err != nil {
		return fmt.Errorf(msgBadSheet, s.name, err)
	}
	if s.zip, err = zip.OpenReader(path); err != nil {
		return fmt.Errorf(msgNotWorkbook, path, err)
	}
	part, err := sheetPart(&s.zip.Reader, index)
	if err != nil {
		return fmt.Errorf(msgBadSheet, s.name, err)
	}
	if s.types, err = newTypeScanner(&s.zip.Reader, part); err != nil {
		return fmt.Errorf(msgBadSheet, s.name, err)
	}
	return nil
}

// Name returns the sheet's name.
func (s *Sheet) Name() string { return s.name }

// Next returns the next row (an empty one for a row the sheet leaves out), io.EOF after the
// last.
func (s *Sheet) Next() (csvimport.Record, error) {
	if !s.rows.Next() {
		if err := s.rows.Error(); err != nil {
			return csvimport.Record{}, fmt.Errorf(msgBadSheet, s.name, err)
		}
		return csvimport.Record{}, io.EOF
	}
	s.n++
	cells, err := s.rows.Columns()
	if err != nil {
		return csvimport.Record{}, fmt.Errorf(msgBadSheet, s.name, err)
	}
	numeric, err := s.types.row(s.n)
	if err != nil {
		return csvimport.Record{}, fmt.Errorf(msgBadSheet, s.name, err)
	}
	return csvimport.Record{Number: s.n, Cells: cells, Numeric: numeric}, nil
}

// Offset returns the number of rows read.
func (s *Sheet) Offset() int64 { return int64(s.n) }

// Close releases the workbook.
func (s *Sheet) Close() error {
	var errs []error
	if s.types != nil {
		errs = append(errs, s.types.close())
	}
	if s.zip != nil {
		errs = append(errs, s.zip.Close())
	}
	if s.rows != nil {
		errs = append(errs, s.rows.Close())
	}
	errs = append(errs, s.file.Close())
	return errors.Join(errs...)
}

package xlsximport

import (
	"archive/zip"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/xuri/excelize/v2"
)

// sheetPart returns the zip path of the index-th sheet's XML, from xl/workbook.xml and its
// relationships (the order of GetSheetList).
func sheetPart(z *zip.Reader, index int) (string, error) {
	var wb struct {
		Sheets []struct {
			RID string `xml:"http://schemas.openxmlformats.org/officeDocument/2006/relationships id,attr"`
		} `xml:"sheets>sheet"`
	}
	var rels struct {
		Rels []struct {
			ID     string `xml:"Id,attr"`
			Target string `xml:"Target,attr"`
		} `xml:"Relationship"`
	}
	if err := decodePart(z, "xl/workbook.xml", &wb); err != nil {
		return "", err
	}
	if err := decodePart(z, "xl/_rels/workbook.xml.rels", &rels); err != nil {
		return "", err
	}
	if index >= len(wb.Sheets) {
		return "", errors.New("the sheet is not in xl/workbook.xml")
	}
	for _, r := range rels.Rels {
		if r.ID == wb.Sheets[index].RID {
			if strings.HasPrefix(r.Target, "/") {
				return strings.TrimPrefix(r.Target, "/"), nil
			}
			return path.Join("xl", r.Target), nil
		}
	}
	return "", fmt.Errorf("relationship %s of the sheet is missing", wb.Sheets[index].RID)
}

func decodePart(z *zip.Reader, name string, v any) error {
	f, err := openPart(z, name)
	if err != nil {
		return err
	}
	defer f.Close()
	return xml.NewDecoder(f).Decode(v)
}

// openPart opens a part of the package, matching its name as excelize does (case-insensitive).
func openPart(z *zip.Reader, name string) (io.ReadCloser, error) {
	for _, f := range z.File {
		if strings.EqualFold(f.Name, name) {
			return f.Open()
		}
	}
	return nil, fmt.Errorf("the workbook has no %s", name)
}

// typeScanner streams a sheet's XML beside excelize's Rows iterator and tells, for each row,
// which cells are stored as numbers (type n, or no type, with a value).
type typeScanner struct {
	part    io.ReadCloser
	dec     *xml.Decoder
	pending *pendingRow // a row read ahead, with a number past the one asked for
	done    bool
}

type pendingRow struct {
	number  int
	numeric []bool
}

func newTypeScanner(z *zip.Reader, name string) (*typeScanner, error) {
	part, err := openPart(z, name)
	if err != nil {
		return nil, err
	}
	return &typeScanner{part: part, dec: xml.NewDecoder(part)}, nil
}

func (t *typeScanner) close() error { return t.part.Close() }

// row returns the numeric cells of row n (nil for a row the sheet leaves out). Rows are asked
// for in increasing order.
func (t *typeScanner) row(n int) ([]bool, error) {
	for {
		if p := t.pending; p != nil {
			if p.number > n {
				return nil, nil
			}
			t.pending = nil
			if p.number == n {
				return p.numeric, nil
			}
			continue // a row before n: excelize has passed it
		}
		if t.done {
			return nil, nil
		}
		p, err := t.next(n)
		if err != nil {
			return nil, err
		}
		t.pending = p
	}
}

// next reads the next row element; n is its number when it has none (rows without numbers
// follow one another).
func (t *typeScanner) next(n int) (*pendingRow, error) {
	var p *pendingRow
	col := 0
	for {
		tok, err := t.dec.Token()
		if err == io.EOF {
			t.done = true
			return p, nil
		}
		if err != nil {
			return nil, err
		}
		switch el := tok.(type) {
		case xml.StartElement:
			switch el.Name.Local {
			case "row":
				p = &pendingRow{number: n}
				if r := attr(el, "r"); r != "" {
					if p.number, err = strconv.Atoi(r); err != nil {
						return nil, fmt.Errorf("row number %q: %v", r, err)
					}
				}
			case "c":
				if p == nil {
					continue
				}
				col++
				if r := attr(el, "r"); r != "" {
					if col, _, err = excelize.CellNameToCoordinates(r); err != nil {
						return nil, err
					}
				}
				if typ := attr(el, "t"); typ != "" && typ != "n" {
					continue
				}
				hasValue, err := hasV(t.dec)
				if err != nil {
					return nil, err
				}
				if hasValue {
					for len(p.numeric) < col {
						p.numeric = append(p.numeric, false)
					}
					p.numeric[col-1] = true
				}
			}
		case xml.EndElement:
			switch el.Name.Local {
			case "row":
				if p != nil {
					return p, nil
				}
			case "sheetData":
				t.done = true
				return p, nil
			}
		}
	}
}

// hasV reads the rest of a c element and reports whether it has a non-empty v.
func hasV(dec *xml.Decoder) (bool, error) {
	var c struct {
		V string `xml:"v"`
	}
	// DecodeElement needs the start element; the c's own is consumed, so read its children.
	depth, has := 1, false
	for depth > 0 {
		tok, err := dec.Token()
		if err != nil {
			return false, err
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if depth == 1 && el.Name.Local == "v" {
				if err := dec.DecodeElement(&c.V, &el); err != nil {
					return false, err
				}
				has = has || strings.TrimSpace(c.V) != ""
				continue
			}
			depth++
		case xml.EndElement:
			depth--
		}
	}
	return has, nil
}

func attr(el xml.StartElement, name string) string {
	for _, a := range el.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

package regions

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
)

// Load parses a division table from fsys, which must hold provinces.csv,
// cities.csv and areas.csv in the layout of the china-division package (see
// data/SOURCE.md): 2-digit province codes, 4-digit prefecture codes and
// 6-digit county codes, each with a quoted or plain name and the codes of its
// parents. Every code must be well formed, unique, and agree with its parents.
func Load(fsys fs.FS) (*Table, error) {
	t := &Table{
		regions:  make(map[string]Region),
		counties: make(map[string]Region),
		byProv:   make(map[string][]string),
		prefix2:  make(map[string]bool),
	}

	provinces, err := readTable(fsys, "provinces.csv", "code", "name")
	if err != nil {
		return nil, err
	}
	for _, row := range provinces {
		code, name := row.get("code"), row.get("name")
		if !isDigits(code, 2) || code == "00" {
			return nil, row.errorf("province code %q is not 2 digits", code)
		}
		if name == "" {
			return nil, row.errorf("province %s has no name", code)
		}
		full := code + "0000"
		if _, dup := t.regions[full]; dup {
			return nil, row.errorf("duplicate province code %s", code)
		}
		r := Region{Code: full, Name: name, Level: Province, Province: full}
		t.regions[full] = r
		t.provinces = append(t.provinces, r)
		t.byProv[full] = nil
		t.prefix2[code] = true
	}
	if len(t.provinces) == 0 {
		return nil, errors.New("provinces.csv: no provinces")
	}

	cities, err := readTable(fsys, "cities.csv", "code", "name", "provinceCode")
	if err != nil {
		return nil, err
	}
	for _, row := range cities {
		code, name, prov := row.get("code"), row.get("name"), row.get("provinceCode")
		if !isDigits(code, 4) || code[2:] == "00" {
			return nil, row.errorf("prefecture code %q is not 4 digits ending in 01..99", code)
		}
		if name == "" {
			return nil, row.errorf("prefecture %s has no name", code)
		}
		if prov != code[:2] || !t.prefix2[prov] {
			return nil, row.errorf("prefecture %s: province %q does not match a known province", code, prov)
		}
		full := code + "00"
		if _, dup := t.regions[full]; dup {
			return nil, row.errorf("duplicate prefecture code %s", code)
		}
		t.regions[full] = Region{Code: full, Name: name, Level: Prefecture, Province: prov + "0000"}
	}

	areas, err := readTable(fsys, "areas.csv", "code", "name", "cityCode", "provinceCode")
	if err != nil {
		return nil, err
	}
	for _, row := range areas {
		code, name := row.get("code"), row.get("name")
		city, prov := row.get("cityCode"), row.get("provinceCode")
		if !isDigits(code, 6) {
			return nil, row.errorf("county code %q is not 6 digits", code)
		}
		if name == "" {
			return nil, row.errorf("county %s has no name", code)
		}
		if city != code[:4] || prov != code[:2] {
			return nil, row.errorf("county %s: prefecture %q or province %q does not match the code", code, city, prov)
		}
		parent, ok := t.regions[city+"00"]
		if !ok || parent.Level != Prefecture {
			return nil, row.errorf("county %s: prefecture %s is not in cities.csv", code, city)
		}
		if _, dup := t.counties[code]; dup {
			return nil, row.errorf("duplicate county code %s", code)
		}
		r := Region{Code: code, Name: name, Level: County, Province: prov + "0000"}
		if code[4:] == "00" {
			// A prefecture-level city without counties (东莞市 441900) is
			// listed again as its own county-level unit. It must be the
			// prefecture itself, with the same name.
			if parent.Name != name {
				return nil, row.errorf("county %s (%s) has a prefecture code but a different name from %s", code, name, parent.Name)
			}
		} else {
			t.regions[code] = r
		}
		t.counties[code] = r
		t.byProv[r.Province] = append(t.byProv[r.Province], code)
	}

	for p := range t.byProv {
		sort.Strings(t.byProv[p])
	}
	sortRegions(t.provinces)
	return t, nil
}

// csvRow is one data row of a CSV table, with its line for messages.
type csvRow struct {
	file   string
	line   int
	fields []string
	index  map[string]int
}

func (r csvRow) get(column string) string { return r.fields[r.index[column]] }

func (r csvRow) errorf(format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", r.file, r.line, fmt.Sprintf(format, args...))
}

// readTable reads a CSV file with a header that has at least the given
// columns.
func readTable(fsys fs.FS, name string, columns ...string) ([]csvRow, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseTable(f, name, columns...)
}

func parseTable(r io.Reader, name string, columns ...string) ([]csvRow, error) {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("%s: empty file", name)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	index := make(map[string]int, len(header))
	for i, h := range header {
		index[h] = i
	}
	for _, c := range columns {
		if _, ok := index[c]; !ok {
			return nil, fmt.Errorf("%s: no column %q in header %q", name, c, header)
		}
	}
	var rows []csvRow
	for {
		fields, err := cr.Read()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		rows = append(rows, csvRow{file: name, line: line, fields: fields, index: index})
	}
}

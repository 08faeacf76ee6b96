// Package occupation provides the occupation codes labourlink accepts: the
// 436 unit groups of ISCO-08 (4-digit codes such as 8212 "Electrical and
// electronic equipment assemblers") plus General, for vacancies that take
// general labour with no experience required.
//
// The ISCO-08 list is embedded (see data/SOURCE.md).
package occupation

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
)

// General is the code of general labour, no experience required. A vacancy
// with this occupation takes any worker.
const General = "GENERAL"

// GeneralTitle is the title of General.
const GeneralTitle = "General labour, no experience required"

// UnitGroupCount is the number of ISCO-08 unit groups.
const UnitGroupCount = 436

// Occupation is one accepted occupation code with its English title.
type Occupation struct {
	Code  string // 4-digit ISCO-08 unit group, or General
	Title string
}

//go:embed data/isco08_unit_groups.csv
var unitGroupsCSV []byte

var (
	titles = map[string]string{} // code -> title, General included
	all    []Occupation          // sorted by code, General last
)

func init() {
	groups, err := parseUnitGroups(bytes.NewReader(unitGroupsCSV))
	if err != nil {
		// The embedded file is checked by the package tests.
		panic("occupation: embedded ISCO-08 list: " + err.Error())
	}
	for _, o := range groups {
		titles[o.Code] = o.Title
	}
	titles[General] = GeneralTitle
	all = append(groups, Occupation{Code: General, Title: GeneralTitle})
}

// parseUnitGroups reads the code,title CSV and checks every code is 4
// digits, unique and in ascending order, with a title.
func parseUnitGroups(r io.Reader) ([]Occupation, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 2
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if !slices.Equal(header, []string{"code", "title"}) {
		return nil, fmt.Errorf("header is %q, want [code title]", header)
	}
	var out []Occupation
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		o := Occupation{Code: rec[0], Title: rec[1]}
		if !isUnitGroupCode(o.Code) {
			return nil, fmt.Errorf("line %d: code %q is not 4 digits", line, o.Code)
		}
		if o.Title == "" {
			return nil, fmt.Errorf("line %d: code %s has no title", line, o.Code)
		}
		if n := len(out); n > 0 && out[n-1].Code >= o.Code {
			return nil, fmt.Errorf("line %d: code %s is out of order or repeated", line, o.Code)
		}
		out = append(out, o)
	}
	if len(out) == 0 {
		return nil, errors.New("no unit groups")
	}
	return out, nil
}

func isUnitGroupCode(s string) bool {
	if len(s) != 4 {
		return false
	}
	for i := 0; i < 4; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Known reports whether code is an ISCO-08 unit group or General. Codes are
// exact: "8212", not "821" or " 8212".
func Known(code string) bool {
	_, ok := titles[code]
	return ok
}

// Title returns the English title of a known code, or "" for an unknown one.
func Title(code string) string {
	return titles[code]
}

// All returns every known occupation sorted by code: the 436 ISCO-08 unit
// groups, then General. The caller may modify the result.
func All() []Occupation {
	return slices.Clone(all)
}

// Fits reports whether a worker who can do workerOccupations fits a vacancy
// for vacancyOccupation: a General vacancy takes anyone; any other known code
// needs the worker to list it. An unknown vacancy occupation fits no one.
func Fits(workerOccupations []string, vacancyOccupation string) bool {
	if vacancyOccupation == General {
		return true
	}
	if !Known(vacancyOccupation) {
		return false
	}
	return slices.Contains(workerOccupations, vacancyOccupation)
}

// Package regions provides the GB/T 2260 administrative division table of
// mainland China (provinces, prefectures and counties) and the default
// east–west cooperation pairings between receiving and sending provinces.
//
// The data is embedded in the binary (see data/SOURCE.md). All codes handled
// by this package are 6-digit GB/T 2260 codes: province 520000 (贵州省),
// prefecture 520100 (贵阳市), county 520102 (南明区).
package regions

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"sync"
)

//go:embed data/provinces.csv data/cities.csv data/areas.csv data/pairings.csv
var embedded embed.FS

// Level is the level of a division in the GB/T 2260 hierarchy.
type Level int

// Division levels. The zero value is not a level.
const (
	Province   Level = iota + 1 // 省级: province, autonomous region, municipality
	Prefecture                  // 地级: prefecture-level city, prefecture, league
	County                      // 县级: county, district, county-level city, banner
)

// String returns the English name of the level.
func (l Level) String() string {
	switch l {
	case Province:
		return "province"
	case Prefecture:
		return "prefecture"
	case County:
		return "county"
	default:
		return fmt.Sprintf("Level(%d)", int(l))
	}
}

// Region is one division of the table.
type Region struct {
	Code     string // 6-digit GB/T 2260 code
	Name     string // Chinese name, e.g. 贵州省
	Level    Level
	Province string // 6-digit code of the province the region belongs to (itself for a province)
}

// ErrInvalid is wrapped by every error this package returns for a code that
// is malformed, unknown or of the wrong kind; test with errors.Is.
var ErrInvalid = errors.New("invalid division code")

// codeError is a validation failure: Error gives the reason alone, in plain
// English, and errors.Is(err, ErrInvalid) holds.
type codeError struct{ reason string }

func (e *codeError) Error() string { return e.reason }
func (e *codeError) Unwrap() error { return ErrInvalid }

func invalidf(format string, args ...any) error {
	return &codeError{reason: fmt.Sprintf(format, args...)}
}

// Table is a parsed division table. It is immutable after Load and safe for
// concurrent use.
type Table struct {
	regions   map[string]Region   // every code, by 6-digit code; a prefecture wins over its county twin
	counties  map[string]Region   // county-level codes
	byProv    map[string][]string // province code -> sorted county codes
	prefix2   map[string]bool     // 2-digit province prefixes
	provinces []Region            // sorted by code
}

var (
	defaultOnce  sync.Once
	defaultTable *Table
)

// Default returns the table parsed from the embedded data. It is parsed once,
// on first use. The embedded data is checked by the package tests, so Default
// panics only if the binary was built from broken data.
func Default() *Table {
	defaultOnce.Do(func() {
		sub, err := fs.Sub(embedded, "data")
		if err == nil {
			defaultTable, err = Load(sub)
		}
		if err != nil {
			panic("regions: embedded division table: " + err.Error())
		}
	})
	return defaultTable
}

// Lookup returns the region with the given 6-digit code. A code that is both
// a prefecture and its own county-level unit (东莞市 441900, 中山市 442000,
// 儋州市 460400) is returned as a prefecture; IsCounty is true for it too.
func (t *Table) Lookup(code string) (Region, bool) {
	r, ok := t.regions[code]
	return r, ok
}

// Name returns the Chinese name of the code, or "" if the code is unknown.
func (t *Table) Name(code string) string {
	return t.regions[code].Name
}

// IsProvince reports whether code is the 6-digit code of a province.
func (t *Table) IsProvince(code string) bool {
	r, ok := t.regions[code]
	return ok && r.Level == Province
}

// IsCounty reports whether code is a county-level division: a county,
// district, county-level city or banner, or a prefecture-level city that has
// no counties and stands as its own county-level unit (e.g. 东莞市 441900).
// A hometown or a work location must be such a code.
func (t *Table) IsCounty(code string) bool {
	_, ok := t.counties[code]
	return ok
}

// ProvinceOf returns the 6-digit province code of any code in the table, or
// "" if the code is unknown.
func (t *Table) ProvinceOf(code string) string {
	return t.regions[code].Province
}

// CountiesOf returns the sorted county-level codes of a province, or nil if
// province is not a province code. The caller may modify the result.
func (t *Table) CountiesOf(province string) []string {
	cs, ok := t.byProv[province]
	if !ok {
		return nil
	}
	return append([]string(nil), cs...)
}

// Provinces returns all provinces sorted by code. The caller may modify the
// result.
func (t *Table) Provinces() []Region {
	return append([]Region(nil), t.provinces...)
}

// ProvinceByPrefix2 reports whether prefix, exactly two digits, is the start
// of a province code ("52" for 520000). Use it where only the first two digits
// are reliable, as in a resident identity number, whose first six digits may
// name a county that has since been renamed or merged.
func (t *Table) ProvinceByPrefix2(prefix string) bool {
	return len(prefix) == 2 && t.prefix2[prefix]
}

// CheckCode returns nil if code is any code in the table, else an error
// wrapping ErrInvalid that says what is wrong.
func (t *Table) CheckCode(code string) error {
	if !isDigits(code, 6) {
		return invalidf("%q is not a 6-digit GB/T 2260 code", code)
	}
	if _, ok := t.regions[code]; !ok {
		return invalidf("%s is not a GB/T 2260 code", code)
	}
	return nil
}

// CheckCountyIn returns nil if code is a county-level code (see IsCounty) of
// the given province, else an error wrapping ErrInvalid with the reason, e.g.
// "520102 is not a county of 440000 (广东省)".
func (t *Table) CheckCountyIn(code, province string) error {
	if !t.IsProvince(province) {
		if err := t.CheckCode(province); err != nil {
			return invalidf("province: %v", err)
		}
		return invalidf("%s (%s) is not a province code", province, t.Name(province))
	}
	if err := t.CheckCode(code); err != nil {
		return err
	}
	c, ok := t.counties[code]
	if !ok {
		r := t.regions[code]
		return invalidf("%s (%s) is a %s, not a county", code, r.Name, r.Level)
	}
	if c.Province != province {
		return invalidf("%s is not a county of %s (%s)", code, province, t.Name(province))
	}
	return nil
}

// Len returns the number of distinct codes in the table.
func (t *Table) Len() int { return len(t.regions) }

func sortRegions(rs []Region) {
	sort.Slice(rs, func(i, j int) bool { return rs[i].Code < rs[j].Code })
}

func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

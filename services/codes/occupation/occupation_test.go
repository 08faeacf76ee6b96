package occupation

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func TestEmbeddedListParses(t *testing.T) {
	groups, err := parseUnitGroups(bytes.NewReader(unitGroupsCSV))
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != UnitGroupCount {
		t.Fatalf("got %d unit groups, want %d", len(groups), UnitGroupCount)
	}
}

func TestCounts(t *testing.T) {
	all := All()
	if len(all) != UnitGroupCount+1 {
		t.Fatalf("All() has %d entries, want %d", len(all), UnitGroupCount+1)
	}
	if all[len(all)-1] != (Occupation{General, GeneralTitle}) {
		t.Errorf("last entry = %+v, want General", all[len(all)-1])
	}
	if !slices.IsSortedFunc(all, func(a, b Occupation) int { return strings.Compare(a.Code, b.Code) }) {
		t.Error("All() not sorted by code")
	}
	// ISCO-08 has 10 major, 43 sub-major and 130 minor groups, and these
	// unit group counts per major group.
	wantMajor := map[byte]int{'0': 3, '1': 31, '2': 92, '3': 84, '4': 29, '5': 40, '6': 18, '7': 66, '8': 40, '9': 33}
	major := map[byte]int{}
	subMajor := map[string]bool{}
	minor := map[string]bool{}
	for _, o := range all[:UnitGroupCount] {
		major[o.Code[0]]++
		subMajor[o.Code[:2]] = true
		minor[o.Code[:3]] = true
	}
	for m, want := range wantMajor {
		if major[m] != want {
			t.Errorf("major group %c: %d unit groups, want %d", m, major[m], want)
		}
	}
	if len(subMajor) != 43 || len(minor) != 130 {
		t.Errorf("got %d sub-major and %d minor groups, want 43 and 130", len(subMajor), len(minor))
	}
	// A unit group ending in 0 is the only unit group of its minor group.
	for _, o := range all[:UnitGroupCount] {
		if o.Code[3] != '0' {
			continue
		}
		for _, p := range all[:UnitGroupCount] {
			if p.Code != o.Code && p.Code[:3] == o.Code[:3] {
				t.Errorf("%s shares minor group %s with %s", o.Code, o.Code[:3], p.Code)
			}
		}
	}
}

func TestTitles(t *testing.T) {
	tests := map[string]string{
		"8212":  "Electrical and electronic equipment assemblers",
		"9313":  "Building construction labourers",
		"8153":  "Sewing machine operators",
		"9333":  "Freight handlers",
		"9321":  "Hand packers",
		"7112":  "Bricklayers and related workers",
		"5120":  "Cooks",
		"0110":  "Commissioned armed forces officers",
		"9629":  "Elementary workers not elsewhere classified",
		"1111":  "Legislators",
		"0310":  "Armed forces occupations, other ranks",
		General: "General labour, no experience required",
	}
	for code, want := range tests {
		if !Known(code) {
			t.Errorf("Known(%q) = false", code)
		}
		if got := Title(code); got != want {
			t.Errorf("Title(%q) = %q, want %q", code, got, want)
		}
	}
}

func TestUnknown(t *testing.T) {
	for _, code := range []string{"", "8", "82", "821", "8200", "8210", "82120", " 8212", "8212 ", "0000", "1000", "9999", "general", "General", "ISCO8212"} {
		if Known(code) {
			t.Errorf("Known(%q) = true", code)
		}
		if Title(code) != "" {
			t.Errorf("Title(%q) = %q, want empty", code, Title(code))
		}
	}
}

func TestFits(t *testing.T) {
	tests := []struct {
		name    string
		worker  []string
		vacancy string
		want    bool
	}{
		{"general takes anyone", nil, General, true},
		{"general takes a skilled worker", []string{"8212"}, General, true},
		{"listed", []string{"9313", "8212"}, "8212", true},
		{"not listed", []string{"9313"}, "8212", false},
		{"no occupations", nil, "8212", false},
		{"general worker does not fit a skilled vacancy", []string{General}, "8153", false},
		{"unknown vacancy code", []string{"8888"}, "8888", false},
		{"empty vacancy", []string{""}, "", false},
	}
	for _, tt := range tests {
		if got := Fits(tt.worker, tt.vacancy); got != tt.want {
			t.Errorf("%s: Fits(%q, %q) = %v, want %v", tt.name, tt.worker, tt.vacancy, got, tt.want)
		}
	}
}

func TestAllIsACopy(t *testing.T) {
	a := All()
	a[0].Title = "changed"
	if All()[0].Title == "changed" {
		t.Error("All shares its slice with callers")
	}
}

func TestParseUnitGroupsErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty", "", "header"},
		{"bad header", "id,name\n", "want [code title]"},
		{"no rows", "code,title\n", "no unit groups"},
		{"short code", "code,title\n821,x\n", `code "821" is not 4 digits`},
		{"no title", "code,title\n8212,\n", "has no title"},
		{"order", "code,title\n8212,a\n8211,b\n", "line 3: code 8211 is out of order"},
		{"duplicate", "code,title\n8212,a\n8212,b\n", "repeated"},
		{"extra field", "code,title\n8212,a,b\n", "wrong number of fields"},
	}
	for _, tt := range tests {
		_, err := parseUnitGroups(strings.NewReader(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want containing %q", tt.name, err, tt.want)
		}
	}
}

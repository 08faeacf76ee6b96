package regions

import (
	"errors"
	"io/fs"
	"sort"
	"strings"
	"testing"
	"testing/fstest"
)

func TestEmbeddedDataLoads(t *testing.T) {
	sub, err := fs.Sub(embedded, "data")
	if err != nil {
		t.Fatal(err)
	}
	tab, err := Load(sub)
	if err != nil {
		t.Fatalf("Load(embedded): %v", err)
	}
	// Default must not panic and must agree with a fresh load.
	if got, want := Default().Len(), tab.Len(); got != want {
		t.Fatalf("Default().Len() = %d, want %d", got, want)
	}
	if Default() != Default() {
		t.Fatal("Default() returned different tables")
	}
}

func TestCounts(t *testing.T) {
	tab := Default()
	provs := tab.Provinces()
	if len(provs) != 31 {
		t.Fatalf("got %d provinces, want 31", len(provs))
	}
	if !sort.SliceIsSorted(provs, func(i, j int) bool { return provs[i].Code < provs[j].Code }) {
		t.Error("Provinces() not sorted")
	}
	var prefectures, counties int
	for code, r := range tab.regions {
		if r.Code != code {
			t.Errorf("region %s has code %s", code, r.Code)
		}
		if !tab.IsProvince(r.Province) {
			t.Errorf("%s (%s): province %s does not exist", code, r.Name, r.Province)
		}
		if r.Province[:2] != code[:2] {
			t.Errorf("%s: province %s does not share its prefix", code, r.Province)
		}
		if r.Level == Prefecture {
			prefectures++
		}
	}
	for _, p := range provs {
		cs := tab.CountiesOf(p.Code)
		if len(cs) == 0 {
			t.Errorf("province %s (%s) has no counties", p.Code, p.Name)
		}
		if !sort.StringsAreSorted(cs) {
			t.Errorf("CountiesOf(%s) not sorted", p.Code)
		}
		for _, c := range cs {
			if !tab.IsCounty(c) {
				t.Errorf("CountiesOf(%s) lists %s, which is not a county", p.Code, c)
			}
			if got := tab.ProvinceOf(c); got != p.Code {
				t.Errorf("ProvinceOf(%s) = %s, want %s", c, got, p.Code)
			}
			if tab.Name(c) == "" {
				t.Errorf("county %s has no name", c)
			}
		}
		counties += len(cs)
	}
	if prefectures != 342 {
		t.Errorf("got %d prefectures, want 342", prefectures)
	}
	if counties != 2978 {
		t.Errorf("got %d counties, want 2978", counties)
	}
	if got, want := tab.Len(), 31+342+2978-3; got != want {
		t.Errorf("Len() = %d, want %d (3 prefectures double as counties)", got, want)
	}
}

func TestLookup(t *testing.T) {
	tab := Default()
	tests := []struct {
		code     string
		name     string
		level    Level
		province string
	}{
		{"520000", "贵州省", Province, "520000"},
		{"440000", "广东省", Province, "440000"},
		{"110000", "北京市", Province, "110000"},
		{"650000", "新疆维吾尔自治区", Province, "650000"},
		{"520100", "贵阳市", Prefecture, "520000"},
		{"440300", "深圳市", Prefecture, "440000"},
		{"520102", "南明区", County, "520000"},
		{"522301", "兴义市", County, "520000"},
		{"440106", "天河区", County, "440000"},
		{"441900", "东莞市", Prefecture, "440000"},
	}
	for _, tt := range tests {
		r, ok := tab.Lookup(tt.code)
		if !ok {
			t.Errorf("Lookup(%s): not found", tt.code)
			continue
		}
		want := Region{Code: tt.code, Name: tt.name, Level: tt.level, Province: tt.province}
		if r != want {
			t.Errorf("Lookup(%s) = %+v, want %+v", tt.code, r, want)
		}
		if got := tab.Name(tt.code); got != tt.name {
			t.Errorf("Name(%s) = %q, want %q", tt.code, got, tt.name)
		}
		if got := tab.ProvinceOf(tt.code); got != tt.province {
			t.Errorf("ProvinceOf(%s) = %q, want %q", tt.code, got, tt.province)
		}
		if got := tab.IsProvince(tt.code); got != (tt.level == Province) {
			t.Errorf("IsProvince(%s) = %v", tt.code, got)
		}
	}
}

func TestPrefectureWithoutCounties(t *testing.T) {
	tab := Default()
	for _, code := range []string{"441900", "442000", "460400"} {
		if !tab.IsCounty(code) {
			t.Errorf("IsCounty(%s) = false, want true: it is its own county-level unit", code)
		}
		if err := tab.CheckCountyIn(code, code[:2]+"0000"); err != nil {
			t.Errorf("CheckCountyIn(%s): %v", code, err)
		}
	}
	if tab.IsCounty("520100") {
		t.Error("IsCounty(520100) = true, want false: 贵阳市 has counties")
	}
}

func TestUnknownCodes(t *testing.T) {
	tab := Default()
	for _, code := range []string{"", "52", "5200", "999999", "520199", "52010", "5201020", "abcdef", "000000", "990000"} {
		if _, ok := tab.Lookup(code); ok {
			t.Errorf("Lookup(%q) found a region", code)
		}
		if tab.Name(code) != "" || tab.ProvinceOf(code) != "" || tab.IsProvince(code) || tab.IsCounty(code) {
			t.Errorf("%q: unknown code answered as known", code)
		}
		if tab.CountiesOf(code) != nil {
			t.Errorf("CountiesOf(%q) != nil", code)
		}
		if err := tab.CheckCode(code); !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckCode(%q) = %v, want ErrInvalid", code, err)
		}
	}
	if tab.CountiesOf("520100") != nil {
		t.Error("CountiesOf(prefecture) != nil")
	}
}

func TestProvinceByPrefix2(t *testing.T) {
	tab := Default()
	for _, p := range []string{"11", "44", "52", "65", "15"} {
		if !tab.ProvinceByPrefix2(p) {
			t.Errorf("ProvinceByPrefix2(%q) = false", p)
		}
	}
	for _, p := range []string{"", "5", "520", "00", "10", "71", "81", "82", "99", "ab"} {
		if tab.ProvinceByPrefix2(p) {
			t.Errorf("ProvinceByPrefix2(%q) = true", p)
		}
	}
}

func TestCheckCountyIn(t *testing.T) {
	tab := Default()
	tests := []struct {
		code, province string
		want           string // "" for no error
	}{
		{"520102", "520000", ""},
		{"440106", "440000", ""},
		{"520102", "440000", "520102 is not a county of 440000 (广东省)"},
		{"999999", "520000", "999999 is not a GB/T 2260 code"},
		{"52010", "520000", `"52010" is not a 6-digit GB/T 2260 code`},
		{"520100", "520000", "520100 (贵阳市) is a prefecture, not a county"},
		{"520000", "520000", "520000 (贵州省) is a province, not a county"},
		{"520102", "520100", "520100 (贵阳市) is not a province code"},
		{"520102", "990000", "province: 990000 is not a GB/T 2260 code"},
	}
	for _, tt := range tests {
		err := tab.CheckCountyIn(tt.code, tt.province)
		if tt.want == "" {
			if err != nil {
				t.Errorf("CheckCountyIn(%s, %s) = %v, want nil", tt.code, tt.province, err)
			}
			continue
		}
		if err == nil || err.Error() != tt.want {
			t.Errorf("CheckCountyIn(%s, %s) = %v, want %q", tt.code, tt.province, err, tt.want)
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckCountyIn(%s, %s): error does not wrap ErrInvalid", tt.code, tt.province)
		}
	}
}

func TestDefaultPairings(t *testing.T) {
	tab := Default()
	ps := DefaultPairings()
	if len(ps) != 11 {
		t.Errorf("got %d pairings, want 11", len(ps))
	}
	want := map[Pairing]bool{
		{Receiving: "440000", Sending: "520000"}: false, // 广东 ↔ 贵州
		{Receiving: "440000", Sending: "450000"}: false, // 广东 ↔ 广西
		{Receiving: "330000", Sending: "510000"}: false, // 浙江 ↔ 四川
	}
	for _, p := range ps {
		if !tab.IsProvince(p.Receiving) || !tab.IsProvince(p.Sending) {
			t.Errorf("pairing %v names a non-province", p)
		}
		if _, ok := want[p]; ok {
			want[p] = true
		}
	}
	for p, found := range want {
		if !found {
			t.Errorf("pairing %v (%s-%s) missing", p, tab.Name(p.Receiving), tab.Name(p.Sending))
		}
	}
	ps[0].Receiving = "changed"
	if DefaultPairings()[0].Receiving == "changed" {
		t.Error("DefaultPairings shares its slice with callers")
	}
}

func TestParsePairingsErrors(t *testing.T) {
	tab := Default()
	tests := []struct{ name, in, want string }{
		{"empty", "", "empty file"},
		{"no column", "a,b\n1,2\n", `no column "receiving_code"`},
		{"not province", "receiving_code,sending_code\n440100,520000\n", `"440100" is not a province code`},
		{"self", "receiving_code,sending_code\n440000,440000\n", "paired with itself"},
		{"duplicate", "receiving_code,sending_code\n440000,520000\n440000,520000\n", "pairings:3: duplicate pairing 440000-520000"},
	}
	for _, tt := range tests {
		_, err := ParsePairings(strings.NewReader(tt.in), tab)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want containing %q", tt.name, err, tt.want)
		}
	}
}

func TestLoadRejectsBrokenData(t *testing.T) {
	good := map[string]string{
		"provinces.csv": "code,name\n52,\"贵州省\"\n",
		"cities.csv":    "code,name,provinceCode\n5201,\"贵阳市\",52\n",
		"areas.csv":     "code,name,cityCode,provinceCode\n520102,\"南明区\",5201,52\n",
	}
	build := func(file, content string) fstest.MapFS {
		m := fstest.MapFS{}
		for k, v := range good {
			m[k] = &fstest.MapFile{Data: []byte(v)}
		}
		if file != "" {
			if content == "<missing>" {
				delete(m, file)
			} else {
				m[file] = &fstest.MapFile{Data: []byte(content)}
			}
		}
		return m
	}
	tab, err := Load(build("", ""))
	if err != nil {
		t.Fatalf("minimal table: %v", err)
	}
	if tab.Name("520102") != "南明区" || !tab.IsCounty("520102") {
		t.Fatal("minimal table not parsed")
	}

	tests := []struct {
		name, file, content, want string
	}{
		{"missing file", "areas.csv", "<missing>", "areas.csv"},
		{"no provinces", "provinces.csv", "code,name\n", "no provinces"},
		{"bad province code", "provinces.csv", "code,name\n5,x\n", `province code "5"`},
		{"duplicate province", "provinces.csv", "code,name\n52,a\n52,b\n", "duplicate province"},
		{"province without name", "provinces.csv", "code,name\n52,\n", "no name"},
		{"missing column", "cities.csv", "code,name\n5201,x\n", `no column "provinceCode"`},
		{"city in unknown province", "cities.csv", "code,name,provinceCode\n4401,x,44\n", "does not match a known province"},
		{"city code 00", "cities.csv", "code,name,provinceCode\n5200,x,52\n", "not 4 digits"},
		{"county of unknown city", "areas.csv", "code,name,cityCode,provinceCode\n520202,x,5202,52\n", "5202 is not in cities.csv"},
		{"county parent mismatch", "areas.csv", "code,name,cityCode,provinceCode\n520102,x,5202,52\n", "does not match the code"},
		{"duplicate county", "areas.csv", "code,name,cityCode,provinceCode\n520102,x,5201,52\n520102,y,5201,52\n", "areas.csv:3: duplicate county"},
		{"county-level prefecture renamed", "areas.csv", "code,name,cityCode,provinceCode\n520100,x,5201,52\n", "different name"},
		{"bad csv", "areas.csv", "code,name,cityCode,provinceCode\n520102,\"x,5201,52\n", "areas.csv"},
	}
	for _, tt := range tests {
		_, err := Load(build(tt.file, tt.content))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want containing %q", tt.name, err, tt.want)
		}
	}
}

func TestLevelString(t *testing.T) {
	for l, want := range map[Level]string{Province: "province", Prefecture: "prefecture", County: "county", 0: "Level(0)"} {
		if got := l.String(); got != want {
			t.Errorf("Level(%d).String() = %q, want %q", int(l), got, want)
		}
	}
}

func TestResultsAreCopies(t *testing.T) {
	tab := Default()
	p := tab.Provinces()
	p[0].Name = "changed"
	if tab.Provinces()[0].Name == "changed" {
		t.Error("Provinces shares its slice")
	}
	c := tab.CountiesOf("520000")
	c[0] = "changed"
	if tab.CountiesOf("520000")[0] == "changed" {
		t.Error("CountiesOf shares its slice")
	}
}

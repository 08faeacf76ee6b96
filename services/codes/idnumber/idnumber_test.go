package idnumber

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/eastwest/labourlink/services/codes/regions"
)

// fixedNow is "now" for tests that depend on today: 2025-06-30 10:00 in China.
var fixedNow = time.Date(2025, 6, 30, 2, 0, 0, 0, time.UTC)

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// refCheckChar is an independent implementation of ISO 7064 MOD 11-2 as
// written in GB 11643: weights W_i = 2^(i-1) mod 11 counted from the right,
// check value a_1 such that sum(a_i * W_i) ≡ 1 (mod 11).
func refCheckChar(first17 string) byte {
	for a1 := 0; a1 <= 10; a1++ {
		sum := a1 // W_1 = 1
		w := 1
		for i := 16; i >= 0; i-- {
			w = w * 2 % 11
			sum += int(first17[i]-'0') * w
		}
		if sum%11 == 1 {
			if a1 == 10 {
				return 'X'
			}
			return byte('0' + a1)
		}
	}
	panic("unreachable")
}

func withCheck(first17 string) string { return first17 + string(CheckChar(first17)) }

func TestParseKnownGood(t *testing.T) {
	tests := []struct {
		in       string
		birth    time.Time
		sex      Sex
		province string
	}{
		// The sample of GB 11643-1999 itself.
		{"11010519491231002X", date(1949, 12, 31), Female, "110000"},
		{"11010519491231002x", date(1949, 12, 31), Female, "110000"},
		{"52010219900101123X", date(1990, 1, 1), Male, "520000"},
		{"440106198506092347", date(1985, 6, 9), Female, "440000"},
		{withCheck("52230120000229001"), date(2000, 2, 29), Male, "520000"},
		{withCheck("65010019000101000"), date(1900, 1, 1), Female, "650000"},
		// Born today (fixedNow is 30 June in China).
		{withCheck("45010220250630005"), date(2025, 6, 30), Male, "450000"},
		// Old division codes are fine: only the province prefix is checked.
		{withCheck("52212119800101123"), date(1980, 1, 1), Male, "520000"},
	}
	for _, tt := range tests {
		info, err := ParseAt(tt.in, fixedNow)
		if err != nil {
			t.Errorf("ParseAt(%s): %v", tt.in, err)
			continue
		}
		want := Info{BirthDate: tt.birth, Sex: tt.sex, ProvinceCode: tt.province}
		if info != want {
			t.Errorf("ParseAt(%s) = %+v, want %+v", tt.in, info, want)
		}
	}
}

func TestParseNowIsChinaDate(t *testing.T) {
	// At 2025-06-29 17:00 UTC it is already 30 June in China.
	now := time.Date(2025, 6, 29, 17, 0, 0, 0, time.UTC)
	if _, err := ParseAt(withCheck("45010220250630005"), now); err != nil {
		t.Errorf("born today in China: %v", err)
	}
	if _, err := ParseAt(withCheck("45010220250701005"), now); err == nil {
		t.Error("born tomorrow in China accepted")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "must be 18 characters, got 0"},
		{"short", "11010519491231002", "must be 18 characters, got 17"},
		{"long", "11010519491231002X1", "must be 18 characters, got 19"},
		{"full-width", "１１010519491231002X", "must be 18 ASCII digits (the last may be X), got full-width or other non-ASCII characters"},
		{"scientific", "5.20102E+17", "scientific notation"},
		{"letter inside", "1101051949123100AX", "character 17 must be a digit, got 'A'"},
		{"space", " 1010519491231002X", "character 1 must be a digit, got ' '"},
		{"control", "\x001010519491231002X", "character 1 must be a digit, got byte 0x00"},
		{"bad last", "11010519491231002Y", "character 18 must be a digit or X, got 'Y'"},
		{"not a date", withCheck("52010219990231123"), "birth date 19990231 is not a real date"},
		{"month 13", withCheck("52010219991301123"), "birth date 19991301 is not a real date"},
		{"day 00", withCheck("52010219990100123"), "birth date 19990100 is not a real date"},
		{"1899", withCheck("52010218991231123"), "birth date 18991231 is before 1900"},
		{"standard sample 1880", "440524188001010014", "birth date 18800101 is before 1900"},
		{"future", withCheck("52010220250701123"), "birth date 20250701 is in the future"},
		{"not leap", withCheck("52010219000229123"), "birth date 19000229 is not a real date"},
		{"unknown province", withCheck("99010219900101123"), "first two digits 99 are not a province code"},
		{"Taiwan prefix not in table", withCheck("71010219900101123"), "first two digits 71 are not a province code"},
		{"check", "110105194912310023", "check character should be X, got 3"},
		{"check brief", "52010219900101123" + "3", "check character should be X, got 3"},
	}
	for _, tt := range tests {
		_, err := ParseAt(tt.in, fixedNow)
		if err == nil {
			t.Errorf("%s: ParseAt(%q) accepted", tt.name, tt.in)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: ParseAt(%q) = %q, want containing %q", tt.name, tt.in, err, tt.want)
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: error does not wrap ErrInvalid", tt.name)
		}
		if len(tt.in) == Length && strings.Contains(err.Error(), tt.in) {
			t.Errorf("%s: error reveals the number", tt.name)
		}
	}
}

func TestParseUsesClock(t *testing.T) {
	// Parse (with the real clock) must accept a number from the past and
	// reject one from far in the future.
	if _, err := Parse("11010519491231002X"); err != nil {
		t.Errorf("Parse: %v", err)
	}
	if _, err := Parse(withCheck("52010229991231123")); err == nil || !strings.Contains(err.Error(), "future") {
		t.Errorf("Parse(born 2999) = %v, want future", err)
	}
}

func TestCheckChar(t *testing.T) {
	tests := []struct {
		in   string
		want byte
	}{
		{"11010519491231002", 'X'},
		{"44052418800101001", '4'},
		{"52010219900101123", 'X'},
		{"44010619850609234", '7'},
		{"1101051949123100", 0},
		{"110105194912310021", 0},
		{"1101051949123100A", 0},
		{"", 0},
	}
	for _, tt := range tests {
		if got := CheckChar(tt.in); got != tt.want {
			t.Errorf("CheckChar(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCheckCharMatchesReference(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := rapid.StringMatching(`[0-9]{17}`).Draw(t, "first17")
		if got, want := CheckChar(s), refCheckChar(s); got != want {
			t.Fatalf("CheckChar(%s) = %c, reference %c", s, got, want)
		}
	})
}

func TestNormalize(t *testing.T) {
	tests := map[string]string{
		"11010519491231002x":  "11010519491231002X",
		"11010519491231002X":  "11010519491231002X",
		"110105194912310023":  "110105194912310023",
		"x":                   "x",
		"":                    "",
		" 11010519491231002x": " 11010519491231002x",
	}
	for in, want := range tests {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMask(t *testing.T) {
	tests := map[string]string{
		"52010219900101123X": "5201**********123X",
		"11010519491231002X": "1101**********002X",
		"123456789":          "1234*6789",
		"12345678":           "********",
		"":                   "",
		"贵州省贵阳市南明区某某街道": "贵州省贵*****某某街道",
	}
	for in, want := range tests {
		if got := Mask(in); got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAgeOn(t *testing.T) {
	tests := []struct {
		birth, on time.Time
		want      int
	}{
		{date(1990, 1, 1), date(2025, 1, 1), 35},
		{date(1990, 1, 2), date(2025, 1, 1), 34},
		{date(1990, 12, 31), date(2025, 12, 30), 34},
		{date(1990, 12, 31), date(2025, 12, 31), 35},
		{date(2000, 2, 29), date(2018, 2, 28), 17},
		{date(2000, 2, 29), date(2018, 3, 1), 18},
		{date(2000, 2, 29), date(2020, 2, 29), 20},
		{date(2000, 6, 1), date(2000, 6, 1), 0},
		{date(2000, 6, 1), date(2000, 5, 31), -1},
		// Times of day and locations do not matter, only calendar dates.
		{date(1990, 1, 1), time.Date(2025, 1, 1, 0, 30, 0, 0, time.FixedZone("UTC+8", 8*3600)), 35},
	}
	for _, tt := range tests {
		if got := AgeOn(tt.birth, tt.on); got != tt.want {
			t.Errorf("AgeOn(%s, %s) = %d, want %d", tt.birth.Format(time.DateOnly), tt.on.Format(time.DateOnly), got, tt.want)
		}
	}
}

func TestSexString(t *testing.T) {
	for s, want := range map[Sex]string{Male: "male", Female: "female", 0: "unknown"} {
		if got := s.String(); got != want {
			t.Errorf("Sex(%d).String() = %q, want %q", int(s), got, want)
		}
	}
}

// genValid draws a valid identity number (with a real date up to fixedNow)
// and what Parse must return for it.
func genValid(t *rapid.T) (string, Info) {
	provs := regions.Default().Provinces()
	p := rapid.SampledFrom(provs).Draw(t, "province")
	county := rapid.StringMatching(`[0-9]{4}`).Draw(t, "county")
	lo := date(1900, 1, 1)
	days := int(date(2025, 6, 30).Sub(lo).Hours() / 24)
	birth := lo.AddDate(0, 0, rapid.IntRange(0, days).Draw(t, "day"))
	seq := rapid.IntRange(0, 999).Draw(t, "seq")
	first17 := p.Code[:2] + county + birth.Format("20060102") + fmt.Sprintf("%03d", seq)
	sex := Female
	if seq%2 == 1 {
		sex = Male
	}
	return withCheck(first17), Info{BirthDate: birth, Sex: sex, ProvinceCode: p.Code}
}

func TestPropertyValidParses(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s, want := genValid(t)
		got, err := ParseAt(s, fixedNow)
		if err != nil {
			t.Fatalf("ParseAt(%s): %v", s, err)
		}
		if got != want {
			t.Fatalf("ParseAt(%s) = %+v, want %+v", s, got, want)
		}
		if s[17] == 'X' {
			if got2, err := ParseAt(s[:17]+"x", fixedNow); err != nil || got2 != want {
				t.Fatalf("lower-case x: %+v, %v", got2, err)
			}
		}
	})
}

func TestPropertySingleChangeFails(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s, _ := genValid(t)
		pos := rapid.IntRange(0, Length-1).Draw(t, "pos")
		allowed := "0123456789"
		if pos == Length-1 {
			allowed += "X"
		}
		var choices []byte
		for i := 0; i < len(allowed); i++ {
			if allowed[i] != s[pos] {
				choices = append(choices, allowed[i])
			}
		}
		c := rapid.SampledFrom(choices).Draw(t, "replacement")
		changed := s[:pos] + string(c) + s[pos+1:]
		if _, err := ParseAt(changed, fixedNow); !errors.Is(err, ErrInvalid) {
			t.Fatalf("ParseAt(%s), one change from %s at %d, = %v, want ErrInvalid", changed, s, pos+1, err)
		}
	})
}

func TestEverySingleChangeFailsExhaustively(t *testing.T) {
	for _, s := range []string{"11010519491231002X", "52010219900101123X", "440106198506092347"} {
		for pos := 0; pos < Length; pos++ {
			allowed := "0123456789"
			if pos == Length-1 {
				allowed += "Xx"
			}
			for i := 0; i < len(allowed); i++ {
				c := allowed[i]
				if c == s[pos] || (c == 'x' && s[pos] == 'X') {
					continue
				}
				changed := s[:pos] + string(c) + s[pos+1:]
				if _, err := ParseAt(changed, fixedNow); err == nil {
					t.Errorf("ParseAt(%s) accepted: one change from %s", changed, s)
				}
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"11010519491231002X", "11010519491231002x", "52010219900101123X", "440106198506092347",
		"", "5.20102E+17", "１１010519491231002X", "110105194912310023", "52010219990231123X",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		info, err := ParseAt(s, fixedNow)
		_ = Mask(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		n := Normalize(s)
		if len(n) != Length || Normalize(n) != n {
			t.Fatalf("Normalize(%q) = %q", s, n)
		}
		again, err := ParseAt(n, fixedNow)
		if err != nil || again != info {
			t.Fatalf("re-parse of %q = %+v, %v; first %+v", n, again, err, info)
		}
		if CheckChar(n[:17]) != n[17] {
			t.Fatalf("accepted %q with a wrong check character", n)
		}
		if m := Mask(n); m[:4] != n[:4] || m[14:] != n[14:] || m[4:14] != "**********" {
			t.Fatalf("Mask(%q) = %q", n, m)
		}
		if info.BirthDate.Year() < minYear || info.BirthDate.After(fixedNow) {
			t.Fatalf("birth date %v out of range", info.BirthDate)
		}
	})
}

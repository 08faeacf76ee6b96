package privacy

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/eastwest/labourlink/services/codes/idnumber"
	"github.com/eastwest/labourlink/services/codes/regions"
)

// withCheck completes 17 digits with their check character.
func withCheck(first17 string) string { return first17 + string(idnumber.CheckChar(first17)) }

// wrongCheck returns id with another check character.
func wrongCheck(id string) string {
	const chars = "0123456789X"
	i := strings.IndexByte(chars, id[17])
	return id[:17] + string(chars[(i+1)%len(chars)])
}

var (
	idA = withCheck("52010219900307123") // Guiyang, 1990-03-07
	idX = withCheck("11010519491231002") // Beijing, ends in X
)

func TestTestNumbers(t *testing.T) {
	for _, id := range []string{idA, idX} {
		if _, err := idnumber.Parse(id); err != nil {
			t.Fatalf("test number %s: %v", idnumber.Mask(id), err)
		}
	}
	if idX[17] != 'X' {
		t.Fatalf("idX should end in X, got %c", idX[17])
	}
}

// fullWidth writes the ASCII digits and X of s in full width.
func fullWidth(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= '0' && r <= '9':
			return r - '0' + '０'
		case r == 'X':
			return 'Ｘ'
		}
		return r
	}, s)
}

func TestFind(t *testing.T) {
	tests := []struct {
		name string
		text string
		want Kind
	}{
		{"empty", "", 0},
		{"plain words", "worker left for family reasons", 0},
		{"identity number alone", idA, IDNumber},
		{"identity number in Chinese text", "身份证" + idA + "号", IDNumber},
		{"identity number after letters", "ID" + idA, IDNumber},
		{"identity number ending in X", "no. " + idX, IDNumber},
		{"lower-case x", "no. " + idX[:17] + "x.", IDNumber},
		{"full-width digits", "身份证" + fullWidth(idX), IDNumber},
		{"wrong check character", "no. " + wrongCheck(idA), 0},
		{"inside a longer number", "7" + idA, 0},
		{"followed by a digit", idA + "1", 0},
		{"X then a digit", idX + "5", 0},
		{"17 digits", idA[:17], 0},
		{"two numbers", idA + " and " + idX, IDNumber},
		{"mobile", "call 13812345678 tonight", Phone},
		{"mobile in Chinese text", "电话13812345678", Phone},
		{"mobile full width", "电话" + fullWidth("13912345678"), Phone},
		{"mobile grouped with spaces", "tel 138 1234 5678", Phone},
		{"mobile grouped with hyphens", "tel 138-1234-5678", Phone},
		{"mixed separators", "138-1234 5678", 0},
		{"double space", "138  1234  5678", 0},
		{"mobile with +86", "+86 13812345678", Phone},
		{"mobile with 86 joined", "+8613812345678", Phone},
		{"mobile with 0086 joined", "008613812345678", Phone},
		{"second digit 2", "12812345678", 0},
		{"landline", "020-38765432", 0},
		{"12 digits", "138123456789", 0},
		{"10 digits", "1381234567", 0},
		{"wages", "月薪 4500-6000 元", 0},
		{"date and county", "2025-03-01 520102", 0},
		{"identity number and mobile", idA + " 13812345678", IDNumber | Phone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Find(tt.text, Any); got != tt.want {
				t.Errorf("Find(%q) = %v, want %v", idnumber.Mask(tt.text), got, tt.want)
			}
			if got, want := ContainsIDNumber(tt.text), tt.want&IDNumber != 0; got != want {
				t.Errorf("ContainsIDNumber = %v, want %v", got, want)
			}
			if got, want := ContainsPhone(tt.text), tt.want&Phone != 0; got != want {
				t.Errorf("ContainsPhone = %v, want %v", got, want)
			}
		})
	}
}

func TestLooksLikeIDNumber(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{idA, true},
		{idX, true},
		{idX[:17] + "x", true},
		{wrongCheck(idA), true},
		{" " + idA + " ", true},
		{fullWidth(idX), true},
		{"110105491231002", true}, // 15 digits: an old number
		{"11010519491231002", false},
		{"1101054912310021", false},
		{idA + "1", false},
		{"X" + idA[:17], false},
		{idA[:16] + "X1", false},
		{"520000-K3Q7ZC2M4XJ5R6TA", false},
		{"gz-" + idA, false}, // holds one: Find, not the shape
		{"", false},
	}
	for _, tt := range tests {
		if got := LooksLikeIDNumber(tt.s); got != tt.want {
			t.Errorf("LooksLikeIDNumber(%q) = %v, want %v", idnumber.Mask(tt.s), got, tt.want)
		}
	}
}

func TestMask(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nothing here", "nothing here"},
		{"身份证" + idA + "号", "身份证" + idnumber.Mask(idA) + "号"},
		{"x " + idX + " y", "x " + idnumber.Mask(idX) + " y"},
		{"call 13812345678", "call 138****5678"},
		{"call 138-1234-5678 now", "call 138-****-5678 now"},
		{"+8613812345678", "+86138****5678"},
		{"two: 13812345678, 13998765432", "two: 138****5678, 139****5432"},
		{"电话" + fullWidth("13912345678"), "电话" + fullWidth("139") + "****" + fullWidth("5678")},
		{"wrong " + wrongCheck(idA), "wrong " + wrongCheck(idA)},
	}
	for _, tt := range tests {
		if got := Mask(tt.in); got != tt.want {
			t.Errorf("Mask(%q) = %q, want %q", idnumber.Mask(tt.in), got, tt.want)
		}
	}
}

// genIDNumber draws a valid identity number (birth 1940-2007, any province).
func genIDNumber(t *rapid.T) string {
	p := rapid.SampledFrom(regions.Default().Provinces()).Draw(t, "province").Code
	first := fmt.Sprintf("%s%04d%04d%02d%02d%03d", p[:2],
		rapid.IntRange(0, 9999).Draw(t, "area"),
		rapid.IntRange(1940, 2007).Draw(t, "year"),
		rapid.IntRange(1, 12).Draw(t, "month"),
		rapid.IntRange(1, 28).Draw(t, "day"),
		rapid.IntRange(0, 999).Draw(t, "seq"))
	id := withCheck(first)
	if _, err := idnumber.Parse(id); err != nil {
		t.Fatalf("generated %s: %v", idnumber.Mask(id), err)
	}
	return id
}

// genMobile draws a mobile number in one of the forms the guard knows.
func genMobile(t *rapid.T) string {
	d := rapid.StringMatching(`1[3-9][0-9]{9}`).Draw(t, "mobile")
	switch rapid.IntRange(0, 4).Draw(t, "form") {
	case 1:
		return d[:3] + " " + d[3:7] + " " + d[7:]
	case 2:
		return d[:3] + "-" + d[3:7] + "-" + d[7:]
	case 3:
		return "86" + d
	case 4:
		return fullWidth(d)
	}
	return d
}

// genText draws free text that holds no digit at its ends.
func genText(t *rapid.T, label string) string {
	return rapid.StringMatching(`[a-zA-Z\p{Han} ,.:/，。号-]{0,12}`).Draw(t, label)
}

// A valid identity number (or a mobile number) embedded anywhere in free text is always found,
// and Mask hides it: the masked text holds nothing Find sees, and not the number.
func TestPropertyEmbeddedNumbersAlwaysFound(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		id := genIDNumber(t)
		if id[17] == 'X' && rapid.Bool().Draw(t, "lower x") {
			id = id[:17] + "x"
		}
		if rapid.Bool().Draw(t, "full width") {
			id = fullWidth(id)
		}
		text := genText(t, "before") + id + genText(t, "after")
		if !ContainsIDNumber(text) {
			t.Fatalf("identity number not found in %q", Mask(text))
		}
		masked := Mask(text)
		if Find(masked, Any) != 0 || strings.Contains(masked, id) {
			t.Fatalf("Mask left personal data: %q", masked)
		}

		phone := genMobile(t)
		text = genText(t, "before phone") + phone + genText(t, "after phone")
		if !ContainsPhone(text) {
			t.Fatalf("phone %q not found in %q", phone, text)
		}
		if masked := Mask(text); Find(masked, Any) != 0 {
			t.Fatalf("Mask left a phone: %q", masked)
		}
	})
}

// oracle is an independent, slower statement of what Find looks for, written with regular
// expressions over the digit runs of s (ASCII digits only).
func oracle(s string) Kind {
	var found Kind
	runs := regexp.MustCompile(`[0-9]+`).FindAllStringIndex(s, -1)
	type piece struct {
		digits string
		start  int
		end    int
	}
	var ps []piece
	for _, r := range runs {
		p := piece{s[r[0]:r[1]], r[0], r[1]}
		if len(p.digits) == 17 && p.end < len(s) && (s[p.end] == 'X' || s[p.end] == 'x') &&
			(p.end+1 == len(s) || s[p.end+1] < '0' || s[p.end+1] > '9') {
			p.digits += "X"
			p.end++
		}
		ps = append(ps, p)
	}
	mobile := regexp.MustCompile(`^(86|0086)?1[3-9][0-9]{9}$`)
	for i, p := range ps {
		if len(p.digits) == 18 {
			if _, err := idnumber.Parse(p.digits); err == nil {
				found |= IDNumber
			}
		}
		if mobile.MatchString(p.digits) {
			found |= Phone
		}
		if i+2 < len(ps) && len(p.digits) == 3 && len(ps[i+1].digits) == 4 && len(ps[i+2].digits) == 4 {
			sep1, sep2 := s[p.end:ps[i+1].start], s[ps[i+1].end:ps[i+2].start]
			if sep1 == sep2 && (sep1 == " " || sep1 == "-") && mobile.MatchString(p.digits+ps[i+1].digits+ps[i+2].digits) {
				found |= Phone
			}
		}
	}
	return found
}

// Random digit strings and digit-heavy texts are flagged exactly when the oracle says so: a
// run of digits is an identity number only with a valid check character, birth date and
// province, and a phone only in the mobile shapes above. In particular an 18-digit run with a
// wrong check character never is.
func TestPropertyFlaggedExactlyAsSpecified(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		// Pieces that meet without a separator make longer runs: boundaries are exercised too.
		piece := rapid.OneOf(
			rapid.StringMatching(`[0-9]{0,19}`),
			rapid.StringMatching(`[ Xx-]`),
			rapid.StringMatching(`[a-z\p{Han}]{1,2}`),
			rapid.StringMatching(`1[3-9][0-9]{9}`),
			rapid.StringMatching(`1[3-9][0-9]-[0-9]{4}-[0-9]{4}`),
			rapid.StringMatching(`1[0-9]{2}[ -][0-9]{4}[ -]{1,2}[0-9]{4}`),
			rapid.StringMatching(`(86|0086)1[2-9][0-9]{9}`),
			rapid.Custom(genIDNumber),
			rapid.Custom(func(t *rapid.T) string { return wrongCheck(genIDNumber(t)) }),
			rapid.Custom(func(t *rapid.T) string { return genIDNumber(t)[:17] }),
		)
		s := strings.Join(rapid.SliceOfN(piece, 0, 6).Draw(t, "pieces"), "")
		if got, want := Find(s, Any), oracle(s); got != want {
			t.Fatalf("Find(%q) = %v, oracle says %v", s, got, want)
		}
		bad := wrongCheck(genIDNumber(t))
		if ContainsIDNumber(bad) || ContainsIDNumber("x "+bad+" y") {
			t.Fatalf("%s with a wrong check character flagged", idnumber.Mask(bad))
		}
		if !LooksLikeIDNumber(bad) {
			t.Fatalf("%s does not look like an identity number", idnumber.Mask(bad))
		}
	})
}

func BenchmarkFindChineseText(b *testing.B) {
	s := strings.Repeat("工人在车间受轻伤，已送医院处理，费用由企业承担。", 4)
	for b.Loop() {
		Find(s, Any)
	}
}

// MayHoldBytes is false only for text that Find finds nothing in and Mask leaves as it is:
// random text with digits (ASCII and full-width, up to numbers of full length), and the
// embedded numbers the other properties use, which it must always see.
func TestPropertyMayHoldBytes(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		text := rapid.StringMatching(`[0-9０-９a-zX\p{Han} -]{0,30}`).Draw(t, "text")
		if rapid.Bool().Draw(t, "embedded number") {
			n := genMobile(t)
			if rapid.Bool().Draw(t, "identity number") {
				n = genIDNumber(t)
			}
			if rapid.Bool().Draw(t, "full width") {
				n = fullWidth(n)
			}
			text = genText(t, "before") + n + genText(t, "after")
		}
		if MayHoldBytes([]byte(text)) {
			return
		}
		if Find(text, Any) != 0 || Mask(text) != text {
			t.Fatalf("MayHoldBytes(%q) = false, but Find = %v and Mask = %q", text, Find(text, Any), Mask(text))
		}
	})
	for _, s := range []string{"13812345678", "１３８１２３４５６７８", "电话138-1234-5678"} {
		if !MayHoldBytes([]byte(s)) {
			t.Errorf("MayHoldBytes(%q) = false", s)
		}
	}
}

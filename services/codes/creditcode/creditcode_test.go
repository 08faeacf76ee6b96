package creditcode

import (
	"errors"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

func withCheck(t testing.TB, first17 string) string {
	t.Helper()
	c, err := CheckChar(first17)
	if err != nil {
		t.Fatalf("CheckChar(%s): %v", first17, err)
	}
	return first17 + string(c)
}

func TestAlphabetAndWeights(t *testing.T) {
	if len(Alphabet) != 31 {
		t.Fatalf("alphabet has %d characters, want 31", len(Alphabet))
	}
	for _, c := range "IOZSV" {
		if strings.ContainsRune(Alphabet, c) {
			t.Errorf("alphabet contains %c", c)
		}
	}
	w := 1
	for i := 0; i < 17; i++ {
		if weights[i] != w {
			t.Errorf("weight %d = %d, want 3^%d mod 31 = %d", i, weights[i], i, w)
		}
		w = w * 3 % 31
	}
}

// A single substitution at a data position changes the weighted sum by
// (a-b)*w mod 31, which is never 0 because 31 is prime, 0 < |a-b| < 31 and
// 0 < w < 31. So it always changes the check character. Check it outright.
func TestSingleSubstitutionAlwaysChangesCheck(t *testing.T) {
	for i, w := range weights {
		for a := 0; a < 31; a++ {
			for b := 0; b < 31; b++ {
				if a != b && (a-b)*w%31 == 0 {
					t.Errorf("position %d: values %d and %d give the same sum", i+1, a, b)
				}
			}
		}
	}
}

func TestValidateKnownGood(t *testing.T) {
	for _, s := range []string{
		"91350100M000100Y43", // the example in GB 32100-2015
		"91440300708461136T",
		withCheck(t, "9152010220230101A"),
		withCheck(t, "Y1440106MA5C1234Q"),
		withCheck(t, "12100000000000000"),
	} {
		if err := Validate(s); err != nil {
			t.Errorf("Validate(%s): %v", s, err)
		}
	}
}

func TestValidateErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty", "", "must be 18 characters, got 0"},
		{"short", "91350100M000100Y4", "must be 18 characters, got 17"},
		{"long", "91350100M000100Y433", "must be 18 characters, got 19"},
		{"full-width", "９1350100M000100Y43", "non-ASCII"},
		{"lower-case", "91350100m000100Y43", `character 9 is lower-case 'm': letters must be capitals`},
		{"letter I", "91350100I000100Y43", `character 9 is 'I', which the code never uses`},
		{"letter O", "9135010000001000O3", `character 17 is 'O', which the code never uses`},
		{"letter S check", "91350100M000100Y4S", `character 18 is 'S', which the code never uses`},
		{"punctuation", "91350100-000100Y43", `character 9 is '-', not a digit or capital letter`},
		{"control", "91350100\x00000100Y43", `character 9 is byte 0x00`},
		{"division letter", withCheck(t, "9135A100M000100Y4"), `characters 3-8 are the division code and must be digits, got 'A' at 5`},
		{"check", "91350100M000100Y44", "check character should be 3, got 4"},
	}
	for _, tt := range tests {
		err := Validate(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate(%q) = %v, want containing %q", tt.name, tt.in, err, tt.want)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: error does not wrap ErrInvalid", tt.name)
		}
	}
}

func TestCheckChar(t *testing.T) {
	if c, err := CheckChar("91350100M000100Y4"); err != nil || c != '3' {
		t.Errorf("CheckChar(standard example) = %q, %v; want '3'", c, err)
	}
	for _, in := range []string{"", "91350100M000100Y", "91350100M000100Y43", "91350100I000100Y4"} {
		if _, err := CheckChar(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckChar(%q) error = %v, want ErrInvalid", in, err)
		}
	}
}

func TestNormalize(t *testing.T) {
	if got := Normalize("91350100m000100y43"); got != "91350100M000100Y43" {
		t.Errorf("Normalize = %q", got)
	}
	if err := Validate(Normalize("91440300708461136t")); err != nil {
		t.Errorf("Validate(Normalize(lower-case)): %v", err)
	}
}

var (
	anyChar   = rapid.SampledFrom([]byte(Alphabet))
	digitChar = rapid.ByteRange('0', '9')
)

func genValid(t *rapid.T) string {
	b := make([]byte, 0, Length)
	b = append(b, anyChar.Draw(t, "authority"), anyChar.Draw(t, "type"))
	for i := 0; i < 6; i++ {
		b = append(b, digitChar.Draw(t, "division"))
	}
	for i := 0; i < 9; i++ {
		b = append(b, anyChar.Draw(t, "id"))
	}
	c, err := CheckChar(string(b))
	if err != nil {
		t.Fatalf("CheckChar(%s): %v", b, err)
	}
	return string(append(b, c))
}

func TestPropertyValidPasses(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genValid(t)
		if err := Validate(s); err != nil {
			t.Fatalf("Validate(%s): %v", s, err)
		}
		if err := Validate(strings.ToLower(s)); strings.ContainsAny(s, Alphabet[10:]) && err == nil {
			t.Fatalf("Validate accepted lower-case %s", strings.ToLower(s))
		}
	})
}

func TestPropertySingleChangeFails(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genValid(t)
		pos := rapid.IntRange(0, Length-1).Draw(t, "pos")
		c := rapid.SampledFrom([]byte(strings.Replace(Alphabet, s[pos:pos+1], "", 1))).Draw(t, "replacement")
		changed := s[:pos] + string(c) + s[pos+1:]
		if err := Validate(changed); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Validate(%s), one change from %s at %d, = %v", changed, s, pos+1, err)
		}
	})
}

func TestPropertyTranspositionOfDistinctNeighboursFails(t *testing.T) {
	// Not promised by the standard for every pair, but weights 3^i and 3^(i+1)
	// differ mod 31, so swapping two different adjacent data characters also
	// changes the sum.
	rapid.Check(t, func(t *rapid.T) {
		s := genValid(t)
		pos := rapid.IntRange(0, 15).Draw(t, "pos")
		if s[pos] == s[pos+1] {
			t.Skip("equal neighbours")
		}
		b := []byte(s)
		b[pos], b[pos+1] = b[pos+1], b[pos]
		if err := Validate(string(b)); err == nil {
			t.Fatalf("Validate(%s) accepted a transposition of %s at %d", b, s, pos+1)
		}
	})
}

func FuzzValidate(f *testing.F) {
	for _, s := range []string{"91350100M000100Y43", "91440300708461136T", "", "91350100m000100y43", "９1350100M000100Y43"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := Validate(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if Normalize(s) != s {
			t.Fatalf("accepted non-normalised %q", s)
		}
		c, err := CheckChar(s[:17])
		if err != nil || c != s[17] {
			t.Fatalf("accepted %q but CheckChar = %q, %v", s, c, err)
		}
		for i := 2; i < 8; i++ {
			if s[i] < '0' || s[i] > '9' {
				t.Fatalf("accepted %q with a non-digit division code", s)
			}
		}
	})
}

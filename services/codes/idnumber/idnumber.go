// Package idnumber validates, parses and masks the 18-character resident
// identity number of the People's Republic of China (公民身份号码, GB 11643-1999).
//
// Layout: 6 digits of the division where the number was first issued
// (GB/T 2260), 8 digits of birth date (YYYYMMDD), 3 digits of sequence whose
// last digit is odd for men and even for women, and a check character
// computed with ISO 7064 MOD 11-2 ('0'-'9' or 'X').
//
// An identity number is personal data: never log it; show it with Mask.
package idnumber

import (
	"errors"
	"fmt"
	"github.com/eastwest/labourlink/services/codes/civil"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/eastwest/labourlink/services/codes/regions"
)

// Length is the number of characters in an identity number.
const Length = 18

// ErrInvalid is wrapped by every error Parse returns; test with errors.Is.
// The error's text is the reason alone, e.g. "check character should be 7, got 3",
// and never contains the number itself.
var ErrInvalid = errors.New("invalid resident identity number")

type invalidError struct{ reason string }

func (e *invalidError) Error() string { return e.reason }
func (e *invalidError) Unwrap() error { return ErrInvalid }

func invalidf(format string, args ...any) error {
	return &invalidError{reason: fmt.Sprintf(format, args...)}
}

// Sex is the sex encoded in the 17th character. Its values are the codes of
// GB/T 2261.1 (1 male, 2 female); the zero value means unknown.
type Sex int

// Sex values.
const (
	Male   Sex = 1
	Female Sex = 2
)

// String returns "male", "female" or "unknown".
func (s Sex) String() string {
	switch s {
	case Male:
		return "male"
	case Female:
		return "female"
	default:
		return "unknown"
	}
}

// Info is what an identity number says about its holder.
type Info struct {
	BirthDate    time.Time // date only: midnight UTC of the birth date
	Sex          Sex
	ProvinceCode string // 6-digit code of the province of first issue: first 2 digits + "0000"
}

// weights are 2^(17-i) mod 11 for positions i = 0..16 (ISO 7064 MOD 11-2).
var weights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// checkChars maps the weighted sum mod 11 to the check character.
const checkChars = "10X98765432"

// minYear is the earliest accepted birth year.
const minYear = 1900

// CheckChar returns the check character ('0'-'9' or 'X') for the first 17
// characters of an identity number, or 0 if first17 is not exactly 17 ASCII
// digits.
func CheckChar(first17 string) byte {
	if len(first17) != 17 {
		return 0
	}
	sum := 0
	for i := 0; i < 17; i++ {
		c := first17[i]
		if c < '0' || c > '9' {
			return 0
		}
		sum += int(c-'0') * weights[i]
	}
	return checkChars[sum%11]
}

// Normalize returns s with a lower-case check character 'x' made upper-case,
// the form that Parse accepts and that should be stored. It changes nothing
// else: surrounding spaces are the caller's to trim.
func Normalize(s string) string {
	if len(s) == Length && s[Length-1] == 'x' {
		return s[:Length-1] + "X"
	}
	return s
}

// Parse validates an identity number and returns what it encodes. It accepts
// a lower-case 'x' as check character (see Normalize). It checks, in order:
// 18 characters, the first 17 digits and the last a digit or X; a real birth
// date from 1900 up to today (in China); first two digits naming a province
// of regions.Default() (only two: old numbers carry retired county codes);
// and the ISO 7064 MOD 11-2 check character. Errors wrap ErrInvalid.
//
// Parse judges "today" by the machine's clock; a service whose clock decides behaviour calls
// ParseAt with it.
func Parse(s string) (Info, error) {
	return ParseAt(s, time.Now())
}

// ParseAt is Parse with today judged at now (in China: services/codes/civil).
func ParseAt(s string, now time.Time) (Info, error) {
	s = Normalize(s)
	if len(s) != Length {
		n := utf8.RuneCountInString(s)
		if n == Length {
			return Info{}, invalidf("must be 18 ASCII digits (the last may be X), got full-width or other non-ASCII characters")
		}
		if looksScientific(s) {
			return Info{}, invalidf("looks like a number a spreadsheet turned into scientific notation, which loses digits: format the column as text and enter the number again")
		}
		return Info{}, invalidf("must be 18 characters, got %d", n)
	}
	for i := 0; i < Length-1; i++ {
		if c := s[i]; c < '0' || c > '9' {
			return Info{}, invalidf("character %d must be a digit, got %s", i+1, quoteByte(c))
		}
	}
	if c := s[Length-1]; (c < '0' || c > '9') && c != 'X' {
		return Info{}, invalidf("character 18 must be a digit or X, got %s", quoteByte(c))
	}

	date := s[6:14]
	birth, err := time.Parse("20060102", date)
	if err != nil || birth.Format("20060102") != date {
		return Info{}, invalidf("birth date %s is not a real date", date)
	}
	if birth.Year() < minYear {
		return Info{}, invalidf("birth date %s is before %d", date, minYear)
	}
	ty, tm, td := now.In(civil.Zone).Date()
	if birth.After(time.Date(ty, tm, td, 0, 0, 0, 0, time.UTC)) {
		return Info{}, invalidf("birth date %s is in the future", date)
	}

	if !regions.Default().ProvinceByPrefix2(s[:2]) {
		return Info{}, invalidf("first two digits %s are not a province code", s[:2])
	}

	if want := CheckChar(s[:17]); want != s[17] {
		return Info{}, invalidf("check character should be %c, got %c", want, s[17])
	}

	sex := Female
	if (s[16]-'0')%2 == 1 {
		sex = Male
	}
	return Info{BirthDate: birth, Sex: sex, ProvinceCode: s[:2] + "0000"}, nil
}

// looksScientific reports whether s looks like a spreadsheet's scientific
// notation of a long number, e.g. "5.20102E+17".
func looksScientific(s string) bool {
	i := strings.IndexAny(s, "Ee")
	if i < 1 || i+1 >= len(s) || s[i+1] != '+' {
		return false
	}
	mantissa, exp := s[:i], s[i+2:]
	if exp == "" {
		return false
	}
	for j := 0; j < len(exp); j++ {
		if exp[j] < '0' || exp[j] > '9' {
			return false
		}
	}
	dot := false
	for j := 0; j < len(mantissa); j++ {
		switch c := mantissa[j]; {
		case c >= '0' && c <= '9':
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return true
}

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("%q", rune(c))
	}
	return fmt.Sprintf("byte 0x%02X", c)
}

// Mask hides the middle of an identity number for display, keeping the
// first 4 and last 4 characters: 5201**********123X. Strings of 8 characters
// or fewer are masked entirely, so Mask never reveals a short input.
func Mask(s string) string {
	r := []rune(s)
	if len(r) <= 8 {
		return strings.Repeat("*", len(r))
	}
	return string(r[:4]) + strings.Repeat("*", len(r)-8) + string(r[len(r)-4:])
}

// AgeOn returns the age in completed years, on date, of someone born on
// birth. Only the calendar dates of both values count (in their own
// locations). Someone born on 29 February becomes a year older on 1 March in
// common years. The result is negative if date is before birth.
func AgeOn(birth, date time.Time) int {
	by, bm, bd := birth.Date()
	dy, dm, dd := date.Date()
	age := dy - by
	if dm < bm || (dm == bm && dd < bd) {
		age--
	}
	return age
}

// Package creditcode validates the 18-character unified social credit code
// of organisations (统一社会信用代码, GB 32100-2015), which identifies an
// employer.
//
// Layout: registration authority (1 character), organisation type (1),
// GB/T 2260 division of registration (6 digits), organisation identifier (9),
// check character (1). Characters come from a 31-character alphabet: the
// digits and the capital letters without I, O, Z, S and V. The check
// character is computed modulo 31 with weights 3^i mod 31.
package creditcode

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Length is the number of characters in a unified social credit code.
const Length = 18

// Alphabet holds the characters a code may contain; a character's value is
// its index.
const Alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"

// weights are 3^i mod 31 for positions i = 0..16.
var weights = [17]int{1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28}

// ErrInvalid is wrapped by every error this package returns for a bad code;
// test with errors.Is. The error's text is the reason alone.
var ErrInvalid = errors.New("invalid unified social credit code")

type invalidError struct{ reason string }

func (e *invalidError) Error() string { return e.reason }
func (e *invalidError) Unwrap() error { return ErrInvalid }

func invalidf(format string, args ...any) error {
	return &invalidError{reason: fmt.Sprintf(format, args...)}
}

// value returns the value of c in Alphabet, or -1.
func value(c byte) int {
	return strings.IndexByte(Alphabet, c)
}

// CheckChar returns the check character for the first 17 characters of a
// code. It fails if first17 is not 17 characters of Alphabet.
func CheckChar(first17 string) (byte, error) {
	if len(first17) != 17 {
		return 0, invalidf("need the first 17 characters, got %d", utf8.RuneCountInString(first17))
	}
	sum := 0
	for i := 0; i < 17; i++ {
		v := value(first17[i])
		if v < 0 {
			return 0, charError(first17[i], i)
		}
		sum += v * weights[i]
	}
	return Alphabet[(31-sum%31)%31], nil
}

// Normalize returns s with ASCII lower-case letters made upper-case, the form
// Validate accepts and that should be stored. It changes nothing else.
func Normalize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}, s)
}

// Validate returns nil if s is a well-formed unified social credit code, or
// an error wrapping ErrInvalid that says what is wrong: length, a character
// outside the alphabet, a non-digit in the division code (characters 3-8), or
// the check character. Letters must be upper-case (see Normalize).
func Validate(s string) error {
	if len(s) != Length {
		if utf8.RuneCountInString(s) == Length {
			return invalidf("must be 18 ASCII digits and capital letters, got full-width or other non-ASCII characters")
		}
		return invalidf("must be 18 characters, got %d", utf8.RuneCountInString(s))
	}
	for i := 0; i < Length; i++ {
		if value(s[i]) < 0 {
			return charError(s[i], i)
		}
	}
	for i := 2; i < 8; i++ {
		if c := s[i]; c < '0' || c > '9' {
			return invalidf("characters 3-8 are the division code and must be digits, got %q at %d", rune(c), i+1)
		}
	}
	want, err := CheckChar(s[:17])
	if err != nil {
		return err
	}
	if want != s[17] {
		return invalidf("check character should be %c, got %c", want, s[17])
	}
	return nil
}

// charError explains why byte c at index i is not in Alphabet.
func charError(c byte, i int) error {
	switch {
	case c >= 'a' && c <= 'z':
		return invalidf("character %d is lower-case %q: letters must be capitals", i+1, rune(c))
	case strings.IndexByte("IOZSV", c) >= 0:
		return invalidf("character %d is %q, which the code never uses (no I, O, Z, S or V)", i+1, rune(c))
	case c >= 0x20 && c < 0x7f:
		return invalidf("character %d is %q, not a digit or capital letter", i+1, rune(c))
	default:
		return invalidf("character %d is byte 0x%02X, not a digit or capital letter", i+1, c)
	}
}

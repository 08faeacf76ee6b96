// Package personname says what the federation accepts as a person's name, in one place: the
// sending service checks it when a roster is imported and the receiving service when a
// candidate arrives, so a worker accepted by one side is never refused by the other.
package personname

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxRunes is the longest name accepted, in characters.
const MaxRunes = 50

// Check trims s and returns it with "" when it is a plain name, or the reason it is not:
// letters of any script, combining marks, spaces and the marks names use (· • . ' -), no
// digits or other symbols, at most MaxRunes characters. The reason never repeats the name.
func Check(s string) (string, string) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", "is required"
	case !utf8.ValidString(s):
		return "", "is not valid UTF-8 text"
	case utf8.RuneCountInString(s) > MaxRunes:
		return "", fmt.Sprintf("is longer than %d characters", MaxRunes)
	}
	for _, r := range s {
		switch {
		case unicode.IsLetter(r), unicode.Is(unicode.Mn, r), r == ' ', r == '·', r == '•', r == '.', r == '\'', r == '-', r == '\u3000':
		case unicode.IsDigit(r):
			return "", "must be a name: digits are not allowed"
		case unicode.IsControl(r):
			return "", "has a control character"
		default:
			return "", fmt.Sprintf("must be a name: %q is not allowed", r)
		}
	}
	return s, ""
}

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

// middleDots are the characters written for the middle dot of a name transcribed from a
// minority language (阿依古丽·买买提): the interpunct U+00B7 itself, the bullet U+2022, the
// hyphenation point U+2027, the katakana middle dot U+30FB and its half-width form U+FF65, the
// bullet operator U+2219, the dot operator U+22C5 and the full-width full stop U+FF0E. Keyboards
// and spreadsheets of different provinces type one or the other for the same name.
var middleDots = map[rune]bool{'·': true, '•': true, '‧': true, '・': true, '･': true, '∙': true, '⋅': true, '．': true}

// Normalize returns the form of name s under which two spellings of the same name are equal (the
// key of an index by name): trimmed, every middle-dot variant (middleDots) as U+00B7 with no
// space around it, runs of spaces (the ideographic space U+3000 too) as one space, Latin letters
// in lower case. It does not check s (Check does); "" for a blank name.
func Normalize(s string) string {
	var b strings.Builder
	space := false
	for _, r := range strings.TrimSpace(s) {
		switch {
		case middleDots[r]:
			r = '·'
		case r == '\u3000' || unicode.IsSpace(r):
			space = true
			continue
		}
		if space {
			space = false
			if r != '·' && !strings.HasSuffix(b.String(), "·") {
				b.WriteByte(' ')
			}
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// Package privacy is labourlink's one guard against personal data where it does not belong:
// the one definition of "looks like a resident identity number" and "looks like a mobile phone
// number", the scan of every string field of a request for them (Check, Scan), and the masking
// of stored free text on output (Mask).
//
// What the guard finds in free text, and why:
//
//   - A resident identity number (services/codes/idnumber): a separate run of 18 digits, or 17 digits
//     and an X (either case), that idnumber.Parse accepts: real birth date, province prefix and
//     ISO 7064 check character. "Separate" means no digit directly before or after it; letters
//     and punctuation around it do not matter ("身份证52010219900307123X号" holds one). A run
//     of digits with a wrong check character is not flagged in free text: there is no telling
//     it from an order number, and a mistyped number is refused where it matters, in the fields
//     that name workers (below).
//   - A mainland mobile phone number, since DESIGN.md counts the phone as personal data too and
//     it identifies a person as well as the identity number does: a separate run of 11 digits
//     1[3-9]xxxxxxxxx, the same with the country code written as one number (86…, 0086…), or
//     the customary 3-4-4 grouping with single spaces or hyphens (138 1234 5678,
//     138-1234-5678). Nothing else the programme writes has that shape: codes of regions (6
//     digits), dates (8), credit and identity numbers (18), bank cards (16-19) and wages do
//     not. The price is that a text which happens to read "150 2000 3000" is refused with a
//     message that names the field; it can be rephrased. Landlines (area code and 7-8 digits)
//     are not flagged: they are offices, such as an employer's recruiting line.
//   - Full-width digits (０-９, Ｘ) count as digits: Chinese input methods produce them.
//
// Old 15-digit identity numbers (no check character; retired since 2013) are not looked for in
// free text, where 15 digits are as likely an old business registration number; they are
// refused as worker ids (LooksLikeIDNumber).
package privacy

import (
	"strings"
	"unicode/utf8"

	"github.com/eastwest/labourlink/services/codes/idnumber"
)

// Kind is a kind of personal data the guard looks for; kinds combine as bits.
type Kind uint8

// Kinds of personal data.
const (
	// IDNumber is a resident identity number.
	IDNumber Kind = 1 << iota
	// Phone is a mainland mobile phone number.
	Phone
	// CheckedPerItem, in an Allow list, marks a repeated field the guard does not look into
	// because its handler checks every item itself (with Scan) and rejects only that item: the
	// rows of a bulk import, which hold identity numbers and phones on purpose in some columns
	// and are rejected one by one, never the whole stream.
	CheckedPerItem
)

// Any is every kind of personal data the guard finds in text.
const Any = IDNumber | Phone

// Find reports which of the kinds in look s holds (see the package comment for what counts).
func Find(s string, look Kind) Kind {
	var found Kind
	scanText(s, look, func(k Kind, _, _ int, _ run) bool {
		found |= k
		return found&look != look // stop once everything asked for is found
	})
	return found
}

// ContainsIDNumber reports whether s holds a valid identity number as a separate number.
func ContainsIDNumber(s string) bool { return Find(s, IDNumber) != 0 }

// ContainsPhone reports whether s holds a mainland mobile phone number as a separate number.
func ContainsPhone(s string) bool { return Find(s, Phone) != 0 }

// LooksLikeIDNumber reports whether s (surrounding spaces aside) has the shape of a resident
// identity number, valid or not: 17 digits and a digit or X (any case, full-width too), or the
// 15 digits of an old number. It is the test for values that must be opaque ids: a mistyped or
// outdated identity number is still personal data.
func LooksLikeIDNumber(s string) bool {
	s = strings.TrimSpace(s)
	n := 0
	x := false
	for _, r := range s {
		if x {
			return false // something after the X
		}
		if _, ok := digitOf(r); ok {
			n++
			continue
		}
		if isCheckX(r) && n == idnumber.Length-1 {
			n++
			x = true
			continue
		}
		return false
	}
	return n == idnumber.Length || (n == 15 && !x)
}

// Mask returns s with the middle of every identity number and phone number it holds (as Find
// sees them) replaced by '*', the way ordinary responses show them: 5201**********123X and
// 138****5678 (138-****-5678 when grouped). Other text is unchanged.
func Mask(s string) string {
	var b strings.Builder
	last := 0
	scanText(s, Any, func(k Kind, start, end int, r run) bool {
		if b.Len() == 0 {
			b.Grow(len(s))
		}
		b.WriteString(s[last:start])
		// Which digit units (counted from the start of the span) to hide.
		lo, hi := 4, 14 // identity number: keep the first 4 and last 4
		if k == Phone {
			skip := r.units - 11 // a country code in front
			lo, hi = skip+3, skip+7
		}
		unit := 0
		for _, c := range s[start:end] {
			_, digit := digitOf(c)
			if digit || isCheckX(c) {
				if unit >= lo && unit < hi {
					c = '*'
				}
				unit++
			}
			b.WriteRune(c)
		}
		last = end
		return true
	})
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// digitOf returns the ASCII digit of an ASCII or full-width digit.
func digitOf(r rune) (byte, bool) {
	switch {
	case r >= '0' && r <= '9':
		return byte(r), true
	case r >= '０' && r <= '９':
		return byte(r-'０') + '0', true
	}
	return 0, false
}

// isCheckX reports whether r is an X as the check character of an identity number.
func isCheckX(r rune) bool { return r == 'X' || r == 'x' || r == 'Ｘ' || r == 'ｘ' }

// run is a maximal run of digits in a text (a trailing check X included when it follows exactly
// 17 digits and no digit follows it).
type run struct {
	start, end int      // byte offsets in the text
	units      int      // digits (and X) in the run
	digits     [18]byte // the first 18 units as ASCII ('X' for the check character)
}

// ascii returns the run's digits (at most 18) as ASCII.
func (r *run) ascii() []byte { return r.digits[:min(r.units, len(r.digits))] }

// scanText calls found for every identity number or phone number of the kinds in look that s
// holds, in order, with its byte span; it stops when found returns false.
func scanText(s string, look Kind, found func(k Kind, start, end int, r run) bool) {
	if look&Any == 0 || !mayHold(s) {
		return
	}
	var stack [8]run // most texts have few runs of digits
	runs := stack[:0]
	for i := 0; i < len(s); {
		c, w := utf8.DecodeRuneInString(s[i:])
		d, ok := digitOf(c)
		if !ok {
			i += w
			continue
		}
		r := run{start: i}
		n := 0
		for ok {
			if n < len(r.digits) {
				r.digits[n] = d
			}
			n++
			i += w
			if i >= len(s) {
				break
			}
			c, w = utf8.DecodeRuneInString(s[i:])
			d, ok = digitOf(c)
		}
		if n == idnumber.Length-1 && i < len(s) && isCheckX(c) {
			// 17 digits and an X: part of the run unless a digit follows the X.
			next := i + w
			nc, _ := utf8.DecodeRuneInString(s[next:])
			if _, digitAfter := digitOf(nc); next >= len(s) || !digitAfter {
				r.digits[n] = 'X'
				n++
				i = next
			}
		}
		r.end, r.units = i, n
		runs = append(runs, r)
	}
	for j := 0; j < len(runs); j++ {
		r := runs[j]
		switch {
		case look&IDNumber != 0 && r.units == idnumber.Length:
			if _, err := idnumber.Parse(string(r.ascii())); err == nil {
				if !found(IDNumber, r.start, r.end, r) {
					return
				}
			}
		case look&Phone != 0 && isMobile(r):
			if !found(Phone, r.start, r.end, r) {
				return
			}
		case look&Phone != 0 && j+2 < len(runs) && isGroupedMobile(s, runs[j:j+3]):
			g := run{start: r.start, end: runs[j+2].end, units: 11}
			if !found(Phone, g.start, g.end, g) {
				return
			}
			j += 2
		}
	}
}

// MayHoldBytes reports whether the UTF-8 text b may hold an identity number or a phone number,
// that is whether Find may find one and Mask may change it: false when b has fewer than 11
// digits (ASCII or full-width), as every identity number and phone number has at least 11. It
// reads bytes, for a caller holding stored bytes that it would otherwise copy into a string.
func MayHoldBytes(b []byte) bool {
	digits := 0
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == 0xEF && i+2 < len(b) && b[i+1] == 0xBC && b[i+2] >= 0x90 && b[i+2] <= 0x99: // ０-９
			digits++
			i += 2
		}
		if digits >= 11 {
			return true
		}
	}
	return false
}

// mayHold is the fast path: text with fewer than 11 ASCII digits and nothing but ASCII cannot
// hold either kind.
func mayHold(s string) bool {
	digits := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			return true // maybe full-width digits
		}
		if c >= '0' && c <= '9' {
			digits++
			if digits >= 11 {
				return true
			}
		}
	}
	return false
}

// mobile reports whether d (11 ASCII digits) is a mainland mobile number: 1, then 3-9.
func mobile(d []byte) bool {
	return len(d) == 11 && d[0] == '1' && d[1] >= '3' && d[1] <= '9'
}

// isMobile reports whether a run is a mobile number, alone or after the country code.
func isMobile(r run) bool {
	d := r.ascii()
	switch r.units {
	case 11:
		return mobile(d)
	case 13:
		return string(d[:2]) == "86" && mobile(d[2:])
	case 15:
		return string(d[:4]) == "0086" && mobile(d[4:])
	}
	return false
}

// isGroupedMobile reports whether three runs are a mobile number written 3-4-4 with the same
// single separator (space or hyphen) twice.
func isGroupedMobile(s string, rs []run) bool {
	if rs[0].units != 3 || rs[1].units != 4 || rs[2].units != 4 {
		return false
	}
	sep1, sep2 := s[rs[0].end:rs[1].start], s[rs[1].end:rs[2].start]
	if sep1 != sep2 || (sep1 != " " && sep1 != "-") {
		return false
	}
	var d [11]byte
	copy(d[7:], rs[2].ascii())
	copy(d[3:], rs[1].ascii())
	copy(d[:], rs[0].ascii())
	return mobile(d[:])
}

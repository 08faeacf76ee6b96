// Package i18n is the message catalog of labourlink: the Simplified Chinese (zh-Hans) text of
// every CLI message, table header and validation reason, keyed by its English format string
// (golang.org/x/text/message catalog), and the choice of language from a POSIX locale
// (LC_ALL / LC_MESSAGES / LANG), a -lang flag or a gRPC accept-language header.
//
// English is the language of the keys: a message in English is fmt.Sprintf(key, args...), byte
// for byte what the code printed before it was translated. A message in Chinese is the catalog's
// translation formatted with the same arguments (numbers printed as fmt prints them, without
// digit grouping: they are row numbers, years and codes).
//
// Translate renders English text whose arguments are already substituted (a reason a service
// stored or sent) in another language, by matching it against the catalog's formats.
package i18n

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/message/catalog"
)

// The languages of the catalog.
var (
	English = language.English
	Chinese = language.SimplifiedChinese
)

var (
	supported = []language.Tag{English, Chinese}
	matcher   = language.NewMatcher(supported)
	cat       = newCatalog()
)

func newCatalog() *catalog.Builder {
	b := catalog.NewBuilder(catalog.Fallback(English))
	for key, zh := range zhHans {
		if err := b.SetString(Chinese, key, zh); err != nil {
			panic(fmt.Sprintf("i18n: catalog entry %q: %v", key, err))
		}
	}
	return b
}

// Match returns the supported language closest to tag: Chinese for any zh (zh-CN, zh-Hans,
// zh-TW, ...), English otherwise.
func Match(tag language.Tag) language.Tag {
	if base, _ := tag.Base(); base.String() == "zh" {
		return Chinese
	}
	_, i, conf := matcher.Match(tag)
	if conf == language.No {
		return English
	}
	return supported[i]
}

// FromAcceptLanguage returns the language an Accept-Language value (RFC 9110, as sent in the
// gRPC metadata header accept-language) asks for: the first of its languages, by weight, that
// the catalog has; English if none or if the header is empty or malformed.
func FromAcceptLanguage(header string) language.Tag {
	tags, _, err := language.ParseAcceptLanguage(header)
	if err != nil {
		return English
	}
	for _, t := range tags {
		if m := Match(t); m == Chinese || isEnglish(t) {
			return m
		}
	}
	return English
}

func isEnglish(t language.Tag) bool {
	base, _ := t.Base()
	return base.String() == "en"
}

// FromEnv returns the language of the POSIX locale: the first non-empty of LC_ALL, LC_MESSAGES
// and LANG (the order setlocale uses for messages). A locale zh_* (zh_CN.UTF-8, zh_TW.Big5,
// zh_SG) gives Chinese; anything else, C, POSIX or no locale at all, English.
func FromEnv(getenv func(string) string) language.Tag {
	for _, k := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if v := getenv(k); v != "" {
			return FromLocale(v)
		}
	}
	return English
}

// FromLocale returns the language of one POSIX locale name (language[_territory][.codeset][@modifier]).
func FromLocale(locale string) language.Tag {
	l := locale
	if i := strings.IndexAny(l, ".@"); i >= 0 {
		l = l[:i]
	}
	if l == "" || l == "C" || l == "POSIX" {
		return English
	}
	t, err := language.Parse(strings.ReplaceAll(l, "_", "-"))
	if err != nil {
		return English
	}
	return Match(t)
}

// Parse reads a language as a -lang flag gives it: "zh", "en", or any BCP 47 tag or POSIX
// locale ("zh-CN", "zh_CN.UTF-8"). The empty string is an error.
func Parse(s string) (language.Tag, error) {
	if s == "" {
		return English, fmt.Errorf("no language: give zh or en")
	}
	l := s
	if i := strings.IndexAny(l, ".@"); i >= 0 {
		l = l[:i]
	}
	t, err := language.Parse(strings.ReplaceAll(l, "_", "-"))
	if err != nil {
		return English, fmt.Errorf("%q is not a language: give zh or en", s)
	}
	m := Match(t)
	if m == English && !isEnglish(t) {
		return English, fmt.Errorf("%q is not a language of labourlink: give zh or en", s)
	}
	return m, nil
}

// Sprintf formats the message whose English format is format in the language tag.
//
// A %w verb (the formats of fmt.Errorf, translated when their errors are printed) formats its
// argument as %v does: a string has nothing to wrap.
func Sprintf(tag language.Tag, format string, args ...any) string {
	if Match(tag) != Chinese {
		return fmt.Sprintf(unwrapVerbs(format), args...)
	}
	return fmt.Sprintf(unwrapVerbs(translatedFormat(format, len(args))), args...)
}

// unwrapVerbs turns the %w verbs of format into %v.
func unwrapVerbs(format string) string {
	if !strings.Contains(format, "w") {
		return format
	}
	return verbRE.ReplaceAllStringFunc(format, func(v string) string {
		if strings.HasSuffix(v, "w") {
			return v[:len(v)-1] + "v"
		}
		return v
	})
}

// translatedFormat returns the Chinese format of key, with its verbs as the catalog has them
// (positional %[n]d verbs included), or key itself if it has no translation. It asks a
// message.Printer for the translation with placeholders that print their own verb back, so
// that the arguments are then formatted by fmt: message.Printer would group digits ("2,026").
func translatedFormat(key string, nargs int) string {
	if _, ok := zhHans[key]; !ok {
		return key
	}
	ph := make([]any, nargs)
	for i := range ph {
		ph[i] = verbOf(i + 1)
	}
	return printer.Sprintf(key, ph...)
}

var printer = message.NewPrinter(Chinese, message.Catalog(cat))

// verbOf is a formatting placeholder: it prints the verb it is formatted with, as the argument
// index n, flags, width and precision of that verb.
type verbOf int

func (n verbOf) Format(f fmt.State, verb rune) {
	var b strings.Builder
	b.WriteString("%")
	for _, fl := range "+-# 0" {
		if f.Flag(int(fl)) {
			b.WriteRune(fl)
		}
	}
	if w, ok := f.Width(); ok {
		b.WriteString(strconv.Itoa(w))
	}
	if p, ok := f.Precision(); ok {
		b.WriteString("." + strconv.Itoa(p))
	}
	// The argument index right before the verb: after a width ("%0[1]4d") fmt takes it for
	// the width's index and refuses the verb (BADINDEX).
	fmt.Fprintf(&b, "[%d]", int(n))
	b.WriteRune(verb)
	_, _ = f.Write([]byte(b.String()))
}

// Has reports whether the catalog has a Chinese translation of the English format key.
func Has(key string) bool {
	_, ok := zhHans[key]
	return ok
}

// Keys returns the English formats the catalog translates, sorted.
func Keys() []string {
	keys := make([]string, 0, len(zhHans))
	for k := range zhHans {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Message is a message kept as its English format and arguments, so that it can be rendered
// in any language of the catalog.
type Message struct {
	Format string
	Args   []any
}

// String returns the message in English.
func (m Message) String() string { return fmt.Sprintf(m.Format, m.Args...) }

// In returns the message in the language tag.
func (m Message) In(tag language.Tag) string { return Sprintf(tag, m.Format, m.Args...) }

// Translate returns english, a message whose arguments are already substituted (as a service
// stored or sent it), in the language tag: the translation of the catalog format it is an
// instance of, with the same arguments; english itself if the language is English or no format
// matches. When several formats match, the one with the most literal text wins.
func Translate(tag language.Tag, english string) string {
	return translate(tag, english, 3)
}

// translate is Translate that also translates the text arguments of the format it matched
// ("row 3: %s" with "must not be empty"), depth formats deep.
func translate(tag language.Tag, english string, depth int) string {
	if Match(tag) != Chinese || english == "" || depth == 0 {
		return english
	}
	if _, ok := zhHans[english]; ok && !strings.Contains(english, "%") {
		return translatedFormat(english, 0)
	}
	for _, p := range compiled() {
		if !strings.Contains(english, p.anchor) {
			continue
		}
		m := p.re.FindStringSubmatch(english)
		if m == nil {
			continue
		}
		args := make([]any, len(p.kinds))
		ok := true
		for i, k := range p.kinds {
			v := m[i+1]
			switch k {
			case 'd':
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					ok = false
				}
				args[i] = n
			case 'q':
				s, err := strconv.Unquote(v)
				if err != nil {
					ok = false
				}
				args[i] = s
			default:
				args[i] = translate(tag, v, depth-1)
			}
		}
		if ok {
			return Sprintf(tag, p.key, args...)
		}
	}
	return english
}

type pattern struct {
	key    string
	re     *regexp.Regexp
	kinds  []rune // per verb: 'd' integer, 'q' quoted string, 's' anything else as text
	anchor string // the longest literal part, to skip patterns quickly
	lit    int    // number of literal bytes
}

var (
	compileOnce sync.Once
	patterns    []pattern
	verbRE      = regexp.MustCompile(`%(?:%|[-+# 0]*(?:\[\d+\])?\d*(?:\.\d+)?[a-zA-Z])`)
)

func compiled() []pattern {
	compileOnce.Do(func() {
		for _, key := range Keys() {
			if p, ok := compilePattern(key); ok {
				patterns = append(patterns, p)
			}
		}
		sort.SliceStable(patterns, func(i, j int) bool { return patterns[i].lit > patterns[j].lit })
	})
	return patterns
}

// compilePattern turns a format into a regular expression matching its instances; ok is false
// for a format without verbs (matched exactly instead), with positional verbs or with only verbs.
func compilePattern(key string) (pattern, bool) {
	p := pattern{key: key}
	var re strings.Builder
	re.WriteString("^")
	last := 0
	literal := func(s string) {
		re.WriteString(regexp.QuoteMeta(s))
		p.lit += len(s)
		if len(s) > len(p.anchor) {
			p.anchor = s
		}
	}
	for _, loc := range verbRE.FindAllStringIndex(key, -1) {
		v := key[loc[0]:loc[1]]
		pre := key[last:loc[0]]
		last = loc[1]
		if v == "%%" {
			literal(pre + "%")
			continue
		}
		literal(pre)
		if strings.Contains(v, "[") {
			return p, false
		}
		switch verb := v[len(v)-1]; verb {
		case 'd':
			re.WriteString(`(-?\d+)`)
			p.kinds = append(p.kinds, 'd')
		case 'q':
			re.WriteString(`("(?:[^"\\]|\\.)*")`)
			p.kinds = append(p.kinds, 'q')
		default:
			re.WriteString(`(.+?)`)
			p.kinds = append(p.kinds, 's')
		}
	}
	literal(key[last:])
	re.WriteString("$")
	if len(p.kinds) == 0 || p.lit == 0 {
		return p, false
	}
	p.re = regexp.MustCompile("(?s)" + re.String())
	return p, true
}

// RawChinese returns the Chinese format of key as the catalog holds it ("" if none), for tests
// of the catalog.
func RawChinese(key string) string { return zhHans[key] }

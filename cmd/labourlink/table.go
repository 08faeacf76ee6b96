package main

import (
	"fmt"
	"io"
	"strings"

	"golang.org/x/text/width"
)

// table lays rows out in columns for reading, measuring Chinese characters as two columns wide.
// Rows marked with highlight are drawn in bold red on a terminal and flagged with "!" otherwise.
type table struct {
	header     []string
	rows       [][]string
	highlight  []bool
	rightAlign map[int]bool
}

// newTable starts a table with the given column headers, English keys of the catalog shown in
// the CLI's language.
func newTable(header ...string) *table {
	shown := make([]string, len(header))
	for i, h := range header {
		shown[i] = localized(h)
	}
	return &table{header: shown, rightAlign: map[int]bool{}}
}

// alignRight right-aligns the given columns (numbers).
func (t *table) alignRight(cols ...int) *table {
	for _, c := range cols {
		t.rightAlign[c] = true
	}
	return t
}

// add appends a row; hl marks it for attention.
func (t *table) add(hl bool, cells ...any) {
	row := make([]string, len(cells))
	for i, c := range cells {
		row[i] = fmt.Sprint(c)
	}
	t.rows = append(t.rows, row)
	t.highlight = append(t.highlight, hl)
}

// displayWidth is the number of terminal columns s takes: two for East Asian Wide and
// Fullwidth characters (汉字, full-width punctuation), one for everything else, East Asian
// Ambiguous characters included, whatever the locale. Names such as 阿依古丽·买买提 carry U+00B7
// (or U+2022 •), which are Ambiguous: the terminals county staff use (GNOME Terminal/VTE,
// Windows Terminal, the consoles of Kylin and UOS, iTerm2, xterm without -cjk_width) draw them
// one column wide by default, also in a zh_CN locale, as does the wcwidth of glibc; counting
// them wide there would push every later column one to the right on each such name.
func displayWidth(s string) int {
	n := 0
	for _, r := range s {
		switch width.LookupRune(r).Kind() {
		case width.EastAsianWide, width.EastAsianFullwidth:
			n += 2
		default:
			n++
		}
	}
	return n
}

func (t *table) render(w io.Writer, colour bool) {
	widths := make([]int, len(t.header))
	for i, h := range t.header {
		widths[i] = displayWidth(h)
	}
	for _, r := range t.rows {
		for i, c := range r {
			if i < len(widths) {
				widths[i] = max(widths[i], displayWidth(c))
			}
		}
	}
	anyHL := false
	for _, h := range t.highlight {
		anyHL = anyHL || h
	}
	line := func(cells []string, hl bool) string {
		var b strings.Builder
		if anyHL && !colour {
			if hl {
				b.WriteString("! ")
			} else {
				b.WriteString("  ")
			}
		}
		for i, c := range cells {
			if i >= len(widths) {
				break
			}
			pad := strings.Repeat(" ", widths[i]-displayWidth(c))
			if t.rightAlign[i] {
				b.WriteString(pad + c)
			} else {
				b.WriteString(c + pad)
			}
			if i < len(cells)-1 {
				b.WriteString("  ")
			}
		}
		s := strings.TrimRight(b.String(), " ")
		if hl && colour {
			s = "\x1b[1;31m" + s + "\x1b[0m"
		}
		return s
	}
	fmt.Fprintln(w, line(t.header, false))
	sep := make([]string, len(widths))
	for i, wd := range widths {
		sep[i] = strings.Repeat("-", wd)
	}
	fmt.Fprintln(w, line(sep, false))
	for i, r := range t.rows {
		fmt.Fprintln(w, line(r, t.highlight[i]))
	}
}

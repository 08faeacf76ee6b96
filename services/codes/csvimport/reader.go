// Package csvimport reads CSV files exported by spreadsheet programs (Excel,
// WPS, LibreOffice), as used for roster and vacancy imports; other tables
// (workbook sheets, package xlsximport) come in through a Source and get the
// same header handling and row diagnostics.
//
// It detects the encoding (UTF-8 with or without BOM, or GBK as saved by
// Excel on Chinese Windows), handles CRLF line ends, quoted fields, blank and
// empty rows and the empty trailing columns spreadsheets add, maps header
// names (with aliases such as 身份证号 for id_number) to the caller's column
// keys, and numbers rows as the spreadsheet shows them: the header is row 1.
//
// Errors come in three kinds. Open fails for a file that cannot be read as a
// table (wrapping ErrEncoding or ErrHeader, or an I/O error). Next returns a
// *RowError for a row that is bad on its own; reading may go on with the next
// row. Any other error from Next (ErrSyntax, ErrEncoding, I/O) ends the file:
// Next keeps returning it.
package csvimport

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/width"
)

// Column describes a column the caller expects.
type Column struct {
	Key      string   // name the caller passes to Row.Get; also accepted as header text
	Aliases  []string // other header texts for the column, e.g. 身份证号, 身份证号码
	Required bool     // the header must have the column
	// Text, when set, says what the column holds (such as "identity
	// number"): a cell that a workbook stores as a number is refused, since a
	// number loses digits and check characters. CSV has no cell types.
	Text string
}

// Source gives a Reader the rows of a table: a CSV file (Open) or a workbook
// sheet (OpenSource).
type Source interface {
	// Next returns the next row, io.EOF after the last. A *RowError is
	// about that row alone; any other error ends the table.
	Next() (Record, error)
	// Offset returns how far the source has read, for progress: bytes of a
	// file, rows of a sheet.
	Offset() int64
}

// Record is one row as a Source read it.
type Record struct {
	Number int      // the row's number as the spreadsheet shows it
	Cells  []string // the cells' text, from column A on
	// Numeric[i] is true when cell i was stored as a number; nil when the
	// source has no cell types.
	Numeric []bool
}

// msgStoredAsNumber is the reason for a Column.Text cell stored as a number:
// what the column holds, the cell's name.
const msgStoredAsNumber = "%s stored as a number in cell %s, which loses digits; format the column as text and enter the numbers again"

// ErrHeader is wrapped by errors about the header row: a missing required
// column, an unknown or repeated column, a column without a name.
var ErrHeader = errors.New("bad header row")

// ErrSyntax is wrapped by errors for text that is not well-formed CSV, such
// as a quote that is never closed.
var ErrSyntax = errors.New("malformed CSV")

// HeaderError lists every problem found in the header row.
type HeaderError struct {
	Problems []string
}

func (e *HeaderError) Error() string {
	return "header row: " + strings.Join(e.Problems, "; ")
}

// Unwrap returns ErrHeader.
func (e *HeaderError) Unwrap() error { return ErrHeader }

// RowError is a problem with one row; the rows after it can still be read.
type RowError struct {
	Row    int // spreadsheet row number
	Reason string
	// Cells are the row's cells when they could be read (the problem is a
	// cell's type), so that they can be written back for fixing; else nil.
	Cells []string
}

func (e *RowError) Error() string { return fmt.Sprintf("row %d: %s", e.Row, e.Reason) }

// Row is one data row.
type Row struct {
	// Number is the row's number as a spreadsheet shows it: the header is
	// row 1 (unless blank lines precede it), blank rows count, and a cell
	// with line breaks does not make more rows.
	Number int

	values []string
	index  map[string]int
}

// Get returns the value of the column, with surrounding white space
// (including the ideographic space U+3000) removed. column is a Column.Key,
// or, when Open had no columns, a header name. It returns "" for a column the
// file does not have or a cell the row leaves out.
func (r Row) Get(column string) string {
	i, ok := r.index[column]
	if !ok || i >= len(r.values) {
		return ""
	}
	return strings.TrimSpace(r.values[i])
}

// Cell returns the trimmed text of the row's i-th cell (0 is column A), ""
// past the row's last cell.
func (r Row) Cell(i int) string {
	if i < 0 || i >= len(r.values) {
		return ""
	}
	return strings.TrimSpace(r.values[i])
}

// Reader reads rows from a CSV file or another Source. It is not safe for
// concurrent use.
type Reader struct {
	src    Source
	header []string       // trimmed names, trailing empty cells removed
	index  map[string]int // key -> column index
	text   map[int]string // column index -> Column.Text, for the columns that have one
	err    error          // sticky: io.EOF or a fatal error
}

// csvSource is the Source of a CSV file.
type csvSource struct {
	dec      *decoder
	csv      *csv.Reader
	embedded int // line breaks inside the fields read so far
}

// Open reads the header row and prepares to read the rest. With columns, each
// header cell must name one of them (by key or alias, ignoring case, full- or
// half-width forms and surrounding spaces), no column may appear twice, and
// every required column must be present. Without columns, the header names
// themselves are the keys.
func Open(r io.Reader, columns ...Column) (*Reader, error) {
	if _, err := aliasTable(columns); err != nil {
		return nil, err
	}
	dec, err := newDecoder(r)
	if err != nil {
		return nil, err
	}
	cr := csv.NewReader(dec)
	cr.FieldsPerRecord = -1
	return OpenSource(&csvSource{dec: dec, csv: cr}, columns...)
}

// OpenSource is Open for the rows of src: it reads the header row (the first
// row with cells) and prepares to read the rest.
func OpenSource(src Source, columns ...Column) (*Reader, error) {
	match, err := aliasTable(columns)
	if err != nil {
		return nil, err
	}
	rd := &Reader{src: src}
	var rec Record
	for len(rec.Cells) == 0 {
		rec, err = src.Next()
		if err == io.EOF {
			return nil, errors.New("file is empty")
		}
		var rowErr *RowError
		if errors.As(err, &rowErr) {
			return nil, &HeaderError{Problems: []string{fmt.Sprintf("row %d %s", rowErr.Row, rowErr.Reason)}}
		}
		if err != nil {
			return nil, err
		}
	}
	cells := rec.Cells
	cells[0] = strings.TrimPrefix(cells[0], "\ufeff")
	if err := rd.readHeader(cells, columns, match); err != nil {
		return nil, err
	}
	for c, col := range columns {
		if i, ok := rd.index[col.Key]; ok && col.Text != "" {
			if rd.text == nil {
				rd.text = make(map[int]string)
			}
			rd.text[i] = columns[c].Text
		}
	}
	return rd, nil
}

// Header returns the header names as in the file (trimmed), without the
// empty trailing columns spreadsheets add.
func (r *Reader) Header() []string {
	return append([]string(nil), r.header...)
}

// Has reports whether the file has the column (a Column.Key, or a header name
// when Open had no columns).
func (r *Reader) Has(column string) bool {
	_, ok := r.index[column]
	return ok
}

// Encoding returns the encoding detected so far. A file that has been all
// ASCII so far is Undecided.
// Sources other than CSV files are UTF-8.
func (r *Reader) Encoding() Encoding {
	if c, ok := r.src.(*csvSource); ok {
		return c.dec.enc
	}
	return UTF8
}

// Offset returns how many bytes of the input have been read, for showing
// progress against the file size. In UTF-8 it is exactly the end of the last
// row returned; in GBK it may run a few KiB ahead. For another Source it is
// the Source's Offset.
func (r *Reader) Offset() int64 { return r.src.Offset() }

// Offset is a Source's Offset.
func (c *csvSource) Offset() int64 {
	return c.dec.consumed(c.csv.InputOffset())
}

// Next returns the next data row that has any value, skipping blank rows. At
// the end of the file it returns io.EOF. A *RowError is about that row alone:
// call Next again for the next one. Any other error ends the reading and is
// returned again by every later call.
func (r *Reader) Next() (Row, error) {
	for {
		if r.err != nil {
			return Row{}, r.err
		}
		rec, err := r.src.Next()
		if _, ok := err.(*RowError); ok {
			return Row{}, err
		}
		if err != nil {
			r.err = err
			return Row{}, r.err
		}
		number, cells := rec.Number, rec.Cells
		if isBlank(cells) {
			continue
		}
		for i := len(r.header); i < len(cells); i++ {
			if strings.TrimSpace(cells[i]) != "" {
				return Row{}, &RowError{Row: number, Reason: fmt.Sprintf(
					"cell %s%d has a value, but column %s has no name in the header row", columnName(i), number, columnName(i))}
			}
		}
		if len(cells) > len(r.header) {
			cells = cells[:len(r.header)]
		}
		for i, what := range r.text {
			if i < len(rec.Numeric) && rec.Numeric[i] && i < len(cells) && strings.TrimSpace(cells[i]) != "" {
				return Row{}, &RowError{Row: number, Reason: fmt.Sprintf(msgStoredAsNumber, what, fmt.Sprintf("%s%d", columnName(i), number)), Cells: cells}
			}
		}
		return Row{Number: number, values: cells, index: r.index}, nil
	}
}

// Next is a Source's Next: the next CSV record, with its text checked.
func (c *csvSource) Next() (Record, error) {
	rec, err := c.csv.Read()
	if err != nil {
		return Record{}, c.fatal(err)
	}
	line, _ := c.csv.FieldPos(0)
	number := line - c.embedded
	c.countBreaks(rec)
	if isBlank(rec) {
		return Record{Number: number, Cells: rec}, nil
	}
	if reason := c.checkText(rec); reason != "" {
		return Record{}, &RowError{Row: number, Reason: reason}
	}
	return Record{Number: number, Cells: rec}, nil
}

// fatal turns an error of the CSV parser into the error to report.
func (c *csvSource) fatal(err error) error {
	if err == io.EOF {
		return io.EOF
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("row %d: %w: %v (check the quotes in that row)", pe.StartLine-c.embedded, ErrSyntax, pe.Err)
	}
	return err
}

// countBreaks adds the line breaks inside rec's fields, which make file
// lines but not spreadsheet rows.
func (c *csvSource) countBreaks(rec []string) {
	for _, f := range rec {
		c.embedded += strings.Count(f, "\n")
	}
}

// checkText returns why rec's text is bad, or "".
func (c *csvSource) checkText(rec []string) string {
	for _, f := range rec {
		switch {
		case c.dec.enc == GBK && strings.ContainsRune(f, utf8.RuneError):
			return "has bytes that are not GBK text (the file may mix encodings)"
		case c.dec.enc != GBK && !utf8.ValidString(f):
			return "has bytes that are not UTF-8 text (the file may mix encodings)"
		case strings.IndexFunc(f, isBadControl) >= 0:
			return "has a control character, which has no place in a text file"
		}
	}
	return ""
}

func isBlank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// normalizeName folds a header text for matching: trimmed, half-width,
// lower-case.
func normalizeName(s string) string {
	return strings.ToLower(width.Fold.String(strings.TrimSpace(s)))
}

// aliasTable maps every normalised key and alias to its column index.
func aliasTable(columns []Column) (map[string]int, error) {
	match := make(map[string]int)
	for i, c := range columns {
		if strings.TrimSpace(c.Key) == "" {
			return nil, fmt.Errorf("csvimport: column %d has no key", i)
		}
		for _, name := range append([]string{c.Key}, c.Aliases...) {
			n := normalizeName(name)
			if n == "" {
				return nil, fmt.Errorf("csvimport: column %s has an empty alias", c.Key)
			}
			if j, dup := match[n]; dup && j != i {
				return nil, fmt.Errorf("csvimport: %q names both %s and %s", name, columns[j].Key, c.Key)
			}
			match[n] = i
		}
	}
	return match, nil
}

func (r *Reader) readHeader(rec []string, columns []Column, match map[string]int) error {
	names := make([]string, len(rec))
	last := -1
	for i, f := range rec {
		names[i] = strings.TrimSpace(f)
		if names[i] != "" {
			last = i
		}
	}
	names = names[:last+1]
	if len(names) == 0 {
		return &HeaderError{Problems: []string{"the first row is empty; it must name the columns"}}
	}
	r.header = names
	r.index = make(map[string]int, len(names))

	var problems []string
	found := make(map[int]int) // column definition -> header index
	for i, name := range names {
		if name == "" {
			problems = append(problems, fmt.Sprintf("column %s has no name", columnName(i)))
			continue
		}
		if len(columns) == 0 {
			if j, dup := r.index[name]; dup {
				problems = append(problems, fmt.Sprintf("columns %s and %s are both named %q", columnName(j), columnName(i), name))
				continue
			}
			r.index[name] = i
			continue
		}
		c, ok := match[normalizeName(name)]
		if !ok {
			problems = append(problems, fmt.Sprintf("column %s %q is not a known column (known: %s)", columnName(i), name, knownColumns(columns)))
			continue
		}
		if j, dup := found[c]; dup {
			problems = append(problems, fmt.Sprintf("columns %s %q and %s %q are both %s", columnName(j), names[j], columnName(i), name, columns[c].Key))
			continue
		}
		found[c] = i
		r.index[columns[c].Key] = i
	}
	for c, col := range columns {
		if _, ok := found[c]; col.Required && !ok {
			problems = append(problems, fmt.Sprintf("required column %s is missing (name it %s)", col.Key, strings.Join(allNames(col), " or ")))
		}
	}
	if len(problems) > 0 {
		return &HeaderError{Problems: problems}
	}
	return nil
}

func allNames(c Column) []string {
	return append([]string{c.Key}, c.Aliases...)
}

func knownColumns(columns []Column) string {
	parts := make([]string, len(columns))
	for i, c := range columns {
		parts[i] = strings.Join(allNames(c), "/")
	}
	return strings.Join(parts, ", ")
}

// columnName returns the spreadsheet name of the 0-based column i: A, B, ...,
// Z, AA, AB, ...
func columnName(i int) string {
	var b []byte
	for i++; i > 0; i = (i - 1) / 26 {
		b = append([]byte{byte('A' + (i-1)%26)}, b...)
	}
	return string(b)
}

package csvimport

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/transform"
)

// Encoding is the character encoding of an input file.
type Encoding int

// Encodings. Undecided means the file has been all ASCII so far, which reads
// the same in UTF-8 and GBK; the decision is made at the first non-ASCII byte.
const (
	Undecided Encoding = iota
	UTF8
	GBK // GBK and its superset GB18030, as saved by Excel on Chinese Windows ("CSV (逗号分隔)")
)

// String returns "undecided", "UTF-8" or "GBK".
func (e Encoding) String() string {
	switch e {
	case UTF8:
		return "UTF-8"
	case GBK:
		return "GBK"
	default:
		return "undecided"
	}
}

// ErrEncoding is wrapped by the errors for input that is not UTF-8 or GBK
// text: binary files, spreadsheets saved in their own format, UTF-16.
var ErrEncoding = errors.New("file is neither UTF-8 nor GBK text")

// sniffSize is how many bytes are looked at to decide the encoding.
const sniffSize = 64 << 10

const saveAsHint = "save it from the spreadsheet as 'CSV UTF-8 (Comma delimited) (*.csv)' in Excel, or as 'Text CSV' with character set 'Unicode (UTF-8)' in LibreOffice"

func encodingError(what string) error {
	return fmt.Errorf("%w: %s; %s", ErrEncoding, what, saveAsHint)
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// decoder turns the input into UTF-8 for the CSV parser, deciding the
// encoding from the bytes: UTF-8 (with or without BOM) where they are valid
// UTF-8, else GBK where they decode cleanly as GB18030, else an error.
type decoder struct {
	cnt    *countingReader
	br     *bufio.Reader // over cnt
	enc    Encoding
	gbk    io.Reader // decoding reader over br, once enc == GBK
	bomLen int64
	passed int64 // bytes passed through after the BOM while not GBK
}

// countingReader counts the bytes read from r.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// newDecoder checks the start of the input and strips a UTF-8 BOM. It fails
// for empty input and for input that is plainly not text.
func newDecoder(r io.Reader) (*decoder, error) {
	cnt := &countingReader{r: r}
	d := &decoder{cnt: cnt, br: bufio.NewReaderSize(cnt, sniffSize)}
	head, err := d.br.Peek(sniffSize)
	if err != nil && err != io.EOF {
		return nil, err
	}
	atEOF := err == io.EOF
	switch {
	case bytes.HasPrefix(head, utf8BOM):
		d.bomLen = int64(len(utf8BOM))
		d.enc = UTF8
		head = head[len(utf8BOM):]
		if _, err := d.br.Discard(len(utf8BOM)); err != nil {
			return nil, err
		}
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE}) || bytes.HasPrefix(head, []byte{0xFE, 0xFF}):
		return nil, encodingError("it is UTF-16 (Excel's 'Unicode Text')")
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return nil, encodingError("it is an Excel workbook (.xlsx) or another zip archive, not CSV")
	case bytes.HasPrefix(head, []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}):
		return nil, encodingError("it is an old Excel workbook (.xls), not CSV")
	}
	if len(bytes.TrimSpace(head)) == 0 && atEOF {
		return nil, errors.New("file is empty")
	}
	if i := indexBadControl(head); i >= 0 {
		return nil, encodingError(fmt.Sprintf("byte %d is a control character (0x%02X), so it is not a text file", d.bomLen+int64(i)+1, head[i]))
	}
	if d.enc == Undecided {
		if firstNonASCII(head) >= 0 {
			if err := d.decide(head, atEOF); err != nil {
				return nil, err
			}
		} else if atEOF {
			d.enc = UTF8
		}
	}
	return d, nil
}

// decide sets the encoding from window, the bytes from the first non-ASCII
// byte on (or from the start).
func (d *decoder) decide(window []byte, atEOF bool) error {
	bad := invalidUTF8(window, atEOF)
	switch {
	case bad < 0:
		d.enc = UTF8
	case cleanGB18030(window, atEOF):
		d.enc = GBK
		d.gbk = transform.NewReader(d.br, simplifiedchinese.GB18030.NewDecoder())
	default:
		return encodingError(fmt.Sprintf("byte %d starts a sequence that is not UTF-8, and the text does not read as GBK either", d.bomLen+d.passed+int64(bad)+1))
	}
	return nil
}

// Read gives the CSV parser UTF-8 text.
func (d *decoder) Read(p []byte) (int, error) {
	for {
		switch d.enc {
		case UTF8:
			n, err := d.br.Read(p)
			d.passed += int64(n)
			return n, err
		case GBK:
			return d.gbk.Read(p)
		}
		// Undecided: pass ASCII through, decide at the first other byte.
		if _, err := d.br.Peek(1); err != nil {
			return 0, err
		}
		buf, _ := d.br.Peek(d.br.Buffered())
		i := firstNonASCII(buf)
		if i != 0 {
			if i > 0 {
				buf = buf[:i]
			}
			n := copy(p, buf)
			d.br.Discard(n) // cannot fail: n bytes are buffered
			d.passed += int64(n)
			return n, nil
		}
		window, err := d.br.Peek(sniffSize)
		if err != nil && err != io.EOF && len(window) == 0 {
			return 0, err
		}
		if err := d.decide(window, err == io.EOF); err != nil {
			return 0, err
		}
	}
}

// consumed returns how many bytes of the input lie before the parser's
// position parsed (an offset in the decoded text). In UTF-8 it is exact; in
// GBK it is the bytes handed to the decoder, which run ahead of the parser by
// what the decoder and parser have buffered (a few KiB).
func (d *decoder) consumed(parsed int64) int64 {
	if d.enc == GBK {
		return d.cnt.n - int64(d.br.Buffered())
	}
	return d.bomLen + parsed
}

func firstNonASCII(b []byte) int {
	for i, c := range b {
		if c >= utf8.RuneSelf {
			return i
		}
	}
	return -1
}

// isBadControl reports whether r is a control character that has no place in
// a text CSV file. Tab, CR, LF, FF, VT and the old DOS end-of-file mark
// (Ctrl-Z) are allowed.
func isBadControl(r rune) bool {
	switch {
	case r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\v' || r == 0x1A:
		return false
	case r < 0x20:
		return true
	case r >= 0x80 && r <= 0x9F:
		return true
	}
	return false
}

func indexBadControl(b []byte) int {
	for i, c := range b {
		if c < 0x20 && isBadControl(rune(c)) {
			return i
		}
	}
	return -1
}

// invalidUTF8 returns the index of the first byte of b that is not valid
// UTF-8, or -1 if there is none. An incomplete character at the end is
// allowed when more input follows. (Control characters are not its concern:
// Open refuses them at the start of a file, Next in any row.)
func invalidUTF8(b []byte, atEOF bool) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			if rest := b[i:]; !atEOF && len(rest) < utf8.UTFMax && !utf8.FullRune(rest) {
				return -1
			}
			return i
		}
		i += size
	}
	return -1
}

// cleanGB18030 reports whether b decodes as GB18030 with no invalid
// sequence, allowing an incomplete character at the end when more input
// follows.
func cleanGB18030(b []byte, atEOF bool) bool {
	dst := make([]byte, 3*len(b)+16)
	nDst, nSrc, err := simplifiedchinese.GB18030.NewDecoder().Transform(dst, b, atEOF)
	switch {
	case err == transform.ErrShortSrc && !atEOF && len(b)-nSrc < 4:
	case err != nil:
		return false
	}
	for _, r := range string(dst[:nDst]) {
		if r == utf8.RuneError {
			return false
		}
	}
	return true
}

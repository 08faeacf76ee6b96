package csvimport

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"golang.org/x/text/encoding/simplifiedchinese"
	"pgregory.net/rapid"
)

var rosterColumns = []Column{
	{Key: "id_number", Aliases: []string{"身份证号", "身份证号码"}, Required: true},
	{Key: "name", Aliases: []string{"姓名"}, Required: true},
	{Key: "phone", Aliases: []string{"手机号", "联系电话"}},
	{Key: "county", Aliases: []string{"户籍县"}},
}

// gbk encodes s in GBK; s must be encodable.
func gbk(t interface{ Fatalf(string, ...any) }, s string) []byte {
	b, err := simplifiedchinese.GBK.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatalf("encode GBK: %v", err)
	}
	return b
}

// readAll reads every row, failing on any error but io.EOF.
func readAll(t interface{ Fatalf(string, ...any) }, r *Reader, keys ...string) (numbers []int, values [][]string) {
	for {
		row, err := r.Next()
		if err == io.EOF {
			return numbers, values
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		numbers = append(numbers, row.Number)
		var vs []string
		for _, k := range keys {
			vs = append(vs, row.Get(k))
		}
		values = append(values, vs)
	}
}

func TestUTF8WithBOM(t *testing.T) {
	data := "\ufeff身份证号,姓名,手机号\r\n11010519491231002X,张三,13800000000\r\n52010219900101123X,李四,\r\n"
	r, err := Open(strings.NewReader(data), rosterColumns...)
	if err != nil {
		t.Fatal(err)
	}
	if r.Encoding() != UTF8 {
		t.Errorf("Encoding() = %v, want UTF-8", r.Encoding())
	}
	if got := r.Header(); !slices.Equal(got, []string{"身份证号", "姓名", "手机号"}) {
		t.Errorf("Header() = %q", got)
	}
	if !r.Has("phone") || r.Has("county") || r.Has("身份证号") {
		t.Error("Has() wrong")
	}
	numbers, values := readAll(t, r, "id_number", "name", "phone", "county")
	if !slices.Equal(numbers, []int{2, 3}) {
		t.Errorf("row numbers = %v, want [2 3]", numbers)
	}
	want := [][]string{
		{"11010519491231002X", "张三", "13800000000", ""},
		{"52010219900101123X", "李四", "", ""},
	}
	if !slices.EqualFunc(values, want, slices.Equal) {
		t.Errorf("values = %q, want %q", values, want)
	}
	if got := r.Offset(); got != int64(len(data)) {
		t.Errorf("Offset() at end = %d, want %d", got, len(data))
	}
}

func TestUTF8WithoutBOM(t *testing.T) {
	data := "id_number,name\n11010519491231002X,王五\n"
	r, err := Open(strings.NewReader(data), rosterColumns...)
	if err != nil {
		t.Fatal(err)
	}
	if r.Encoding() != UTF8 {
		t.Errorf("Encoding() = %v, want UTF-8", r.Encoding())
	}
	_, values := readAll(t, r, "name")
	if len(values) != 1 || values[0][0] != "王五" {
		t.Errorf("values = %q", values)
	}
}

func TestGBK(t *testing.T) {
	data := gbk(t, "身份证号码,姓名,户籍县\r\n11010519491231002X,张三,南明区\r\n52010219900101123X,欧阳娜娜,\"云岩区, 贵阳\"\r\n")
	r, err := Open(bytes.NewReader(data), rosterColumns...)
	if err != nil {
		t.Fatal(err)
	}
	if r.Encoding() != GBK {
		t.Fatalf("Encoding() = %v, want GBK", r.Encoding())
	}
	numbers, values := readAll(t, r, "id_number", "name", "county")
	want := [][]string{
		{"11010519491231002X", "张三", "南明区"},
		{"52010219900101123X", "欧阳娜娜", "云岩区, 贵阳"},
	}
	if !slices.Equal(numbers, []int{2, 3}) || !slices.EqualFunc(values, want, slices.Equal) {
		t.Errorf("rows %v %q, want [2 3] %q", numbers, values, want)
	}
	if got := r.Offset(); got != int64(len(data)) {
		t.Errorf("Offset() at end = %d, want %d", got, len(data))
	}
}

func TestLibreOfficeExport(t *testing.T) {
	// LibreOffice quotes text cells; a cell may hold line breaks and quotes.
	data := "\"身份证号\",\"姓名\",\"户籍县\"\r\n" +
		"\"11010519491231002X\",\"张三\",\"南明区\r\n（原小河区）\"\r\n" +
		"\"52010219900101123X\",\"李\"\"四\"\"\",\"\"\r\n" +
		"\r\n" +
		"\"440106198506092347\",\"  赵六\u3000\",\"天河区\"\r\n"
	r, err := Open(strings.NewReader(data), rosterColumns...)
	if err != nil {
		t.Fatal(err)
	}
	numbers, values := readAll(t, r, "id_number", "name", "county")
	// Row 3 spans two file lines but is one spreadsheet row; row 5 is blank.
	if !slices.Equal(numbers, []int{2, 3, 5}) {
		t.Errorf("row numbers = %v, want [2 3 5]", numbers)
	}
	want := [][]string{
		{"11010519491231002X", "张三", "南明区\n（原小河区）"},
		{"52010219900101123X", `李"四"`, ""},
		{"440106198506092347", "赵六", "天河区"},
	}
	if !slices.EqualFunc(values, want, slices.Equal) {
		t.Errorf("values = %q, want %q", values, want)
	}
	if got := r.Offset(); got != int64(len(data)) {
		t.Errorf("Offset() at end = %d, want %d", got, len(data))
	}
}

func TestExcelTrailingColumnsAndRows(t *testing.T) {
	data := "身份证号,姓名,,,\r\n11010519491231002X,张三,,,\r\n,,,,\r\n52010219900101123X,李四\r\n,,,,\r\n,,,,\r\n\r\n\r\n"
	r, err := Open(strings.NewReader(data), rosterColumns...)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Header(); !slices.Equal(got, []string{"身份证号", "姓名"}) {
		t.Errorf("Header() = %q", got)
	}
	numbers, values := readAll(t, r, "id_number", "name")
	if !slices.Equal(numbers, []int{2, 4}) || len(values) != 2 || values[1][1] != "李四" {
		t.Errorf("rows %v %q", numbers, values)
	}
}

func TestNoColumns(t *testing.T) {
	r, err := Open(strings.NewReader("a, b ,c\n1,2,3\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, values := readAll(t, r, "a", "b", "c", "d")
	if !slices.EqualFunc(values, [][]string{{"1", "2", "3", ""}}, slices.Equal) {
		t.Errorf("values = %q", values)
	}
	if _, err := Open(strings.NewReader("a,b,a\n")); !errors.Is(err, ErrHeader) || !strings.Contains(err.Error(), `columns A and C are both named "a"`) {
		t.Errorf("duplicate header: %v", err)
	}
}

func TestHeaderMatchingFoldsCaseWidthAndSpace(t *testing.T) {
	r, err := Open(strings.NewReader(" ＩＤ_Number ,NAME\u3000\n1,2\n"), rosterColumns...)
	if err != nil {
		t.Fatal(err)
	}
	_, values := readAll(t, r, "id_number", "name")
	if !slices.EqualFunc(values, [][]string{{"1", "2"}}, slices.Equal) {
		t.Errorf("values = %q", values)
	}
}

func TestHeaderErrors(t *testing.T) {
	tests := []struct {
		name, data string
		want       []string
	}{
		{"missing required", "姓名\n张三\n", []string{"required column id_number is missing (name it id_number or 身份证号 or 身份证号码)"}},
		{"unknown", "身份证号,姓名,工种\n", []string{`column C "工种" is not a known column (known: id_number/身份证号/身份证号码, name/姓名`}},
		{"duplicate", "身份证号,姓名,身份证号码\n", []string{`columns A "身份证号" and C "身份证号码" are both id_number`}},
		{"empty name", "身份证号,,姓名\n", []string{"column B has no name"}},
		{"empty header", ",,\n1,2,3\n", []string{"the first row is empty"}},
		{"several", "工种,,电话\n", []string{`column A "工种"`, "column B has no name", `column C "电话"`, "required column id_number", "required column name"}},
	}
	for _, tt := range tests {
		_, err := Open(strings.NewReader(tt.data), rosterColumns...)
		var he *HeaderError
		if !errors.As(err, &he) || !errors.Is(err, ErrHeader) {
			t.Errorf("%s: err = %v, want a HeaderError", tt.name, err)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not contain %q", tt.name, err, w)
			}
		}
	}
}

func TestBadColumnDefinitions(t *testing.T) {
	tests := [][]Column{
		{{Key: ""}},
		{{Key: "a", Aliases: []string{" "}}},
		{{Key: "a", Aliases: []string{"x"}}, {Key: "b", Aliases: []string{"X"}}},
	}
	for _, cols := range tests {
		if _, err := Open(strings.NewReader("a\n1\n"), cols...); err == nil {
			t.Errorf("Open with columns %+v succeeded", cols)
		}
	}
}

func TestValueInUnnamedColumnIsARowError(t *testing.T) {
	data := "身份证号,姓名,,\n1,张三,,\n2,李四,,备注\n3,王五\n"
	r, err := Open(strings.NewReader(data), rosterColumns...)
	if err != nil {
		t.Fatal(err)
	}
	row, err := r.Next()
	if err != nil || row.Get("name") != "张三" {
		t.Fatalf("row 2: %v %v", row, err)
	}
	_, err = r.Next()
	var re *RowError
	if !errors.As(err, &re) || re.Row != 3 || err.Error() != "row 3: cell D3 has a value, but column D has no name in the header row" {
		t.Fatalf("row 3: err = %v", err)
	}
	row, err = r.Next()
	if err != nil || row.Number != 4 || row.Get("name") != "王五" {
		t.Fatalf("row 4 after a row error: %+v %v", row, err)
	}
}

func TestSyntaxErrorIsFatal(t *testing.T) {
	data := "身份证号,姓名\n1,张三\n2,\"李四\n3,王五\n"
	r, err := Open(strings.NewReader(data), rosterColumns...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	_, err = r.Next()
	if !errors.Is(err, ErrSyntax) || !strings.HasPrefix(err.Error(), "row 3: malformed CSV") {
		t.Fatalf("err = %v, want row 3 ErrSyntax", err)
	}
	if _, err2 := r.Next(); err2 != err {
		t.Errorf("error not sticky: %v", err2)
	}
	if _, err := Open(strings.NewReader("a,\"b\n"), rosterColumns...); !errors.Is(err, ErrSyntax) {
		t.Errorf("bad header: %v", err)
	}
}

func TestEmptyFiles(t *testing.T) {
	for _, data := range []string{"", "\ufeff", "\n\n", "  \r\n"} {
		if _, err := Open(strings.NewReader(data), rosterColumns...); err == nil || !strings.Contains(err.Error(), "empty") {
			t.Errorf("Open(%q) = %v, want empty", data, err)
		}
	}
	r, err := Open(strings.NewReader("身份证号,姓名\r\n"), rosterColumns...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("header only: Next = %v, want io.EOF", err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("second Next = %v, want io.EOF", err)
	}
}

func TestRefusesNonText(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10")
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"png", png, "control character"},
		{"nul", []byte("id_number,name\n1\x002,3\n"), "byte 17 is a control character (0x00)"},
		{"xlsx", []byte("PK\x03\x04\x14\x00\x06\x00"), "Excel workbook (.xlsx)"},
		{"xls", []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0, 0}, "old Excel workbook (.xls)"},
		{"utf16", []byte{0xFF, 0xFE, 'a', 0, ',', 0}, "UTF-16"},
		{"neither", []byte("id_number,name\n\xff\xfe\xfd,\x81\x20\n"), "byte 16 starts a sequence that is not UTF-8, and the text does not read as GBK either"},
	}
	for _, tt := range tests {
		_, err := Open(bytes.NewReader(tt.data), rosterColumns...)
		if !errors.Is(err, ErrEncoding) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want ErrEncoding containing %q", tt.name, err, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), "CSV UTF-8") {
			t.Errorf("%s: error gives no advice: %v", tt.name, err)
		}
	}
}

// longASCII returns a header and enough ASCII rows to pass the sniff window.
func longASCII() string {
	var b strings.Builder
	b.WriteString("id_number,name\r\n")
	for b.Len() <= sniffSize+100 {
		b.WriteString("11010519491231002X,Zhang San\r\n")
	}
	return b.String()
}

func TestEncodingDecidedAfterLongASCIIPrefix(t *testing.T) {
	prefix := longASCII()
	nASCII := strings.Count(prefix, "\n") - 1
	for _, tc := range []struct {
		name string
		data []byte
		enc  Encoding
	}{
		{"gbk", append([]byte(prefix), gbk(t, "52010219900101123X,李四\r\n")...), GBK},
		{"utf8", []byte(prefix + "52010219900101123X,李四\r\n"), UTF8},
	} {
		r, err := Open(bytes.NewReader(tc.data), rosterColumns...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if r.Encoding() != Undecided {
			t.Errorf("%s: Encoding() after Open = %v, want undecided", tc.name, r.Encoding())
		}
		numbers, values := readAll(t, r, "name")
		if len(values) != nASCII+1 || values[nASCII][0] != "李四" || numbers[nASCII] != nASCII+2 {
			t.Fatalf("%s: last row %d %q", tc.name, numbers[len(numbers)-1], values[len(values)-1])
		}
		if r.Encoding() != tc.enc {
			t.Errorf("%s: Encoding() = %v, want %v", tc.name, r.Encoding(), tc.enc)
		}
		if got := r.Offset(); got != int64(len(tc.data)) {
			t.Errorf("%s: Offset() at end = %d, want %d", tc.name, got, len(tc.data))
		}
	}

	// Bytes that are neither, after the window: a fatal encoding error.
	r, err := Open(strings.NewReader(prefix+"1,\xff\xff\n"), rosterColumns...)
	if err != nil {
		t.Fatal(err)
	}
	for {
		_, err = r.Next()
		if err != nil {
			break
		}
	}
	if !errors.Is(err, ErrEncoding) {
		t.Errorf("err = %v, want ErrEncoding", err)
	}
}

func TestMixedEncodingRowsAreRowErrors(t *testing.T) {
	// A UTF-8 file with one row pasted in GBK after the sniff window.
	utf8Rows := strings.Repeat("11010519491231002X,张三\n", sniffSize/20)
	data := append([]byte("id_number,name\n"+utf8Rows), gbk(t, "52010219900101123X,李四\n")...)
	data = append(data, "440106198506092347,赵六\n"...)
	r, err := Open(bytes.NewReader(data), rosterColumns...)
	if err != nil {
		t.Fatal(err)
	}
	var rowErrs []*RowError
	var last Row
	for {
		row, err := r.Next()
		if err == io.EOF {
			break
		}
		var re *RowError
		if errors.As(err, &re) {
			rowErrs = append(rowErrs, re)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		last = row
	}
	n := strings.Count(utf8Rows, "\n")
	if len(rowErrs) != 1 || rowErrs[0].Row != n+2 || !strings.Contains(rowErrs[0].Reason, "not UTF-8") {
		t.Errorf("row errors = %v, want one for row %d", rowErrs, n+2)
	}
	if last.Get("name") != "赵六" || last.Number != n+3 {
		t.Errorf("last row = %d %q", last.Number, last.Get("name"))
	}
}

func TestControlCharacterInLaterRowIsARowError(t *testing.T) {
	r, err := Open(strings.NewReader("id_number,name\n1,a\x01b\n2,c\n"), rosterColumns...)
	if err == nil {
		// The first 64 KiB are checked by Open; this is refused there.
		t.Fatalf("Open accepted a control character: %v", r)
	}
	for _, data := range []string{
		longASCII() + "1,a\x01b\n2,c\n",
		longASCII() + "0,李四\n1,a\x01b\n2,c\n",                 // decided UTF-8 on a window with the control
		longASCII() + string(gbk(t, "0,李四\n1,a\x01b\n2,c\n")), // decided GBK likewise
	} {
		r, err = Open(strings.NewReader(data), rosterColumns...)
		if err != nil {
			t.Fatal(err)
		}
		var rowErrs, rows int
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			var re *RowError
			if errors.As(err, &re) && strings.Contains(re.Reason, "control character") {
				rowErrs++
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			rows++
		}
		if rowErrs != 1 || rows != strings.Count(data, "\n")-2 {
			t.Errorf("got %d row errors and %d rows, want 1 and %d", rowErrs, rows, strings.Count(data, "\n")-2)
		}
	}
}

func TestOffsetGrows(t *testing.T) {
	data := longASCII()
	r, err := Open(strings.NewReader(data), rosterColumns...)
	if err != nil {
		t.Fatal(err)
	}
	prev := r.Offset()
	if prev != int64(len("id_number,name\r\n")) {
		t.Errorf("Offset() after header = %d", prev)
	}
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		off := r.Offset()
		if off <= prev || off > int64(len(data)) {
			t.Fatalf("Offset() went from %d to %d (size %d)", prev, off, len(data))
		}
		prev = off
	}
	if prev != int64(len(data)) {
		t.Errorf("final Offset() = %d, want %d", prev, len(data))
	}
}

func TestColumnName(t *testing.T) {
	for i, want := range map[int]string{0: "A", 1: "B", 25: "Z", 26: "AA", 27: "AB", 51: "AZ", 52: "BA", 701: "ZZ", 702: "AAA"} {
		if got := columnName(i); got != want {
			t.Errorf("columnName(%d) = %q, want %q", i, got, want)
		}
	}
}

func TestEncodingString(t *testing.T) {
	for e, want := range map[Encoding]string{UTF8: "UTF-8", GBK: "GBK", Undecided: "undecided"} {
		if e.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(e), e.String(), want)
		}
	}
}

// Cells for the round-trip property: text that GBK can encode, with the
// characters CSV must quote, no leading or trailing space (Get trims) and no
// CR (CSV turns CRLF in a cell into LF).
var cellGen = rapid.Custom(func(t *rapid.T) string {
	s := rapid.StringOf(rapid.SampledFrom([]rune("ab19 ,\"\n张三李四贵州省广东（）—·"))).Draw(t, "cell")
	return strings.TrimSpace(s)
})

func TestPropertyRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		rows := rapid.SliceOfN(rapid.SliceOfN(cellGen, 3, 3), 0, 30).Draw(t, "rows")
		crlf := rapid.Bool().Draw(t, "crlf")
		enc := rapid.SampledFrom([]string{"utf8", "utf8bom", "gbk"}).Draw(t, "encoding")

		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		w.UseCRLF = crlf
		w.Write([]string{"身份证号", "姓名", "户籍县"})
		w.WriteAll(rows)
		data := buf.Bytes()
		switch enc {
		case "utf8bom":
			data = append([]byte("\ufeff"), data...)
		case "gbk":
			data = gbk(t, string(data))
		}

		r, err := Open(bytes.NewReader(data), rosterColumns...)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		var want [][]string
		var wantNumbers []int
		for i, row := range rows {
			if !isBlank(row) {
				want = append(want, row)
				wantNumbers = append(wantNumbers, i+2)
			}
		}
		numbers, got := readAll(t, r, "id_number", "name", "county")
		if !slices.Equal(numbers, wantNumbers) {
			t.Fatalf("row numbers %v, want %v", numbers, wantNumbers)
		}
		if len(got) != len(want) || (len(want) > 0 && !slices.EqualFunc(got, want, slices.Equal)) {
			t.Fatalf("got %q, want %q", got, want)
		}
		if r.Offset() != int64(len(data)) {
			t.Fatalf("Offset() = %d, want %d", r.Offset(), len(data))
		}
	})
}

func FuzzReader(f *testing.F) {
	f.Add([]byte("\ufeff身份证号,姓名\r\n11010519491231002X,张三\r\n"))
	f.Add(gbk(f, "身份证号码,姓名,户籍县\r\n1,张三,\"南明区\r\n小河\"\r\n,,\r\n"))
	f.Add([]byte("a,b,,\n1,2,,x\n\"3\n"))
	f.Add([]byte("PK\x03\x04"))
	f.Add([]byte("id_number,name\n\xff\xfe\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, cols := range [][]Column{nil, rosterColumns} {
			r, err := Open(bytes.NewReader(data), cols...)
			if err != nil {
				continue
			}
			if len(r.Header()) == 0 {
				t.Fatal("opened with an empty header")
			}
			prevRow, prevOff := 0, r.Offset()
			for i := 0; i < 10000; i++ {
				row, err := r.Next()
				var re *RowError
				if errors.As(err, &re) {
					if re.Row <= prevRow {
						t.Fatalf("row error %d after row %d", re.Row, prevRow)
					}
					prevRow = re.Row
					continue
				}
				if err != nil {
					break
				}
				if row.Number <= prevRow || row.Number < 2 {
					t.Fatalf("row %d after row %d", row.Number, prevRow)
				}
				prevRow = row.Number
				for _, h := range r.Header() {
					_ = row.Get(h)
				}
				off := r.Offset()
				if off < prevOff || off > int64(len(data)) {
					t.Fatalf("Offset() %d after %d, size %d", off, prevOff, len(data))
				}
				prevOff = off
			}
		}
	})
}

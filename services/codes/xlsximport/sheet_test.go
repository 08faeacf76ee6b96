package xlsximport

import (
	"errors"
	"io"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/eastwest/labourlink/services/codes/csvimport"
)

// fixture is a workbook LibreOffice Calc made (cmd/labourlink/testdata/README.md says how).
func fixture(name string) string {
	return filepath.Join("..", "..", "..", "cmd", "labourlink", "testdata", name)
}

var columns = []csvimport.Column{
	{Key: "id_number", Aliases: []string{"身份证号"}, Required: true, Text: "identity number"},
	{Key: "full_name", Aliases: []string{"姓名"}, Required: true},
	{Key: "phone", Aliases: []string{"手机号"}},
	{Key: "home_county", Aliases: []string{"户籍县"}},
	{Key: "registered_poor", Aliases: []string{"建档立卡"}},
	{Key: "occupations", Aliases: []string{"工种"}},
	{Key: "preferred_destinations", Aliases: []string{"意向省份"}},
	{Key: "available_from", Aliases: []string{"可出发日期"}},
	{Key: "health_check_passed", Aliases: []string{"体检合格"}},
	{Key: "health_check_date", Aliases: []string{"体检日期"}},
}

// readAll reads every row of a sheet through csvimport: the good rows as "number id name phone
// date", the refused ones as "number: reason".
func readAll(t *testing.T, path, sheet string) []string {
	t.Helper()
	s, err := Open(path, sheet)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := csvimport.OpenSource(s, columns...)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		row, err := r.Next()
		if err == io.EOF {
			return got
		}
		var rowErr *csvimport.RowError
		if errors.As(err, &rowErr) {
			got = append(got, strings.Join([]string{itoa(rowErr.Row), rowErr.Reason}, ": "))
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.Join([]string{itoa(row.Number), row.Get("id_number"), row.Get("full_name"), row.Get("phone"), row.Get("available_from")}, " "))
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestLibreOfficeWorkbooks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file, sheet string
		want        []string
	}{
		{"roster.xlsx", "", []string{
			"2 520102199001150010 王春梅 13800138000 2027/1/5",
			"3 520103198803040130 李建国 13900139001 2027/1/5",
			"4 520111201501010213 张小明 13700137002 2027/1/5",
			"5 520102199207080353 赵丽 1370013700 2027/1/5",
		}},
		// The identity number of row 3 is a number (5.2010319880304E+17): refused. Its phone is
		// a number too, which keeps its 11 digits: fine.
		{"roster-numeric-id.xlsx", "", []string{
			"2 520102199001150010 王春梅 13800138000 2027/1/5",
			"3: identity number stored as a number in cell A3, which loses digits; format the column as text and enter the numbers again",
			"4 520111201501010213 张小明 13700137002 2027/1/5",
			"5 520102199207080353 赵丽 1370013700 2027/1/5",
		}},
		// The roster is the second sheet, with row 4 left empty: rows keep Excel's numbers.
		{"roster-two-sheets.xlsx", "花名册", []string{
			"2 520102199001150010 王春梅 13800138000 2027/1/5",
			"3 520103198803040130 李建国 13900139001 2027/1/5",
			"5 520111201501010213 张小明 13700137002 2027/1/5",
			"6 520102199207080353 赵丽 1370013700 2027/1/5",
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got := readAll(t, fixture(tc.file), tc.sheet)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

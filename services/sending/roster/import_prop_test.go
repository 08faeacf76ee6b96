package roster

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"pgregory.net/rapid"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/idnumber"
	"github.com/eastwest/labourlink/services/codes/regions"
)

var (
	propOccupations  = []string{"8212", "9313", "8153", "9333", "7112", "5120"}
	propDestinations = []string{"440000", "330000", "320000", "310000", "350000"}
	propSeparators   = []string{";", ",", " ", "；", "、", "，"}
	propFlagsTrue    = []string{"true", "1", "yes", "是", "Y", "TRUE"}
	propFlagsFalse   = []string{"", "false", "0", "no", "否", "N"}
	propEducation    = []string{"", "初中", "高中", "junior_secondary", "EDUCATION_VOCATIONAL", "大专", "本科", "none"}
	propNameRunes    = []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤·")
	propImportDay    = &commonv1.Date{Year: 2026, Month: 3, Day: 1}
	propChecker      = checker{regions: regions.Default(), province: rosterRegion}
	propMaxBirthDays = int(time.Date(2010, 3, 1, 0, 0, 0, 0, time.UTC).Sub(time.Date(1946, 1, 1, 0, 0, 0, 0, time.UTC)).Hours() / 24)
)

// genValidRow draws a row that must be accepted: a real identity number of a worker aged 16 to
// 80 on propImportDay, a county of Guizhou, and every optional field in one of its accepted forms.
func genValidRow(t *rapid.T) *sendingv1.WorkerRow {
	county := rapid.SampledFrom(testCounties).Draw(t, "county")
	birth := time.Date(1946, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rapid.IntRange(0, propMaxBirthDays).Draw(t, "birthDay"))
	id := makeIDNumber(county, birth, rapid.IntRange(0, 999).Draw(t, "seq"))
	if id[17] == 'X' && rapid.Bool().Draw(t, "lowerX") {
		id = id[:17] + "x"
	}
	list := func(label string, from []string) string {
		codes := rapid.SliceOfN(rapid.SampledFrom(from), 0, 4).Draw(t, label)
		sep := rapid.SampledFrom(propSeparators).Draw(t, label+"Sep")
		return strings.Join(codes, sep)
	}
	passed := rapid.Bool().Draw(t, "passed")
	row := &sendingv1.WorkerRow{
		RowNumber:             rapid.Int64Range(1, 1<<40).Draw(t, "row"),
		IdNumber:              id,
		FullName:              string(rapid.SliceOfN(rapid.SampledFrom(propNameRunes), 1, 10).Draw(t, "name")),
		Phone:                 "1" + rapid.StringMatching(`[3-9][0-9]{9}`).Draw(t, "phone"),
		HomeCounty:            county,
		RegisteredPoor:        rapid.SampledFrom(append(slices.Clone(propFlagsTrue), propFlagsFalse...)).Draw(t, "poor"),
		Occupations:           list("occupations", propOccupations),
		Education:             rapid.SampledFrom(propEducation).Draw(t, "education"),
		PreferredDestinations: list("destinations", propDestinations),
	}
	if rapid.Bool().Draw(t, "hasAvailable") {
		row.AvailableFrom = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rapid.IntRange(0, 700).Draw(t, "avail")).Format("2006-01-02")
	}
	if passed {
		row.HealthCheckPassed = rapid.SampledFrom(propFlagsTrue).Draw(t, "passedCell")
		row.HealthCheckDate = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, -rapid.IntRange(0, 900).Draw(t, "checkAge")).Format("2006/1/2")
	} else {
		row.HealthCheckPassed = rapid.SampledFrom(propFlagsFalse).Draw(t, "passedCell")
	}
	if rapid.Bool().Draw(t, "giveSex") {
		if (id[16]-'0')%2 == 1 {
			row.Sex = rapid.SampledFrom([]string{"M", "男", "male"}).Draw(t, "sex")
		} else {
			row.Sex = rapid.SampledFrom([]string{"F", "女", "Female"}).Draw(t, "sex")
		}
	}
	if rapid.Bool().Draw(t, "giveBirth") {
		row.BirthDate = birth.Format("2006-01-02")
	}
	return row
}

// Every generated valid row is accepted, and the worker holds the row's values normalised.
func TestValidateRowAcceptsValidRows(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		row := genValidRow(t)
		res := propChecker.validateRow(row, propImportDay)
		if res.worker == nil {
			t.Fatalf("valid row rejected: %v", res.rejections)
		}
		w := res.worker
		info, err := idnumber.Parse(row.IdNumber)
		if err != nil {
			t.Fatal(err)
		}
		if w.GetIdNumber() != strings.ToUpper(row.IdNumber) || res.idNumber != w.GetIdNumber() ||
			w.GetSex() != sexFromInfo(info.Sex) || civil.Format(w.GetBirthDate()) != info.BirthDate.Format("2006-01-02") {
			t.Fatalf("identity fields: %v", w)
		}
		if w.GetPhone() != row.Phone || w.GetHomeCounty() != row.HomeCounty || w.GetFullName() != row.FullName {
			t.Fatalf("copied fields: %v", w)
		}
		if !slices.IsSorted(w.GetOccupations()) || !slices.IsSorted(w.GetPreferredDestinations()) {
			t.Fatalf("lists not sorted: %v", w)
		}
		for _, o := range splitList(row.Occupations) {
			if !slices.Contains(w.GetOccupations(), o) {
				t.Fatalf("occupation %s lost", o)
			}
		}
		if w.GetHealthCheckPassed() != (w.GetHealthCheckDate() != nil) {
			t.Fatalf("health check pair: %v", w)
		}
	})
}

// Any single-character change of a valid identity number makes the row rejected on id_number:
// MOD 11-2 catches every single substitution, and other characters are not digits.
func TestValidateRowRejectsAnySingleCharacterChange(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		row := genValidRow(t)
		id := strings.ToUpper(row.IdNumber)
		pos := rapid.IntRange(0, 17).Draw(t, "pos")
		c := rapid.SampledFrom([]byte("0123456789XAZ-* ")).Filter(func(c byte) bool { return c != id[pos] }).Draw(t, "char")
		row.IdNumber = id[:pos] + string(c) + id[pos+1:]
		res := propChecker.validateRow(row, propImportDay)
		if res.worker != nil {
			t.Fatalf("identity number with position %d changed to %q accepted", pos, c)
		}
		found := false
		for _, rj := range res.rejections {
			found = found || rj.GetField() == fieldIDNumber
			if strings.Contains(rj.GetReason(), row.IdNumber) {
				t.Fatalf("reason repeats the identity number: %q", rj.GetReason())
			}
		}
		if !found {
			t.Fatalf("no id_number rejection: %v", res.rejections)
		}
	})
}

// Whatever the cells hold, validation never panics, and each rejection names the row, a
// WorkerRow field and a reason; reasons about identity numbers and phones never repeat them.
func TestValidateRowArbitraryInput(t *testing.T) {
	t.Parallel()
	fields := []string{fieldIDNumber, fieldFullName, fieldPhone, fieldHomeCounty, fieldRegisteredPoor, fieldOccupations,
		fieldEducation, fieldPreferredDestinations, fieldAvailableFrom, fieldHealthCheckPassed, fieldHealthCheckDate, fieldSex, fieldBirthDate}
	rapid.Check(t, func(t *rapid.T) {
		cell := func(label string) string {
			return rapid.OneOf(rapid.String(), rapid.StringMatching(`[0-9Xx ;,/-]{0,20}`)).Draw(t, label)
		}
		row := &sendingv1.WorkerRow{
			RowNumber: rapid.Int64Range(1, 1<<40).Draw(t, "row"), IdNumber: cell("id"), FullName: cell("name"), Phone: cell("phone"),
			HomeCounty: cell("county"), RegisteredPoor: cell("poor"), Occupations: cell("occ"), Education: cell("edu"),
			PreferredDestinations: cell("dest"), AvailableFrom: cell("avail"), HealthCheckPassed: cell("passed"),
			HealthCheckDate: cell("checkDate"), Sex: cell("sex"), BirthDate: cell("birth"),
		}
		if rapid.Bool().Draw(t, "realID") {
			row.IdNumber = genValidRow(t).IdNumber
		}
		res := propChecker.validateRow(row, propImportDay)
		if (res.worker == nil) == (len(res.rejections) == 0) {
			t.Fatalf("worker %v with %d rejections", res.worker, len(res.rejections))
		}
		for _, rj := range res.rejections {
			if rj.GetRowNumber() != row.RowNumber || !slices.Contains(fields, rj.GetField()) || rj.GetReason() == "" {
				t.Fatalf("bad rejection %v", rj)
			}
			id, phone := strings.TrimSpace(row.IdNumber), strings.TrimSpace(row.Phone)
			if rj.GetField() == fieldIDNumber && len(id) >= 6 && strings.Contains(rj.GetReason(), id) {
				t.Fatalf("id_number reason repeats the value: %q", rj.GetReason())
			}
			if rj.GetField() == fieldPhone && len(phone) >= 6 && strings.Contains(rj.GetReason(), phone) {
				t.Fatalf("phone reason repeats the value: %q", rj.GetReason())
			}
		}
	})
}

func TestCheckPhoneProperties(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		p := "1" + rapid.StringMatching(`[3-9][0-9]{9}`).Draw(t, "mobile")
		if got, reason := checkPhone(p); reason != "" || got != p {
			t.Fatalf("checkPhone(%s) = %q, %q", p, got, reason)
		}
		spaced := p[:3] + " " + p[3:7] + "-" + p[7:]
		if got, reason := checkPhone("+86 " + spaced); reason != "" || got != p {
			t.Fatalf("checkPhone(+86 %s) = %q, %q", spaced, got, reason)
		}
		digits := rapid.StringMatching(`[0-9]{0,20}`).Draw(t, "digits")
		if len(digits) != 11 && !(len(digits) == 13 && strings.HasPrefix(digits, "86")) {
			if _, reason := checkPhone(digits); reason == "" {
				t.Fatalf("checkPhone(%q) accepted %d digits", digits, len(digits))
			}
		}
		if len(digits) == 11 && (digits[0] != '1' || digits[1] < '3') {
			if _, reason := checkPhone(digits); reason == "" {
				t.Fatalf("checkPhone(%q) accepted a non-mobile number", digits)
			}
		}
	})
}

// dateShape is the shape parseDate accepts (before the check of the day), with dashes; slashes
// throughout are the same shape.
var dateShape = regexp.MustCompile(`^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})$`)

// shapedDate returns dateShape's submatches of s, with slashes taken as dashes when s has no dash.
func shapedDate(s string) []string {
	if !strings.Contains(s, "-") {
		s = strings.ReplaceAll(s, "/", "-")
	}
	return dateShape.FindStringSubmatch(s)
}

func atoi32(s string) int32 {
	n, _ := strconv.Atoi(s)
	return int32(n)
}

func TestParseDateProperties(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		day := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rapid.IntRange(0, 200*366).Draw(t, "day"))
		want := &commonv1.Date{Year: int32(day.Year()), Month: int32(day.Month()), Day: int32(day.Day())}
		for _, layout := range []string{"2006-01-02", "2006/1/2", "2006-1-2", "2006/01/02"} {
			got, reason := parseDate(day.Format(layout))
			if reason != "" || !proto.Equal(got, want) {
				t.Fatalf("parseDate(%q) = %v, %q", day.Format(layout), got, reason)
			}
		}
		s := rapid.String().Draw(t, "any")
		if d, reason := parseDate(s); reason == "" && d != nil && CheckDate(d) != "" {
			t.Fatalf("parseDate(%q) accepted an impossible date %v", s, d)
		}
		// Strings of digits and separators: a date is accepted exactly when it has the
		// shape (4 digits, 1-2, 1-2, one separator throughout) and is a real day.
		s = rapid.StringOfN(rapid.SampledFrom([]rune("0123-/")), 0, 12, -1).Draw(t, "shaped")
		d, reason := parseDate(s)
		m := shapedDate(s)
		switch {
		case m == nil && reason == "" && d != nil:
			t.Fatalf("parseDate(%q) = %v: not the shape of a date", s, d)
		case m != nil && (reason == "") != (CheckDate(&commonv1.Date{Year: atoi32(m[1]), Month: atoi32(m[2]), Day: atoi32(m[3])}) == ""):
			t.Fatalf("parseDate(%q) = %v, %q", s, d, reason)
		}
	})
	for _, bad := range []string{"2026--01", "-2026-01-01", "2026-01-", "20260-1-1", "2026-001-1", "2026-01-001", "2026/01-02", "2026-01/02", "2026-02-29", "2026-13-01", "2026-00-10", "26-1-1", "2026-1", "2026.01.01", "1899-12-31", "2026-1-1-1", "２０２６-01-01"} {
		if d, reason := parseDate(bad); reason == "" {
			t.Errorf("parseDate(%q) = %v, want a reason", bad, d)
		}
	}
}

// The reasons an operator reads, for a row with three bad cells.
func TestValidateRowReasonsExample(t *testing.T) {
	t.Parallel()
	row := &sendingv1.WorkerRow{RowNumber: 7, IdNumber: "52010219900101123", FullName: "张三", Phone: "1380013800", HomeCounty: "440103"}
	var got []string
	for _, rj := range propChecker.validateRow(row, propImportDay).rejections {
		got = append(got, fmt.Sprintf("row %d %s: %s", rj.GetRowNumber(), rj.GetField(), rj.GetReason()))
	}
	want := []string{
		"row 7 id_number: must be 18 characters, got 17",
		"row 7 phone: must be an 11-digit mobile number, got 10 digits",
		"row 7 home_county: 440103 is not a county of 520000 (贵州省)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("reasons:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestDestinationsByCodeOrName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		want   []string
		reason string
	}{
		{"440000", []string{"440000"}, ""},
		{"广东", []string{"440000"}, ""},
		{"广东省;浙江 440000", []string{"330000", "440000"}, ""},
		{"广西、内蒙古", []string{"150000", "450000"}, ""},
		{"", nil, ""},
		{"贵州", nil, "this sending province"},
		{"火星", nil, "not a 6-digit GB/T 2260 code"},
		{"440100", nil, "not a province"},
	}
	for _, tt := range tests {
		got, reason := propChecker.destinations(splitList(tt.in))
		if !slices.Equal(got, tt.want) || !strings.Contains(reason, tt.reason) || (tt.reason == "") != (reason == "") {
			t.Errorf("destinations(%q) = %v, %q; want %v, %q", tt.in, got, reason, tt.want, tt.reason)
		}
	}
}

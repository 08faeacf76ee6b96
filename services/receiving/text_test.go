package receiving

import (
	"fmt"
	"strings"
	"testing"

	"pgregory.net/rapid"

	receivingv1 "github.com/eastwest/labourlink/proto/labour/receiving/v1"
	"github.com/eastwest/labourlink/services/apierror"
	"github.com/eastwest/labourlink/services/idnumber"
	"github.com/eastwest/labourlink/services/regions"
)

// genIDNumber draws a valid identity number.
func genIDNumber(t *rapid.T) string {
	provinces := regions.Default().Provinces()
	p := rapid.SampledFrom(provinces).Draw(t, "province").Code
	y := rapid.IntRange(1940, 2007).Draw(t, "year")
	m := rapid.IntRange(1, 12).Draw(t, "month")
	d := rapid.IntRange(1, 28).Draw(t, "day")
	seq := rapid.IntRange(0, 999).Draw(t, "seq")
	first := fmt.Sprintf("%s%04d%04d%02d%02d%03d", p[:2], rapid.IntRange(0, 9999).Draw(t, "area"), y, m, d, seq)
	id := idNumber(first)
	if _, err := idnumber.Parse(id); err != nil {
		t.Fatalf("generated %s: %v", idnumber.Mask(id), err)
	}
	return id
}

// Any valid identity number is found in any text around it, and refused in every field of a
// request; a worker id with its shape is refused even with a wrong check character.
func TestPropertyIdentityNumberAlwaysFound(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		id := genIDNumber(t)
		if rapid.Bool().Draw(t, "lower x") && id[17] == 'X' {
			id = id[:17] + "x"
		}
		sep := rapid.SampledFrom([]string{"", " ", "-", ":", "，", "号", "/"})
		before := rapid.StringMatching(`[a-z\p{Han} ]{0,8}`).Draw(t, "before") + sep.Draw(t, "sep1")
		after := sep.Draw(t, "sep2") + rapid.StringMatching(`[a-z\p{Han} ]{0,8}`).Draw(t, "after")
		text := before + id + after
		if !containsIDNumber(text) {
			t.Fatalf("identity number not found in %q", idnumber.Mask(id))
		}
		field := rapid.SampledFrom([]string{"worker_id", "full_name", "home_county", "reason"}).Draw(t, "field")
		c := &receivingv1.Candidate{}
		switch field {
		case "worker_id":
			c.WorkerId = text
		case "full_name":
			c.FullName = text
		case "home_county":
			c.HomeCounty = text
		case "reason":
			c.Reason = text
		}
		req := &receivingv1.SubmitCandidatesRequest{Candidates: []*receivingv1.Candidate{c}}
		err := identityNumberError(req)
		var ve *apierror.ViolationsError
		if !errorsAs(err, &ve) || ve.Violations()[0].Field != "candidates[0]."+field {
			t.Fatalf("identity number in %s: %v", field, err)
		}
		// Shape alone is enough for a worker id.
		bad := id[:17] + string("0123456789X"[(strings.IndexByte("0123456789X", id[17]&^0x20)+1)%11])
		if !looksLikeIDNumber(bad) {
			t.Fatalf("shape of %s not recognised", idnumber.Mask(bad))
		}
	})
}

// Text without a run of 17 digits never counts as holding an identity number, and longer runs
// of digits do not either.
func TestPropertyNoFalseIdentityNumbers(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := rapid.StringMatching(`([A-Za-z\-\p{Han}]{1,3}[0-9]{0,16}){0,6}`).Draw(t, "text")
		if containsIDNumber(s) {
			t.Fatalf("%q reported as holding an identity number", s)
		}
		id := genIDNumber(t)
		if containsIDNumber("7"+id) || containsIDNumber(id+"1") {
			t.Fatalf("identity number inside a longer number reported")
		}
	})
}

func TestPersonName(t *testing.T) {
	for _, ok := range []string{"王小明", "阿依古丽·买买提", "Li Wei", "O'Neil", "张　三"} {
		if p := personNameProblem(ok); p != "" {
			t.Errorf("%q: %s", ok, p)
		}
	}
	for _, bad := range []string{"", "  ", "王2", "a\tb", "name@x", strings.Repeat("王", 51)} {
		if personNameProblem(bad) == "" {
			t.Errorf("%q accepted as a name", bad)
		}
	}
}

func TestParseDate(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"2025-04-01", "2025-04-01"}, {"2025/4/1", "2025-04-01"}, {"2025.12.31", "2025-12-31"},
		{"2024-02-29", "2024-02-29"}, {"2025-02-29", ""}, {"2025-4-1x", ""}, {"25-04-01", ""},
		{"2025-04/01", ""}, {"", ""}, {"2025-13-01", ""}, {"20250401", ""},
	}
	for _, tt := range tests {
		d, err := parseDate(tt.in)
		got := ""
		if err == nil {
			got = formatDate(d)
		}
		if got != tt.want {
			t.Errorf("parseDate(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestWholeMonths(t *testing.T) {
	tests := []struct {
		a, b [3]int32
		want int32
	}{
		{[3]int32{2025, 1, 31}, [3]int32{2025, 4, 30}, 2},
		{[3]int32{2025, 1, 15}, [3]int32{2025, 4, 15}, 3},
		{[3]int32{2024, 11, 1}, [3]int32{2025, 5, 1}, 6},
		{[3]int32{2025, 3, 1}, [3]int32{2025, 3, 1}, 0},
	}
	for _, tt := range tests {
		if got := wholeMonths(date(tt.a[0], tt.a[1], tt.a[2]), date(tt.b[0], tt.b[1], tt.b[2])); got != tt.want {
			t.Errorf("wholeMonths(%v, %v) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

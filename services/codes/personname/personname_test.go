package personname

import (
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"pgregory.net/rapid"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		in, want, problem string
	}{
		{"张伟", "张伟", ""},
		{"  阿依古丽·买买提 ", "阿依古丽·买买提", ""},
		{"O'Neil-Smith", "O'Neil-Smith", ""},
		{"", "", "is required"},
		{"   ", "", "is required"},
		{"示例工人1", "", "must be a name: digits are not allowed"},
		{"张\x00伟", "", "has a control character"},
		{"张伟@", "", `must be a name: '@' is not allowed`},
		{strings.Repeat("张", MaxRunes), strings.Repeat("张", MaxRunes), ""},
		{strings.Repeat("张", MaxRunes+1), "", "is longer than 50 characters"},
		{"\xff", "", "is not valid UTF-8 text"},
	}
	for _, tt := range tests {
		got, problem := Check(tt.in)
		if got != tt.want || problem != tt.problem {
			t.Errorf("Check(%q) = %q, %q; want %q, %q", tt.in, got, problem, tt.want, tt.problem)
		}
	}
}

// TestCheckNeverAcceptsDigitsOrRepeatsTheName: whatever the input, an accepted name has no
// digit, and a reason is a fixed sentence or quotes the single character it refuses, so it never
// repeats a name.
func TestCheckNeverAcceptsDigitsOrRepeatsTheName(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := rapid.String().Draw(t, "s")
		got, problem := Check(s)
		if problem == "" {
			if strings.IndexFunc(got, unicode.IsDigit) >= 0 || got == "" || got != strings.TrimSpace(s) {
				t.Fatalf("accepted %q as %q", s, got)
			}
			return
		}
		if got != "" {
			t.Fatalf("rejected %q but returned %q", s, got)
		}
		// The reason is a fixed sentence, or quotes the one character it refuses: never the name.
		q, quoted := strings.CutPrefix(problem, "must be a name: ")
		switch {
		case problem == "must be a name: digits are not allowed",
			strings.HasPrefix(problem, "is "), strings.HasPrefix(problem, "has "):
			// A fixed sentence.
		case quoted:
			q, _ = strings.CutSuffix(q, " is not allowed")
			r, err := strconv.Unquote(q)
			if err != nil || utf8.RuneCountInString(r) != 1 || !strings.Contains(s, r) {
				t.Fatalf("reason %q quotes more than one character of the input", problem)
			}
		default:
			t.Fatalf("unexpected reason %q", problem)
		}
	})
}

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"张三", "张三"},
		{"  张三\u3000", "张三"},
		{"阿依古丽·买买提", "阿依古丽·买买提"},
		{"阿依古丽•买买提", "阿依古丽·买买提"},
		{"阿依古丽‧买买提", "阿依古丽·买买提"},
		{"阿依古丽・买买提", "阿依古丽·买买提"},
		{"阿依古丽 · 买买提", "阿依古丽·买买提"},
		{"阿依古丽\u3000•\u3000买买提", "阿依古丽·买买提"},
		{"Mary  Ann O'Neil", "mary ann o'neil"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Normalize(tt.in); got != tt.want {
			t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// Normalize is idempotent, and a normalised accepted name is still accepted.
func TestNormalizeIdempotent(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := rapid.StringOf(rapid.SampledFrom([]rune("张三李四 ·•‧・\u3000aBc'-"))).Draw(t, "s")
		n := Normalize(s)
		if Normalize(n) != n {
			t.Fatalf("Normalize(%q) = %q, Normalize of that = %q", s, n, Normalize(n))
		}
		if _, problem := Check(s); problem == "" && n != "" {
			if _, p := Check(n); p != "" {
				t.Fatalf("Check(%q) ok, Check(Normalize) = %q", s, p)
			}
		}
	})
}

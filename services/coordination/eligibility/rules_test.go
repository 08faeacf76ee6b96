package eligibility

import (
	"strings"
	"testing"
)

func TestDefaultRulesValid(t *testing.T) {
	rs := Default()
	for _, id := range []string{"transport", "job-stability"} {
		if _, ok := rs.Get(id); !ok {
			t.Errorf("default rules lack %q", id)
		}
	}
}

func TestParseRefusesBadRules(t *testing.T) {
	for _, tc := range []struct{ name, file, want string }{
		{"not json", `{`, "not a rules file"},
		{"unknown field", `{"rules":[{"id":"a","fact":"DEPARTED","once_per":"year","extra":1}]}`, `rules[0] ("a"): json: unknown field "extra"`},
		{"no rules", `{"rules":[]}`, "no rules"},
		{"bad id", `{"rules":[{"id":"A b","fact":"DEPARTED","once_per":"year"}]}`, `rules[0] ("A b"): field id: must be`},
		{"bad fact", `{"rules":[{"id":"a","fact":"ARRIVED","once_per":"year"}]}`, `rules[0] ("a"): field fact: must be DEPARTED or EMPLOYMENT_CHECKPOINT, not "ARRIVED"`},
		{"months for departure", `{"rules":[{"id":"a","fact":"DEPARTED","min_months_employed":3,"once_per":"year"}]}`, `rules[0] ("a"): field min_months_employed: only for EMPLOYMENT_CHECKPOINT`},
		{"no months", `{"rules":[{"id":"a","fact":"EMPLOYMENT_CHECKPOINT","once_per":"year"}]}`, `rules[0] ("a"): field min_months_employed: must be 1 to 120`},
		{"bad kind", `{"rules":[{"id":"a","fact":"DEPARTED","disqualified_by":["NOPE"],"once_per":"year"}]}`, `rules[0] ("a"): field disqualified_by: unknown event kind "NOPE"`},
		{"bad once", `{"rules":[{"id":"a","fact":"DEPARTED","once_per":"month"}]}`, `rules[0] ("a"): field once_per: must be "year" or "ever", not "month"`},
		{"wrong type", `{"rules":[{"id":"a","fact":"DEPARTED","once_per":"year"},{"id":"b","fact":"EMPLOYMENT_CHECKPOINT","min_months_employed":"3","once_per":"year"}]}`,
			`rules[1] ("b"): field min_months_employed: string is not a int32`},
		{"syntax error line", "{\"rules\":[\n{\"id\":\"a\",\n\"fact\":\"DEPARTED\",,\n}]}", "not a rules file: line 3"},
		{"twice", `{"rules":[{"id":"a","fact":"DEPARTED","once_per":"year"},{"id":"a","fact":"DEPARTED","once_per":"ever"}]}`, `rules[1]: rule id "a" used twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

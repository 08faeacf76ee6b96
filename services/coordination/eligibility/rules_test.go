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
		{"unknown field", `{"rules":[{"id":"a","fact":"DEPARTED","once_per":"year","extra":1}]}`, "unknown field"},
		{"no rules", `{"rules":[]}`, "no rules"},
		{"bad id", `{"rules":[{"id":"A b","fact":"DEPARTED","once_per":"year"}]}`, "id must be"},
		{"bad fact", `{"rules":[{"id":"a","fact":"ARRIVED","once_per":"year"}]}`, "fact must be"},
		{"months for departure", `{"rules":[{"id":"a","fact":"DEPARTED","min_months_employed":3,"once_per":"year"}]}`, "only for EMPLOYMENT_CHECKPOINT"},
		{"no months", `{"rules":[{"id":"a","fact":"EMPLOYMENT_CHECKPOINT","once_per":"year"}]}`, "1 to 120"},
		{"bad kind", `{"rules":[{"id":"a","fact":"DEPARTED","disqualified_by":["NOPE"],"once_per":"year"}]}`, "unknown event kind"},
		{"bad once", `{"rules":[{"id":"a","fact":"DEPARTED","once_per":"month"}]}`, "once_per"},
		{"twice", `{"rules":[{"id":"a","fact":"DEPARTED","once_per":"year"},{"id":"a","fact":"DEPARTED","once_per":"ever"}]}`, "used twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

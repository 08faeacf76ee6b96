package check

import (
	"strings"
	"testing"
)

func TestPersonName(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"王小明", "阿依古丽·买买提", "Li Wei", "O'Neil", "张　三"} {
		if p := PersonNameProblem(ok); p != "" {
			t.Errorf("%q: %s", ok, p)
		}
	}
	for _, bad := range []string{"", "  ", "王2", "a\tb", "name@x", strings.Repeat("王", 51)} {
		if PersonNameProblem(bad) == "" {
			t.Errorf("%q accepted as a name", bad)
		}
	}
}

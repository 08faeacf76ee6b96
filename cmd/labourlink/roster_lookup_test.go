package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// roster lookup finds an imported worker by number (masked), refuses an unknown one, and roster
// lookups lists both lookups without the number.
func TestRosterLookupCLI(t *testing.T) {
	t.Parallel()
	addr, _ := rosterTestService(t)
	content, ids := spreadsheetCSV()
	path := filepath.Join(t.TempDir(), "roster.csv")
	writeFile(t, path, []byte(content))
	if code, out, errOut := runRoster(t, addr, "roster", "import", path); code != exitRejected {
		t.Fatalf("import: exit %d\n%s\n%s", code, out, errOut)
	}
	var found string
	for _, id := range ids {
		code, out, _ := runRoster(t, addr, "roster", "lookup", "-id-number", id)
		if code == 0 {
			found = out
			if strings.Contains(out, id) || !strings.Contains(out, "recorded as lookupRecords/") {
				t.Errorf("lookup output:\n%s", out)
			}
			break
		}
	}
	if found == "" {
		t.Fatal("no imported worker found by number")
	}
	code, out, errOut := runRoster(t, addr, "roster", "lookups")
	if code != 0 || !strings.Contains(out, "lookupRecords/1") || !strings.Contains(out, "anonymous") {
		t.Fatalf("lookups: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, id := range ids {
		if strings.Contains(out, id) {
			t.Fatal("the audit listing printed an identity number")
		}
	}
}

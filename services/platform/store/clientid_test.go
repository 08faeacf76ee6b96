package store

import (
	"strings"
	"testing"

	"github.com/eastwest/labourlink/services/platform/apierror"
)

// TestClientIDRules: the one length limit of client-chosen ids, and the rules of request ids
// and import ids built on it.
func TestClientIDRules(t *testing.T) {
	longest := strings.Repeat("名", MaxClientIDLen)
	tests := []struct {
		name                string
		id                  string
		requestOK, importOK bool
	}{
		{"empty", "", true, false},
		{"uuid", "3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b", true, true},
		{"Chinese file name", "2026年春季名单.xlsx", true, true},
		{"file name with spaces", "roster spring 2026 (v2).csv", true, true},
		{"longest", longest, true, true},
		{"one character too long", longest + "x", false, false},
		{"a slash", "2026/春季名单.xlsx", true, false},
		{"a tab", "a\tb", false, false},
		{"a NUL", "a\x00b", false, false},
		{"a line break", "名单\n.xlsx", false, false},
		{"not UTF-8", "名单\xff", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v apierror.Violations
			CheckRequestID(&v, "request_id", tt.id)
			if (v.Len() == 0) != tt.requestOK {
				t.Errorf("CheckRequestID(%q) = %v, want accepted %v", tt.id, v.List(), tt.requestOK)
			}
			var w apierror.Violations
			CheckImportID(&w, "import_id", tt.id)
			if (w.Len() == 0) != tt.importOK {
				t.Errorf("CheckImportID(%q) = %v, want accepted %v", tt.id, w.List(), tt.importOK)
			}
			if w.Len() > 0 && w.List()[0].Field != "import_id" {
				t.Errorf("violation on %q, want import_id", w.List()[0].Field)
			}
		})
	}
	if p := ClientIDLenProblem(longest + "x"); !strings.Contains(p, "at most 256") {
		t.Errorf("ClientIDLenProblem = %q", p)
	}
}

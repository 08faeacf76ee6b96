package regions

import "testing"

func TestIDOwner(t *testing.T) {
	for _, tc := range []struct {
		id, owner string
	}{
		{"520000-B00000001", "520000"},
		{"440000-V0000000001", "440000"},
		{"520000-K3Q7ZC2M4XJ5R6TA", "520000"},
		{"520000-", ""}, // nothing after the dash
		{"520000B00000001", ""},
		{"52000-B1", ""},
		{"52000a-B1", ""},
		{"B1", ""},
		{"", ""},
	} {
		if got := IDOwner(tc.id); got != tc.owner {
			t.Errorf("IDOwner(%q) = %q, want %q", tc.id, got, tc.owner)
		}
	}
	if !IDOf("520000-B1", "520000") || IDOf("520000-B1", "440000") || IDOf("B1", "") {
		t.Error("IDOf")
	}
	if p := IDOfProblem("440000-B1", "520000"); p == "" {
		t.Error("IDOfProblem accepts an id of another province")
	}
	if p := IDOfProblem("520000-B1", "520000"); p != "" {
		t.Errorf("IDOfProblem refuses an own id: %s", p)
	}
}

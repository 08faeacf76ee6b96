package main

import (
	"os"
	"strings"
	"testing"
)

// Output that is not a terminal gets no colour: a file, and /dev/null (a character device, but
// no terminal).
func TestNoColourOffTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	for _, out := range []*os.File{f, null} {
		if wantColour(out) {
			t.Errorf("wantColour(%s) = true, want false", out.Name())
		}
	}
	var b strings.Builder
	tb := newTable("a", "b")
	tb.add(true, "x", "y")
	tb.render(&b, false)
	if strings.Contains(b.String(), "\x1b") || !strings.Contains(b.String(), "!") {
		t.Errorf("uncoloured table with a highlighted row:\n%q", b.String())
	}
}

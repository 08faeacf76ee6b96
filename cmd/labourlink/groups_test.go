package main

import (
	"context"
	"strings"
	"testing"
)

// A command group without a subcommand (or with -h) lists its own subcommands; a wrong
// subcommand is refused with the same list.
func TestCommandGroupListsItsSubcommands(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args     []string
		code     int
		want     []string
		notWants []string
	}{
		{[]string{"roster"}, exitOK, []string{"roster get", "roster import", "roster list", "roster return-home"}, []string{"vacancies list"}},
		{[]string{"roster", "-h"}, exitOK, []string{"roster list"}, []string{"match run"}},
		{[]string{"outbox"}, exitOK, []string{"outbox list", "outbox quarantine", "outbox show", "outbox retry", "outbox discard"}, []string{"roster"}},
		{[]string{"vacancies"}, exitOK, []string{"vacancies import", "vacancies list"}, nil},
		{[]string{"match", "help"}, exitOK, []string{"match run", "match cancel", "match follow"}, nil},
		{[]string{"roster", "lst"}, exitUsage, []string{`unknown command "roster lst"`, "roster list"}, []string{"vacancies list"}},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			t.Parallel()
			code, out, errOut := cli(t, c.args...)
			text := out
			if c.code != exitOK {
				text = errOut
			}
			if code != c.code {
				t.Errorf("exit %d, want %d\n%s%s", code, c.code, out, errOut)
			}
			checkOutput(t, text, c.want, c.notWants)
		})
	}
}

// A flag a command does not have is a wrong command line: exit 2, the flag named on stderr.
func TestBadFlagExitsUsage(t *testing.T) {
	for _, args := range [][]string{{"roster", "list", "-nope"}, {"backup", "-service"}, {"local", "add", "-capacity", "many"}} {
		var out, errOut strings.Builder
		if code := runCLI(context.Background(), &cliEnv{stdout: &out, stderr: &errOut}, args); code != exitUsage || errOut.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q; want exit %d with the reason", args, code, errOut.String(), exitUsage)
		}
	}
}

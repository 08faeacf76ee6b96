// Command labourlink is the operator's tool for the labourlink federation: it starts the local
// federation (`labourlink dev`), runs a single service (`labourlink serve KIND`), and talks to
// running services (roster import, vacancies, matching, batches, reconciliation, assessment).
//
// Run `labourlink help` for the list of commands and `labourlink COMMAND -h` for one command.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"golang.org/x/term"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one CLI command, such as "roster import".
type command struct {
	// name is the command words, such as "roster import".
	name string
	// summary is one line for `labourlink help`.
	summary string
	// run executes the command with the arguments after its name.
	run func(ctx context.Context, env *cliEnv, args []string) error
}

// cliEnv is what commands write to.
type cliEnv struct {
	stdout io.Writer
	stderr io.Writer
	// interactive is true when stderr is a terminal: progress bars redraw in place there.
	interactive bool
	// colour is true when stdout is a terminal and NO_COLOR (no-color.org) is not set: tables
	// highlight rows in colour there, and mark them with "!" otherwise, so a redirect to a file
	// or a pipe gets no escape codes.
	colour bool
}

// Exit codes, for scripts (docs/operations.md, "The CLI in scripts").
const (
	exitOK       = 0 // done
	exitFailed   = 1 // not done: the call failed or was refused (the message says why)
	exitUsage    = 2 // not done: the command line is wrong
	exitRejected = 3 // done, but some rows were rejected (an import: the rejects file lists them)
)

// exitError ends a command with an exit code other than exitFailed, after msg (if any) on stderr.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return fmt.Sprintf("exit %d: %s", e.code, e.msg) }

var commands = map[string]*command{}

// register adds a command; each command file registers its commands in init.
func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("labourlink: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := &cliEnv{stdout: os.Stdout, stderr: os.Stderr, interactive: isTerminal(os.Stderr), colour: wantColour(os.Stdout)}
	os.Exit(runCLI(ctx, env, os.Args[1:]))
}

// runCLI dispatches args to a command and returns the exit code.
func runCLI(ctx context.Context, env *cliEnv, args []string) int {
	args, err := takeLangFlag(args)
	if err != nil {
		fmt.Fprintln(env.stderr, tr("labourlink: -lang: %v", err))
		return exitUsage
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(env.stdout)
		return exitOK
	}
	if args[0] == "-version" || args[0] == "--version" {
		args = append([]string{"version"}, args[1:]...)
	}
	var c *command
	var rest []string
	if len(args) >= 2 {
		if cc, ok := commands[args[0]+" "+args[1]]; ok {
			c, rest = cc, args[2:]
		}
	}
	if c == nil {
		if cc, ok := commands[args[0]]; ok {
			c, rest = cc, args[1:]
		}
	}
	if c == nil && isGroup(args[0]) {
		// `labourlink roster` (or -h): the group's subcommands; a wrong subcommand: the same, refused.
		if len(args) == 1 || args[1] == "help" || args[1] == "-h" || args[1] == "--help" {
			groupUsage(env.stdout, args[0])
			return exitOK
		}
		fmt.Fprint(env.stderr, tr("labourlink: unknown command %q", args[0]+" "+args[1]), "\n\n")
		groupUsage(env.stderr, args[0])
		return exitUsage
	}
	if c == nil {
		fmt.Fprint(env.stderr, tr("labourlink: unknown command %q", strings.Join(args[:min(2, len(args))], " ")), "\n\n")
		usage(env.stderr)
		return exitUsage
	}
	if err := c.run(ctx, env, rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		var ee exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprint(env.stderr, tr("labourlink %s: %s\n", c.name, localized(ee.msg)))
			}
			return ee.code
		}
		fmt.Fprint(env.stderr, tr("labourlink %s: %s\n", c.name, describeError(err)))
		return exitFailed
	}
	return exitOK
}

func usage(w io.Writer) {
	fmt.Fprintln(w, tr("labourlink: point-to-point labour-service cooperation between sending and receiving provinces."))
	fmt.Fprintln(w, "\n"+tr("Usage: labourlink COMMAND [flags]   (labourlink COMMAND -h for the flags of one command)"))
	fmt.Fprintln(w, "\n"+tr("Commands:"))
	listCommands(w, "")
}

// isGroup reports whether word starts commands of several words ("roster" of "roster list").
func isGroup(word string) bool {
	for n := range commands {
		if strings.HasPrefix(n, word+" ") {
			return true
		}
	}
	return false
}

// groupUsage lists the subcommands of group, for `labourlink roster`.
func groupUsage(w io.Writer, group string) {
	fmt.Fprintln(w, tr("Usage: labourlink %s SUBCOMMAND [flags]   (labourlink %s SUBCOMMAND -h for its flags)", group, group))
	fmt.Fprintln(w, "\n"+tr("Subcommands:"))
	listCommands(w, group+" ")
}

// listCommands prints the commands whose names start with prefix, with their summaries.
func listCommands(w io.Writer, prefix string) {
	names := make([]string, 0, len(commands))
	width := 0
	for n := range commands {
		if strings.HasPrefix(n, prefix) {
			names = append(names, n)
			width = max(width, len(n))
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-*s  %s\n", width, n, localized(commands[n].summary))
	}
}

// wantColour reports whether output to f may be coloured: f is a terminal and NO_COLOR is unset
// or empty.
func wantColour(f *os.File) bool {
	return isTerminal(f) && os.Getenv("NO_COLOR") == ""
}

// isTerminal reports whether f is a terminal (not a file, a pipe or /dev/null).
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

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
	// interactive is true when stderr is a terminal (progress bars redraw in place, colours).
	interactive bool
}

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
	env := &cliEnv{stdout: os.Stdout, stderr: os.Stderr, interactive: isTerminal(os.Stderr)}
	os.Exit(runCLI(ctx, env, os.Args[1:]))
}

// runCLI dispatches args to a command and returns the exit code.
func runCLI(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(env.stdout)
		return 0
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
	if c == nil {
		fmt.Fprintf(env.stderr, "labourlink: unknown command %q\n\n", strings.Join(args[:min(2, len(args))], " "))
		usage(env.stderr)
		return 2
	}
	if err := c.run(ctx, env, rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(env.stderr, "labourlink %s: %s\n", c.name, describeError(err))
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "labourlink: point-to-point labour-service cooperation between sending and receiving provinces.")
	fmt.Fprintln(w, "\nUsage: labourlink COMMAND [flags]   (labourlink COMMAND -h for the flags of one command)")
	fmt.Fprintln(w, "\nCommands:")
	names := make([]string, 0, len(commands))
	width := 0
	for n := range commands {
		names = append(names, n)
		width = max(width, len(n))
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-*s  %s\n", width, n, commands[n].summary)
	}
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

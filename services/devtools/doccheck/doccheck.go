// Package doccheck finds the shell commands of the documentation (the fenced blocks tagged `sh`
// in README.md, docs/*.md and deploy/README.md) and turns each file's blocks into one bash
// script, so that a test can run them, as a reader would, against a real local federation. The
// rules a document follows are in Convention.
package doccheck

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// Convention is how the documentation's commands are checked; the test prints it when a
// command fails.
const Convention = `How the documentation's commands are checked (services/devtools/doccheck):
- Every fenced block tagged sh in README.md, docs/*.md and deploy/README.md is run, block after
  block in the order of the file, as one bash script per file (set -euo pipefail), in a fresh
  copy of the repository (cwd = its root, as in a fresh clone), against a local federation of
  its own that the test starts for that file. A command that exits non-zero fails the test.
- A block that cannot run here says so in its tag, with the reason:
      ` + "```sh norun — needs a Kubernetes cluster" + `
  Keep these few; untagged blocks and other languages (csv, json, text) are output or data and
  are never run.
- "go run ./cmd/labourlink dev [flags]" on a line of its own (variables may come before it, a
  comment after it) is the long-running federation: the test does not run that line but starts
  the federation with the variables and flags of the first such line of the file (for example
  -tls, -grace-period 1m, OTEL_TRACES_EXPORTER=console), before the file's first block; a file
  without one gets a plain "labourlink dev".
- One way of invoking the tools: "go run ./cmd/labourlink ..." for the CLI, and "grpcurl"
  (installed once with go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4; the test
  puts that version on PATH).
- Addresses: the docs use the federation's fixed ports 127.0.0.1:50051 (coordination), :50052
  (sending) and :50053 (receiving), their metrics listeners :51051, :51052 and :51053, and their
  HTTP/JSON listeners :52051, :52052 and :52053. The test runs on free ports and replaces those
  nine addresses in the commands, and sets LABOURLINK_COORDINATION_ADDR, LABOURLINK_SENDING_ADDR and
  LABOURLINK_RECEIVING_ADDR for the CLI; nothing else in a command is changed.
- A value a command printed reaches a later command through a shell variable set in an earlier
  block (or line) of the same file, e.g. W=$(go run ./cmd/labourlink roster list -ids | head -n 1);
  variables, like the federation, last until the end of the file.
- Dates in requests are in the future (2027 and later) or relative to today, so that the
  commands keep working.`

// Block is one fenced block tagged sh.
type Block struct {
	// File is the document's path (relative to the repository root) and Line the line of the
	// opening fence (1-based).
	File string
	Line int
	// Text is the block's content, ending with a newline.
	Text string
	// NoRun is the reason given after "norun" in the tag; "" runs the block.
	NoRun string
	// skip marks a block tagged norun (whose reason may be empty, an error of the document).
	skip bool
}

// Runs reports whether the block is run.
func (b Block) Runs() bool { return !b.skip }

// Where is "FILE:LINE" of the block's opening fence.
func (b Block) Where() string { return fmt.Sprintf("%s:%d", b.File, b.Line) }

var fence = regexp.MustCompile("^( *)(```+|~~~+)(.*)$")

// Parse returns the sh blocks of the Markdown document src (file names it in the result). A
// block tagged norun without a reason, or a fence left open, is an error.
func Parse(file string, src []byte) ([]Block, error) {
	var (
		blocks  []Block
		open    string // the opening fence while inside a block
		indent  string // the fence's indentation (a block in a list item), removed from its lines
		cur     *Block
		text    strings.Builder
		lineNum int
	)
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lineNum++
		line := sc.Text()
		if open != "" {
			if strings.TrimSpace(line) == open {
				if cur != nil {
					cur.Text = text.String()
					blocks = append(blocks, *cur)
				}
				open, cur = "", nil
				continue
			}
			if cur != nil {
				text.WriteString(strings.TrimPrefix(line, indent) + "\n")
			}
			continue
		}
		m := fence.FindStringSubmatch(line)
		if m == nil || strings.HasPrefix(m[2], "`") && strings.Contains(m[3], "`") {
			continue // not a fence (CommonMark: a backtick fence's info has no backtick), e.g. inline code
		}
		indent, open = m[1], m[2]
		info := strings.Fields(m[3])
		if len(info) == 0 || info[0] != "sh" {
			continue
		}
		cur = &Block{File: file, Line: lineNum}
		text.Reset()
		if len(info) > 1 {
			if info[1] != "norun" {
				return nil, fmt.Errorf("%s:%d: the tag of an sh block is \"sh\" or \"sh norun — REASON\", not %q", file, lineNum, m[3])
			}
			cur.skip = true
			cur.NoRun = strings.TrimSpace(strings.TrimLeft(strings.Join(info[2:], " "), "—–-: "))
			if cur.NoRun == "" {
				return nil, fmt.Errorf("%s:%d: a block tagged norun says why it cannot run (```sh norun — REASON)", file, lineNum)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if open != "" {
		return nil, fmt.Errorf("%s: a fenced block is not closed", file)
	}
	return blocks, nil
}

// devLine is a command that starts the local federation, after variables for it
// (OTEL_TRACES_EXPORTER=console ...): the harness starts it instead.
var devLine = regexp.MustCompile(`^((?:[A-Za-z_][A-Za-z0-9_]*=[^\s#]*\s+)*)go run \./cmd/labourlink dev((?:\s+[^\s#]+)*)\s*(?:#.*)?$`)

// DevCommand returns the environment variables (NAME=value) and the flags of the first
// "go run ./cmd/labourlink dev" line of the blocks that run (nil, nil when there is none).
func DevCommand(blocks []Block) (env, flags []string) {
	for _, b := range blocks {
		if !b.Runs() {
			continue
		}
		for _, l := range strings.Split(b.Text, "\n") {
			if m := devLine.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
				return strings.Fields(m[1]), strings.Fields(m[2])
			}
		}
	}
	return nil, nil
}

// Script returns the bash script that runs the blocks of one file in order: each block
// announces itself ("### FILE:LINE") on stdout, the federation lines are left out (the
// harness starts it), and the addresses are rewritten by replace. A failing command ends the
// script with "doccheck: FILE:LINE: exit N: COMMAND" on stderr.
func Script(blocks []Block, replace *strings.Replacer) string {
	var s strings.Builder
	s.WriteString("set -euo pipefail\n")
	s.WriteString("doccheck_block=''\n")
	s.WriteString(`trap 'rc=$?; echo "doccheck: $doccheck_block: exit $rc: $BASH_COMMAND" >&2' ERR` + "\n")
	for _, b := range blocks {
		if !b.Runs() {
			fmt.Fprintf(&s, "echo '### %s (not run: %s)'\n", b.Where(), strings.ReplaceAll(b.NoRun, "'", ""))
			continue
		}
		fmt.Fprintf(&s, "doccheck_block='%s'\necho '### %s'\n", b.Where(), b.Where())
		for _, l := range strings.SplitAfter(b.Text, "\n") {
			if devLine.MatchString(strings.TrimSpace(l)) {
				s.WriteString(": started by the harness: " + shellQuote(strings.TrimSpace(l)) + "\n")
				continue
			}
			s.WriteString(replace.Replace(l))
		}
	}
	return s.String()
}

// shellQuote quotes s for bash.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

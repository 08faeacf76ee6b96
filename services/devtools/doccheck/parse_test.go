package doccheck

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		src     string
		want    []Block // File is "f.md"
		wantErr string
	}{
		{name: "sh blocks only, in order", src: "text\n```sh\na\nb\n```\n```csv\nx,y\n```\n```\nout\n```\n```sh\nc\n```\n",
			want: []Block{{File: "f.md", Line: 2, Text: "a\nb\n"}, {File: "f.md", Line: 12, Text: "c\n"}}},
		{name: "norun with its reason", src: "```sh norun — needs a Kubernetes cluster\nkubectl get pods\n```\n",
			want: []Block{{File: "f.md", Line: 1, Text: "kubectl get pods\n", NoRun: "needs a Kubernetes cluster", skip: true}}},
		{name: "a block in a list item loses the item's indentation", src: "1. step:\n\n   ```sh\n   go version\n     indented more\n   ```\n",
			want: []Block{{File: "f.md", Line: 3, Text: "go version\n  indented more\n"}}},
		{name: "a fence inside another language's block is text", src: "````md\n```sh\nnot run\n```\n````\n"},
		{name: "inline code at the start of a line is no fence", src: "```` ```sh ```` is a tag\n```sh\nd\n```\n",
			want: []Block{{File: "f.md", Line: 2, Text: "d\n"}}},
		{name: "norun without a reason", src: "```sh norun\nx\n```\n", wantErr: "says why"},
		{name: "an unknown word in the tag", src: "```sh skip\nx\n```\n", wantErr: `"sh norun — REASON"`},
		{name: "a fence left open", src: "```sh\nx\n", wantErr: "not closed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse("f.md", []byte(tc.src))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestDevFlagsAndScript(t *testing.T) {
	blocks := []Block{
		{File: "f.md", Line: 1, Text: "kubectl apply -k .\n", NoRun: "needs a cluster", skip: true},
		{File: "f.md", Line: 5, Text: "OTEL_TRACES_EXPORTER=console go run ./cmd/labourlink dev -tls -grace-period 1m   # terminal 1\n" +
			"grpcurl -plaintext 127.0.0.1:50052 list\n"},
		{File: "f.md", Line: 9, Text: "go run ./cmd/labourlink dev\nfalse\necho never\n"},
	}
	env, flags := DevCommand(blocks)
	if want := []string{"-tls", "-grace-period", "1m"}; !slices.Equal(flags, want) {
		t.Errorf("DevCommand flags = %q, want %q (the first dev line's)", flags, want)
	}
	if want := []string{"OTEL_TRACES_EXPORTER=console"}; !slices.Equal(env, want) {
		t.Errorf("DevCommand env = %q, want %q", env, want)
	}
	if env, flags := DevCommand(blocks[:1]); env != nil || flags != nil {
		t.Errorf("DevCommand without a dev line = %q %q", env, flags)
	}
	script := Script(blocks, strings.NewReplacer("127.0.0.1:50052", "127.0.0.1:40002"))
	for _, want := range []string{"set -euo pipefail", "grpcurl -plaintext 127.0.0.1:40002 list", "### f.md:1 (not run: needs a cluster)"} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q:\n%s", want, script)
		}
	}
	if strings.Contains(script, "kubectl") || strings.Contains(script, "\ngo run ./cmd/labourlink dev") || strings.Contains(script, "\nOTEL_") {
		t.Errorf("script runs a norun block or the federation itself:\n%s", script)
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("needs bash")
	}
	// The script stops at the first failing command and names its block and command.
	cmd := exec.Command("bash", "-c", Script(blocks[2:], strings.NewReplacer()))
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "doccheck: f.md:9: exit 1: false") || strings.Contains(string(out), "never") {
		t.Errorf("failing script: %v\n%s", err, out)
	}
}

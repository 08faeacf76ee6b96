package failpoint_test

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/eastwest/labourlink/services/platform/failpoint"
)

// The test binary runs itself with failpoints in its environment; TestHelperProcess is what
// the child runs.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("FAILPOINT_HELPER") == "" {
		t.Skip("run by the other tests as a child process")
	}
	for _, name := range strings.Split(os.Getenv("FAILPOINT_HELPER"), ",") {
		failpoint.Inject(name)
		os.Stdout.WriteString("passed " + name + "\n")
	}
	os.Exit(0)
}

func runHelper(t *testing.T, points, env string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "FAILPOINT_HELPER="+points, "GOFAIL_FAILPOINTS="+env)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestOffByDefault(t *testing.T) {
	if os.Getenv("GOFAIL_FAILPOINTS") != "" {
		t.Skip("GOFAIL_FAILPOINTS is set")
	}
	if failpoint.Enabled() {
		t.Fatal("failpoints enabled without GOFAIL_FAILPOINTS")
	}
	for _, name := range failpoint.Names {
		failpoint.Inject(name) // nothing happens
	}
}

func TestTerms(t *testing.T) {
	tests := []struct {
		name     string
		points   string // injected in order
		env      string
		passed   []string
		killed   bool
		panicked bool
		exitCode int
	}{
		{name: "armed elsewhere", points: "storeAfterCommit,importBeforeReply", env: `relayAfterDeliver=return("kill")`,
			passed: []string{"storeAfterCommit", "importBeforeReply"}},
		{name: "kill after a count", points: "storeAfterCommit,storeAfterCommit,storeAfterCommit", env: `storeAfterCommit=2*off->return("kill")`,
			passed: []string{"storeAfterCommit", "storeAfterCommit"}, killed: true},
		{name: "panic", points: "storeBeforeCommit,importAfterBatchCommit", env: `importAfterBatchCommit=panic("boom")`,
			passed: []string{"storeBeforeCommit"}, panicked: true, exitCode: 2},
		{name: "unknown name", points: "storeAfterCommit", env: `storeAfterComit=return("kill")`, exitCode: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runHelper(t, tt.points, tt.env)
			var passed []string
			for _, l := range strings.Split(out, "\n") {
				if p, ok := strings.CutPrefix(l, "passed "); ok {
					passed = append(passed, p)
				}
			}
			if strings.Join(passed, ",") != strings.Join(tt.passed, ",") {
				t.Errorf("passed %v, want %v\n%s", passed, tt.passed, out)
			}
			var ee *exec.ExitError
			switch {
			case tt.killed:
				if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
					t.Errorf("want killed by SIGKILL, got %v\n%s", err, out)
				}
				if !strings.Contains(out, "failpoint storeAfterCommit: kill -9") {
					t.Errorf("no line names the point:\n%s", out)
				}
			case tt.exitCode != 0:
				if !errors.As(err, &ee) || ee.ExitCode() != tt.exitCode {
					t.Errorf("want exit code %d, got %v\n%s", tt.exitCode, err, out)
				}
				if tt.panicked && !strings.Contains(out, "boom") {
					t.Errorf("panic message missing:\n%s", out)
				}
			case err != nil:
				t.Errorf("helper: %v\n%s", err, out)
			}
		})
	}
}

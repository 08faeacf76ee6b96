package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/eastwest/labourlink/services/daemon"
	"github.com/eastwest/labourlink/services/devtools/proctest"
	"github.com/eastwest/labourlink/services/devtools/wait"
	"github.com/eastwest/labourlink/services/platform/version"
)

// `labourlink version` prints this build; with -service it also shows the build a running
// service sends in its `labourlink-version` header, and the data file's instance.
func TestVersionCommand(t *testing.T) {
	var out, errOut strings.Builder
	if code := runCLI(context.Background(), &cliEnv{stdout: &out, stderr: &errOut}, []string{"-version"}); code != 0 ||
		strings.TrimSpace(out.String()) != version.Line("labourlink") {
		t.Fatalf("-version: exit %d, %q, want %q", code, out.String(), version.Line("labourlink"))
	}

	addr := proctest.FreeAddr(t)
	cfg := daemon.Config{Kind: daemon.Coordination, Listen: addr, DataDir: t.TempDir(), LogLevel: "info", ShutdownTimeout: 2 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- daemon.Run(ctx, cfg, zaptest.NewLogger(t)) }()
	t.Cleanup(func() { cancel(); <-errc })
	var text string
	wait.Until(30*time.Second, func() bool {
		out.Reset()
		errOut.Reset()
		code := runCLI(context.Background(), &cliEnv{stdout: &out, stderr: &errOut}, []string{"version", "-service", "coordination", "-addr", addr})
		text = out.String() + errOut.String()
		return code == 0
	})
	want := "coordination at " + addr + ": " + version.String() + " (data file instance "
	if !strings.Contains(text, want) {
		t.Fatalf("version -service coordination:\n%s\nwant a line with %q", text, want)
	}
}

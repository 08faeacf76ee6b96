package doccheck_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eastwest/labourlink/services/devtools/doccheck"
	"github.com/eastwest/labourlink/services/devtools/federation"
	"github.com/eastwest/labourlink/services/devtools/proctest"
)

// grpcurlModule is the grpcurl the docs install (go install ...@v1.9.4).
const grpcurlModule = "github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4"

// TestDocCommands runs every sh block of README.md, docs/*.md and deploy/README.md, file by
// file, against a local federation started for that file (doccheck.Convention).
func TestDocCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the documentation's commands against real processes")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("needs bash")
	}
	root := moduleRoot()
	docs := docFiles(t, root)
	work := copyRepo(t, root)
	bin := installGrpcurl(t)
	for _, doc := range docs {
		t.Run(strings.ReplaceAll(doc, "/", "_"), func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join(root, doc))
			if err != nil {
				t.Fatal(err)
			}
			blocks, err := doccheck.Parse(doc, src)
			if err != nil {
				t.Fatalf("%v\n\n%s", err, doccheck.Convention)
			}
			if !slices.ContainsFunc(blocks, doccheck.Block.Runs) {
				return
			}
			runFile(t, work, bin, blocks)
		})
	}
	if t.Failed() {
		t.Log(doccheck.Convention)
	}
}

// runFile starts the federation for one document's blocks, runs them and stops it.
func runFile(t *testing.T, work, binDir string, blocks []doccheck.Block) {
	// Each file starts from an empty federation.
	if err := os.RemoveAll(filepath.Join(work, "data")); err != nil {
		t.Fatal(err)
	}
	devEnv, devFlags := doccheck.DevCommand(blocks)
	var (
		addrs map[string]string
		env   []string
		stop  func()
	)
	// A free port is free when it is picked, not when dev binds it: another test's process (the
	// packages' tests run side by side) or an outgoing connection may take it in between. Then
	// dev stops at once saying so, and the file gets other ports.
	for attempt := 1; ; attempt++ {
		addrs = map[string]string{}
		for _, fixed := range []string{"127.0.0.1:50051", "127.0.0.1:50052", "127.0.0.1:50053"} {
			addrs[fixed] = proctest.FreeAddrWith(t, federation.MetricsPortOffset, federation.HTTPPortOffset)
		}
		env = scriptEnv(binDir, addrs)
		// The metrics listeners (gRPC port + federation.MetricsPortOffset) and the HTTP/JSON
		// listeners (+ federation.HTTPPortOffset) are rewritten too.
		for fixed, free := range maps.Clone(addrs) {
			addrs[federation.MetricsAddr(fixed)] = federation.MetricsAddr(free)
			addrs[federation.HTTPAddr(fixed)] = federation.HTTPAddr(free)
		}
		var exited string
		stop, exited = startDev(t, work, append(slices.Clip(env), devEnv...), devFlags, addrs)
		if exited == "" {
			break
		}
		if attempt == 3 || !strings.Contains(exited, "address already in use") {
			t.Fatalf("labourlink dev %v exited before the federation was up:\n%s", devFlags, exited)
		}
		t.Logf("labourlink dev: a port was taken after it was picked, trying other ports:\n%s", exited)
		if err := os.RemoveAll(filepath.Join(work, "data")); err != nil {
			t.Fatal(err)
		}
	}
	defer stop()

	var pairs []string
	for from, to := range addrs {
		pairs = append(pairs, from, to)
	}
	script := doccheck.Script(blocks, strings.NewReplacer(pairs...))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = work
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("%s: a command failed (%v):\n%s\n(addresses: %v)", blocks[0].File, err, tail(string(out), 120), addrs)
	} else if testing.Verbose() {
		t.Logf("%s", out)
	}
}

// scriptEnv is the environment of the commands: grpcurl on PATH, the CLI's addresses, and no
// LABOURLINK_ settings of the caller's.
func scriptEnv(binDir string, addrs map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "LABOURLINK_") || strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, "NO_COLOR=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"LABOURLINK_COORDINATION_ADDR="+addrs["127.0.0.1:50051"],
		"LABOURLINK_SENDING_ADDR="+addrs["127.0.0.1:50052"],
		"LABOURLINK_RECEIVING_ADDR="+addrs["127.0.0.1:50053"],
	)
}

// startDev runs `go run ./cmd/labourlink dev FLAGS` in work on the free addresses, with data in
// work/data (as the docs say), waits until it says the federation is up, and returns the
// function that stops it with Ctrl-C (SIGINT to its process group). If dev exits before it is
// up, stop is nil and exited is what it printed.
func startDev(t *testing.T, work string, env, flags []string, addrs map[string]string) (stop func(), exited string) {
	t.Helper()
	args := append([]string{"run", "./cmd/labourlink", "dev"}, flags...)
	args = append(args, "-data", "data",
		"-coordination-addr", addrs["127.0.0.1:50051"],
		"-sending-addr", addrs["127.0.0.1:50052"],
		"-receiving-addr", addrs["127.0.0.1:50053"])
	cmd := exec.Command("go", args...)
	cmd.Dir = work
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var after strings.Builder // what dev prints once it is up
	copied := make(chan struct{})
	stop = func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		select {
		case <-done:
			// go run itself exits with status 1 after a Ctrl-C, whatever the program did: what
			// counts is that dev stopped every service (coordination is the last).
			<-copied
			if !strings.Contains(after.String(), "stopped coordination") {
				t.Errorf("labourlink dev %v did not stop its services after Ctrl-C:\n%s\n%s", flags, after.String(), stderr.String())
			}
		case <-time.After(60 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			t.Errorf("labourlink dev %v did not stop within 60s of Ctrl-C", flags)
		}
	}
	up := make(chan string, 1)
	go func() {
		var printed strings.Builder
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			printed.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "Press Ctrl-C to stop") {
				up <- ""
				break
			}
		}
		if sc.Err() == nil && !strings.Contains(printed.String(), "Press Ctrl-C to stop") {
			up <- printed.String()
		}
		_, _ = io.Copy(&after, stdout)
		close(copied)
	}()
	select {
	case out := <-up:
		if out != "" {
			<-done
			<-copied
			return nil, out + "\n" + stderr.String()
		}
	case <-time.After(3 * time.Minute):
		stop()
		t.Fatalf("labourlink dev %v: the federation was not up within 3 minutes:\n%s", flags, stderr.String())
	}
	return stop, ""
}

// moduleRoot is the directory of go.mod, from this source file.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// docFiles are the documents whose commands are checked.
func docFiles(t *testing.T, root string) []string {
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"README.md"}
	for _, d := range docs {
		files = append(files, filepath.ToSlash(strings.TrimPrefix(d, root+string(filepath.Separator))))
	}
	return append(files, "deploy/README.md")
}

// copyRepo copies the repository's working tree (without .git and what .gitignore leaves out
// at the top: data, bin, certs) to a folder of its own, as a fresh clone would be. The folder's
// path is the same on every run from the same checkout, so that the go command's build cache
// (whose keys include a package's directory) serves `go run ./cmd/labourlink` after the first
// run; a lock keeps two runs from the same checkout apart.
func copyRepo(t *testing.T, root string) string {
	t.Helper()
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(abs))
	dir := filepath.Join(os.TempDir(), "labourlink-doccheck-"+hex.EncodeToString(sum[:6]))
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = os.RemoveAll(dir)
		lock.Close()
	})
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	skipTop := map[string]bool{".git": true, "data": true, "bin": true, "certs": true, "labourlink": true}
	err = filepath.WalkDir(abs, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(abs, path)
		if !strings.Contains(rel, string(filepath.Separator)) && skipTop[rel] {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dir, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() || strings.HasSuffix(rel, ".test") {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode().Perm())
	})
	if err != nil {
		t.Fatalf("copy the repository: %v", err)
	}
	return dir
}

// installGrpcurl installs the grpcurl the docs name into a temporary folder (from the module
// cache or the module proxy) and returns the folder.
func installGrpcurl(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "install", grpcurlModule)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOBIN="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install %s: %v\n%s", grpcurlModule, err, out)
	}
	return dir
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

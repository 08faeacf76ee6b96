// Package proctest runs labourlink services as real processes for end-to-end tests: it builds
// the labourlink binary once per test binary, starts `labourlink serve KIND` on free loopback
// ports with data in a test's temporary folder, waits until the service answers SERVING, and
// stops (or kills) it. A service counts as started only when it has reported, through its ready
// file, that it holds its listener, and a health check there answers SERVING with the instance id
// of its data file (readiness.Wait): a port taken by some other process fails the test with the
// service's own error instead of being mistaken for it.
package proctest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/platform/readiness"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// moduleRoot finds the directory of go.mod from this source file.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// Binary builds ./cmd/labourlink once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "labourlink-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "labourlink")
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/labourlink")
		cmd.Dir = moduleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/labourlink: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// The ports FreeAddr and FreeAddrWith pick from: below the kernel's ephemeral range (32768 and
// up on Linux), which it hands out to every listener on port 0 and to the source port of every
// outgoing connection, so that a port picked here is not taken a moment later by one of the many
// loopback connections of the tests running side by side. Offsets up to pickedPortsRoom stay in
// the range too.
const (
	pickedPortsLow  = 10000
	pickedPortsHigh = 24000
	pickedPortsRoom = 32768 - pickedPortsHigh
)

// offsetPorts returns port + each offset.
func offsetPorts(port int, offsets []int) []int {
	out := make([]int, len(offsets))
	for i, o := range offsets {
		out[i] = port + o
	}
	return out
}

// FreeAddr returns a loopback address with a port that was free a moment ago, held for t until
// it ends: no other test of this machine picks it meanwhile (ports.go).
func FreeAddr(t testing.TB) string {
	t.Helper()
	return FreeAddrWith(t)
}

// FreeAddrWith returns a free loopback address whose port plus each offset is free too, for a
// process that listens on several (`labourlink dev` serves each service's metrics on its gRPC
// port + federation.MetricsPortOffset and HTTP/JSON on + federation.HTTPPortOffset): with
// FreeAddr alone the other ports may be taken. Offsets are at most pickedPortsRoom (8768).
func FreeAddrWith(t testing.TB, offsets ...int) string {
	t.Helper()
	for _, offset := range offsets {
		if offset < 0 || offset > pickedPortsRoom {
			t.Fatalf("port offset %d: must be 0 to %d", offset, pickedPortsRoom)
		}
	}
	for range 1000 {
		port := pickedPortsLow + rand.IntN(pickedPortsHigh-pickedPortsLow)
		// Each port is reserved for this test (ports.go), then tried: another test process
		// picking at the same time skips it, and a port a listener holds is not used.
		var releases []func()
		free := true
		for _, p := range append([]int{port}, offsetPorts(port, offsets)...) {
			release, ok := reservePort(p)
			if !ok {
				free = false
				break
			}
			releases = append(releases, release)
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				free = false // taken
				break
			}
			l.Close()
		}
		if free {
			t.Cleanup(func() {
				for _, release := range releases {
					release()
				}
			})
			return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		}
		for _, release := range releases {
			release()
		}
	}
	t.Fatalf("no free loopback port in %d-%d with port + %v free too", pickedPortsLow, pickedPortsHigh, offsets)
	return ""
}

// Process is a running service.
type Process struct {
	// Addr is the service's listen address (known once it is ready when it was started on a
	// free port).
	Addr string
	// Log is the path of its log file (stdout and stderr).
	Log string
	// Ready is what the service reported once it served (zero until then).
	Ready readiness.Ready
	t     testing.TB
	cmd   *exec.Cmd
	ready string // path of the ready file
	done  chan struct{}
	err   error
}

// Spec describes a service to launch.
type Spec struct {
	// Kind is coordination, sending or receiving.
	Kind string
	// Addr is the listen address; "" listens on a free loopback port the kernel chooses, which
	// Process.Addr holds once the process is ready.
	Addr string
	// Args are more flags of `labourlink serve KIND`.
	Args []string
	// Env is added to the test's environment (e.g. GOFAIL_FAILPOINTS=..., see
	// services/platform/failpoint).
	Env []string
}

// Start runs `labourlink serve KIND -listen ADDR ARGS...` and waits until it is ready (it
// reported serving through its ready file and answers SERVING itself). addr may be "" for a
// free port. The process is killed when the test ends if still running.
func Start(t testing.TB, kind, addr string, args ...string) *Process {
	t.Helper()
	p := Launch(t, Spec{Kind: kind, Addr: addr, Args: args})
	p.WaitServing()
	return p
}

// Launch starts the service described by s and returns at once; WaitReady or WaitServing wait
// until it serves. The process is killed when the test ends if still running.
func Launch(t testing.TB, s Spec) *Process {
	t.Helper()
	addr := s.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	bin := Binary(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, s.Kind+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	readyPath := filepath.Join(dir, s.Kind+".ready")
	args := append([]string{"serve", s.Kind, "-listen", addr, "-ready-file", readyPath}, s.Args...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = childAttr()
	if len(s.Env) > 0 {
		cmd.Env = append(os.Environ(), s.Env...)
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatal(err)
	}
	p := &Process{Addr: s.Addr, Log: logPath, t: t, cmd: cmd, ready: readyPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// WaitReady waits up to timeout until the process is ready (readiness.Wait) and sets Addr
// and Ready. It returns an error wrapping readiness.ErrExited if the process exits first.
func (p *Process) WaitReady(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r, err := readiness.Wait(ctx, p.ready, p.cmd.Process.Pid, p.done, peers.Options{})
	if err != nil {
		return err
	}
	p.Ready, p.Addr = r, r.Listen
	return nil
}

// WaitServing waits up to 60 s for the process to be ready, and fails the test with its log
// if it is not.
func (p *Process) WaitServing() {
	p.t.Helper()
	if err := p.WaitReady(60 * time.Second); err != nil {
		if errors.Is(err, readiness.ErrExited) {
			<-p.done
			err = fmt.Errorf("%w: %v", err, p.err)
		}
		log, _ := os.ReadFile(p.Log)
		p.t.Fatalf("%s service not serving: %v\n%s", p.cmd.Args[1], err, log)
	}
}

// Conn returns a new client connection to the process (closed by the caller).
func (p *Process) Conn() *grpc.ClientConn {
	p.t.Helper()
	cc, err := peers.Dial(p.Addr, peers.Options{})
	if err != nil {
		p.t.Fatal(err)
	}
	return cc
}

// Kill kills the process with SIGKILL (no graceful stop) and waits for it.
func (p *Process) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits for the process to exit; it fails the test if the exit was not
// clean.
func (p *Process) Stop() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		p.t.Fatalf("service on %s did not stop within 30s", p.Addr)
	}
	if p.err != nil {
		log, _ := os.ReadFile(p.Log)
		p.t.Fatalf("service on %s exited with %v\n%s", p.Addr, p.err, log)
	}
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits for the process to exit and returns how it ended (an *exec.ExitError unless it
// exited with status 0).
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

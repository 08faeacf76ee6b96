// Package proctest runs labourlink services as real processes for end-to-end tests: it builds
// the labourlink binary once per test binary, starts `labourlink serve KIND` on free loopback
// ports with data in a test's temporary folder, waits until the service answers SERVING, and
// stops (or kills) it.
package proctest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/eastwest/labourlink/services/peers"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// moduleRoot finds the directory of go.mod from this source file.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
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

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// Process is a running service.
type Process struct {
	// Addr is the service's listen address.
	Addr string
	// Log is the path of its log file (stdout and stderr).
	Log  string
	t    testing.TB
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start runs `labourlink serve KIND -listen ADDR ARGS...` and waits until it answers SERVING.
// addr may be "" for a free port. The process is killed when the test ends if still running.
func Start(t testing.TB, kind, addr string, args ...string) *Process {
	t.Helper()
	if addr == "" {
		addr = FreeAddr(t)
	}
	bin := Binary(t)
	logPath := filepath.Join(t.TempDir(), kind+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"serve", kind, "-listen", addr}, args...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Process{Addr: addr, Log: logPath, t: t, cmd: cmd, done: make(chan struct{})}
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
	p.WaitServing()
	return p
}

// WaitServing waits up to 60 s for the process to answer SERVING.
func (p *Process) WaitServing() {
	p.t.Helper()
	cc := p.Conn()
	defer cc.Close()
	h := grpc_health_v1.NewHealthClient(cc)
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-p.done:
			log, _ := os.ReadFile(p.Log)
			p.t.Fatalf("service exited before serving: %v\n%s", p.err, log)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := h.Check(ctx, &grpc_health_v1.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == grpc_health_v1.HealthCheckResponse_SERVING {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(p.Log)
			p.t.Fatalf("service on %s not serving after 60s: %v\n%s", p.Addr, err, log)
		}
		time.Sleep(50 * time.Millisecond)
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

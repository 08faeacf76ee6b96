package federation_test

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eastwest/labourlink/services/devtools/federation"
	"github.com/eastwest/labourlink/services/devtools/proctest"
)

// devProcess is a running `labourlink dev`.
type devProcess struct {
	t     *testing.T
	cmd   *exec.Cmd
	addrs map[string]string
	// coordination is every coordination node's address, comma-separated (-replicas), or the
	// one's.
	coordination string
	data         string
	out          string
	stderr       *strings.Builder
	done         chan error
}

// startDev runs `labourlink dev` on free ports with data in a temporary folder and waits until
// it prints that the federation is up.
func startDev(t *testing.T, extra ...string) *devProcess {
	t.Helper()
	bin := proctest.Binary(t)
	d := &devProcess{t: t, data: t.TempDir(), stderr: &strings.Builder{}, done: make(chan error, 1)}
	// With -replicas N, every node's ports: ReplicaPortStep apart, each with its metrics, HTTP
	// and NATS ports.
	replicas := 1
	for i, a := range extra {
		if a == "-replicas" && i+1 < len(extra) {
			if _, err := fmt.Sscan(extra[i+1], &replicas); err != nil {
				t.Fatal(err)
			}
		}
	}
	var coordOffsets []int
	for i := range replicas {
		for _, o := range []int{0, federation.MetricsPortOffset, federation.HTTPPortOffset, federation.NATSPortOffset, federation.NATSClusterPortOffset} {
			if i*federation.ReplicaPortStep+o > 0 && (replicas > 1 || o < federation.NATSPortOffset) {
				coordOffsets = append(coordOffsets, i*federation.ReplicaPortStep+o)
			}
		}
	}
	d.addrs = map[string]string{
		"coordination": proctest.FreeAddrWith(t, coordOffsets...),
		"sending":      proctest.FreeAddrWith(t, federation.MetricsPortOffset, federation.HTTPPortOffset),
		"receiving":    proctest.FreeAddrWith(t, federation.MetricsPortOffset, federation.HTTPPortOffset),
	}
	d.coordination = federation.Config{CoordinationAddr: d.addrs["coordination"], Replicas: replicas}.CoordinationTarget()
	args := append([]string{"dev", "-data", d.data,
		"-coordination-addr", d.addrs["coordination"], "-sending-addr", d.addrs["sending"], "-receiving-addr", d.addrs["receiving"]}, extra...)
	d.cmd = exec.Command(bin, args...)
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			_ = d.cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-d.done:
			case <-time.After(30 * time.Second):
				_ = d.cmd.Process.Kill()
			}
		}
	})
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	var printed strings.Builder
	deadline := time.After(90 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("dev exited before the federation was up:\n%s\nstderr:\n%s", printed.String(), d.stderr.String())
			}
			printed.WriteString(l + "\n")
			if strings.Contains(l, "Press Ctrl-C to stop") {
				d.out = printed.String()
				go func() {
					for range lines {
					}
				}()
				return d
			}
		case <-deadline:
			t.Fatalf("federation not up after 90s:\n%s\nstderr:\n%s", printed.String(), d.stderr.String())
		}
	}
}

// interrupt sends Ctrl-C and waits for a clean exit.
func (d *devProcess) interrupt() {
	d.t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGINT); err != nil {
		d.t.Fatal(err)
	}
	select {
	case err := <-d.done:
		d.done <- err
		if err != nil {
			d.t.Fatalf("dev exited with %v after SIGINT; stderr:\n%s", err, d.stderr.String())
		}
	case <-time.After(60 * time.Second):
		d.t.Fatal("dev did not stop within 60s of SIGINT")
	}
}

package replog

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// childNodeEnv makes the test binary a node: its value is the NodeOptions as JSON.
const childNodeEnv = "REPLOG_TEST_NODE"

// runChildNode runs the node childNodeEnv describes until the process is killed; false at
// once when it is unset.
func runChildNode() bool {
	spec := os.Getenv(childNodeEnv)
	if spec == "" {
		return false
	}
	var o NodeOptions
	if err := json.Unmarshal([]byte(spec), &o); err != nil {
		fmt.Fprintln(os.Stderr, "replog node:", err)
		os.Exit(2)
	}
	n, err := StartNode(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "replog node:", err)
		os.Exit(2)
	}
	n.Wait()
	os.Exit(0)
	return true
}

// procCluster is a cluster of child processes.
type procCluster struct {
	t     testing.TB
	spec  clusterSpec
	procs []*exec.Cmd
}

func (c *procCluster) start(i int) {
	c.t.Helper()
	b, err := json.Marshal(c.spec.options(i))
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childNodeEnv+"="+string(b))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.procs[i] = cmd
}

// kill9 kills node i with SIGKILL: no leadership handed over, nothing flushed.
func (c *procCluster) kill9(i int) {
	_ = c.procs[i].Process.Signal(syscall.SIGKILL)
	_ = c.procs[i].Wait()
}

func (c *procCluster) cleanup() {
	for _, p := range c.procs {
		if p != nil && p.ProcessState == nil {
			_ = p.Process.Kill()
			_ = p.Wait()
		}
	}
}

// leader returns the index of the stream's leader ("n0" → 0).
func leader(ctx context.Context, l *Log) (int, error) {
	for {
		s, err := l.js.Stream(ctx, l.stream)
		if err == nil {
			info, err2 := s.Info(ctx)
			if err2 == nil && info.Cluster != nil && len(info.Cluster.Leader) == 2 {
				return int(info.Cluster.Leader[1] - '0'), nil
			}
			err = err2
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("no leader: %w (%v)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestCrashFollowerThenLeader: three nodes as child processes, each with its applier (a Log on
// the node's own server and a bbolt file) in the test process. Two writers connected to every
// node append commands, retrying after errors, and append some acknowledged ones again. A
// follower is killed with SIGKILL (its applier stopped with it) and restarted from its
// directory, then the leader. Every acknowledged command is applied exactly once by every
// node, in the same order, and a repeat gets the first sequence.
func TestCrashFollowerThenLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node NATS cluster of child processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := &procCluster{t: t, spec: newClusterSpec(t, 3), procs: make([]*exec.Cmd, 3)}
	defer c.cleanup()
	for i := range 3 {
		c.start(i)
	}
	applierPath := func(i int) string { return filepath.Join(c.spec.dir, fmt.Sprintf("applier-%d.db", i)) }
	rs := make([]*replica, 3)
	for i := range rs {
		rs[i] = startReplica(t, ctx, applierPath(i), c.spec.url(i))
	}
	defer func() {
		for _, r := range rs {
			if r != nil {
				r.stop()
			}
		}
	}()
	urls := c.spec.urls()
	reversed := []string{urls[2], urls[1], urls[0]}
	writers := make([]*Log, 2)
	for w, us := range [][]string{urls, reversed} {
		l, err := Open(ctx, us, "COMMANDS", 3, WithLogger(testLogger(t)), WithAttemptTimeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		writers[w] = l
	}

	const perWriter = 150
	var a acks
	var failed atomic.Int64
	var wg sync.WaitGroup
	for w, l := range writers {
		wg.Go(func() {
			name := fmt.Sprintf("w%d", w)
			for i := range perWriter {
				cmd := command(name, i)
				seq, fails, err := appendRetried(ctx, l, cmd)
				if err != nil {
					t.Error(err)
					return
				}
				failed.Add(int64(fails))
				a.put(t, cmd.MsgID(), seq)
				if i%10 == 0 {
					again, _, err := appendRetried(ctx, l, cmd)
					if err != nil {
						t.Error(err)
						return
					}
					if again != seq {
						t.Errorf("%s appended again: sequence %d, first %d", cmd.ID, again, seq)
					}
				}
			}
		})
	}
	waitAcks := func(n int) {
		for a.len() < n && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
	}
	// crash kills node i and its applier, lets the others take commands, and restarts both
	// from their files.
	crash := func(i, thenAcks int) {
		rs[i].stop()
		rs[i] = nil
		c.kill9(i)
		waitAcks(thenAcks)
		c.start(i)
		rs[i] = startReplica(t, ctx, applierPath(i), c.spec.url(i))
	}

	waitAcks(50)
	li, err := leader(ctx, writers[0])
	if err != nil {
		t.Fatal(err)
	}
	follower := (li + 1) % 3
	t.Logf("killing follower n%d (leader n%d) at %d acknowledged", follower, li, a.len())
	crash(follower, 100)

	waitAcks(130)
	li, err = leader(ctx, writers[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killing leader n%d at %d acknowledged", li, a.len())
	crash(li, 200)

	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("%d commands acknowledged, %d failed attempts retried", a.len(), failed.Load())
	if a.len() != 2*perWriter {
		t.Errorf("%d distinct commands acknowledged, want %d", a.len(), 2*perWriter)
	}
	checkReplicas(t, ctx, rs, &a)
}

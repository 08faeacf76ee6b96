package crashtest

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eastwest/labourlink/services/devtools/proctest"
	"github.com/eastwest/labourlink/services/platform/failpoint"
	"github.com/eastwest/labourlink/services/platform/readiness"
	"github.com/eastwest/labourlink/services/platform/store"
)

var (
	cyclesFlag = flag.Int("cycles", 0, "crash cycles per test (0: the short version's 4)")
	seedFlag   = flag.Uint64("seed", 0, "seed of the random choices (0: from the clock; each test logs its seed)")
)

// shortCycles is how many cycles each test runs in `go test ./...`.
const shortCycles = 4

func cycles() int {
	if *cyclesFlag > 0 {
		return *cyclesFlag
	}
	return shortCycles
}

// newRand returns the test's random source and logs its seed.
func newRand(t *testing.T) *rand.Rand {
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (repeat with -seed %d)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// plan is the crash point a process starts with; the zero plan arms none.
type plan struct {
	point string // a failpoint name
	terms string // gofail terms, e.g. `3*off->return("kill")`
}

func (p plan) env() []string {
	if p.point == "" {
		return nil
	}
	return []string{"GOFAIL_FAILPOINTS=" + p.point + "=" + p.terms}
}

func (p plan) String() string {
	if p.point == "" {
		return "no crash point"
	}
	return p.point + "=" + p.terms
}

// killAt arms point to kill the process the (skip+1)-th time it is reached.
func killAt(point string, skip int) plan {
	return plan{point, fmt.Sprintf(`%d*off->return(%q)`, skip, failpoint.Kill)}
}

// panicAt arms point to panic the (skip+1)-th time it is reached.
func panicAt(point string, skip int) plan {
	return plan{point, fmt.Sprintf(`%d*off->panic(%q)`, skip, "crashtest")}
}

// tally counts what a test did, for its closing log line (and README's figures).
type tally struct {
	cycles      int
	kills       int            // SIGKILL sent by the test
	pointKills  map[string]int // processes that killed themselves at a crash point
	pointPanics map[string]int // processes ended by a panic at a crash point
	recovered   int            // panics at a crash point that the gRPC server recovered from
	earlyExits  int            // processes that crashed before they were ready
	checks      int            // data files checked after a crash
}

func newTally() *tally {
	return &tally{pointKills: map[string]int{}, pointPanics: map[string]int{}}
}

func (c *tally) crashes() int {
	n := c.kills
	for _, v := range c.pointKills {
		n += v
	}
	for _, v := range c.pointPanics {
		n += v
	}
	return n
}

func (c *tally) String() string {
	list := func(m map[string]int) string {
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
		if len(parts) == 0 {
			return "none"
		}
		return strings.Join(parts, ", ")
	}
	return fmt.Sprintf("%d cycles, %d crashes: %d kill -9 from the test; crash-point kills: %s; crash-point panics that ended the process: %s; "+
		"%d panics recovered by the server; %d crashes before ready; %d data files checked",
		c.cycles, c.crashes(), c.kills, list(c.pointKills), list(c.pointPanics), c.recovered, c.earlyExits, c.checks)
}

// fixedAddr returns a loopback address, free a moment ago, for a node that restarts on the same
// address after every crash. Its port is below Linux's ephemeral range (32768 and up by
// default), so that while the node is down the port is not handed to another test's listener on
// port 0 or to an outgoing connection, which would make its restart fail.
func fixedAddr(t *testing.T) string {
	t.Helper()
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			return addr
		}
	}
	t.Fatal("no free port found between 20000 and 32000")
	return ""
}

// node is one service whose process the test starts, crashes and starts again on the same data
// and address.
type node struct {
	t      *testing.T
	kind   string
	args   []string // flags after -listen (data folder, region, ...)
	file   string   // the data file
	schema store.Schema
	addr   string // the listen address, the same at every start (fixedAddr)
	p      *proctest.Process
	plan   plan
	killed bool // the test sent SIGKILL to p
}

// start launches the node's process with crash plan pl and waits until it is ready. It
// returns false if the process crashed before (a crash point armed too early).
func (n *node) start(pl plan) bool {
	n.t.Helper()
	n.plan, n.killed = pl, false
	n.p = proctest.Launch(n.t, proctest.Spec{Kind: n.kind, Addr: n.addr, Args: n.args, Env: pl.env()})
	if err := n.p.WaitReady(60 * time.Second); err != nil {
		if errors.Is(err, readiness.ErrExited) {
			return false
		}
		n.t.Fatalf("%s (%s) not ready: %v\n%s", n.kind, pl, err, n.logTail())
	}
	n.addr = n.p.Addr
	return true
}

func (n *node) alive() bool { return n.p != nil && !n.p.Exited() }

// kill sends SIGKILL unless the process has already ended, and waits for it.
func (n *node) kill() {
	if n.p == nil {
		return
	}
	if !n.p.Exited() {
		n.killed = true
		n.p.Kill()
	}
	_ = n.p.Wait()
}

// account adds how the (ended) process died to c and fails the test if it ended in a way no
// crash explains (a clean exit, or a panic that is not a crash point's).
func (n *node) account(c *tally, beforeReady bool) {
	n.t.Helper()
	err := n.p.Wait()
	log, _ := os.ReadFile(n.p.Log)
	text := string(log)
	c.recovered += countRecovered(text)
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		n.t.Fatalf("%s (%s) exited by itself with %v\n%s", n.kind, n.plan, err, n.logTail())
	}
	ws, _ := ee.Sys().(syscall.WaitStatus)
	switch {
	case ws.Signaled() && ws.Signal() == syscall.SIGKILL && strings.Contains(text, "failpoint "+n.plan.point+": kill -9"):
		c.pointKills[n.plan.point]++
	case ws.Signaled() && ws.Signal() == syscall.SIGKILL && n.killed:
		c.kills++
	case ee.ExitCode() == 2 && strings.Contains(text, "panic: failpoint panic: crashtest"):
		c.pointPanics[n.plan.point]++
	default:
		n.t.Fatalf("%s (%s) ended with %v, not by a crash the test caused\n%s", n.kind, n.plan, err, n.logTail())
	}
	if beforeReady {
		c.earlyExits++
	}
}

// countRecovered counts the crash-point panics the server's recovery interceptor logged.
func countRecovered(log string) int {
	n := 0
	for _, l := range strings.Split(log, "\n") {
		if strings.HasPrefix(l, "{") && strings.Contains(l, "failpoint panic: crashtest") {
			n++
		}
	}
	return n
}

// logTail is the end of the process's log, for failure messages.
func (n *node) logTail() string {
	if n.p == nil {
		return ""
	}
	b, _ := os.ReadFile(n.p.Log)
	const most = 6000
	if len(b) > most {
		b = b[len(b)-most:]
	}
	return fmt.Sprintf("--- %s log %s (end) ---\n%s", n.kind, n.p.Log, b)
}

// checkFile runs bbolt's consistency check on the node's data file (the process has ended),
// then opens it with its schema as the service would, and calls inspect (if set) on the open
// file. It fails the test on any error.
func (n *node) checkFile(c *tally, inspect func(db *store.DB)) {
	n.t.Helper()
	bdb, err := bbolt.Open(n.file, 0o600, &bbolt.Options{ReadOnly: true, Timeout: 10 * time.Second})
	if err != nil {
		n.t.Fatalf("open %s after the crash: %v", n.file, err)
	}
	var problems []string
	err = bdb.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			problems = append(problems, err.Error())
		}
		return nil
	})
	if cerr := bdb.Close(); err == nil {
		err = cerr
	}
	if err != nil || len(problems) > 0 {
		n.t.Fatalf("bbolt check of %s after the crash (%s): %v %s\n%s", n.file, n.plan, err, strings.Join(problems, "; "), n.logTail())
	}
	db, err := store.Open(n.file, n.schema, zap.NewNop())
	if err != nil {
		n.t.Fatalf("reopen %s after the crash: %v", n.file, err)
	}
	defer db.Close()
	if inspect != nil {
		inspect(db)
	}
	c.checks++
}

// permanent reports whether err is a refusal that no crash explains (the workload's calls are
// valid, so such an answer is a bug): anything but unavailability, a deadline, a cancellation,
// or INTERNAL (a crash point's panic, recovered by the server).
func permanent(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Internal, codes.Unknown, codes.Aborted:
		return false
	}
	return true
}

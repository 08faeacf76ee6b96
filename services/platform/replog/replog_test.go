package replog

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

func TestMain(m *testing.M) {
	if runChildNode() {
		return
	}
	os.Exit(m.Run())
}

func TestCommandCheckAndEncoding(t *testing.T) {
	ok := Command{Method: "/labourlink.coordination.v1.LedgerService/ReportEvents", ID: "r-1", Request: []byte{0, 1, 2}, UnixNano: 1764720000123456789}
	tests := []struct {
		name string
		cmd  Command
		want string // "" for valid
	}{
		{"valid", ok, ""},
		{"no method", Command{ID: "x"}, "needs a method"},
		{"no id", Command{Method: "/m"}, "needs an id"},
		{"LF in id", Command{Method: "/m", ID: "a\nb"}, "CR, LF or NUL"},
		{"NUL in method", Command{Method: "/m\x00", ID: "a"}, "CR, LF or NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cmd.check()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("check: %v", err)
				}
				b, err := tt.cmd.encode()
				if err != nil {
					t.Fatal(err)
				}
				got, err := decodeCommand(b)
				if err != nil {
					t.Fatal(err)
				}
				if got.Method != tt.cmd.Method || got.ID != tt.cmd.ID || string(got.Request) != string(tt.cmd.Request) || got.UnixNano != tt.cmd.UnixNano {
					t.Errorf("decoded %+v, want %+v", got, tt.cmd)
				}
				if !got.Time().Equal(time.Unix(0, tt.cmd.UnixNano)) {
					t.Errorf("time %v", got.Time())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("check: %v, want %q", err, tt.want)
			}
		})
	}
}

func TestNodeOptionsRefused(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		o    NodeOptions
		want string
	}{
		{"no name", NodeOptions{StoreDir: dir, ClientListen: "127.0.0.1:0"}, "a name is required"},
		{"no store", NodeOptions{Name: "n", ClientListen: "127.0.0.1:0"}, "store directory"},
		{"bad listen", NodeOptions{Name: "n", StoreDir: dir, ClientListen: "nowhere"}, "client listen"},
		{"routes without cluster", NodeOptions{Name: "n", StoreDir: dir, ClientListen: "127.0.0.1:0", Routes: []string{"nats://127.0.0.1:1"}}, "without a cluster listen"},
		{"cluster without name", NodeOptions{Name: "n", StoreDir: dir, ClientListen: "127.0.0.1:0", ClusterListen: "127.0.0.1:7000"}, "cluster name is required"},
		{"random cluster port", NodeOptions{Name: "n", StoreDir: dir, ClientListen: "127.0.0.1:0", ClusterName: "c", ClusterListen: "127.0.0.1:0"}, "fixed port"},
		{"cluster TLS not verifying", NodeOptions{Name: "n", StoreDir: dir, ClientListen: "127.0.0.1:0", ClusterName: "c", ClusterListen: "127.0.0.1:7000", ClusterTLS: &tls.Config{}}, "require and verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := StartNode(tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("StartNode: %v, want %q", err, tt.want)
			}
		})
	}
}

// freePorts returns n free loopback ports (listened on, then released).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// clusterSpec is the addresses of a three-node cluster on loopback.
type clusterSpec struct {
	client, route []int
	dir           string
}

func newClusterSpec(t testing.TB, n int) clusterSpec {
	p := freePorts(t, 2*n)
	return clusterSpec{client: p[:n], route: p[n:], dir: t.TempDir()}
}

func (c clusterSpec) url(i int) string { return fmt.Sprintf("nats://127.0.0.1:%d", c.client[i]) }

func (c clusterSpec) urls() []string {
	var us []string
	for i := range c.client {
		us = append(us, c.url(i))
	}
	return us
}

func (c clusterSpec) options(i int) NodeOptions {
	var routes []string
	for _, p := range c.route {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	return NodeOptions{
		Name:          fmt.Sprintf("n%d", i),
		StoreDir:      filepath.Join(c.dir, fmt.Sprintf("nats-%d", i)),
		ClientListen:  fmt.Sprintf("127.0.0.1:%d", c.client[i]),
		ClusterName:   "replog-test",
		ClusterListen: fmt.Sprintf("127.0.0.1:%d", c.route[i]),
		Routes:        routes,
	}
}

// ---- a bbolt-backed applier, as the coordination service will have ----

var (
	bucketMeta = []byte("meta") // "applied" → the last applied sequence
	bucketLog  = []byte("log")  // sequence → Nats-Msg-Id, in the order applied
	bucketIDs  = []byte("ids")  // Nats-Msg-Id → times applied (uint64)
	keyApplied = []byte("applied")
)

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// boltApplier applies commands into a bbolt file, the applied sequence in the same
// transaction. It refuses a sequence that is not the one after the stored one (applied twice,
// or skipped), and counts how often each id was applied.
type boltApplier struct {
	db *bolt.DB
}

func openApplier(t testing.TB, path string) *boltApplier {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketLog, bucketIDs} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return &boltApplier{db: db}
}

func (a *boltApplier) applied() (seq uint64, err error) {
	err = a.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyApplied); v != nil {
			seq = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return seq, err
}

func (a *boltApplier) apply(seq uint64, cmd Command) error {
	return a.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		var last uint64
		if v := meta.Get(keyApplied); v != nil {
			last = binary.BigEndian.Uint64(v)
		}
		if seq != last+1 {
			return fmt.Errorf("sequence %d handed over after %d", seq, last)
		}
		ids := tx.Bucket(bucketIDs)
		id := []byte(cmd.MsgID())
		var times uint64
		if v := ids.Get(id); v != nil {
			times = binary.BigEndian.Uint64(v)
		}
		if err := ids.Put(id, u64(times+1)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketLog).Put(u64(seq), id); err != nil {
			return err
		}
		return meta.Put(keyApplied, u64(seq))
	})
}

// entries returns the applied ids in order, and the ids applied more than once.
func (a *boltApplier) entries() (log []string, twice []string, err error) {
	err = a.db.View(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketLog).ForEach(func(_, v []byte) error {
			log = append(log, string(v))
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketIDs).ForEach(func(k, v []byte) error {
			if binary.BigEndian.Uint64(v) != 1 {
				twice = append(twice, string(k))
			}
			return nil
		})
	})
	return log, twice, err
}

// replica is a node's applier: its Log (connected to the node's own server only, as the
// daemon's is) and its bbolt file, running Apply from the stored sequence.
type replica struct {
	t      testing.TB
	path   string
	log    *Log
	app    *boltApplier
	cancel context.CancelFunc
	done   chan error
}

func startReplica(t testing.TB, ctx context.Context, path, url string) *replica {
	t.Helper()
	l, err := Open(ctx, []string{url}, "COMMANDS", 3, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{t: t, path: path, log: l, app: openApplier(t, path), done: make(chan error, 1)}
	from, err := r.app.applied()
	if err != nil {
		t.Fatal(err)
	}
	actx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- l.Apply(actx, from, r.app.apply) }()
	return r
}

// stop ends Apply (as a crash of the daemon would: what is committed in bbolt stays) and
// closes the file and the connection.
func (r *replica) stop() {
	r.cancel()
	if err := <-r.done; !errors.Is(err, context.Canceled) {
		r.t.Errorf("apply of %s: %v", r.path, err)
	}
	_ = r.log.Close()
	_ = r.app.db.Close()
}

func testLogger(t testing.TB) *zap.Logger {
	return zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
}

// acks records the sequence each command was acknowledged with.
type acks struct {
	mu  sync.Mutex
	seq map[string]uint64
}

func (a *acks) put(t testing.TB, id string, seq uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seq == nil {
		a.seq = map[string]uint64{}
	}
	if old, ok := a.seq[id]; ok && old != seq {
		t.Errorf("%s acknowledged at %d, then at %d", id, old, seq)
	}
	a.seq[id] = seq
}

func (a *acks) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.seq)
}

// ordered returns the acknowledged ids in sequence order and the largest sequence; it fails
// when two ids share a sequence.
func (a *acks) ordered(t testing.TB) ([]string, uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	bySeq := map[uint64]string{}
	var max uint64
	for id, s := range a.seq {
		if other, ok := bySeq[s]; ok {
			t.Errorf("%s and %s both acknowledged at %d", id, other, s)
		}
		bySeq[s] = id
		max = maxU(max, s)
	}
	seqs := make([]uint64, 0, len(bySeq))
	for s := range bySeq {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	ids := make([]string, len(seqs))
	for i, s := range seqs {
		ids[i] = bySeq[s]
	}
	return ids, max
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// checkReplicas waits until every replica has applied upTo and checks that each applied
// exactly the acknowledged commands, once each, in the order of their sequences.
func checkReplicas(t *testing.T, ctx context.Context, rs []*replica, a *acks) {
	t.Helper()
	want, upTo := a.ordered(t)
	if uint64(len(want)) != upTo {
		t.Errorf("%d commands acknowledged, the last at sequence %d: the sequences have gaps", len(want), upTo)
	}
	for i, r := range rs {
		if err := r.log.WaitApplied(ctx, upTo); err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		got, twice, err := r.app.entries()
		if err != nil {
			t.Fatal(err)
		}
		if len(twice) > 0 {
			t.Errorf("replica %d applied %d commands more than once: %v", i, len(twice), twice[:min(5, len(twice))])
		}
		if !slices.Equal(got, want) {
			t.Errorf("replica %d applied %d commands, %d acknowledged; first difference at %d", i, len(got), len(want), firstDiff(got, want))
		}
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func command(writer string, i int) Command {
	return Command{
		Method:   "/labourlink.coordination.v1.LedgerService/ReportEvents",
		ID:       fmt.Sprintf("%s-%d", writer, i),
		Request:  []byte(strings.Repeat(writer, 100)),
		UnixNano: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC).UnixNano() + int64(i),
	}
}

// appendRetried appends cmd until it is acknowledged, each try bounded, as a caller retrying
// after errors does; it returns the sequence and the number of failed tries.
func appendRetried(ctx context.Context, l *Log, cmd Command) (uint64, int, error) {
	for fails := 0; ; fails++ {
		actx, cancel := context.WithTimeout(ctx, 3*time.Second)
		seq, err := l.Append(actx, cmd)
		cancel()
		if err == nil {
			return seq, fails, nil
		}
		if ctx.Err() != nil {
			return 0, fails, fmt.Errorf("%s: %w (last: %v)", cmd.ID, ctx.Err(), err)
		}
	}
}

// TestThreeNodesInProcess: three embedded nodes; two writers on different nodes; a repeat of
// an acknowledged command returns its first sequence; every node's applier applies every
// command once, in the same order; a node shut down and restarted from its store directory,
// with its applier resuming from the sequence in its bbolt file, catches up and applies nothing
// twice.
func TestThreeNodesInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node NATS cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	spec := newClusterSpec(t, 3)
	nodes := make([]*Node, 3)
	for i := range nodes {
		n, err := StartNode(spec.options(i))
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = n
	}
	defer func() {
		for _, n := range nodes {
			if n != nil {
				n.Shutdown()
			}
		}
	}()
	rs := make([]*replica, 3)
	for i := range rs {
		rs[i] = startReplica(t, ctx, filepath.Join(spec.dir, fmt.Sprintf("applier-%d.db", i)), spec.url(i))
	}
	defer func() {
		for _, r := range rs {
			if r != nil {
				r.stop()
			}
		}
	}()

	var a acks
	var wg sync.WaitGroup
	for w, r := range rs[:2] {
		wg.Go(func() {
			name := fmt.Sprintf("w%d", w)
			for i := range 25 {
				cmd := command(name, i)
				seq, err := r.log.Append(ctx, cmd)
				if err != nil {
					t.Errorf("append %s: %v", cmd.ID, err)
					return
				}
				a.put(t, cmd.MsgID(), seq)
				if i%5 == 0 { // the caller's retry after a lost answer: the same sequence
					again, err := r.log.Append(ctx, cmd)
					if err != nil {
						t.Errorf("append %s again: %v", cmd.ID, err)
						return
					}
					if again != seq {
						t.Errorf("%s appended again: sequence %d, first %d", cmd.ID, again, seq)
					}
				}
			}
		})
	}
	wg.Wait()
	checkReplicas(t, ctx, rs, &a)

	t.Run("open with another replica count", func(t *testing.T) {
		_, err := Open(ctx, []string{spec.url(2)}, "COMMANDS", 1)
		if !errors.Is(err, ErrStreamMismatch) || !strings.Contains(err.Error(), "replicas 3 (want 1)") {
			t.Errorf("Open R1 of the R3 stream: %v, want ErrStreamMismatch", err)
		}
	})
	t.Run("a second Apply on a Log", func(t *testing.T) {
		err := rs[0].log.Apply(ctx, 0, func(uint64, Command) error { return nil })
		if !errors.Is(err, ErrApplying) {
			t.Errorf("second Apply: %v, want ErrApplying", err)
		}
	})
	t.Run("applied sequence beyond the stream", func(t *testing.T) {
		l, err := Open(ctx, []string{spec.url(0)}, "OTHER", 3)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		err = l.Apply(ctx, 5, func(uint64, Command) error { return nil })
		if !errors.Is(err, ErrNotThisStream) {
			t.Errorf("Apply from 5 of an empty stream: %v, want ErrNotThisStream", err)
		}
		if err := l.WaitApplied(ctx, 6); !errors.Is(err, ErrApplyStopped) {
			t.Errorf("WaitApplied after Apply stopped: %v, want ErrApplyStopped", err)
		}
	})

	// Node 2 goes (its daemon with it), the others take more commands, node 2 comes back
	// from its directory and its applier from its file.
	rs[2].stop()
	rs[2] = nil
	nodes[2].Shutdown()
	nodes[2] = nil
	for i := range 20 {
		cmd := command("while-n2-down", i)
		seq, _, err := appendRetried(ctx, rs[i%2].log, cmd)
		if err != nil {
			t.Fatal(err)
		}
		a.put(t, cmd.MsgID(), seq)
	}
	n, err := StartNode(spec.options(2))
	if err != nil {
		t.Fatal(err)
	}
	nodes[2] = n
	rs[2] = startReplica(t, ctx, filepath.Join(spec.dir, "applier-2.db"), spec.url(2))
	for i := range 5 {
		cmd := command("after-n2-back", i)
		seq, _, err := appendRetried(ctx, rs[2].log, cmd)
		if err != nil {
			t.Fatal(err)
		}
		a.put(t, cmd.MsgID(), seq)
	}
	checkReplicas(t, ctx, rs, &a)
}

// TestSingleNode: one node without a cluster (the stream with one replica) on a free port; a
// command larger than the node takes is refused at once; an fn error stops Apply without the
// sequence counted; the node restarted on its directory keeps the stream and Open binds to it.
func TestSingleNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o := NodeOptions{Name: "solo", StoreDir: t.TempDir(), ClientListen: "127.0.0.1:0", MaxPayload: 4 << 10, Logger: testLogger(t)}
	n, err := StartNode(o)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { n.Shutdown() }()
	if n.Name() != "solo" || !strings.HasPrefix(n.ClientURL(), "nats://127.0.0.1:") {
		t.Errorf("node %q at %q", n.Name(), n.ClientURL())
	}
	l, err := Open(ctx, []string{n.ClientURL()}, "SOLO", 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		seq, err := l.Append(ctx, command("solo", i))
		if err != nil || seq != uint64(i+1) {
			t.Fatalf("append %d: sequence %d, %v", i, seq, err)
		}
	}
	if last, err := l.LastSeq(ctx); err != nil || last != 3 {
		t.Errorf("LastSeq after 3 appends: %d, %v", last, err)
	}
	big := command("big", 0)
	big.Request = make([]byte, 8<<10)
	if _, err := l.Append(ctx, big); !errors.Is(err, nats.ErrMaxPayload) {
		t.Errorf("append of 8 KiB to a node taking 4 KiB: %v, want ErrMaxPayload", err)
	}

	broken := errors.New("disk on fire")
	var got []uint64
	err = l.Apply(ctx, 0, func(seq uint64, cmd Command) error {
		if seq == 2 {
			return broken
		}
		got = append(got, seq)
		return nil
	})
	if !errors.Is(err, broken) {
		t.Errorf("Apply: %v, want the fn's error", err)
	}
	if !slices.Equal(got, []uint64{1}) || l.Applied() != 1 {
		t.Errorf("applied %v, Applied %d: want [1], 1", got, l.Applied())
	}
	if err := l.WaitApplied(ctx, 2); !errors.Is(err, ErrApplyStopped) || !errors.Is(err, broken) {
		t.Errorf("WaitApplied(2): %v, want ErrApplyStopped with the fn's error", err)
	}
	n.Shutdown()
	sctx, scancel := context.WithTimeout(ctx, 500*time.Millisecond)
	if last, err := l.LastSeq(sctx); err == nil {
		t.Errorf("LastSeq with the node shut down: %d, want an error", last)
	}
	scancel()
	_ = l.Close()

	o.ClientListen = "127.0.0.1:0"
	if n, err = StartNode(o); err != nil {
		t.Fatal(err)
	}
	if l, err = Open(ctx, []string{n.ClientURL()}, "SOLO", 1); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	var mu sync.Mutex
	got = nil
	go func() {
		done <- l.Apply(actx, 1, func(seq uint64, cmd Command) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, seq)
			if want := command("solo", int(seq-1)); cmd.ID != want.ID || cmd.UnixNano != want.UnixNano {
				t.Errorf("sequence %d is %+v, want %s", seq, cmd, want.ID)
			}
			return nil
		})
	}()
	if err := l.WaitApplied(ctx, 3); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Apply after cancel: %v", err)
	}
	if !slices.Equal(got, []uint64{2, 3}) {
		t.Errorf("after the restart applied %v, want [2 3]", got)
	}
}

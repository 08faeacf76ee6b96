// Package enginebench compares the replicated engines that could carry the coordination
// service's commands (issue 16, docs/replication.md): a three-node NATS JetStream cluster (a
// stream with three replicas, file storage, deduplicated by Nats-Msg-Id) and a three-member
// etcd cluster (a key per command id, written by a transaction that puts only if the key is
// absent), against the single-process baseline, one local bbolt file. Every engine appends the
// same commands under the same ids; a repeat of an id changes nothing.
//
// The clusters run in this process on free loopback ports for the throughput benchmarks, and as
// child processes of the test binary (RunNode) for the failover measurement, where the leader
// is killed with SIGKILL rather than shut down (both engines hand leadership over on a clean
// shutdown, which would hide the election).
//
// It is a measuring tool, not part of a service: the etcd server is a dependency only of this
// package.
package enginebench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	bolt "go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Appender appends a command under its id; a second append of the same id is acknowledged and
// changes nothing. Append returns once the engine acknowledges the command durable (its quorum,
// or the fsync of the local file).
type Appender interface {
	Append(ctx context.Context, id string, cmd []byte) error
	Close() error
}

// Stream and subject of the commands in the NATS cluster.
const (
	StreamName = "COORDINATION"
	Subject    = "coordination.commands"
	// DedupWindow is the JetStream duplicate window of the stream (its default, 2 min).
	DedupWindow = 2 * time.Minute
)

// FreePorts returns n free loopback TCP ports (listened on, then released).
func FreePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Ports are the loopback ports of a three-node cluster: Client[i] and Peer[i] of node i (NATS
// client and route ports; etcd client and peer URLs).
type Ports struct {
	Client, Peer []int
}

// NewPorts picks the free ports of an n-node cluster.
func NewPorts(n int) (Ports, error) {
	p, err := FreePorts(2 * n)
	if err != nil {
		return Ports{}, err
	}
	return Ports{Client: p[:n], Peer: p[n:]}, nil
}

// String encodes p for a child process ("c1,c2,c3/p1,p2,p3").
func (p Ports) String() string {
	j := func(xs []int) string {
		s := make([]string, len(xs))
		for i, x := range xs {
			s[i] = strconv.Itoa(x)
		}
		return strings.Join(s, ",")
	}
	return j(p.Client) + "/" + j(p.Peer)
}

// ParsePorts decodes Ports.String.
func ParsePorts(s string) (Ports, error) {
	c, r, ok := strings.Cut(s, "/")
	if !ok {
		return Ports{}, fmt.Errorf("ports %q: want client/peer", s)
	}
	parse := func(s string) ([]int, error) {
		var xs []int
		for _, f := range strings.Split(s, ",") {
			x, err := strconv.Atoi(f)
			if err != nil {
				return nil, err
			}
			xs = append(xs, x)
		}
		return xs, nil
	}
	var p Ports
	var err error
	if p.Client, err = parse(c); err != nil {
		return Ports{}, err
	}
	if p.Peer, err = parse(r); err != nil {
		return Ports{}, err
	}
	return p, nil
}

// ClientURLs returns the client URLs of every node (NATS or etcd), scheme given.
func (p Ports) ClientURLs(scheme string) []string {
	var us []string
	for _, c := range p.Client {
		us = append(us, fmt.Sprintf("%s://127.0.0.1:%d", scheme, c))
	}
	return us
}

// ---- NATS JetStream ----

// NATSOptions are the options of node i of a NATS cluster with data under dir. syncAlways
// fsyncs every write (JetStream's default syncs the files every 2 minutes and relies on the
// replicas for durability).
func NATSOptions(i int, dir string, p Ports, syncAlways bool) *server.Options {
	var routes []string
	for _, r := range p.Peer {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", r))
	}
	return &server.Options{
		ServerName: fmt.Sprintf("n%d", i),
		Host:       "127.0.0.1",
		Port:       p.Client[i],
		JetStream:  true,
		StoreDir:   filepath.Join(dir, fmt.Sprintf("nats-%d", i)),
		SyncAlways: syncAlways,
		Cluster: server.ClusterOpts{
			Name: "enginebench",
			Host: "127.0.0.1",
			Port: p.Peer[i],
		},
		Routes: server.RoutesFromStr(strings.Join(routes, ",")),
		NoLog:  true,
		NoSigs: true,
	}
}

// StartNATSNode starts node i and waits until it accepts clients.
func StartNATSNode(i int, dir string, p Ports, syncAlways bool) (*server.Server, error) {
	s, err := server.NewServer(NATSOptions(i, dir, p, syncAlways))
	if err != nil {
		return nil, err
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("nats node %d not ready", i)
	}
	return s, nil
}

// NATSClient appends to the stream through one connection.
type NATSClient struct {
	nc *nats.Conn
	js jetstream.JetStream
}

// DialNATS connects to the given client URLs (comma-separated) and, when create is set,
// creates the stream (R3, file storage, DedupWindow), retrying while the cluster has no
// JetStream leader yet.
func DialNATS(ctx context.Context, urls string, create bool) (*NATSClient, error) {
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	c := &NATSClient{nc: nc, js: js}
	if !create {
		return c, nil
	}
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = js.CreateOrUpdateStream(cctx, jetstream.StreamConfig{
			Name:       StreamName,
			Subjects:   []string{Subject},
			Replicas:   3,
			Storage:    jetstream.FileStorage,
			Duplicates: DedupWindow,
		})
		cancel()
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			nc.Close()
			return nil, fmt.Errorf("create stream: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Append publishes cmd with Nats-Msg-Id id and waits for the stream's acknowledgement, given
// once a quorum of the replicas has it.
func (c *NATSClient) Append(ctx context.Context, id string, cmd []byte) error {
	_, err := c.js.Publish(ctx, Subject, cmd, jetstream.WithMsgID(id))
	return err
}

// Count returns the number of messages in the stream.
func (c *NATSClient) Count(ctx context.Context) (uint64, error) {
	s, err := c.js.Stream(ctx, StreamName)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// Leader returns the server name of the stream's leader ("n0", ...).
func (c *NATSClient) Leader(ctx context.Context) (string, error) {
	s, err := c.js.Stream(ctx, StreamName)
	if err != nil {
		return "", err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return "", err
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return "", errors.New("the stream has no leader")
	}
	return info.Cluster.Leader, nil
}

// Close closes the connection.
func (c *NATSClient) Close() error {
	c.nc.Close()
	return nil
}

// NATSCluster is a three-node NATS cluster in this process.
type NATSCluster struct {
	Servers []*server.Server
	Ports   Ports
}

// StartNATS starts an n-node cluster with data under dir.
func StartNATS(dir string, n int, syncAlways bool) (*NATSCluster, error) {
	p, err := NewPorts(n)
	if err != nil {
		return nil, err
	}
	c := &NATSCluster{Ports: p}
	for i := range n {
		s, err := StartNATSNode(i, dir, p, syncAlways)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.Servers = append(c.Servers, s)
	}
	return c, nil
}

// Close shuts every node down.
func (c *NATSCluster) Close() {
	for _, s := range c.Servers {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// ---- etcd ----

// EtcdConfig is the configuration of member i of an etcd cluster with data under dir (etcd's
// defaults otherwise: heartbeat 100 ms, election timeout 1 s, request limit 1.5 MiB, backend
// quota 2 GiB).
func EtcdConfig(i int, dir string, p Ports) *embed.Config {
	cfg := embed.NewConfig()
	cfg.Name = fmt.Sprintf("m%d", i)
	cfg.Dir = filepath.Join(dir, fmt.Sprintf("etcd-%d", i))
	u := func(port int) url.URL { return url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", port)} }
	cfg.ListenPeerUrls = []url.URL{u(p.Peer[i])}
	cfg.AdvertisePeerUrls = []url.URL{u(p.Peer[i])}
	cfg.ListenClientUrls = []url.URL{u(p.Client[i])}
	cfg.AdvertiseClientUrls = []url.URL{u(p.Client[i])}
	var members []string
	for j, port := range p.Peer {
		members = append(members, fmt.Sprintf("m%d=http://127.0.0.1:%d", j, port))
	}
	cfg.InitialCluster = strings.Join(members, ",")
	cfg.InitialClusterToken = "enginebench"
	cfg.ClusterState = embed.ClusterStateFlagNew
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	return cfg
}

// StartEtcdMember starts member i; it is ready once the cluster has elected a leader, which
// needs a quorum of the members started (StartEtcd starts them together).
func StartEtcdMember(i int, dir string, p Ports) (*embed.Etcd, error) {
	return embed.StartEtcd(EtcdConfig(i, dir, p))
}

// EtcdCluster is an etcd cluster in this process.
type EtcdCluster struct {
	Members []*embed.Etcd
	Ports   Ports
}

// StartEtcd starts an n-member cluster with data under dir and waits until every member is
// ready.
func StartEtcd(dir string, n int) (*EtcdCluster, error) {
	p, err := NewPorts(n)
	if err != nil {
		return nil, err
	}
	c := &EtcdCluster{Ports: p}
	for i := range n {
		e, err := StartEtcdMember(i, dir, p)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.Members = append(c.Members, e)
	}
	for i, e := range c.Members {
		select {
		case <-e.Server.ReadyNotify():
		case <-time.After(60 * time.Second):
			c.Close()
			return nil, fmt.Errorf("etcd member %d not ready", i)
		}
	}
	return c, nil
}

// Close stops every member.
func (c *EtcdCluster) Close() {
	for _, e := range c.Members {
		e.Close()
	}
}

// EtcdClient appends commands as keys.
type EtcdClient struct {
	cli *clientv3.Client
}

// EtcdPrefix starts the key of every command.
const EtcdPrefix = "/coordination/commands/"

// DialEtcd connects to the given endpoints.
func DialEtcd(endpoints []string) (*EtcdClient, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, err
	}
	return &EtcdClient{cli: cli}, nil
}

// Append puts cmd under EtcdPrefix+id unless the key exists (the transaction is the
// deduplication: a repeat of the id changes nothing, and its revision orders the commands).
// etcd acknowledges once a quorum has the entry in its fsynced log.
func (c *EtcdClient) Append(ctx context.Context, id string, cmd []byte) error {
	key := EtcdPrefix + id
	_, err := c.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(cmd))).
		Commit()
	return err
}

// Count returns the number of commands.
func (c *EtcdClient) Count(ctx context.Context) (uint64, error) {
	r, err := c.cli.Get(ctx, EtcdPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	return uint64(r.Count), nil
}

// Leader returns the name of the leader as seen from endpoint ("m0", ...).
func (c *EtcdClient) Leader(ctx context.Context, endpoint string) (string, error) {
	st, err := c.cli.Status(ctx, endpoint)
	if err != nil {
		return "", err
	}
	ms, err := c.cli.MemberList(ctx)
	if err != nil {
		return "", err
	}
	for _, m := range ms.Members {
		if m.ID == st.Leader {
			return m.Name, nil
		}
	}
	return "", errors.New("no leader")
}

// Close closes the client.
func (c *EtcdClient) Close() error { return c.cli.Close() }

// ---- bbolt: the single-process baseline ----

var boltBucket = []byte("commands")

// Bolt appends to one local bbolt file, a transaction (and an fsync) per command: what the
// single-process coordination does for a ReportEvents.
type Bolt struct {
	db *bolt.DB
}

// OpenBolt opens (or creates) the file.
func OpenBolt(path string) (*Bolt, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(boltBucket)
		return err
	}); err != nil {
		_ = db.Close()
		return nil, err
	}
	return &Bolt{db: db}, nil
}

// Append puts cmd under id unless id is there.
func (b *Bolt) Append(_ context.Context, id string, cmd []byte) error {
	return b.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(boltBucket)
		if bk.Get([]byte(id)) != nil {
			return nil
		}
		return bk.Put([]byte(id), cmd)
	})
}

// Count returns the number of commands.
func (b *Bolt) Count() (n uint64, err error) {
	err = b.db.View(func(tx *bolt.Tx) error {
		n = uint64(tx.Bucket(boltBucket).Stats().KeyN)
		return nil
	})
	return n, err
}

// Close closes the file.
func (b *Bolt) Close() error { return b.db.Close() }

// ---- child processes, for the failover measurement ----

// NodeEnv names the environment variable that makes the test binary a node: RunNode reads
// "engine,index,dir,ports" (engine nats, nats-sync or etcd; ports as Ports.String).
const NodeEnv = "ENGINEBENCH_NODE"

// RunNode runs the node NodeEnv describes until the process is killed; it returns false at
// once when NodeEnv is unset.
func RunNode() bool {
	spec := os.Getenv(NodeEnv)
	if spec == "" {
		return false
	}
	f := strings.SplitN(spec, ",", 4)
	fail := func(err error) bool {
		fmt.Fprintln(os.Stderr, "enginebench node:", err)
		os.Exit(2)
		return true
	}
	if len(f) != 4 {
		return fail(fmt.Errorf("%s=%q: want engine,index,dir,ports", NodeEnv, spec))
	}
	i, err := strconv.Atoi(f[1])
	if err != nil {
		return fail(err)
	}
	p, err := ParsePorts(f[3])
	if err != nil {
		return fail(err)
	}
	switch f[0] {
	case "nats", "nats-sync":
		s, err := StartNATSNode(i, f[2], p, f[0] == "nats-sync")
		if err != nil {
			return fail(err)
		}
		s.WaitForShutdown()
	case "etcd":
		e, err := StartEtcdMember(i, f[2], p)
		if err != nil {
			return fail(err)
		}
		<-e.Err()
	default:
		return fail(fmt.Errorf("unknown engine %q", f[0]))
	}
	os.Exit(0)
	return true
}

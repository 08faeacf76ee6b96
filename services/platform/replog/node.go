package replog

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"
)

// NodeOptions configure one embedded NATS server with JetStream: a node of the cluster that
// holds the command stream.
type NodeOptions struct {
	// Name is the node's name in the cluster (the replica name, "coordination-0"): unique among
	// the nodes and kept across restarts, since the stream's peer set knows the node by it.
	Name string
	// StoreDir is the directory of the node's JetStream files. A node restarted on the same
	// directory rejoins with what it had and catches up from the others.
	StoreDir string
	// ClientListen is host:port of the client listener; port 0 picks a free port (see
	// Node.ClientURL). The daemon's own Log connects here.
	ClientListen string
	// ClusterName names the cluster; every node has the same. Empty with ClusterListen empty:
	// a single node (no routes, the stream has one replica).
	ClusterName string
	// ClusterListen is host:port of the route listener the other nodes connect to.
	ClusterListen string
	// Routes are the other nodes' route URLs (nats://host:port); a node's own URL among them
	// is ignored, so every node can be given the same list.
	Routes []string
	// ClusterTLS, when set, is the TLS configuration of the routes, used to accept them and to
	// dial them (identity.PeerTLS): it must require and verify the other node's certificate.
	// Nil: the routes are plaintext (a private network only).
	ClusterTLS *tls.Config
	// SyncAlways fsyncs every write before it is acknowledged. Off (JetStream's default), a
	// write is acknowledged once a quorum of the nodes has it in memory and in its files
	// without an fsync (files are synced every two minutes): a command survives the loss of
	// any minority of the nodes, not the power loss of a majority at once.
	SyncAlways bool
	// MaxPayload is the largest message a client may publish; zero means DefaultMaxPayload.
	MaxPayload int32
	// Logger receives the server's log (notices as info); nil discards it.
	Logger *zap.Logger
	// ReadyTimeout bounds the wait for the client listener; zero means 30 s.
	ReadyTimeout time.Duration
}

// DefaultMaxPayload is the largest command a node accepts by default: the largest gRPC request
// the services take (grpcserver.DefaultMaxRecvBytes, 16 MiB) and room for the command's other
// fields and headers.
const DefaultMaxPayload = 16<<20 + 64<<10

// Node is a running embedded NATS server.
type Node struct {
	srv *server.Server
}

// StartNode starts the node and waits until it accepts clients. JetStream is usable once a
// quorum of the cluster's nodes is up and has elected its leaders; Open waits for that.
func StartNode(o NodeOptions) (*Node, error) {
	so, err := o.serverOptions()
	if err != nil {
		return nil, err
	}
	s, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("nats node %s: %w", o.Name, err)
	}
	if o.Logger != nil {
		s.SetLoggerV2(natsLogger{o.Logger.Sugar()}, false, false, false)
	}
	go s.Start()
	timeout := o.ReadyTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	if !s.ReadyForConnections(timeout) {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, fmt.Errorf("nats node %s: not accepting clients after %s", o.Name, timeout)
	}
	return &Node{srv: s}, nil
}

func (o NodeOptions) serverOptions() (*server.Options, error) {
	if o.Name == "" {
		return nil, errors.New("nats node: a name is required")
	}
	if o.StoreDir == "" {
		return nil, fmt.Errorf("nats node %s: a store directory is required", o.Name)
	}
	host, port, err := splitListen(o.ClientListen)
	if err != nil {
		return nil, fmt.Errorf("nats node %s: client listen: %w", o.Name, err)
	}
	maxPayload := o.MaxPayload
	if maxPayload <= 0 {
		maxPayload = DefaultMaxPayload
	}
	so := &server.Options{
		ServerName: o.Name,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		SyncAlways: o.SyncAlways,
		MaxPayload: maxPayload,
		NoLog:      o.Logger == nil,
		NoSigs:     true,
	}
	if o.ClusterListen == "" {
		if len(o.Routes) > 0 || o.ClusterName != "" {
			return nil, fmt.Errorf("nats node %s: routes or a cluster name without a cluster listen address", o.Name)
		}
		return so, nil
	}
	if o.ClusterName == "" {
		return nil, fmt.Errorf("nats node %s: a cluster name is required with a cluster listen address", o.Name)
	}
	chost, cport, err := splitListen(o.ClusterListen)
	if err != nil {
		return nil, fmt.Errorf("nats node %s: cluster listen: %w", o.Name, err)
	}
	if cport == server.RANDOM_PORT {
		return nil, fmt.Errorf("nats node %s: cluster listen: the other nodes need a fixed port", o.Name)
	}
	so.Cluster = server.ClusterOpts{Name: o.ClusterName, Host: chost, Port: cport}
	if o.ClusterTLS != nil {
		if o.ClusterTLS.ClientAuth != tls.RequireAndVerifyClientCert {
			return nil, fmt.Errorf("nats node %s: cluster TLS must require and verify the other nodes' certificates", o.Name)
		}
		so.Cluster.TLSConfig, so.Cluster.TLSTimeout = o.ClusterTLS.Clone(), 5
	}
	so.Routes = server.RoutesFromStr(strings.Join(o.Routes, ","))
	return so, nil
}

// splitListen splits host:port; port 0 becomes the server's "pick a free port".
func splitListen(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q: want 0..65535", p)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

// ClientURL is the URL clients of this node connect to (nats://host:port, the actual port
// when ClientListen asked for a free one).
func (n *Node) ClientURL() string { return n.srv.ClientURL() }

// Name is the node's server name.
func (n *Node) Name() string { return n.srv.Name() }

// Shutdown stops the node and waits until it has stopped. A node shut down this way hands its
// leaderships over first; a crash (SIGKILL) is what the tests kill child processes with.
func (n *Node) Shutdown() {
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
}

// Wait blocks until the node has shut down.
func (n *Node) Wait() { n.srv.WaitForShutdown() }

// natsLogger sends the server's log to zap.
type natsLogger struct{ s *zap.SugaredLogger }

func (l natsLogger) Noticef(format string, v ...any) { l.s.Infof(format, v...) }
func (l natsLogger) Warnf(format string, v ...any)   { l.s.Warnf(format, v...) }
func (l natsLogger) Fatalf(format string, v ...any)  { l.s.Errorf(format, v...) }
func (l natsLogger) Errorf(format string, v ...any)  { l.s.Errorf(format, v...) }
func (l natsLogger) Debugf(format string, v ...any)  { l.s.Debugf(format, v...) }
func (l natsLogger) Tracef(format string, v ...any)  { l.s.Debugf(format, v...) }

// Package federation starts the local federation a newcomer tries labourlink with: the
// coordination service, a sending service for Guizhou (520000) and a receiving service for
// Guangdong (440000), paired, each a real process on a fixed loopback port, with data under one
// folder that is reused on restart.
package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/eastwest/labourlink/services/coordination/ledger"
	"github.com/eastwest/labourlink/services/daemon"
	"github.com/eastwest/labourlink/services/platform/identity"
	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/platform/readiness"
)

// The provinces of the local federation: Guangdong receives workers from Guizhou, one of the
// east–west pairs.
const (
	SendingRegion   = "520000"
	ReceivingRegion = "440000"
)

// Config describes the federation to start.
type Config struct {
	// Binary is the executable that runs `serve KIND` (the labourlink binary itself).
	Binary string
	// DataDir holds one folder per service and the services' log files.
	DataDir string
	// CoordinationAddr, SendingAddr and ReceivingAddr are the listen addresses.
	CoordinationAddr, SendingAddr, ReceivingAddr string
	// TLS, when set, gives each service its certificate (see the certs command).
	TLS func(k daemon.Kind) daemon.TLSConfig
	// LogLevel of the services.
	LogLevel string
	// GracePeriod is the coordination service's time before a departed worker not confirmed
	// arrived is unaccounted.
	GracePeriod time.Duration
	// ReadyTimeout bounds the wait for every service to answer SERVING.
	ReadyTimeout time.Duration
	// StopTimeout bounds the graceful stop of each service before it is killed.
	StopTimeout time.Duration
	// Metrics gives each service a metrics listener on MetricsAddr of its gRPC address.
	Metrics bool
	// HTTP gives each service an HTTP/JSON listener on HTTPAddr of its gRPC address.
	HTTP bool
	// Replicas is the number of coordination nodes: 0 or 1 runs one coordination process on
	// one file; 3 (or 5) runs a replicated coordination (docs/replication.md), node i on
	// CoordinationAddrs()[i] with its NATS node on NATSAddr and NATSClusterAddr of it, the
	// nodes sharing one ledger key (DATA/ledger.key), the provinces given every node.
	Replicas int
}

// ReplicaPortStep is what each further coordination node of a replicated federation adds to
// the first one's gRPC port: 127.0.0.1:50051, 50151, 50251 (their metrics and HTTP ports
// follow their own gRPC ports).
const ReplicaPortStep = 100

// NATSPortOffset and NATSClusterPortOffset are what the client and route ports of a
// coordination node's NATS server add to its gRPC port: 127.0.0.1:53051 and 54051 for the
// first node.
const (
	NATSPortOffset        = 3000
	NATSClusterPortOffset = 4000
)

// NATSAddr is the NATS client listener of the coordination node whose gRPC address is grpcAddr.
func NATSAddr(grpcAddr string) string { return portPlus(grpcAddr, NATSPortOffset) }

// NATSClusterAddr is the NATS route listener of the coordination node whose gRPC address is
// grpcAddr.
func NATSClusterAddr(grpcAddr string) string { return portPlus(grpcAddr, NATSClusterPortOffset) }

// replicated reports whether c runs a replicated coordination.
func (c Config) replicated() bool { return c.Replicas > 1 }

// CoordinationAddrs returns the gRPC address of each coordination node: CoordinationAddr
// alone, or with Replicas > 1 one every ReplicaPortStep ports from it.
func (c Config) CoordinationAddrs() []string {
	if !c.replicated() {
		return []string{c.CoordinationAddr}
	}
	addrs := make([]string, c.Replicas)
	for i := range addrs {
		addrs[i] = portPlus(c.CoordinationAddr, i*ReplicaPortStep)
	}
	return addrs
}

// CoordinationTarget is the coordination address the provinces are given: the one address, or
// every node's, comma-separated (peers.Dial).
func (c Config) CoordinationTarget() string { return strings.Join(c.CoordinationAddrs(), ",") }

// LedgerKeyFile is the ledger key the nodes of a replicated coordination share.
func (c Config) LedgerKeyFile() string { return filepath.Join(c.DataDir, ledger.KeyFileName) }

// ProcessName is the name of the process of sc in the federation (its log DATA/NAME.log):
// the service's kind, or a coordination node's replica name.
func ProcessName(sc daemon.Config) string {
	if sc.ReplicaName != "" {
		return sc.ReplicaName
	}
	return string(sc.Kind)
}

// HTTPPortOffset is what the HTTP/JSON port of a service of the federation adds to its gRPC
// port: coordination 127.0.0.1:52051, sending 52052, receiving 52053.
const HTTPPortOffset = 2000

// HTTPAddr is the HTTP/JSON listener of the service whose gRPC address is grpcAddr: the same
// host, the port HTTPPortOffset above (port 0, the kernel's choice, stays 0).
func HTTPAddr(grpcAddr string) string { return portPlus(grpcAddr, HTTPPortOffset) }

// MetricsPortOffset is what the metrics port of a service of the federation adds to its gRPC
// port: coordination 127.0.0.1:51051, sending 51052, receiving 51053.
const MetricsPortOffset = 1000

// MetricsAddr is the metrics listener of the service whose gRPC address is grpcAddr: the same
// host, the port MetricsPortOffset above (port 0, the kernel's choice, stays 0).
func MetricsAddr(grpcAddr string) string { return portPlus(grpcAddr, MetricsPortOffset) }

// portPlus is addr with offset added to its port (port 0, or one that would pass 65535: 0).
func portPlus(addr string, offset int) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	n, err := strconv.Atoi(port)
	if err != nil || n == 0 || n+offset > 65535 {
		return net.JoinHostPort(host, "0")
	}
	return net.JoinHostPort(host, strconv.Itoa(n+offset))
}

// Defaults returns the configuration of the local federation.
func Defaults(binary string) Config {
	return Config{
		Binary:           binary,
		DataDir:          "data",
		CoordinationAddr: daemon.DefaultCoordinationAddr,
		SendingAddr:      daemon.DefaultSendingAddr,
		ReceivingAddr:    daemon.DefaultReceivingAddr,
		LogLevel:         "info",
		GracePeriod:      72 * time.Hour,
		ReadyTimeout:     60 * time.Second,
		StopTimeout:      15 * time.Second,
		Metrics:          true,
		HTTP:             true,
	}
}

// Services returns the configuration of each service, in start order: the coordination
// node(s), then the sending and the receiving service.
func (c Config) Services() []daemon.Config {
	var svc []daemon.Config
	if !c.replicated() {
		svc = append(svc, daemon.Config{Kind: daemon.Coordination, Listen: c.CoordinationAddr, DataDir: filepath.Join(c.DataDir, "coordination"),
			GracePeriod: c.GracePeriod, LoadDefaultPairings: true})
	} else {
		addrs := c.CoordinationAddrs()
		var routes []string
		for _, a := range addrs {
			routes = append(routes, "nats://"+NATSClusterAddr(a))
		}
		for i, a := range addrs {
			name := fmt.Sprintf("coordination-%d", i)
			svc = append(svc, daemon.Config{Kind: daemon.Coordination, Listen: a, DataDir: filepath.Join(c.DataDir, name),
				GracePeriod: c.GracePeriod, LoadDefaultPairings: true, LedgerKey: c.LedgerKeyFile(),
				Replication: daemon.ReplicationNATS, ReplicaName: name, NATSListen: NATSAddr(a), NATSCluster: NATSClusterAddr(a),
				NATSRoutes: routes, NATSReplicas: c.Replicas})
		}
	}
	svc = append(svc,
		daemon.Config{Kind: daemon.Sending, Listen: c.SendingAddr, DataDir: filepath.Join(c.DataDir, "sending-"+SendingRegion),
			Region: SendingRegion, Coordination: c.CoordinationTarget()},
		daemon.Config{Kind: daemon.Receiving, Listen: c.ReceivingAddr, DataDir: filepath.Join(c.DataDir, "receiving-"+ReceivingRegion),
			Region: ReceivingRegion, Coordination: c.CoordinationTarget()},
	)
	for i := range svc {
		svc[i].LogLevel = c.LogLevel
		if c.Metrics {
			svc[i].MetricsAddr = MetricsAddr(svc[i].Listen)
		}
		if c.HTTP {
			svc[i].HTTPAddr = HTTPAddr(svc[i].Listen)
		}
		if c.TLS != nil {
			svc[i].TLS = c.TLS(svc[i].Kind)
		}
	}
	return svc
}

// WithTLS returns c running with mTLS from the certificate folder dir: it makes the local
// federation's CA and certificates there unless they exist (see `labourlink certs init`), and
// gives each service its own certificate.
func WithTLS(c Config, dir string) (Config, error) {
	if _, err := identity.Init(dir, identity.LocalFederation()); err != nil {
		return c, fmt.Errorf("certificates in %s: %w", dir, err)
	}
	c.TLS = CertsIn(dir)
	return c, nil
}

// CertsIn gives each service of the local federation its certificate in folder dir.
func CertsIn(dir string) func(k daemon.Kind) daemon.TLSConfig {
	return func(k daemon.Kind) daemon.TLSConfig {
		id := identity.Coordination()
		switch k {
		case daemon.Sending:
			id = identity.Sending(SendingRegion)
		case daemon.Receiving:
			id = identity.Receiving(ReceivingRegion)
		}
		cert, key := identity.Paths(dir, id)
		return daemon.TLSConfig{CAFile: filepath.Join(dir, identity.CAFile), CertFile: cert, KeyFile: key}
	}
}

// process is one running service.
type process struct {
	cfg  daemon.Config
	cmd  *exec.Cmd
	log  string
	from int64         // size of the log file when the process started: its own lines follow
	done chan struct{} // closed when the process has exited; err is then set
	err  error
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Run starts the three services, waits until each is ready (it reported, through its ready
// file, that it holds its listener and serves, and a health check at that address answers
// SERVING with the instance id of its data file), calls ready, and then waits until ctx ends or
// a service exits; it then stops the services (SIGTERM, the receiving and sending services
// first, then coordination) and returns. A service that exits on its own is an error quoting its
// last log line and naming its log file; one that exits before it is ready (its port taken by
// another program, its data file held by another federation) fails Run at once.
func Run(ctx context.Context, c Config, ready func(c Config), out io.Writer) error {
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return err
	}
	if c.replicated() {
		if c.Replicas != 3 && c.Replicas != 5 {
			return fmt.Errorf("a replicated coordination has 3 or 5 nodes, not %d", c.Replicas)
		}
		// Every node signs the ledger's checkpoints with the same key.
		if _, err := ledger.LoadOrCreateKey(c.LedgerKeyFile()); err != nil {
			return err
		}
	}
	var procs []*process
	defer func() { stopAll(procs, c.StopTimeout, out) }()
	// The nodes of one service start together (a replicated coordination is ready once a
	// majority of its nodes is up), and the next service once they are all ready.
	for _, group := range byKind(c.Services()) {
		var started []*process
		for _, sc := range group {
			p, err := start(c, sc)
			if err != nil {
				return err
			}
			procs = append(procs, p)
			started = append(started, p)
		}
		for _, p := range started {
			if err := waitReady(ctx, p, c.ReadyTimeout); err != nil {
				return err
			}
		}
	}
	if ready != nil {
		ready(c)
	}
	exited := make(chan *process, len(procs))
	for _, p := range procs {
		go func(p *process) {
			<-p.done
			exited <- p
		}(p)
	}
	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "stopping the federation...")
		return nil
	case p := <-exited:
		return fmt.Errorf("the %s service exited unexpectedly (%v)%s; see %s", ProcessName(p.cfg), p.err, quoteLog(p), p.log)
	}
}

// byKind splits services into runs of one kind, in order.
func byKind(svcs []daemon.Config) [][]daemon.Config {
	var groups [][]daemon.Config
	for i, sc := range svcs {
		if i == 0 || svcs[i-1].Kind != sc.Kind {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], sc)
	}
	return groups
}

// readyFile is where the process named name reports that it serves.
func readyFile(c Config, name string) string {
	return filepath.Join(c.DataDir, name+".ready")
}

func start(c Config, sc daemon.Config) (*process, error) {
	logPath := filepath.Join(c.DataDir, ProcessName(sc)+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	var from int64
	if fi, err := logFile.Stat(); err == nil {
		from = fi.Size()
	}
	// A ready file left by a service that was killed must not be taken for the new one's.
	sc.ReadyFile = readyFile(c, ProcessName(sc))
	if err := os.Remove(sc.ReadyFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		logFile.Close()
		return nil, err
	}
	args := append([]string{"serve", string(sc.Kind)}, sc.Args()...)
	cmd := exec.Command(c.Binary, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start the %s service: %w", sc.Kind, err)
	}
	p := &process{cfg: sc, cmd: cmd, log: logPath, from: from, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// waitReady waits until the service is ready (readiness.Wait). With TLS it asks with the
// service's own certificate (health is open to every party of the federation).
func waitReady(ctx context.Context, p *process, timeout time.Duration) error {
	var o peers.Options
	if t := p.cfg.TLS; t.Enabled() {
		cfg, err := identity.ClientTLS(t.CAFile, t.CertFile, t.KeyFile)
		if err != nil {
			return fmt.Errorf("the %s service's certificate: %w", p.cfg.Kind, err)
		}
		o.Creds = credentials.NewTLS(cfg)
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := readiness.Wait(wctx, p.cfg.ReadyFile, p.cmd.Process.Pid, p.done, o)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, readiness.ErrExited):
		<-p.done
		hint := ""
		if l := lastLogLine(p); strings.Contains(l, "address already in use") {
			addr := p.cfg.Listen
			if strings.Contains(l, "-metrics-addr") {
				addr = p.cfg.MetricsAddr + fmt.Sprintf(" (its metrics port: the gRPC port + %d)", MetricsPortOffset)
			}
			if strings.Contains(l, "-http-addr") {
				addr = p.cfg.HTTPAddr + fmt.Sprintf(" (its HTTP/JSON port: the gRPC port + %d)", HTTPPortOffset)
			}
			hint = fmt.Sprintf("; another program (another 'labourlink dev'?) holds %s: stop it or choose other addresses", addr)
		} else if strings.Contains(l, "in use by another process") {
			hint = fmt.Sprintf("; another federation uses the data folder %s: stop it or choose another -data", p.cfg.DataDir)
		}
		return fmt.Errorf("the %s service did not start (%v)%s%s; see %s", ProcessName(p.cfg), p.err, quoteLog(p), hint, p.log)
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("the %s service was not ready on %s within %s (%v); see %s", ProcessName(p.cfg), p.cfg.Listen, timeout, err, p.log)
	default:
		return fmt.Errorf("the %s service: %w; see %s", ProcessName(p.cfg), err, p.log)
	}
}

// quoteLog is ": \"LAST LOG LINE\"" of the process, or "" if it wrote nothing.
func quoteLog(p *process) string {
	if l := lastLogLine(p); l != "" {
		return fmt.Sprintf(": %q", l)
	}
	return ""
}

// lastLogLine returns the last line the process wrote to its log: the error it exited with, as
// `labourlink serve` prints it (JSON log lines are shortened to their message and error).
func lastLogLine(p *process) string {
	f, err := os.Open(p.log)
	if err != nil {
		return ""
	}
	defer f.Close()
	const tail = 16 << 10
	from := p.from
	if fi, err := f.Stat(); err == nil && fi.Size()-from > tail {
		from = fi.Size() - tail
	}
	b, err := io.ReadAll(io.NewSectionReader(f, from, tail))
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	l := strings.TrimSpace(lines[len(lines)-1])
	var entry struct {
		Msg   string `json:"msg"`
		Error string `json:"error"`
	}
	if strings.HasPrefix(l, "{") && json.Unmarshal([]byte(l), &entry) == nil && entry.Msg != "" {
		l = entry.Msg
		if entry.Error != "" {
			l += ": " + entry.Error
		}
	}
	const most = 300
	if len(l) > most {
		l = l[:most] + "..."
	}
	return l
}

// stopAll stops the services in reverse start order, the nodes of one service together:
// SIGTERM, then SIGKILL after timeout.
func stopAll(procs []*process, timeout time.Duration, out io.Writer) {
	for end := len(procs); end > 0; {
		begin := end - 1
		for begin > 0 && procs[begin-1].cfg.Kind == procs[end-1].cfg.Kind {
			begin--
		}
		var group []*process
		for _, p := range procs[begin:end] {
			if !p.exited() {
				_ = p.cmd.Process.Signal(syscall.SIGTERM)
				group = append(group, p)
			}
		}
		deadline := time.After(timeout)
		for _, p := range group {
			select {
			case <-p.done:
				var ee *exec.ExitError
				if p.err != nil && !errors.As(p.err, &ee) {
					fmt.Fprintf(out, "%s: %v\n", ProcessName(p.cfg), p.err)
				}
				fmt.Fprintf(out, "stopped %s\n", ProcessName(p.cfg))
			case <-deadline:
				_ = p.cmd.Process.Kill()
				<-p.done
				fmt.Fprintf(out, "killed %s after %s (see %s)\n", ProcessName(p.cfg), timeout, p.log)
			}
		}
		end = begin
	}
}

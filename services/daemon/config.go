package daemon

import (
	"golang.org/x/text/language"

	"flag"
	"fmt"
	"github.com/eastwest/labourlink/services/platform/i18n"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/coordination/eligibility"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/platform/grpcserver"
	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/platform/version"
)

// Kind names one of the three services.
type Kind string

// The three services.
const (
	Coordination Kind = "coordination"
	Sending      Kind = "sending"
	Receiving    Kind = "receiving"
)

// The coordination service's replication modes (-replication).
const (
	ReplicationNone = "none"
	ReplicationNATS = "nats"
)

// Kinds lists the services in start order.
var Kinds = []Kind{Coordination, Sending, Receiving}

// The fixed loopback ports of the local federation; they are also each binary's default.
const (
	DefaultCoordinationAddr = "127.0.0.1:50051"
	DefaultSendingAddr      = "127.0.0.1:50052"
	DefaultReceivingAddr    = "127.0.0.1:50053"
)

// DefaultAddr is the default listen address of a kind.
func DefaultAddr(k Kind) string {
	switch k {
	case Sending:
		return DefaultSendingAddr
	case Receiving:
		return DefaultReceivingAddr
	default:
		return DefaultCoordinationAddr
	}
}

// Config is everything a service process is started with.
type Config struct {
	Kind Kind
	// Listen is the gRPC listen address.
	Listen string
	// Advertise is the endpoint registered with the coordination service (default Listen).
	Advertise string
	// DataDir holds the service's bbolt file.
	DataDir string
	// Region is the province code (sending and receiving only).
	Region string
	// Coordination is the coordination service's address (sending and receiving only).
	Coordination string
	// Receiving maps receiving province codes to endpoints (sending only; overrides the registry).
	Receiving map[string]string
	// GracePeriod before a missing arrival is unaccounted (coordination only).
	GracePeriod time.Duration
	// LedgerKey is the file of the key that signs the ledger's checkpoints (coordination only;
	// empty: ledger.key in the data directory, created when absent).
	LedgerKey string
	// SeatsBus, SeatsTrain and SeatsFlight are the default seats per vehicle for batch planning
	// (sending only).
	SeatsBus, SeatsTrain, SeatsFlight int
	// FeedRetention is how many changes each feed keeps (receiving only).
	FeedRetention int
	// LedgerPublicKey pins the key of the ledger's checkpoints (sending and receiving; empty: the
	// key the coordination service gives first, kept in the data file).
	LedgerPublicKey string
	// LedgerCheckInterval is how often the ledger's checkpoint and some acknowledged events are
	// checked (sending and receiving).
	LedgerCheckInterval time.Duration
	// LedgerCheckEvents is how many acknowledged events one scheduled check verifies (sending and
	// receiving).
	LedgerCheckEvents int
	// LoadDefaultPairings adds the default pairings when the registry has none (coordination).
	LoadDefaultPairings bool
	// Replication is the coordination service's mode: ReplicationNone (one process, one file)
	// or ReplicationNATS (a node of a replicated coordination, docs/replication.md).
	Replication string
	// ReplicaName is this node's name among the coordination nodes (ReplicationNATS): unique,
	// kept across restarts and replacements of the node.
	ReplicaName string
	// NATSListen is the client listener of this node's embedded NATS server, NATSCluster its
	// route listener (empty: a single node), NATSRoutes the route URLs of all the nodes
	// (nats://host:port), NATSReplicas the replicas of the command stream (ReplicationNATS).
	NATSListen, NATSCluster string
	NATSRoutes              []string
	NATSReplicas            int
	// SubsidyRules is the rules file EligibilityService evaluates (coordination only; empty: the
	// project's rules embedded in the binary, services/coordination/eligibility/rules/default.json).
	// It is validated when the flags are read and again when the service starts.
	SubsidyRules string
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// ShutdownTimeout bounds the graceful stop.
	ShutdownTimeout time.Duration
	// RequestIDRetention is how long the first response to a request id is kept for repeats;
	// 0 keeps them for ever.
	RequestIDRetention time.Duration
	// TLS holds the certificate settings; empty runs plaintext.
	TLS TLSConfig
	// HealthListen, when set, serves the health service alone in plaintext on this address
	// (for Kubernetes gRPC probes, which cannot present a client certificate).
	HealthListen string
	// MetricsAddr, when set, serves the Prometheus metrics over HTTP on this address, at
	// /metrics (empty: off).
	MetricsAddr string
	// HTTPAddr, when set, serves every gRPC method as JSON over HTTP (Connect protocol) on
	// this address, with the TLS, authorisation and validation of the gRPC port, and the
	// service's dashboard at DashboardPath when it has one (empty: off).
	HTTPAddr string
	// CallDeadline and CallDeadlinePerItem are the deadline of a call to another service: the
	// base, plus the allowance per item the call carries or asks for (peers.Deadlines).
	// Sending and receiving only.
	CallDeadline, CallDeadlinePerItem time.Duration
	// ReadyFile, when set, is written once the service serves (services/platform/readiness), for
	// the process that started it.
	ReadyFile string
	// MaxStreams, MaxUnaryCalls and MaxConnections bound what the gRPC server holds at once;
	// StreamFirstMessageTimeout and StreamIdleTimeout end streams whose client stops sending
	// (grpcserver.Config; 0 takes grpcserver's default).
	MaxStreams, MaxUnaryCalls, MaxConnections    int
	StreamFirstMessageTimeout, StreamIdleTimeout time.Duration
}

// Deadlines are the deadlines of calls to other services of c (zero fields: the defaults).
func (c Config) Deadlines() peers.Deadlines {
	return peers.Deadlines{Base: c.CallDeadline, PerItem: c.CallDeadlinePerItem}
}

// TLSConfig names the files of a service's identity in the federation (mTLS).
type TLSConfig struct {
	// CAFile is the federation CA certificate (PEM).
	CAFile string
	// CertFile is this service's certificate (PEM).
	CertFile string
	// KeyFile is this service's private key (PEM).
	KeyFile string
}

// Enabled reports whether TLS is configured.
func (t TLSConfig) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" || t.CAFile != "" }

// withLimits returns gc with the server limits of c.
func (c Config) withLimits(gc grpcserver.Config) grpcserver.Config {
	gc.MaxStreams, gc.MaxUnaryCalls, gc.MaxConnections = c.MaxStreams, c.MaxUnaryCalls, c.MaxConnections
	gc.StreamFirstMessageTimeout, gc.StreamIdleTimeout = c.StreamFirstMessageTimeout, c.StreamIdleTimeout
	return gc
}

// DataFile is the path of the service's bbolt file.
func (c Config) DataFile() string {
	return filepath.Join(c.DataDir, string(c.Kind)+".db")
}

// envName is the environment variable that sets a flag.
func envName(flagName string) string {
	return "LABOURLINK_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// ParseFlags reads the configuration of a service of kind k from args (without the program
// name) and, for flags not given, from LABOURLINK_* environment variables. It validates what it
// reads; -h prints the help to out and returns flag.ErrHelp, and so does -version after printing
// the build.
func ParseFlags(k Kind, program string, args []string, out io.Writer) (Config, error) {
	return ParseFlagsIn(i18n.FromEnv(os.Getenv), k, program, args, out)
}

// ParseFlagsIn is ParseFlags with the help that -h prints in lang (the flags' usages by the
// catalog, services/platform/i18n).
func ParseFlagsIn(lang language.Tag, k Kind, program string, args []string, out io.Writer) (Config, error) {
	c := Config{Kind: k}
	fs := flag.NewFlagSet(program, flag.ContinueOnError)
	fs.SetOutput(out)
	showVersion := fs.Bool("version", false, "print the build (version, commit, Go) and exit")
	fs.StringVar(&c.Listen, "listen", DefaultAddr(k), "gRPC listen address `host:port`")
	fs.StringVar(&c.Advertise, "advertise", "", "endpoint other services use to reach this one (default: the listen address)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "how long a graceful stop may take before open calls are cut")
	fs.DurationVar(&c.RequestIDRetention, "request-id-retention", 30*24*time.Hour, "how long a repeated request id returns the first response (older ones are pruned hourly; 0: never prune)")
	fs.StringVar(&c.TLS.CAFile, "tls-ca", "", "federation CA certificate (PEM); with -tls-cert and -tls-key enables mTLS")
	fs.StringVar(&c.TLS.CertFile, "tls-cert", "", "this service's certificate (PEM)")
	fs.StringVar(&c.TLS.KeyFile, "tls-key", "", "this service's private key (PEM)")
	fs.StringVar(&c.ReadyFile, "ready-file", "", "write this `file` (JSON: pid, listen address, data file instance id) once serving, for the process that started the service")
	fs.StringVar(&c.HealthListen, "health-listen", "", "also serve gRPC health checks alone, in plaintext, on this `host:port` (Kubernetes probes; empty: off)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics over HTTP at /metrics on this `host:port` (e.g. :9090; empty: off)")
	fs.StringVar(&c.HTTPAddr, "http-addr", "", "also serve every method as JSON over HTTP (Connect protocol; docs/http.md) on this `host:port`, with the same TLS and authorisation as the gRPC port (empty: off)")
	fs.IntVar(&c.MaxStreams, "max-streams", grpcserver.DefaultMaxStreams, "streaming calls (imports, feed watches) the server holds at once, over all connections; more are refused with RESOURCE_EXHAUSTED")
	fs.IntVar(&c.MaxUnaryCalls, "max-unary-calls", grpcserver.DefaultMaxUnaryCalls, "unary calls the server handles at once (health checks not counted); more are refused with RESOURCE_EXHAUSTED")
	fs.IntVar(&c.MaxConnections, "max-connections", grpcserver.DefaultMaxConnections, "client connections the server keeps open at once; more are closed as soon as they are accepted")
	fs.DurationVar(&c.StreamFirstMessageTimeout, "stream-first-message-timeout", grpcserver.DefaultStreamFirstMessageTimeout, "a stream whose first message does not arrive within this ends with DEADLINE_EXCEEDED")
	fs.DurationVar(&c.StreamIdleTimeout, "stream-idle-timeout", grpcserver.DefaultStreamIdleTimeout, "a stream that sends no further message for this long ends with DEADLINE_EXCEEDED")
	var receiving, natsRoutes string
	switch k {
	case Sending, Receiving:
		fs.StringVar(&c.Region, "region", "", "GB/T 2260 code of this `province`, e.g. 520000 (Guizhou) or 440000 (Guangdong); required")
		fs.StringVar(&c.Coordination, "coordination", DefaultCoordinationAddr, "address of the coordination service, `host:port`, or of each node of a replicated coordination, host:port,host:port,... (calls go to the nodes that answer; empty: run without it)")
		fs.StringVar(&c.DataDir, "data", "", map[Kind]string{
			Sending:   "directory for the service's bbolt file (default ./data/sending-REGION)",
			Receiving: "directory for the service's bbolt file (default ./data/receiving-REGION)",
		}[k])
		fs.DurationVar(&c.CallDeadline, "call-deadline", peers.DefaultCallBase, "deadline of a call to another service, before the allowance per item: several round trips of the slowest link")
		fs.DurationVar(&c.CallDeadlinePerItem, "call-deadline-per-item", peers.DefaultCallPerItem, "added to a call's deadline for each item it carries or asks for (candidates, events, page size)")
		fs.StringVar(&c.LedgerPublicKey, "ledger-public-key", "", "the coordination service's ledger `key` (note verifier key, as GetLedgerPublicKey gives it) that signs the checkpoints; empty: the key given the first time, kept in the data file")
		fs.DurationVar(&c.LedgerCheckInterval, "ledger-check-interval", ledgerclient.DefaultCheckInterval, "how often the ledger's checkpoint is checked against the one kept, with some of the events it acknowledged")
		fs.IntVar(&c.LedgerCheckEvents, "ledger-check-events", ledgerclient.DefaultLeavesPerCheck, "acknowledged events one scheduled ledger check verifies (the checks cycle through all of them)")
		if k == Sending {
			fs.StringVar(&receiving, "receiving", "", "static endpoints of receiving services, `code=host:port,...` (default: from the coordination registry)")
			fs.IntVar(&c.SeatsBus, "seats-bus", 45, "seats of a bus when planning batches")
			fs.IntVar(&c.SeatsTrain, "seats-train", 118, "seats of a train coach when planning batches")
			fs.IntVar(&c.SeatsFlight, "seats-flight", 180, "seats of a charter flight when planning batches")
		}
		if k == Receiving {
			fs.IntVar(&c.FeedRetention, "feed-retention", 100000, "changes each feed (demand, decisions, each sending province's employment feed) keeps; a consumer further behind must re-list")
		}
	case Coordination:
		fs.StringVar(&c.DataDir, "data", "./data/coordination", "directory for the service's bbolt file")
		fs.DurationVar(&c.GracePeriod, "grace-period", 72*time.Hour, "time after a batch departs before a worker not confirmed arrived is unaccounted")
		fs.StringVar(&c.LedgerKey, "ledger-key", "", "file of the ed25519 key (note format) that signs the ledger's checkpoints; empty: ledger.key in the data directory, created when absent")
		fs.BoolVar(&c.LoadDefaultPairings, "load-default-pairings", true, "add the default east-west pairings (2021) when the registry has none")
		fs.StringVar(&c.SubsidyRules, "subsidy-rules", "", "JSON `file` of the subsidy rules (docs/subsidies.md), checked at start; empty: the project's rules built in")
		fs.StringVar(&c.Replication, "replication", ReplicationNone, "none: one process on one file; nats: a node of a replicated coordination whose writes go through a NATS JetStream log every node applies (docs/replication.md)")
		fs.StringVar(&c.ReplicaName, "replica-name", "", "this node's `name` among the coordination nodes (-replication nats; unique, kept when the node is replaced), e.g. coordination-0")
		fs.StringVar(&c.NATSListen, "nats-listen", "127.0.0.1:4222", "client listener of this node's embedded NATS server, `host:port` (-replication nats)")
		fs.StringVar(&c.NATSCluster, "nats-cluster", "", "route listener of this node's NATS server for the other nodes, `host:port` (-replication nats; empty: a single node)")
		fs.StringVar(&natsRoutes, "nats-routes", "", "route URLs of every coordination node, `nats://host:port,...` (-replication nats; this node's own is ignored)")
		fs.IntVar(&c.NATSReplicas, "nats-replicas", 3, "replicas of the replicated log: each write is acknowledged once a majority of them has it (-replication nats; 1, 3 or 5)")
	}
	fs.Usage = func() {
		fmt.Fprint(out, i18n.Sprintf(lang, "Usage: %s [flags]\n\nRuns the labourlink %s service.\nEvery flag can also be set with an environment variable LABOURLINK_<FLAG> (e.g. %s).\n\nFlags:\n", program, k, envName("listen")))
		fs.VisitAll(func(f *flag.Flag) { f.Usage = i18n.Translate(lang, f.Usage) })
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if *showVersion {
		fmt.Fprintln(out, version.Line(program))
		return Config{}, flag.ErrHelp // nothing to run, as after -h
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || envErr != nil {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", envName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		return Config{}, envErr
	}
	for _, r := range strings.Split(natsRoutes, ",") {
		if r = strings.TrimSpace(r); r != "" {
			c.NATSRoutes = append(c.NATSRoutes, r)
		}
	}
	if receiving != "" {
		m, err := parseEndpoints(receiving)
		if err != nil {
			return Config{}, fmt.Errorf("-receiving: %w", err)
		}
		c.Receiving = m
	}
	if err := c.validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func (c *Config) validate() error {
	t := regions.Default()
	if c.Kind != Coordination {
		if c.Region == "" {
			return fmt.Errorf("-region is required (for example -region 520000 for Guizhou)")
		}
		if !t.IsProvince(c.Region) {
			if err := t.CheckCode(c.Region); err != nil {
				return fmt.Errorf("-region: %w", err)
			}
			return fmt.Errorf("-region: %s (%s) is not a province: use the 6-digit province code such as %s0000", c.Region, t.Name(c.Region), c.Region[:2])
		}
		if c.DataDir == "" {
			c.DataDir = filepath.Join("data", string(c.Kind)+"-"+c.Region)
		}
	}
	for code := range c.Receiving {
		if !t.IsProvince(code) {
			return fmt.Errorf("-receiving: %s is not a province code", code)
		}
	}
	for name, n := range map[string]int{"-seats-bus": c.SeatsBus, "-seats-train": c.SeatsTrain, "-seats-flight": c.SeatsFlight} {
		if c.Kind == Sending && (n < 1 || n > 1000) {
			return fmt.Errorf("%s must be between 1 and 1000, not %d", name, n)
		}
	}
	if c.Kind == Receiving && c.FeedRetention < 1000 {
		return fmt.Errorf("-feed-retention must be at least 1000, not %d", c.FeedRetention)
	}
	if (c.Kind == Sending || c.Kind == Receiving) && (c.LedgerCheckInterval < time.Second || c.LedgerCheckEvents < 1 || c.LedgerCheckEvents > 1000) {
		return fmt.Errorf("-ledger-check-interval must be at least 1s and -ledger-check-events between 1 and 1000, not %s and %d", c.LedgerCheckInterval, c.LedgerCheckEvents)
	}
	if c.CallDeadline < 0 || c.CallDeadlinePerItem < 0 {
		return fmt.Errorf("-call-deadline and -call-deadline-per-item must not be negative")
	}
	if c.Advertise == "" {
		c.Advertise = c.Listen
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("-log-level must be debug, info, warn or error, not %q", c.LogLevel)
	}
	for _, lim := range []struct {
		name string
		n    int
	}{{"-max-streams", c.MaxStreams}, {"-max-unary-calls", c.MaxUnaryCalls}, {"-max-connections", c.MaxConnections}} {
		if lim.n < 1 {
			return fmt.Errorf("%s must be at least 1, not %d", lim.name, lim.n)
		}
	}
	for name, d := range map[string]time.Duration{"-stream-first-message-timeout": c.StreamFirstMessageTimeout, "-stream-idle-timeout": c.StreamIdleTimeout} {
		if d <= 0 {
			return fmt.Errorf("%s must be above 0, not %s", name, d)
		}
	}
	if c.TLS.Enabled() && (c.TLS.CAFile == "" || c.TLS.CertFile == "" || c.TLS.KeyFile == "") {
		return fmt.Errorf("TLS needs all of -tls-ca, -tls-cert and -tls-key")
	}
	if c.Kind == Coordination {
		if err := c.validateReplication(); err != nil {
			return err
		}
	}
	if c.Kind == Coordination && c.SubsidyRules != "" {
		if _, err := eligibility.Load(c.SubsidyRules); err != nil {
			return fmt.Errorf("-subsidy-rules: %w", err)
		}
	}
	return nil
}

// validateReplication checks the flags of the replicated mode.
func (c *Config) validateReplication() error {
	switch c.Replication {
	case ReplicationNone:
		return nil
	case ReplicationNATS:
	default:
		return fmt.Errorf("-replication must be %s or %s, not %q", ReplicationNone, ReplicationNATS, c.Replication)
	}
	switch {
	case c.ReplicaName == "":
		return fmt.Errorf("-replication nats needs -replica-name (unique among the nodes, e.g. coordination-0)")
	case c.LedgerKey == "":
		return fmt.Errorf("-replication nats needs -ledger-key: every node signs the ledger's checkpoints with the same key, so give each the same key file")
	case c.NATSReplicas != 1 && c.NATSReplicas != 3 && c.NATSReplicas != 5:
		return fmt.Errorf("-nats-replicas must be 1, 3 or 5, not %d", c.NATSReplicas)
	case c.NATSReplicas > 1 && (c.NATSCluster == "" || len(c.NATSRoutes) < c.NATSReplicas):
		return fmt.Errorf("-nats-replicas %d needs -nats-cluster and -nats-routes naming at least %d nodes", c.NATSReplicas, c.NATSReplicas)
	}
	for _, r := range c.NATSRoutes {
		if !strings.HasPrefix(r, "nats://") {
			return fmt.Errorf("-nats-routes: %q is not nats://host:port", r)
		}
	}
	if c.RequestIDRetention > 0 {
		// Each node pruning by its own clock would make the files differ.
		c.RequestIDRetention = 0
	}
	return nil
}

func parseEndpoints(s string) (map[string]string, error) {
	m := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		code, addr, ok := strings.Cut(part, "=")
		if !ok || code == "" || addr == "" {
			return nil, fmt.Errorf("%q is not code=host:port", part)
		}
		m[code] = addr
	}
	return m, nil
}

// Args renders c back into flags (used by the federation to start child processes).
func (c Config) Args() []string {
	args := []string{"-listen", c.Listen, "-data", c.DataDir, "-log-level", c.LogLevel}
	if c.Advertise != "" && c.Advertise != c.Listen {
		args = append(args, "-advertise", c.Advertise)
	}
	if c.TLS.Enabled() {
		args = append(args, "-tls-ca", c.TLS.CAFile, "-tls-cert", c.TLS.CertFile, "-tls-key", c.TLS.KeyFile)
	}
	if c.HealthListen != "" {
		args = append(args, "-health-listen", c.HealthListen)
	}
	if c.MetricsAddr != "" {
		args = append(args, "-metrics-addr", c.MetricsAddr)
	}
	if c.HTTPAddr != "" {
		args = append(args, "-http-addr", c.HTTPAddr)
	}
	if c.ReadyFile != "" {
		args = append(args, "-ready-file", c.ReadyFile)
	}
	switch c.Kind {
	case Sending, Receiving:
		args = append(args, "-region", c.Region, "-coordination", c.Coordination,
			"-call-deadline", c.CallDeadline.String(), "-call-deadline-per-item", c.CallDeadlinePerItem.String())
		if c.LedgerPublicKey != "" {
			args = append(args, "-ledger-public-key", c.LedgerPublicKey)
		}
		if c.LedgerCheckInterval > 0 {
			args = append(args, "-ledger-check-interval", c.LedgerCheckInterval.String())
		}
		if c.LedgerCheckEvents > 0 {
			args = append(args, "-ledger-check-events", fmt.Sprint(c.LedgerCheckEvents))
		}
		if len(c.Receiving) > 0 {
			codes := make([]string, 0, len(c.Receiving))
			for code := range c.Receiving {
				codes = append(codes, code)
			}
			sort.Strings(codes)
			parts := make([]string, len(codes))
			for i, code := range codes {
				parts[i] = code + "=" + c.Receiving[code]
			}
			args = append(args, "-receiving", strings.Join(parts, ","))
		}
	case Coordination:
		args = append(args, "-grace-period", c.GracePeriod.String(), fmt.Sprintf("-load-default-pairings=%t", c.LoadDefaultPairings))
		if c.SubsidyRules != "" {
			args = append(args, "-subsidy-rules", c.SubsidyRules)
		}
		if c.LedgerKey != "" {
			args = append(args, "-ledger-key", c.LedgerKey)
		}
		if c.Replication == ReplicationNATS {
			args = append(args, "-replication", c.Replication, "-replica-name", c.ReplicaName, "-nats-listen", c.NATSListen,
				"-nats-replicas", fmt.Sprint(c.NATSReplicas))
			if c.NATSCluster != "" {
				args = append(args, "-nats-cluster", c.NATSCluster, "-nats-routes", strings.Join(c.NATSRoutes, ","))
			}
		}
	}
	return args
}

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/daemon"
	"github.com/eastwest/labourlink/services/devtools/federation"
	"github.com/eastwest/labourlink/services/platform/identity"
)

func init() {
	register(&command{
		name:    "dev",
		summary: "start the local federation: coordination, Guizhou (sending) and Guangdong (receiving), paired",
		run:     runDev,
	})
}

func runDev(ctx context.Context, env *cliEnv, args []string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	c := federation.Defaults(self)
	fs := newFlagSet("labourlink dev")
	fs.SetOutput(env.stderr)
	fs.StringVar(&c.DataDir, "data", c.DataDir, "folder for the services' data and log files (reused on restart)")
	fs.StringVar(&c.CoordinationAddr, "coordination-addr", c.CoordinationAddr, "listen address of the coordination service")
	fs.StringVar(&c.SendingAddr, "sending-addr", c.SendingAddr, "listen address of the sending service (Guizhou)")
	fs.StringVar(&c.ReceivingAddr, "receiving-addr", c.ReceivingAddr, "listen address of the receiving service (Guangdong)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level of the services")
	fs.DurationVar(&c.GracePeriod, "grace-period", c.GracePeriod, "time after a batch departs before a worker not confirmed arrived is unaccounted (short values help when trying the scenario)")
	fs.BoolVar(&c.Metrics, "metrics", c.Metrics, fmt.Sprintf("serve each service's Prometheus metrics at http://HOST:PORT/metrics, PORT its gRPC port + %d", federation.MetricsPortOffset))
	fs.BoolVar(&c.HTTP, "http", c.HTTP, fmt.Sprintf("serve each service's methods as JSON over HTTP (docs/http.md) at HOST:PORT, PORT its gRPC port + %d", federation.HTTPPortOffset))
	fs.IntVar(&c.Replicas, "replicas", 1, fmt.Sprintf("coordination nodes: 1 runs one process; 3 or 5 a replicated coordination (docs/replication.md), node i on the coordination port + %d*i, its NATS node on that port + %d and + %d", federation.ReplicaPortStep, federation.NATSPortOffset, federation.NATSClusterPortOffset))
	useTLS := fs.Bool("tls", false, "run with mTLS and authorisation, with the certificates in -certs (made there by 'labourlink certs init' if missing)")
	certsDir := fs.String("certs", "", "certificate folder for -tls (default DATA/certs)")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, tr("Usage: labourlink dev [flags]\n\nStarts the local federation on loopback and runs until Ctrl-C. Each service is its own\nprocess; its log is DATA/KIND.log.\n\nFlags:"))
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *certsDir == "" {
		*certsDir = filepath.Join(c.DataDir, "certs")
	}
	if *useTLS {
		if c, err = federation.WithTLS(c, *certsDir); err != nil {
			return err
		}
	} else {
		*certsDir = ""
	}
	fmt.Fprint(env.stdout, tr("starting the labourlink federation (data in %s)...\n", c.DataDir))
	return federation.Run(ctx, c, func(c federation.Config) { printWelcome(env, c, *certsDir) }, env.stdout)
}

// grpcurlAuth is the grpcurl transport flags of party: -plaintext without TLS, else its CA,
// certificate and key in certsDir.
func grpcurlAuth(certsDir string, party identity.Identity) string {
	if certsDir == "" {
		return "-plaintext"
	}
	cert, key := identity.Paths(certsDir, party)
	return fmt.Sprintf("-cacert %s -cert %s -key %s", filepath.Join(certsDir, identity.CAFile), cert, key)
}

func printWelcome(env *cliEnv, c federation.Config, certsDir string) {
	t := regions.Default()
	w := env.stdout
	abs, _ := filepath.Abs(c.DataDir)
	fmt.Fprint(w, tr("\nlabourlink federation is up (data and logs in %s)\n\n", abs))
	metricsURL := func(addr string) string {
		if !c.Metrics {
			return tr("off")
		}
		return "http://" + federation.MetricsAddr(addr) + daemon.MetricsPath
	}
	httpURL := func(addr string) string {
		if !c.HTTP {
			return tr("off")
		}
		if certsDir != "" {
			return "https://" + federation.HTTPAddr(addr)
		}
		return "http://" + federation.HTTPAddr(addr)
	}
	tb := newTable("service", "region", "address", "http/json", "metrics", "log")
	for _, sc := range c.Services() {
		if sc.Kind != daemon.Coordination {
			continue
		}
		name := federation.ProcessName(sc)
		tb.add(false, name, "nation", sc.Listen, httpURL(sc.Listen), metricsURL(sc.Listen), filepath.Join(c.DataDir, name+".log"))
	}
	tb.add(false, "sending", federation.SendingRegion+" "+t.Name(federation.SendingRegion), c.SendingAddr, httpURL(c.SendingAddr), metricsURL(c.SendingAddr), filepath.Join(c.DataDir, "sending.log"))
	tb.add(false, "receiving", federation.ReceivingRegion+" "+t.Name(federation.ReceivingRegion), c.ReceivingAddr, httpURL(c.ReceivingAddr), metricsURL(c.ReceivingAddr), filepath.Join(c.DataDir, "receiving.log"))
	tb.render(w, false)
	grpcurl := "go run github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4"
	sys520 := grpcurlAuth(certsDir, identity.System(federation.SendingRegion))
	sys440 := grpcurlAuth(certsDir, identity.System(federation.ReceivingRegion))
	national := grpcurlAuth(certsDir, identity.Operator("", false))
	if c.Replicas > 1 {
		fmt.Fprint(w, tr("\nThe coordination is replicated on %d nodes (NATS JetStream, docs/replication.md): a write is\nacknowledged once a majority holds it, and any node answers. The provinces are given them all:\n  -coordination %s\n",
			c.Replicas, c.CoordinationTarget()))
	}
	if certsDir != "" {
		fmt.Fprint(w, tr("\nmTLS is on: every caller needs a certificate from %s (the CA is %s).\n",
			certsDir, filepath.Join(certsDir, identity.CAFile)))
	}
	fmt.Fprint(w, tr("\nTry (grpcurl; `go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4` once, then drop the `go run`):\n"))
	fmt.Fprintf(w, "  %s %s %s list\n", grpcurl, sys520, c.SendingAddr)
	fmt.Fprintf(w, "  %s %s %s describe labourlink.sending.v1.RosterService\n", grpcurl, sys520, c.SendingAddr)
	fmt.Fprintf(w, "  %s %s %s grpc.health.v1.Health/Check\n", grpcurl, sys440, c.ReceivingAddr)
	fmt.Fprintf(w, "  %s %s -d '{\"region\":\"%s\"}' %s labourlink.coordination.v1.RegistryService/ListPairings\n", grpcurl, national, federation.SendingRegion, c.CoordinationAddr)
	fmt.Fprintf(w, "  %s %s -d '{\"page_size\":5}' %s labourlink.sending.v1.RosterService/ListWorkers\n", grpcurl, sys520, c.SendingAddr)
	if certsDir != "" {
		cert, key := identity.Paths(certsDir, identity.System(federation.SendingRegion))
		fmt.Fprint(w, tr("\nThe CLI as Guizhou's system:\n  export LABOURLINK_TLS_CA=%s LABOURLINK_TLS_CERT=%s LABOURLINK_TLS_KEY=%s\n",
			filepath.Join(certsDir, identity.CAFile), cert, key))
	}
	if c.HTTP {
		fmt.Fprint(w, tr("\nJSON over HTTP (Connect protocol; see docs/http.md):\n  curl -s -H 'Content-Type: application/json' -d '{\"page_size\":5}' %s/labourlink.sending.v1.RosterService/ListWorkers\n", httpURL(c.SendingAddr)))
	}
	if c.Metrics {
		fmt.Fprint(w, tr("\nMetrics (Prometheus text; see docs/operations.md, \"Metrics\"):\n  curl -s %s | grep ^labourlink_\n", metricsURL(c.SendingAddr)))
	}
	fmt.Fprint(w, tr("\nOr the CLI: go run ./cmd/labourlink help\n\nPress Ctrl-C to stop.\n"))
}

package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/eastwest/labourlink/services/federation"
	"github.com/eastwest/labourlink/services/regions"
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
	fs := flag.NewFlagSet("labourlink dev", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.StringVar(&c.DataDir, "data", c.DataDir, "folder for the services' data and log files (reused on restart)")
	fs.StringVar(&c.CoordinationAddr, "coordination-addr", c.CoordinationAddr, "listen address of the coordination service")
	fs.StringVar(&c.SendingAddr, "sending-addr", c.SendingAddr, "listen address of the sending service (Guizhou)")
	fs.StringVar(&c.ReceivingAddr, "receiving-addr", c.ReceivingAddr, "listen address of the receiving service (Guangdong)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level of the services")
	fs.DurationVar(&c.GracePeriod, "grace-period", c.GracePeriod, "time after a batch departs before a worker not confirmed arrived is unaccounted (short values help when trying the scenario)")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "Usage: labourlink dev [flags]\n\nStarts the local federation on loopback and runs until Ctrl-C. Each service is its own\nprocess; its log is DATA/KIND.log.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "starting the labourlink federation (data in %s)...\n", c.DataDir)
	return federation.Run(ctx, c, func(c federation.Config) { printWelcome(env, c) }, env.stdout)
}

func printWelcome(env *cliEnv, c federation.Config) {
	t := regions.Default()
	w := env.stdout
	abs, _ := filepath.Abs(c.DataDir)
	fmt.Fprintf(w, "\nlabourlink federation is up (data and logs in %s)\n\n", abs)
	tb := newTable("service", "region", "address", "log")
	tb.add(false, "coordination", "nation", c.CoordinationAddr, filepath.Join(c.DataDir, "coordination.log"))
	tb.add(false, "sending", federation.SendingRegion+" "+t.Name(federation.SendingRegion), c.SendingAddr, filepath.Join(c.DataDir, "sending.log"))
	tb.add(false, "receiving", federation.ReceivingRegion+" "+t.Name(federation.ReceivingRegion), c.ReceivingAddr, filepath.Join(c.DataDir, "receiving.log"))
	tb.render(w, false)
	grpcurl := "go run github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4 -plaintext"
	fmt.Fprintf(w, "\nTry (grpcurl; `go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4` once, then drop the `go run`):\n")
	fmt.Fprintf(w, "  %s %s list\n", grpcurl, c.SendingAddr)
	fmt.Fprintf(w, "  %s %s describe labour.sending.v1.RosterService\n", grpcurl, c.SendingAddr)
	fmt.Fprintf(w, "  %s %s grpc.health.v1.Health/Check\n", grpcurl, c.ReceivingAddr)
	fmt.Fprintf(w, "  %s -d '{\"region\":\"%s\"}' %s labour.coordination.v1.RegistryService/ListPairings\n", grpcurl, federation.SendingRegion, c.CoordinationAddr)
	fmt.Fprintf(w, "  %s -d '{\"page_size\":5}' %s labour.sending.v1.RosterService/ListWorkers\n", grpcurl, c.SendingAddr)
	fmt.Fprintf(w, "\nOr the CLI: go run ./cmd/labourlink help\n\nPress Ctrl-C to stop.\n")
}

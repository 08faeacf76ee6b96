package main

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/eastwest/labourlink/services/daemon"
	"github.com/eastwest/labourlink/services/platform/readiness"
	"github.com/eastwest/labourlink/services/platform/version"
)

func init() {
	register(&command{name: "version", summary: "print this build; with -service, also the build a running service answers with", run: runVersion})
}

func runVersion(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("labourlink version")
	fs.SetOutput(env.stderr)
	kind := fs.String("service", "", "also ask this running service (sending, receiving or coordination) for its build")
	d := addDialFlags(fs, daemon.Sending)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, version.Line("labourlink"))
	if *kind == "" {
		return nil
	}
	k, err := parseKind(*kind)
	if err != nil {
		return err
	}
	d.defaultTo(fs, k)
	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	var md metadata.MD
	if _, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&md)); err != nil {
		return err
	}
	v, inst := first(md.Get(version.Header)), first(md.Get(readiness.Header))
	if v == "" {
		v = "(not sent: a build older than the version header)"
	}
	fmt.Fprint(env.stdout, tr("%s at %s: %s (data file instance %s)\n", k, d.addr, v, inst))
	return nil
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

package main

import (
	"context"

	"github.com/eastwest/labourlink/services/daemon"
)

func init() {
	for _, k := range daemon.Kinds {
		register(&command{
			name:    "serve " + string(k),
			summary: "run the " + string(k) + " service in the foreground (same as the " + string(k) + " binary)",
			run: func(ctx context.Context, env *cliEnv, args []string) error {
				return daemon.Main(ctx, k, "labourlink serve "+string(k), args, env.stderr)
			},
		})
	}
}

package main

import (
	"context"

	"github.com/eastwest/labourlink/services/daemon"
)

func init() {
	for _, s := range []struct {
		kind    daemon.Kind
		summary string
	}{
		{kind: daemon.Coordination, summary: "run the coordination service in the foreground (same as the coordination binary)"},
		{kind: daemon.Sending, summary: "run the sending service in the foreground (same as the sending binary)"},
		{kind: daemon.Receiving, summary: "run the receiving service in the foreground (same as the receiving binary)"},
	} {
		k := s.kind
		register(&command{
			name:    "serve " + string(k),
			summary: s.summary,
			run: func(ctx context.Context, env *cliEnv, args []string) error {
				return daemon.MainIn(ctx, cliLang, k, "labourlink serve "+string(k), args, env.stderr)
			},
		})
	}
}

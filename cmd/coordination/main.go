// Command coordination runs the labourlink coordination service. Run it with -h for its flags; every flag can also
// be set with a LABOURLINK_<FLAG> environment variable.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/eastwest/labourlink/services/daemon"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := daemon.Main(ctx, daemon.Coordination, "coordination", os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintf(os.Stderr, "coordination: %v\n", err)
		os.Exit(1)
	}
}

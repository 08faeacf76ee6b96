// Command sending runs the labourlink sending service. Run it with -h for its flags; every flag can also
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
	if err := daemon.Main(ctx, daemon.Sending, "sending", os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintf(os.Stderr, "sending: %v\n", err)
		os.Exit(1)
	}
}

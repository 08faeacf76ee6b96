package main

import (
	"context"
	"fmt"

	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/daemon"
	"github.com/eastwest/labourlink/services/devtools/scenario"
)

func init() {
	register(&command{
		name:    "scenario",
		summary: "walk the whole flow through a running federation: roster, vacancy, match, accept, batch, departure, arrivals, onboarding",
		run:     runScenario,
	})
}

func runScenario(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("labourlink scenario")
	fs.SetOutput(env.stderr)
	coord := addDialFlags(fs, daemon.Coordination)
	// The other two services' addresses default as their -addr does (the LABOURLINK_*_ADDR
	// variables, else the local federation's ports).
	var sendingAddr, receivingAddr string
	fs.StringVar(&sendingAddr, "sending-addr", defaultAddr(daemon.Sending), "address of the sending service (env LABOURLINK_SENDING_ADDR)")
	fs.StringVar(&receivingAddr, "receiving-addr", defaultAddr(daemon.Receiving), "address of the receiving service (env LABOURLINK_RECEIVING_ADDR)")
	workers := fs.Int("workers", 6, "workers to place (3 to 45): one will be a no-show and one never confirmed")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, tr("Usage: labourlink scenario [flags]\n\nDrives the point-to-point flow through a running federation (labourlink dev), step by step,\nand ends when the coordination ledger has every event. One worker is reported as a no-show\nand one is never confirmed: after the grace period, `labourlink reconcile show` lists exactly\nthose two discrepancies.\n\nFlags:"))
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	coordConn, err := coord.dial()
	if err != nil {
		return err
	}
	defer coordConn.Close()
	sd, rd := *coord, *coord
	sd.addr, rd.addr = sendingAddr, receivingAddr
	sConn, err := sd.dial()
	if err != nil {
		return err
	}
	defer sConn.Close()
	rConn, err := rd.dial()
	if err != nil {
		return err
	}
	defer rConn.Close()
	step := 0
	res, err := scenario.Run(ctx, scenario.Conns{Coordination: coordConn, Sending: sConn, Receiving: rConn}, scenario.Options{
		Workers: *workers,
		Timeout: coord.timeout, // -timeout: how long to wait for the services at each step
		Step: func(msg string) {
			step++
			fmt.Fprintf(env.stdout, "%2d. %s\n", step, msg)
		},
	})
	if err != nil {
		return err
	}
	fmt.Fprint(env.stdout, tr("\ndone: batch %s carried %d workers; %d onboarded; no-show %s; never confirmed %s; came home %s\n",
		res.BatchID, len(res.Workers), len(res.Onboarded), res.NoShow, res.Missing, res.ReturnedHome))
	fmt.Fprint(env.stdout, tr("\nRead the result (the never-confirmed worker becomes unaccounted once the grace period has passed):\n"))
	fmt.Fprintf(env.stdout, "  go run ./cmd/labourlink reconcile show%s\n", coord.cliFlags())
	fmt.Fprint(env.stdout, tr("  go run ./cmd/labourlink roster get%s %s   # the worker's journey\n", sd.cliFlags(), res.ReturnedHome))
	fmt.Fprintf(env.stdout, "  grpcurl %s -d '{\"sending_region\":\"%s\",\"batch_id\":\"%s\"}' %s labourlink.coordination.v1.ReconciliationService/GetBatchReconciliation\n",
		coord.grpcurlFlags(), regions.IDOwner(res.BatchID), res.BatchID, coord.addr)
	return nil
}

package main

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/types/known/durationpb"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/coordination/registry"
	"github.com/eastwest/labourlink/services/daemon"
)

func init() {
	register(&command{
		name:    "reconcile agreement",
		summary: "set a pairing's programme agreement: the deadlines the ledger keeps (grace period, checkpoint tolerance, incident and abandonment working days)",
		run:     runReconcileAgreement,
	})
}

func runReconcileAgreement(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("labourlink reconcile agreement")
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Coordination)
	grace := fs.Duration("grace-period", 0, "arrival grace period after departure (1m to 720h; 0: the service's -grace-period)")
	tolerance := fs.Int("checkpoint-tolerance-days", 0, "days after the 3- and 6-month checkpoint dates to report them (1 to 90; 0: 15)")
	incident := fs.Int("incident-working-days", 0, "working days after an incident's day to report it (1 to 10; 0: 1)")
	abandon := fs.Int("abandonment-working-days", 0, "consecutive working days of absence that are abandonment (1 to 30; 0: 5)")
	requestID := fs.String("request-id", "", "idempotency key; repeat it to get the same answer back (default: a new one)")
	out := addOutputFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, tr("Usage: labourlink reconcile agreement [flags] RECEIVING-SENDING\n\n"+
			"Sets the programme agreement of a pairing (such as 440000-520000): the deadlines after which the\n"+
			"ledger opens unaccounted, overdue checkpoint, late incident and abandoned discrepancies. A flag\n"+
			"left at 0 takes its default. See docs/coordination.md, \"Deadlines\".\n\nFlags:"))
		fs.PrintDefaults()
	}
	if err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("give one pairing, RECEIVING-SENDING such as 440000-520000")
	}
	a := &coordinationv1.ProgrammeAgreement{
		CheckpointToleranceDays:   int32(*tolerance),
		IncidentReportWorkingDays: int32(*incident),
		AbandonmentWorkingDays:    int32(*abandon),
	}
	if *grace != 0 {
		a.ArrivalGracePeriod = durationpb.New(*grace)
	}
	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	resp, err := coordinationv1.NewRegistryServiceClient(cc).SetPairingAgreement(ctx, &coordinationv1.SetPairingAgreementRequest{
		Name: resourceName("pairings", fs.Arg(0)), Agreement: a, RequestId: *requestID,
	})
	if err != nil {
		return err
	}
	if out.json {
		return writeJSON(env.stdout, resp)
	}
	got := resp.GetPairing().GetAgreement()
	graceText := "the service's -grace-period"
	if g := got.GetArrivalGracePeriod(); g != nil {
		graceText = g.AsDuration().String()
	}
	orDefault := func(n int32, def int) int {
		if n == 0 {
			return def
		}
		return int(n)
	}
	fmt.Fprint(env.stdout, tr("%s: arrival within %s, checkpoints within %d days, incidents within %d working days, abandoned after %d working days absent\n",
		resp.GetPairing().GetName(), graceText, orDefault(got.GetCheckpointToleranceDays(), registry.DefaultCheckpointToleranceDays),
		orDefault(got.GetIncidentReportWorkingDays(), registry.DefaultIncidentWorkingDays), orDefault(got.GetAbandonmentWorkingDays(), registry.DefaultAbandonmentWorkingDays)))
	return nil
}

package main

import (
	"context"
	"fmt"

	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/daemon"
)

func init() {
	register(&command{
		name:    "absence",
		summary: "report to the receiving service that an onboarded worker is absent from work, or back at work",
		run:     runAbsence,
	})
}

func runAbsence(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("labourlink absence")
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Receiving)
	first := fs.String("first-day", "", "first day of absence, YYYY-MM-DD (required)")
	back := fs.String("back-day", "", "day the worker was back at work, YYYY-MM-DD (empty: still absent)")
	record := fs.String("record", "", "the trip, employmentRecords/{worker_id}~{batch_id} (default: the worker's current trip)")
	requestID := fs.String("request-id", "", "idempotency key; repeat it to get the same answer back")
	out := addOutputFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, tr("Usage: labourlink absence [flags] WORKER-ID\n\n"+
			"Records a spell of absence from work of an onboarded worker (-first-day), or the worker back at\n"+
			"work (the same -first-day and -back-day). The ledger opens ABANDONED when a spell reaches the\n"+
			"programme agreement's consecutive working days. See docs/receiving.md, \"Absence\".\n\nFlags:"))
		fs.PrintDefaults()
	}
	if err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("give one worker id")
	}
	if *first == "" {
		return fmt.Errorf("-first-day is required")
	}
	a := &receivingv1.Absence{}
	var err error
	if a.FirstDay, err = civil.Parse(*first); err != nil {
		return fmt.Errorf("-first-day: %w", err)
	}
	if *back != "" {
		if a.BackDay, err = civil.Parse(*back); err != nil {
			return fmt.Errorf("-back-day: %w", err)
		}
	}
	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	resp, err := receivingv1.NewIntakeServiceClient(cc).RecordAbsence(ctx, &receivingv1.RecordAbsenceRequest{
		WorkerId: fs.Arg(0), Absence: a, Record: *record, RequestId: *requestID,
	})
	if err != nil {
		return err
	}
	if out.json {
		return writeJSON(env.stdout, resp)
	}
	r := resp.GetRecord()
	fmt.Fprint(env.stdout, tr("%s: %d spells of absence\n", r.GetName(), len(r.GetAbsences())))
	for _, s := range r.GetAbsences() {
		if s.GetBackDay() != nil {
			fmt.Fprint(env.stdout, tr("  absent from %s, back on %s\n", civil.Format(s.GetFirstDay()), civil.Format(s.GetBackDay())))
		} else {
			fmt.Fprint(env.stdout, tr("  absent from %s, not back\n", civil.Format(s.GetFirstDay())))
		}
	}
	return nil
}

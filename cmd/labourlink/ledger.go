package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	ledgerwatchv1 "github.com/eastwest/labourlink/proto/labourlink/ledgerwatch/v1"
)

func init() {
	register(&command{name: "ledger status", summary: "show what a regional service keeps of the coordination ledger and the events the ledger no longer holds as acknowledged", run: runLedgerStatus})
	register(&command{name: "ledger verify", summary: "check a province's whole history in the coordination ledger now (exit 1 when an acknowledged event was changed or lost)", run: runLedgerVerify})
}

func ledgerClient(o *outboxFlags) (ledgerwatchv1.LedgerWatchServiceClient, func(), error) {
	cc, err := o.d.dial()
	if err != nil {
		return nil, nil, err
	}
	return ledgerwatchv1.NewLedgerWatchServiceClient(cc), func() { _ = cc.Close() }, nil
}

func runLedgerStatus(ctx context.Context, env *cliEnv, args []string) error {
	o := newOutboxFlags(env, "ledger status", "Usage: labourlink ledger status [-service sending|receiving] [flags]\n\n"+
		"Shows what the regional service keeps of the coordination service's ledger: the newest checkpoint\n"+
		"it verified, how many acknowledged events it checks, when it last checked, and every event the\n"+
		"ledger no longer holds as it acknowledged it. Exit 1 when there is one.")
	if err := o.parse(args); err != nil {
		return err
	}
	c, done, err := ledgerClient(o)
	if err != nil {
		return err
	}
	defer done()
	resp, err := c.GetLedgerWatch(ctx, &ledgerwatchv1.GetLedgerWatchRequest{})
	if err != nil {
		return err
	}
	if o.out.json {
		if err := writeJSON(env.stdout, resp); err != nil {
			return err
		}
		return ledgerOutcome(resp.GetWatch(), false)
	}
	printLedgerWatch(env, resp.GetWatch())
	return ledgerOutcome(resp.GetWatch(), true)
}

func runLedgerVerify(ctx context.Context, env *cliEnv, args []string) error {
	o := newOutboxFlags(env, "ledger verify", "Usage: labourlink ledger verify [-service sending|receiving] [flags]\n\n"+
		"Checks the province's whole history in the coordination service's ledger now, through the regional\n"+
		"service (which keeps the leaf of every event the ledger acknowledged): the current checkpoint's\n"+
		"signature and its consistency with the one kept, every leaf of the log against the signed root,\n"+
		"and every acknowledged event against the event the ledger holds. Prints the events that fail\n"+
		"(event id, leaf index, what is wrong); exit 1 when there is one. Progress goes to stderr.")
	if err := o.parse(args); err != nil {
		return err
	}
	c, done, err := ledgerClient(o)
	if err != nil {
		return err
	}
	defer done()
	stream, err := c.VerifyLedger(ctx, &ledgerwatchv1.VerifyLedgerRequest{})
	if err != nil {
		return err
	}
	var bar *progress
	var result *ledgerwatchv1.LedgerWatch
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if bar == nil && m.GetTreeSize() > 0 {
			bar = newProgress(env.stderr, env.interactive, "verify", m.GetTreeSize(), "leaves")
		}
		if bar != nil {
			bar.Set(m.GetLeavesChecked(), "")
		}
		if m.GetResult() != nil {
			result = m.GetResult()
		}
	}
	if bar != nil {
		bar.Finish("")
	}
	if result == nil {
		return fmt.Errorf("the check ended before its result: run it again")
	}
	if o.out.json {
		if err := writeJSON(env.stdout, result); err != nil {
			return err
		}
		return ledgerOutcome(result, false)
	}
	printLedgerWatch(env, result)
	return ledgerOutcome(result, true)
}

// printLedgerWatch prints the state of a ledger watch: a summary, then the failing events.
func printLedgerWatch(env *cliEnv, st *ledgerwatchv1.LedgerWatch) {
	w := env.stdout
	cp := st.GetCheckpoint()
	if cp == nil {
		fmt.Fprint(w, tr("Province %s: no checkpoint kept yet (no event acknowledged since the ledger checks began).\n", st.GetReporterRegion()))
	} else {
		fmt.Fprint(w, tr("Province %s: checkpoint of %d leaves signed %s; %d acknowledged events kept; last check %s.\n",
			st.GetReporterRegion(), cp.GetTreeSize(), fmtTime(cp.GetTime()), st.GetAcknowledgedEvents(), ago(st.GetLastCheckTime(), time.Now())))
	}
	if p := st.GetCheckpointProblem(); p != "" {
		fmt.Fprint(w, tr("The ledger's log fails its check: %s\n", p))
	}
	if st.GetFailureCount() == 0 {
		if st.GetCheckpointProblem() == "" {
			fmt.Fprintln(w, tr("The ledger holds every acknowledged event as it was acknowledged."))
		}
		return
	}
	fmt.Fprintln(w)
	t := newTable("event", "leaf", "problem", "found").alignRight(1)
	for _, f := range st.GetFailures() {
		t.add(true, f.GetEventId(), f.GetLeafIndex(), f.GetProblem(), fmtTime(f.GetDetectTime()))
	}
	t.render(w, env.colour)
	if n := st.GetFailureCount(); n > int64(len(st.GetFailures())) {
		fmt.Fprint(w, tr("... and %d more.\n", n-int64(len(st.GetFailures()))))
	}
	fmt.Fprint(w, tr("\n%d acknowledged event(s) no longer in the ledger as acknowledged. See docs/coordination.md, \"A ledger provinces can verify\".\n", st.GetFailureCount()))
}

// ledgerOutcome is the command's result: exit 1 when the ledger fails its check (the message
// only when the table was not printed).
func ledgerOutcome(st *ledgerwatchv1.LedgerWatch, printed bool) error {
	if st.GetFailureCount() == 0 && st.GetCheckpointProblem() == "" {
		return nil
	}
	msg := ""
	if !printed {
		msg = tr("the ledger fails its check: %d acknowledged event(s) changed or missing", st.GetFailureCount())
		if p := st.GetCheckpointProblem(); p != "" {
			msg += "; " + p
		}
	}
	return exitError{code: exitFailed, msg: msg}
}

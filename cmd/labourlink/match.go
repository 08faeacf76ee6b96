package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	sendingv1 "github.com/eastwest/labourlink/proto/labour/sending/v1"
	"github.com/eastwest/labourlink/services/daemon"
	"github.com/eastwest/labourlink/services/peers"
	"github.com/eastwest/labourlink/services/regions"
)

func init() {
	register(&command{
		name:    "match run",
		summary: "match available workers to the replicated demand, show the progress, then a summary by vacancy",
		run:     runMatchRun,
	})
	register(&command{
		name:    "match follow",
		summary: "show how far the sending service follows the demand and decision feeds of each receiving province",
		run:     runMatchFollow,
	})
}

// newRequestID returns a random request id for a mutation the user did not name.
func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "cli-" + hex.EncodeToString(b[:])
}

func runMatchRun(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("labourlink match run", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Sending)
	dry := fs.Bool("dry-run", false, "compute the result and show it without proposing anyone")
	requestID := fs.String("request-id", "", "idempotency key; repeat it to get the same run back instead of starting another (default: a new one)")
	poll := fs.Duration("poll", 500*time.Millisecond, "how often to read the run's progress")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "Usage: labourlink match run [-dry-run] [flags]\n\nStarts a match run on the sending service: the available workers against the open demand\nreplicated from the paired receiving provinces. Shows the run's progress, then what it\nproposed for each vacancy. Without -dry-run the proposals are committed and the candidates\nsent to the receiving services.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if *requestID == "" {
		*requestID = newRequestID()
	}
	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	client := sendingv1.NewMatchingServiceClient(cc)
	callCtx, cancel := peers.WithTimeout(ctx)
	started, err := client.StartMatchRun(callCtx, &sendingv1.StartMatchRunRequest{RequestId: *requestID, DryRun: *dry})
	cancel()
	if err != nil {
		return err
	}
	name := started.GetMatchRun().GetName()
	fmt.Fprintf(env.stderr, "started %s (request id %s)\n", name, *requestID)
	bar := newProgress(env.stderr, env.interactive, "matching", 100, "%")
	var run *sendingv1.MatchRun
	for {
		callCtx, cancel := peers.WithTimeout(ctx)
		resp, err := client.GetMatchRun(callCtx, &sendingv1.GetMatchRunRequest{Name: name})
		cancel()
		if err != nil {
			return err
		}
		run = resp.GetMatchRun()
		if run.GetState() != sendingv1.MatchRunState_MATCH_RUN_STATE_RUNNING {
			break
		}
		bar.Set(int64(run.GetProgressPercent()), run.GetStage())
		select {
		case <-ctx.Done():
			fmt.Fprintf(env.stderr, "\nstopped watching; the run goes on: grpcurl ... labour.sending.v1.MatchingService/GetMatchRun {\"name\":%q}\n", name)
			return ctx.Err()
		case <-time.After(*poll):
		}
	}
	bar.Set(int64(run.GetProgressPercent()), run.GetStage())
	if env.interactive {
		bar.Finish(run.GetStage()) // ends the line redrawn in place
	}
	if run.GetState() == sendingv1.MatchRunState_MATCH_RUN_STATE_FAILED {
		return errors.New(name + " failed: " + run.GetError())
	}
	printRunSummary(env.stdout, run)
	return nil
}

// printRunSummary writes the result of a finished run: the totals, then a table by vacancy.
func printRunSummary(w io.Writer, run *sendingv1.MatchRun) {
	t := regions.Default()
	pct := func(a, b int64) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f%%", float64(a)*100/float64(b))
	}
	took := ""
	if run.GetCreateTime() != nil && run.GetEndTime() != nil {
		took = " in " + run.GetEndTime().AsTime().Sub(run.GetCreateTime().AsTime()).Round(time.Millisecond).String()
	}
	fmt.Fprintf(w, "\n%s finished%s", run.GetName(), took)
	if run.GetDryRun() {
		fmt.Fprint(w, " (dry run: nobody was proposed)")
	}
	fmt.Fprintf(w, "\n  algorithm:        %s\n", run.GetAlgorithm())
	fmt.Fprintf(w, "  eligible workers: %d\n", run.GetWorkersEligible())
	fmt.Fprintf(w, "  open positions:   %d\n", run.GetOpenings())
	fmt.Fprintf(w, "  proposed:         %d (%s of the open positions)\n", run.GetProposed(), pct(run.GetProposed(), run.GetOpenings()))
	fmt.Fprintf(w, "  registered-poor:  %d (%s of the proposed)\n\n", run.GetProposedRegisteredPoor(), pct(run.GetProposedRegisteredPoor(), run.GetProposed()))
	if len(run.GetVacancies()) == 0 {
		fmt.Fprintln(w, "No vacancy received a proposal.")
		return
	}
	tb := newTable("receiving", "vacancy", "employer", "occupation", "open", "proposed", "poor", "counties").alignRight(4, 5, 6, 7)
	var open, proposed, poor int64
	short := false
	for _, v := range run.GetVacancies() {
		short = short || v.GetProposed() < v.GetOpenings()
		tb.add(v.GetProposed() < v.GetOpenings(),
			v.GetReceivingRegion()+" "+t.Name(v.GetReceivingRegion()), v.GetVacancy(), v.GetEmployerName(), v.GetOccupation(),
			v.GetOpenings(), v.GetProposed(), v.GetProposedRegisteredPoor(), v.GetHomeCounties())
		open += v.GetOpenings()
		proposed += v.GetProposed()
		poor += v.GetProposedRegisteredPoor()
	}
	tb.add(false, "total", fmt.Sprintf("%d vacancies", len(run.GetVacancies())), "", "", open, proposed, poor, "")
	tb.render(w, false)
	if short {
		fmt.Fprintln(w, "\nRows marked ! still have open positions after the run.")
	}
}

func runMatchFollow(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("labourlink match follow", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Sending)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	callCtx, cancel := peers.WithTimeout(ctx)
	defer cancel()
	resp, err := sendingv1.NewMatchingServiceClient(cc).GetFollowStatus(callCtx, &sendingv1.GetFollowStatusRequest{})
	if err != nil {
		return err
	}
	if len(resp.GetPositions()) == 0 {
		fmt.Fprintln(env.stdout, "Not following any receiving province (no pairing found yet).")
		return nil
	}
	t := regions.Default()
	tb := newTable("receiving", "endpoint", "demand rev", "decision rev", "connected", "last change (CST)", "last error").alignRight(2, 3)
	for _, p := range resp.GetPositions() {
		last := ""
		if p.GetLastChangeTime() != nil {
			last = p.GetLastChangeTime().AsTime().In(chinaTime).Format(time.DateTime)
		}
		tb.add(!p.GetConnected(), p.GetReceivingRegion()+" "+t.Name(p.GetReceivingRegion()), p.GetEndpoint(),
			p.GetDemandRevision(), p.GetDecisionRevision(), p.GetConnected(), last, p.GetLastError())
	}
	tb.render(env.stdout, false)
	return nil
}

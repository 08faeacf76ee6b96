package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/daemon"
	"github.com/eastwest/labourlink/services/platform/apierror"
)

func init() {
	register(&command{
		name:    "match run",
		summary: "match available workers to the replicated demand, show the progress, then a summary by vacancy",
		run:     runMatchRun,
	})
	register(&command{
		name:    "match cancel",
		summary: "cancel a running match run: it stops at its next stage and proposes nobody",
		run:     runMatchCancel,
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
	fs := newFlagSet("labourlink match run")
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Sending)
	dry := fs.Bool("dry-run", false, "compute the result and show it without proposing anyone")
	requestID := fs.String("request-id", "", "idempotency key; repeat it to get the same run back instead of starting another (default: a new one)")
	poll := fs.Duration("poll", 500*time.Millisecond, "how often to read the run's progress")
	out := addOutputFlag(fs)
	maxStale := fs.Duration("max-replica-staleness", 0, "refuse the run when the demand replica of a province with open demand has not been known current for longer than this (0: the service's default, 5m)")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, tr("Usage: labourlink match run [-dry-run] [flags]\n\nStarts a match run on the sending service: the available workers against the open demand\nreplicated from the paired receiving provinces. Shows the run's progress, then what it\nproposed for each vacancy. Without -dry-run the proposals are committed and the candidates\nsent to the receiving services.\n\nThe service refuses a run on a replica known to be behind (its link down: vacancies may have\nclosed meanwhile); -max-replica-staleness sets how far behind is too far.\n\nFlags:"))
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if *maxStale < 0 {
		return errors.New("-max-replica-staleness must not be negative")
	}
	if *requestID == "" {
		*requestID = newRequestID()
	}
	req := &sendingv1.StartMatchRunRequest{RequestId: *requestID, DryRun: *dry}
	if *maxStale > 0 {
		req.MaxReplicaStaleness = durationpb.New(*maxStale)
	}
	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	client := sendingv1.NewMatchingServiceClient(cc)
	started, err := client.StartMatchRun(ctx, req)
	if err != nil {
		if apierror.ParseReason(errorReason(err)) == commonv1.ErrorReason_ERROR_REASON_REPLICA_STALE {
			fmt.Fprintln(env.stderr, tr("The demand replica is behind: see `labourlink match follow`. To run on it anyway, give -max-replica-staleness longer than it is behind."))
		}
		return err
	}
	name := started.GetMatchRun().GetName()
	fmt.Fprint(env.stderr, tr("started %s (request id %s)\n", name, *requestID))
	bar := newProgress(env.stderr, env.interactive, "matching", 100, "%")
	var run *sendingv1.MatchRun
	var last *sendingv1.GetMatchRunResponse
	for {
		resp, err := client.GetMatchRun(ctx, &sendingv1.GetMatchRunRequest{Name: name})
		if err != nil {
			return err
		}
		last, run = resp, resp.GetMatchRun()
		if run.GetState() != sendingv1.MatchRunState_MATCH_RUN_STATE_RUNNING {
			break
		}
		bar.Set(int64(run.GetProgressPercent()), run.GetStage())
		select {
		case <-ctx.Done():
			fmt.Fprint(env.stderr, tr("\nstopped watching; the run goes on: grpcurl ... labourlink.sending.v1.MatchingService/GetMatchRun {\"name\":%q}\n", name))
			return ctx.Err()
		case <-time.After(*poll):
		}
	}
	bar.Set(int64(run.GetProgressPercent()), run.GetStage())
	if env.interactive {
		bar.Finish(run.GetStage()) // ends the line redrawn in place
	}
	switch run.GetState() {
	case sendingv1.MatchRunState_MATCH_RUN_STATE_FAILED:
		return fmt.Errorf("%s failed (%s): %s", name, codes.Code(run.GetError().GetCode()), run.GetError().GetMessage())
	case sendingv1.MatchRunState_MATCH_RUN_STATE_CANCELLED:
		return fmt.Errorf("%s was cancelled: nobody was proposed", name)
	}
	return out.print(env, last, func() { printRunSummary(env.stdout, run) })
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
	fmt.Fprint(w, tr("\n%s finished%s", run.GetName(), took))
	if run.GetDryRun() {
		fmt.Fprint(w, tr(" (dry run: nobody was proposed)"))
	}
	fmt.Fprint(w, tr("\n  algorithm:        %s\n", run.GetAlgorithm()))
	fmt.Fprint(w, tr("  eligible workers: %d\n", run.GetWorkersEligible()))
	fmt.Fprint(w, tr("  open positions:   %d\n", run.GetOpenings()))
	fmt.Fprint(w, tr("  proposed:         %d (%s of the open positions)\n", run.GetProposed(), pct(run.GetProposed(), run.GetOpenings())))
	fmt.Fprint(w, tr("  registered-poor:  %d (%s of the proposed)\n", run.GetProposedRegisteredPoor(), pct(run.GetProposedRegisteredPoor(), run.GetProposed())))
	for i, f := range run.GetReplicas() {
		label := "  demand replicas:  "
		if i > 0 {
			label = "                    "
		}
		fmt.Fprintf(w, "%s%s %s: %s\n", label, f.GetReceivingRegion(), t.Name(f.GetReceivingRegion()), describeFreshness(f))
	}
	fmt.Fprintln(w)
	for _, warning := range run.GetWarnings() {
		fmt.Fprint(w, tr("! warning: %s\n", warning))
	}
	if len(run.GetWarnings()) > 0 {
		fmt.Fprintln(w)
	}
	if len(run.GetVacancies()) == 0 {
		fmt.Fprintln(w, tr("No vacancy received a proposal."))
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
	tb.add(false, "total", tr("%d vacancies", len(run.GetVacancies())), "", "", open, proposed, poor, "")
	tb.render(w, false)
	if short {
		fmt.Fprintln(w, tr("\nRows marked ! still have open positions after the run."))
	}
}

func runMatchCancel(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("labourlink match cancel")
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Sending)
	requestID := fs.String("request-id", "", "idempotency key (default: a new one)")
	out := addOutputFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, tr("Usage: labourlink match cancel [flags] <run>\n\nCancels a running match run (<run> is its number or matchRuns/<number>): it is recorded\nCANCELLED at once, stops at its next stage and proposes nobody. A run that has ended\nalready is refused (cancelling a cancelled run again is fine).\n\nFlags:"))
		fs.PrintDefaults()
	}
	if err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("give one run: its number or matchRuns/<number>")
	}
	name := fs.Arg(0)
	if !strings.HasPrefix(name, "matchRuns/") {
		name = "matchRuns/" + name
	}
	if *requestID == "" {
		*requestID = newRequestID()
	}
	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	resp, err := sendingv1.NewMatchingServiceClient(cc).CancelMatchRun(ctx, &sendingv1.CancelMatchRunRequest{Name: name, RequestId: *requestID})
	if err != nil {
		return err
	}
	run := resp.GetMatchRun()
	return out.print(env, resp, func() {
		fmt.Fprint(env.stdout, tr("%s cancelled at %s: nobody is proposed by it.\n", run.GetName(), fmtTime(run.GetEndTime())))
	})
}

func runMatchFollow(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("labourlink match follow")
	fs.SetOutput(env.stderr)
	d := addDialFlags(fs, daemon.Sending)
	out := addOutputFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cc, err := d.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	resp, err := sendingv1.NewMatchingServiceClient(cc).GetFollowStatus(ctx, &sendingv1.GetFollowStatusRequest{})
	if err != nil {
		return err
	}
	return out.print(env, resp, func() {
		if len(resp.GetPositions()) == 0 {
			fmt.Fprintln(env.stdout, tr("Not following any receiving province (no pairing found yet)."))
			return
		}
		printFollowStatus(env.stdout, resp.GetPositions())
	})
}

// staleAfter is how far behind a replica is marked (the match run's warning threshold).
const staleAfter = 30 * time.Second

// printFollowStatus writes one block per receiving province: whether its watches answer, how
// current the demand replica is, the feed positions, the times (CST) and the last error. A
// province whose link is down or whose replica is behind is marked with "!".
func printFollowStatus(w io.Writer, positions []*sendingv1.FollowPosition) {
	t := regions.Default()
	for i, p := range positions {
		if i > 0 {
			fmt.Fprintln(w)
		}
		f := p.GetDemandFreshness()
		behind := f.GetCurrentAsOf() == nil || f.GetStaleness().AsDuration() > staleAfter
		mark := "  "
		if !p.GetConnected() || behind {
			mark = "! "
		}
		fmt.Fprintf(w, "%s%s %s  %s\n", mark, p.GetReceivingRegion(), t.Name(p.GetReceivingRegion()), p.GetEndpoint())
		connected := "yes, the feeds answer"
		if !p.GetConnected() {
			connected = "NO: a watch is down or has not answered yet"
		}
		fmt.Fprint(w, tr("    connected:     %s\n", connected))
		fmt.Fprint(w, tr("    demand:        %s\n", describeFreshness(f)))
		fmt.Fprint(w, tr("    positions:     demand revision %d%s, decision revision %d%s\n",
			p.GetDemandRevision(), describeLag(p.GetDemandLag()), p.GetDecisionRevision(), describeLag(p.GetDecisionLag())))
		fmt.Fprint(w, tr("    employment:    revision %d%s\n", p.GetEmploymentRevision(), describeLag(p.GetEmploymentLag())))
		fmt.Fprint(w, tr("    last message:  %s\n", cstOr(p.GetLastMessageTime(), "none")))
		fmt.Fprint(w, tr("    last change:   %s\n", cstOr(p.GetLastChangeTime(), "none")))
		if p.GetLastError() != "" {
			fmt.Fprint(w, tr("    last error:    %s  %s\n", cstOr(p.GetLastErrorTime(), "(time unknown)"), p.GetLastError()))
		} else {
			fmt.Fprint(w, tr("    last error:    none since the feeds last answered\n"))
		}
	}
}

// describeLag says how far behind its feed's head a position is: " (caught up)", " (head 1240,
// 6 behind)", " (head 1234, catching up)" before the caught-up notice, or nothing while the
// head is not known (the watch has not answered since the service started).
func describeLag(l *sendingv1.FeedLag) string {
	switch {
	case l == nil:
		return ""
	case l.GetCaughtUp():
		return " (caught up)"
	case l.GetRevisionsBehind() > 0:
		return tr(" (head %d, %d behind)", l.GetHeadRevision(), l.GetRevisionsBehind())
	}
	return tr(" (head %d, catching up)", l.GetHeadRevision())
}

// describeFreshness says how current a demand replica is: "current as of 2026-12-01 10:32:05
// CST (6m12s behind), watch down".
func describeFreshness(f *sendingv1.ReplicaFreshness) string {
	var b strings.Builder
	if f.GetCurrentAsOf() == nil {
		b.WriteString("never known current")
	} else {
		fmt.Fprint(&b, tr("current as of %s (%s behind)", cstOr(f.GetCurrentAsOf(), ""), f.GetStaleness().AsDuration().Round(time.Second)))
		if f.GetStaleness().AsDuration() > staleAfter {
			b.WriteString(" BEHIND")
		}
	}
	if f.GetConnected() {
		b.WriteString(", watch open")
	} else {
		b.WriteString(", watch DOWN")
	}
	return b.String()
}

// cstOr formats ts in China Standard Time, or returns none for an unset time.
func cstOr(ts *timestamppb.Timestamp, none string) string {
	if ts == nil {
		return none
	}
	return ts.AsTime().In(civil.Zone).Format(time.DateTime) + " CST"
}

// errorReason returns the ErrorInfo reason of a gRPC error ("" if none).
func errorReason(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return ""
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	outboxv1 "github.com/eastwest/labourlink/proto/labourlink/outbox/v1"
	"github.com/eastwest/labourlink/services/daemon"
)

func init() {
	register(&command{name: "outbox list", summary: "show each outbox of a service: messages waiting, the oldest, last delivery, last error, quarantined", run: runOutboxList})
	register(&command{name: "outbox quarantine", summary: "list the messages peers refused for good, waiting for an operator's decision", run: runOutboxQuarantine})
	register(&command{name: "outbox show", summary: "show one quarantined message: the refusal, the message itself and the decisions", run: runOutboxShow})
	register(&command{name: "outbox retry", summary: "put a quarantined message back in its outbox after fixing the cause (-note says what was fixed)", run: runOutboxDecide(true)})
	register(&command{name: "outbox discard", summary: "give up a quarantined message for good (-note says why); the decision is kept", run: runOutboxDecide(false)})
}

// outboxFlags are the flags of the outbox commands: which service (sending or receiving) and how
// to reach it.
type outboxFlags struct {
	fs      *flag.FlagSet
	service *string
	d       *dialer
	out     *output
}

func newOutboxFlags(env *cliEnv, name, usage string) *outboxFlags {
	fs := newFlagSet("labourlink " + name)
	fs.SetOutput(env.stderr)
	o := &outboxFlags{fs: fs}
	o.service = fs.String("service", "sending", "whose outboxes: sending or receiving")
	o.d = addDialFlags(fs, daemon.Sending)
	o.out = addOutputFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, usage+"\n\nFlags:")
		fs.PrintDefaults()
	}
	return o
}

// parse parses args; without -addr, a receiving -service is looked for at the receiving
// service's local address.
func (o *outboxFlags) parse(args []string) error {
	if err := parseFlags(o.fs, args); err != nil {
		return err
	}
	switch *o.service {
	case "sending":
	case "receiving":
		o.d.defaultTo(o.fs, daemon.Receiving)
	default:
		return fmt.Errorf("-service must be sending or receiving, not %q", *o.service)
	}
	return nil
}

func (o *outboxFlags) client() (outboxv1.OutboxServiceClient, func(), error) {
	cc, err := o.d.dial()
	if err != nil {
		return nil, nil, err
	}
	return outboxv1.NewOutboxServiceClient(cc), func() { _ = cc.Close() }, nil
}

// ago says how long before now t was, for reading ("3m12s ago").
func ago(t *timestamppb.Timestamp, now time.Time) string {
	if t == nil {
		return "-"
	}
	d := now.Sub(t.AsTime()).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return fmtTime(t) + " (" + d.String() + " ago)"
}

func runOutboxList(ctx context.Context, env *cliEnv, args []string) error {
	o := newOutboxFlags(env, "outbox list", "Usage: labourlink outbox list [-service sending|receiving] [flags]\n\n"+
		"Shows each outbox of the service: messages waiting for their peer, when the oldest was committed,\n"+
		"when a delivery last succeeded, the last error with its time (cleared by the next success),\n"+
		"and how many messages the peer refused for good (see `labourlink outbox quarantine`).")
	if err := o.parse(args); err != nil {
		return err
	}
	c, done, err := o.client()
	if err != nil {
		return err
	}
	defer done()
	resp, err := c.ListOutboxes(ctx, &outboxv1.ListOutboxesRequest{})
	if err != nil {
		return err
	}
	if o.out.json {
		return writeJSON(env.stdout, resp)
	}
	now := time.Now()
	w := env.stdout
	if len(resp.GetOutboxes()) == 0 {
		fmt.Fprintln(w, tr("No outbox has had messages yet."))
		return nil
	}
	t := newTable("destination", "waiting", "oldest waiting", "quarantined", "relay", "last delivery", "last error").alignRight(1, 3)
	for _, b := range resp.GetOutboxes() {
		relay := "stopped"
		if b.GetRelayRunning() {
			relay = "running"
		}
		lastErr := "-"
		if b.GetLastError() != "" {
			lastErr = tr("%s, %d in a row: %s", fmtTime(b.GetLastErrorTime()), b.GetConsecutiveFailures(), clipText(b.GetLastError(), 80))
		}
		t.add(b.GetQuarantined() > 0 || b.GetLastError() != "", b.GetDestination(), b.GetPending(), ago(b.GetOldestCreateTime(), now),
			b.GetQuarantined(), relay, ago(b.GetLastDeliveryTime(), now), lastErr)
	}
	t.render(w, env.colour)
	return nil
}

func parseQuarantineState(s string) (outboxv1.QuarantineState, error) {
	switch s {
	case "all":
		return outboxv1.QuarantineState_QUARANTINE_STATE_UNSPECIFIED, nil
	case "quarantined", "retried", "discarded":
		return outboxv1.QuarantineState(outboxv1.QuarantineState_value["QUARANTINE_STATE_"+strings.ToUpper(s)]), nil
	}
	return 0, fmt.Errorf("-state must be quarantined, retried, discarded or all, not %q", s)
}

func quarantineStateWord(s outboxv1.QuarantineState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "QUARANTINE_STATE_"))
}

func runOutboxQuarantine(ctx context.Context, env *cliEnv, args []string) error {
	o := newOutboxFlags(env, "outbox quarantine", "Usage: labourlink outbox quarantine [-service sending|receiving] [-state quarantined|retried|discarded|all] [flags]\n\n"+
		"Lists the messages a peer refused for good (the answer would be the same if they were sent again),\n"+
		"oldest first, with the peer's reason. They wait here, never dropped; the messages behind them keep\n"+
		"flowing. Fix the cause, then `labourlink outbox retry ENTRY -note ...`, or give the message up with\n"+
		"`labourlink outbox discard ENTRY -note ...`.")
	state := o.fs.String("state", "quarantined", "quarantined (waiting for a decision), retried, discarded or all")
	dest := o.fs.String("destination", "", "only messages for this destination (coordination, receiving/440000, ...)")
	if err := o.parse(args); err != nil {
		return err
	}
	st, err := parseQuarantineState(*state)
	if err != nil {
		return err
	}
	c, done, err := o.client()
	if err != nil {
		return err
	}
	defer done()
	var entries []*outboxv1.QuarantinedEntry
	req := &outboxv1.ListQuarantinedEntriesRequest{Destination: *dest, State: st, PageSize: 1000}
	for {
		resp, err := c.ListQuarantinedEntries(ctx, req)
		if err != nil {
			return err
		}
		entries = append(entries, resp.GetEntries()...)
		if resp.GetNextPageToken() == "" {
			break
		}
		req.PageToken = resp.GetNextPageToken()
	}
	if o.out.json {
		return writeJSON(env.stdout, &outboxv1.ListQuarantinedEntriesResponse{Entries: entries})
	}
	w := env.stdout
	if len(entries) == 0 {
		fmt.Fprint(w, tr("No messages in the quarantine (state %s).\n", *state))
		return nil
	}
	t := newTable("entry", "destination", "message", "refused", "code", "reason", "state", "attempts").alignRight(7)
	for _, q := range entries {
		t.add(q.GetState() == outboxv1.QuarantineState_QUARANTINE_STATE_QUARANTINED, q.GetEntryId(), q.GetDestination(), q.GetSummary(),
			fmtTime(q.GetQuarantineTime()), q.GetCode(), q.GetReason(), quarantineStateWord(q.GetState()), q.GetAttempts())
	}
	t.render(w, env.colour)
	fmt.Fprint(w, tr("\n%d message(s). `labourlink outbox show ENTRY` shows the refusal and the message.\n", len(entries)))
	return nil
}

// quarantineName accepts `quarantinedEntries/ID` or the bare entry id.
func quarantineName(s string) string { return resourceName("quarantinedEntries", s) }

func runOutboxShow(ctx context.Context, env *cliEnv, args []string) error {
	o := newOutboxFlags(env, "outbox show", "Usage: labourlink outbox show [-service sending|receiving] [flags] ENTRY\n\n"+
		"Shows a quarantined message: the peer's refusal, the message itself (JSON) and the operators' decisions.")
	if err := o.parse(args); err != nil {
		return err
	}
	if o.fs.NArg() != 1 {
		return fmt.Errorf("give one entry id (see `labourlink outbox quarantine`)")
	}
	c, done, err := o.client()
	if err != nil {
		return err
	}
	defer done()
	resp, err := c.GetQuarantinedEntry(ctx, &outboxv1.GetQuarantinedEntryRequest{Name: quarantineName(o.fs.Arg(0))})
	if err != nil {
		return err
	}
	if o.out.json {
		return writeJSON(env.stdout, resp)
	}
	q := resp.GetEntry()
	w := env.stdout
	rows := [][2]string{
		{tr("entry"), q.GetEntryId()},
		{tr("destination"), q.GetDestination()},
		{tr("message"), q.GetSummary() + " (" + q.GetType() + ")"},
		{tr("ordering key"), q.GetOrderingKey()},
		{tr("committed"), fmtTime(q.GetCreateTime())},
		{tr("refused"), fmtTime(q.GetQuarantineTime())},
		{tr("reason"), tr("%s (code %s)", q.GetReason(), q.GetCode())},
		{tr("peer said"), q.GetMessage()},
		{tr("attempts before"), fmt.Sprint(q.GetAttempts())},
		{tr("state"), quarantineStateWord(q.GetState())},
	}
	if q.GetRetriedAs() != "" {
		rows = append(rows, [2]string{tr("retried as"), q.GetRetriedAs()})
	}
	for _, r := range rows {
		fmt.Fprintf(w, "%-16s %s\n", r[0]+":", r[1])
	}
	for _, d := range q.GetDecisions() {
		fmt.Fprint(w, tr("%-16s %s by %s at %s: %s\n", tr("decision")+":", quarantineStateWord(d.GetAction()), d.GetDecidedBy(), fmtTime(d.GetDecideTime()), d.GetNote()))
	}
	if q.GetPayload() != nil {
		js, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(q.GetPayload())
		if err != nil {
			fmt.Fprint(w, tr("message bytes: %d (cannot show as JSON: %v)\n", len(q.GetPayload().GetValue()), err))
		} else {
			fmt.Fprint(w, tr("the message:\n%s\n", js))
		}
	}
	return nil
}

func runOutboxDecide(retry bool) func(ctx context.Context, env *cliEnv, args []string) error {
	verb := "discard"
	usage := "Usage: labourlink outbox discard [-service sending|receiving] -note WHY [flags] ENTRY\n\n" +
		"Gives up a quarantined message: it is never delivered. The entry and your decision are kept.\n" +
		"On the sending service, discarding a submission of candidates takes back the proposals it alone\n" +
		"stood for (their workers are AVAILABLE again)."
	if retry {
		verb = "retry"
		usage = "Usage: labourlink outbox retry [-service sending|receiving] -note WHAT-WAS-FIXED [flags] ENTRY\n\n" +
			"Puts a quarantined message back at the end of its outbox, under a new entry id, once the cause of\n" +
			"the refusal is fixed (for example the pairing registered again). The decision is kept."
	}
	return func(ctx context.Context, env *cliEnv, args []string) error {
		o := newOutboxFlags(env, "outbox "+verb, usage)
		note := o.fs.String("note", "", "why (required; kept with the decision)")
		requestID := o.fs.String("request-id", "", "idempotency key; repeat it to get the same answer back (default: a new one)")
		if err := o.parse(args); err != nil {
			return err
		}
		if o.fs.NArg() != 1 {
			return fmt.Errorf("give one entry id (see `labourlink outbox quarantine`)")
		}
		if strings.TrimSpace(*note) == "" {
			return fmt.Errorf("-note is required: say what was fixed, or why the message is given up")
		}
		if *requestID == "" {
			*requestID = newRequestID()
		}
		c, done, err := o.client()
		if err != nil {
			return err
		}
		defer done()
		name := quarantineName(o.fs.Arg(0))
		var q *outboxv1.QuarantinedEntry
		if retry {
			resp, err := c.RetryQuarantinedEntry(ctx, &outboxv1.RetryQuarantinedEntryRequest{Name: name, Note: *note, RequestId: *requestID})
			if err != nil {
				return err
			}
			q = resp.GetEntry()
			if o.out.json {
				return writeJSON(env.stdout, resp)
			}
			fmt.Fprint(env.stdout, tr("%s put back in the outbox for %s as entry %s.\n", q.GetEntryId(), q.GetDestination(), q.GetRetriedAs()))
		} else {
			resp, err := c.DiscardQuarantinedEntry(ctx, &outboxv1.DiscardQuarantinedEntryRequest{Name: name, Note: *note, RequestId: *requestID})
			if err != nil {
				return err
			}
			q = resp.GetEntry()
			if o.out.json {
				return writeJSON(env.stdout, resp)
			}
			fmt.Fprint(env.stdout, tr("%s (%s) discarded; it will never be delivered to %s.\n", q.GetEntryId(), q.GetSummary(), q.GetDestination()))
		}
		return nil
	}
}

// clipText shortens s to n runes, marking the cut.
func clipText(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/eastwest/labourlink/services/devtools/wait"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap/zaptest"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	outboxv1 "github.com/eastwest/labourlink/proto/labourlink/outbox/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/store"
)

// putKeyed stores value under ordering key in its own transaction.
func putKeyed(t *testing.T, db *store.DB, dest, key, value string) {
	t.Helper()
	err := db.Update(func(tx *bbolt.Tx) error {
		_, err := outbox.Put(context.Background(), tx, time.Now(), dest, key, wrapperspb.String(value))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func valueOf(t *testing.T, e outbox.Entry) string {
	t.Helper()
	var v wrapperspb.StringValue
	if err := e.UnmarshalPayload(&v); err != nil {
		t.Fatal(err)
	}
	return v.GetValue()
}

// peer is a DeliverFunc that answers each value by a rule, delivering entries one by one like a
// peer that takes one request per entry.
type peer struct {
	mu        sync.Mutex
	answer    func(value string, attempt int) error // nil: accepted
	attempts  map[string]int
	delivered []string
}

func newPeer(answer func(value string, attempt int) error) *peer {
	return &peer{answer: answer, attempts: map[string]int{}}
}

func (p *peer) deliver(t *testing.T) outbox.DeliverFunc {
	return func(_ context.Context, entries []outbox.Entry) (outbox.Result, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		var res outbox.Result
		for i, e := range entries {
			v := valueOf(t, e)
			p.attempts[v]++
			err := p.answer(v, p.attempts[v])
			switch {
			case err == nil:
				p.delivered = append(p.delivered, v)
			case outbox.RefusedForGood(err):
				res.Refuse(i, outbox.RefusalOf(err))
			default:
				return res, err
			}
			res.Done++
		}
		return res, nil
	}
}

func (p *peer) got() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.delivered)
}

// waitFor waits until cond holds (services/devtools/wait).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	wait.For(t, what, cond)
}

func TestRefusedEntryIsQuarantinedAndTheRestFlows(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "sending.db"))
	defer db.Close()
	schemaQuarantine(t, db)
	for _, v := range []string{"a", "poison", "b", "c"} {
		putKeyed(t, db, "coordination", "", v)
	}
	p := newPeer(func(v string, _ int) error {
		if v == "poison" {
			return apierror.Status(apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_NOT_PAIRED, "440000 and 520000 are not paired")).Err()
		}
		return nil
	})
	opts := fast
	opts.IDPrefix = "s"
	opts.Describe = func(e outbox.Entry) string { return "value " + valueOf(t, e) }
	r := outbox.NewRelay(db, "coordination", p.deliver(t), zaptest.NewLogger(t), opts)
	stop := run(t, r)
	waitFor(t, "the queue to drain", func() bool { return pending(t, db, "coordination") == 0 })
	stop()
	if got := p.got(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("delivered %v, want [a b c]: one refusal must not stop the others", got)
	}
	if st := r.Status(); st.Quarantined != 1 || st.LastError != "" {
		t.Errorf("status %+v, want 1 quarantined and no error (a refusal is not a link error)", st)
	}

	srv := outbox.NewServer(db, nil, zaptest.NewLogger(t), outbox.ServerConfig{IDPrefix: "s"})
	list, err := srv.ListQuarantinedEntries(t.Context(), &outboxv1.ListQuarantinedEntriesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetEntries()) != 1 {
		t.Fatalf("quarantine holds %d entries, want 1", len(list.GetEntries()))
	}
	q := list.GetEntries()[0]
	if q.GetEntryId() != "s-2" || q.GetReason() != "NOT_PAIRED" || q.GetCode() != code.Code_FAILED_PRECONDITION ||
		q.GetSummary() != "value poison" || q.GetDestination() != "coordination" ||
		q.GetState() != outboxv1.QuarantineState_QUARANTINE_STATE_QUARANTINED || q.GetPayload() != nil {
		t.Errorf("quarantined entry %v", q)
	}
	got, err := srv.GetQuarantinedEntry(t.Context(), &outboxv1.GetQuarantinedEntryRequest{Name: q.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	var payload wrapperspb.StringValue
	if err := got.GetEntry().GetPayload().UnmarshalTo(&payload); err != nil || payload.GetValue() != "poison" {
		t.Errorf("payload %v (%v), want the message itself", payload.GetValue(), err)
	}
	// Views: BASIC (the default) leaves out the payload; FULL is the entry as Get reads it.
	basic := proto.Clone(got.GetEntry()).(*outboxv1.QuarantinedEntry)
	basic.Payload = nil
	for _, tt := range []struct {
		view outboxv1.QuarantinedEntryView
		want *outboxv1.QuarantinedEntry
	}{
		{outboxv1.QuarantinedEntryView_QUARANTINED_ENTRY_VIEW_UNSPECIFIED, basic},
		{outboxv1.QuarantinedEntryView_QUARANTINED_ENTRY_VIEW_BASIC, basic},
		{outboxv1.QuarantinedEntryView_QUARANTINED_ENTRY_VIEW_FULL, got.GetEntry()},
	} {
		list, err := srv.ListQuarantinedEntries(t.Context(), &outboxv1.ListQuarantinedEntriesRequest{View: tt.view})
		if err != nil {
			t.Fatalf("view %v: %v", tt.view, err)
		}
		if len(list.GetEntries()) != 1 || !proto.Equal(list.GetEntries()[0], tt.want) {
			t.Errorf("view %v listed %v, want %v", tt.view, list.GetEntries(), tt.want)
		}
	}
	outboxes, err := srv.ListOutboxes(t.Context(), &outboxv1.ListOutboxesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(outboxes.GetOutboxes()) != 1 || outboxes.GetOutboxes()[0].GetQuarantined() != 1 || outboxes.GetOutboxes()[0].GetPending() != 0 {
		t.Errorf("outboxes %v, want coordination with 1 quarantined, 0 pending", outboxes.GetOutboxes())
	}
}

// schemaQuarantine is a no-op that documents that the quarantine bucket is created on demand.
func schemaQuarantine(t *testing.T, db *store.DB) {
	t.Helper()
	if n, err := outbox.Quarantined(db, ""); err != nil || n != 0 {
		t.Fatalf("fresh file quarantined = %d, %v", n, err)
	}
}

func TestRetryAndDiscardQuarantinedEntries(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "sending.db"))
	defer db.Close()
	for _, v := range []string{"x1", "x2"} {
		putKeyed(t, db, "receiving/440000", "batch/1", v)
	}
	fixed := false
	var mu sync.Mutex
	p := newPeer(func(v string, _ int) error {
		mu.Lock()
		defer mu.Unlock()
		if !fixed {
			return status.Error(codes.NotFound, "no such batch")
		}
		return nil
	})
	opts := fast
	opts.IDPrefix = "s"
	r := outbox.NewRelay(db, "receiving/440000", p.deliver(t), zaptest.NewLogger(t), opts)
	relays := &outbox.Set{}
	relays.Add(r)
	stop := run(t, r)
	defer stop()
	waitFor(t, "both entries quarantined", func() bool {
		n, _ := outbox.Quarantined(db, "receiving/440000")
		return n == 2
	})

	var discarded []string
	srv := outbox.NewServer(db, relays, zaptest.NewLogger(t), outbox.ServerConfig{IDPrefix: "s",
		OnDiscard: func(_ *bbolt.Tx, q *outboxv1.QuarantinedEntry) error {
			discarded = append(discarded, q.GetEntryId())
			return nil
		}})

	// Validation: the note is required; the name must be one of the quarantine's.
	for _, req := range []any{
		&outboxv1.RetryQuarantinedEntryRequest{Name: "quarantinedEntries/s-1"},
		&outboxv1.DiscardQuarantinedEntryRequest{Name: "quarantinedEntries/s-1", Note: "  "},
		&outboxv1.RetryQuarantinedEntryRequest{Name: "s-1", Note: "ok"},
		&outboxv1.ListQuarantinedEntriesRequest{PageToken: "garbage!"},
		&outboxv1.ListQuarantinedEntriesRequest{State: 77},
		&outboxv1.ListQuarantinedEntriesRequest{View: 3},
	} {
		if err := srv.ValidateRequest("", req); apierror.Code(err) != codes.InvalidArgument {
			t.Errorf("ValidateRequest(%v) = %v, want INVALID_ARGUMENT", req, err)
		}
	}

	mu.Lock()
	fixed = true
	mu.Unlock()
	retried, err := srv.RetryQuarantinedEntry(t.Context(), &outboxv1.RetryQuarantinedEntryRequest{Name: "quarantinedEntries/s-1", Note: "batch announced again", RequestId: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	e := retried.GetEntry()
	if e.GetState() != outboxv1.QuarantineState_QUARANTINE_STATE_RETRIED || e.GetRetriedAs() != "s-3" ||
		len(e.GetDecisions()) != 1 || e.GetDecisions()[0].GetNote() != "batch announced again" || e.GetDecisions()[0].GetDecidedBy() == "" {
		t.Errorf("retried entry %v", e)
	}
	waitFor(t, "the retried message delivered", func() bool { return slices.Contains(p.got(), "x1") })
	// A repeat with the same request id returns the first answer; a second decision is refused.
	again, err := srv.RetryQuarantinedEntry(t.Context(), &outboxv1.RetryQuarantinedEntryRequest{Name: "quarantinedEntries/s-1", Note: "batch announced again", RequestId: "r1"})
	if err != nil || again.GetEntry().GetRetriedAs() != "s-3" {
		t.Errorf("repeat = %v, %v; want the first answer", again, err)
	}
	if _, err := srv.DiscardQuarantinedEntry(t.Context(), &outboxv1.DiscardQuarantinedEntryRequest{Name: "quarantinedEntries/s-1", Note: "no"}); apierror.Code(err) != codes.FailedPrecondition {
		t.Errorf("discarding a retried entry = %v, want FAILED_PRECONDITION", err)
	}

	d, err := srv.DiscardQuarantinedEntry(t.Context(), &outboxv1.DiscardQuarantinedEntryRequest{Name: "quarantinedEntries/s-2", Note: "the batch was cancelled"})
	if err != nil {
		t.Fatal(err)
	}
	if d.GetEntry().GetState() != outboxv1.QuarantineState_QUARANTINE_STATE_DISCARDED || !slices.Equal(discarded, []string{"s-2"}) {
		t.Errorf("discarded %v, hook saw %v", d.GetEntry(), discarded)
	}
	if _, err := srv.GetQuarantinedEntry(t.Context(), &outboxv1.GetQuarantinedEntryRequest{Name: "quarantinedEntries/s-99"}); apierror.Code(err) != codes.NotFound {
		t.Errorf("Get of an unknown entry = %v, want NOT_FOUND", err)
	}

	// Decisions stay on record; filters and paging.
	all, err := srv.ListQuarantinedEntries(t.Context(), &outboxv1.ListQuarantinedEntriesRequest{PageSize: 1})
	if err != nil || len(all.GetEntries()) != 1 || all.GetNextPageToken() == "" {
		t.Fatalf("first page %v, %v", all, err)
	}
	next, err := srv.ListQuarantinedEntries(t.Context(), &outboxv1.ListQuarantinedEntriesRequest{PageSize: 1, PageToken: all.GetNextPageToken()})
	if err != nil || len(next.GetEntries()) != 1 || next.GetEntries()[0].GetEntryId() != "s-2" || next.GetNextPageToken() != "" {
		t.Fatalf("second page %v, %v", next, err)
	}
	if err := srv.ValidateRequest("", &outboxv1.ListQuarantinedEntriesRequest{PageToken: all.GetNextPageToken(), Destination: "coordination"}); apierror.Code(err) != codes.InvalidArgument {
		t.Errorf("a page token with other filters = %v, want INVALID_ARGUMENT", err)
	}
	waiting, err := srv.ListQuarantinedEntries(t.Context(), &outboxv1.ListQuarantinedEntriesRequest{State: outboxv1.QuarantineState_QUARANTINE_STATE_QUARANTINED})
	if err != nil || len(waiting.GetEntries()) != 0 {
		t.Errorf("entries still waiting: %v, %v", waiting.GetEntries(), err)
	}
}

func TestFailedEntryHoldsBackOnlyItsKey(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "sending.db"))
	defer db.Close()
	// batch/1: announce then depart; batch/2 and an unkeyed message are unrelated.
	putKeyed(t, db, "receiving/440000", "batch/1", "announce-1")
	putKeyed(t, db, "receiving/440000", "batch/1", "depart-1")
	putKeyed(t, db, "receiving/440000", "batch/2", "announce-2")
	putKeyed(t, db, "receiving/440000", "", "other")

	release := make(chan struct{})
	p := newPeer(func(v string, attempt int) error {
		if v == "announce-1" {
			select {
			case <-release:
				return nil
			default:
				return status.Error(codes.DeadlineExceeded, "slow link")
			}
		}
		return nil
	})
	opts := fast
	opts.MaxBackoff = 20 * time.Millisecond
	r := outbox.NewRelay(db, "receiving/440000", p.deliver(t), zaptest.NewLogger(t), opts)
	stop := run(t, r)
	defer stop()

	waitFor(t, "the unrelated entries delivered", func() bool { return len(p.got()) == 2 })
	if got := p.got(); !slices.Equal(got, []string{"announce-2", "other"}) {
		t.Fatalf("delivered %v while announce-1 fails, want [announce-2 other]: depart-1 must wait for announce-1", got)
	}
	// The entry that keeps failing stays visible, although the others got through.
	st := r.Status()
	if st.LastError == "" || st.LastErrorTime.IsZero() {
		t.Errorf("status %+v, want the error with its time", st)
	}
	close(release)
	waitFor(t, "batch/1 delivered", func() bool { return len(p.got()) == 4 })
	if got := p.got(); !slices.Equal(got[2:], []string{"announce-1", "depart-1"}) {
		t.Errorf("delivered %v, want announce-1 before depart-1", got)
	}
	waitFor(t, "the error cleared", func() bool { return r.Status().LastError == "" })
	if st := r.Status(); !st.LastErrorTime.IsZero() || st.ConsecutiveFailures != 0 || st.LastDelivery.IsZero() {
		t.Errorf("status after recovery %+v", st)
	}
}

func TestRefusalOf(t *testing.T) {
	var v apierror.Violations
	v.Add("events[0].detail", "must not contain a resident identity number")
	tests := []struct {
		err        error
		forGood    bool
		code       codes.Code
		reason     string
		msgContain string
	}{
		{apierror.Status(v.Err()).Err(), true, codes.InvalidArgument, "INVALID_ARGUMENT", "events[0].detail"},
		{apierror.Status(apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_VACANCY_CLOSED, "closed")).Err(), true, codes.FailedPrecondition, "VACANCY_CLOSED", "closed"},
		{status.Error(codes.NotFound, "gone"), true, codes.NotFound, "NOT_FOUND", "gone"},
		{status.Error(codes.Unavailable, "down"), false, codes.Unavailable, "UNAVAILABLE", "down"},
		{status.Error(codes.DeadlineExceeded, "slow"), false, codes.DeadlineExceeded, "DEADLINE_EXCEEDED", "slow"},
		{status.Error(codes.PermissionDenied, "who"), false, codes.PermissionDenied, "PERMISSION_DENIED", "who"},
		{errors.New("plain"), false, codes.Unknown, "UNKNOWN", "plain"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			if got := outbox.RefusedForGood(tt.err); got != tt.forGood {
				t.Errorf("RefusedForGood = %v, want %v", got, tt.forGood)
			}
			r := outbox.RefusalOf(tt.err)
			if r.Code != tt.code || r.Reason != tt.reason || !contains(r.Message, tt.msgContain) {
				t.Errorf("RefusalOf = %+v", r)
			}
		})
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

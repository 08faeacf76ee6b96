package receiving

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
)

// A feed consumer that disconnects at random points and resumes from the last revision it
// applied sees every change exactly once, in revision order, while writers change vacancies
// concurrently; what it saw is what the feed stored.
func TestWatchDemandResumesExactlyOnce(t *testing.T) {
	t.Parallel()
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			e := newEnv(t)
			const writers, opsPerWriter = 3, 40
			// Each writer creates its own vacancy, then changes its headcount to a new value
			// every time: every operation makes exactly one change.
			total := int64(writers * (1 + opsPerWriter))
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					resp, err := e.vac.CreateVacancy(context.Background(), &receivingv1.CreateVacancyRequest{Vacancy: goodVacancy(t)})
					if err != nil {
						errs <- err
						return
					}
					name := resp.GetVacancy().GetName()
					for i := range opsPerWriter {
						_, err := e.vac.UpdateVacancy(context.Background(), &receivingv1.UpdateVacancyRequest{
							Vacancy:    &receivingv1.Vacancy{Name: name, Headcount: int32(10 + i)},
							UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"headcount"}},
							RequestId:  fmt.Sprintf("w%d-%d", w, i),
						})
						if err != nil {
							errs <- err
							return
						}
					}
				}()
			}

			rng := rand.New(rand.NewPCG(seed, 99))
			var seen []*receivingv1.DemandChange
			last, sessions := int64(0), 0
			for last < total {
				sessions++
				if sessions > 10000 {
					t.Fatal("consumer makes no progress")
				}
				want := rng.IntN(12) // 0: connect and drop at once
				sctx, cancel := context.WithCancel(context.Background())
				stream, err := e.feed.WatchDemand(sctx, &receivingv1.WatchDemandRequest{SendingRegion: sending, AfterRevision: last})
				if err != nil {
					cancel()
					t.Fatal(err)
				}
				for got := 0; got < want && last < total; got++ {
					resp, err := nextChange(stream)
					if err != nil {
						cancel()
						t.Fatalf("session %d: Recv: %v", sessions, err)
					}
					c := resp.GetChange()
					if c.GetRevision() != last+1 {
						cancel()
						t.Fatalf("session %d: got revision %d after %d: a change was missed or repeated", sessions, c.GetRevision(), last)
					}
					if c.GetVacancy().GetRevision() != c.GetRevision() {
						t.Errorf("change %d holds a vacancy at revision %d", c.GetRevision(), c.GetVacancy().GetRevision())
					}
					seen = append(seen, c)
					last = c.GetRevision()
				}
				cancel()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if sessions < 10 {
				t.Errorf("only %d sessions: the consumer did not disconnect often", sessions)
			}
			// What the consumer saw is the stored feed.
			var stored []*receivingv1.DemandChange
			for after := int64(0); ; {
				resp, err := e.feed.ListDemandChanges(ctx(t), &receivingv1.ListDemandChangesRequest{SendingRegion: sending, AfterRevision: after, PageSize: 17})
				if err != nil {
					t.Fatal(err)
				}
				if resp.GetHeadRevision() != total {
					t.Fatalf("head = %d, want %d", resp.GetHeadRevision(), total)
				}
				if len(resp.GetChanges()) == 0 {
					break
				}
				stored = append(stored, resp.GetChanges()...)
				after = resp.GetChanges()[len(resp.GetChanges())-1].GetRevision()
			}
			if len(stored) != len(seen) {
				t.Fatalf("consumer saw %d changes, feed holds %d", len(seen), len(stored))
			}
			for i := range stored {
				if !proto.Equal(stored[i], seen[i]) {
					t.Fatalf("change %d: consumer saw %v, feed holds %v", i+1, seen[i], stored[i])
				}
			}
		})
	}
}

// A watcher at the head receives changes committed later (live, after the replay).
func TestWatchDemandLive(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createVacancy(goodVacancy(t))
	sctx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	stream, err := e.feed.WatchDemand(sctx, &receivingv1.WatchDemandRequest{SendingRegion: sending})
	if err != nil {
		t.Fatal(err)
	}
	first, err := nextChange(stream)
	if err != nil {
		t.Fatal(err)
	}
	v := e.createVacancy(goodVacancy(t))
	second, err := nextChange(stream)
	if err != nil {
		t.Fatal(err)
	}
	if first.GetChange().GetRevision() != 1 || second.GetChange().GetRevision() != 2 || second.GetChange().GetVacancy().GetName() != v.GetName() {
		t.Fatalf("got %v then %v", first.GetChange(), second.GetChange())
	}
}

// testTickers gives each watch stream progress ticks that the test sends (Config.ProgressTicker):
// no timing involved. Each watch's ticks arrive on the channel when the watch starts.
type testTickers chan chan time.Time

func (c testTickers) ticker(time.Duration) (<-chan time.Time, func()) {
	ticks := make(chan time.Time)
	c <- ticks
	return ticks, func() {}
}

// watchMsg is a watch response as the tests compare it: the entry's revision (0 for a progress
// notice), whether it is a caught-up notice, and the head revision it carries.
type watchMsg struct {
	rev      int64
	caughtUp bool
	head     int64
}

// Every message of a watch carries the feed's head revision; the stream sends a progress notice
// with caught_up as soon as it has replayed everything up to the head (not before, and without
// waiting for a tick), then one at every progress tick while it has nothing else to send; a
// change committed later comes as a change. The decision watch does the same over its filtered
// feed: its head counts every province's decisions, and its caught-up notice covers the
// revisions of the other provinces' decisions.
func TestWatchSendsHeadAndProgress(t *testing.T) {
	t.Parallel()
	tickers := make(testTickers, 2)
	e := newEnv(t, func(c *Config) { c.ProgressTicker = tickers.ticker })
	v1 := e.createVacancy(goodVacancy(t))
	e.createVacancy(goodVacancy(t))
	sctx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	stream, err := e.feed.WatchDemand(sctx, &receivingv1.WatchDemandRequest{SendingRegion: sending})
	if err != nil {
		t.Fatal(err)
	}
	ticks := <-tickers
	var got []watchMsg
	next := func() {
		t.Helper()
		r, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, watchMsg{r.GetChange().GetRevision(), r.GetProgress().GetCaughtUp(), r.GetHeadRevision()})
	}
	next()
	next()
	next() // the notice after the replay: sent at once, not at a tick
	e.createVacancy(goodVacancy(t))
	next()
	ticks <- time.Time{}
	next()
	want := []watchMsg{{1, false, 2}, {2, false, 2}, {0, true, 2}, {3, false, 3}, {0, true, 3}}
	if !slices.Equal(got, want) {
		t.Fatalf("demand watch sent %v, want %v ({revision caught_up head}, revision 0: progress notice)", got, want)
	}

	// Decisions: Guangxi's decision (revision 1) is not Guizhou's, but counts in the head.
	const guangxi = "450000"
	theirs := candidate(v1.GetName(), guangxi+"-W1")
	theirs.HomeCounty = "450102" // 兴宁区, Nanning
	other, err := e.cand.SubmitCandidates(ctx(t), &receivingv1.SubmitCandidatesRequest{SendingRegion: guangxi,
		Candidates: []*receivingv1.Candidate{theirs}})
	if err != nil || len(other.GetCandidates()) != 1 {
		t.Fatalf("SubmitCandidates for %s: %v %v", guangxi, other, err)
	}
	e.accept(other.GetCandidates()[0].GetName())
	ds, err := e.cand.WatchDecisions(sctx, &receivingv1.WatchDecisionsRequest{SendingRegion: sending})
	if err != nil {
		t.Fatal(err)
	}
	ticks = <-tickers
	got = nil
	nextDecision := func() {
		t.Helper()
		r, err := ds.Recv()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, watchMsg{r.GetCandidate().GetRevision(), r.GetProgress().GetCaughtUp(), r.GetHeadRevision()})
	}
	nextDecision() // nothing of Guizhou's: the caught-up notice at head 1
	mine := e.submit(candidate(v1.GetName(), sending+"-W1"))
	e.accept(mine[0].GetName())
	nextDecision()
	ticks <- time.Time{}
	nextDecision()
	ticks <- time.Time{}
	nextDecision()
	want = []watchMsg{{0, true, 1}, {2, false, 2}, {0, true, 2}, {0, true, 2}}
	if !slices.Equal(got, want) {
		t.Fatalf("decision watch sent %v, want %v ({revision caught_up head}, revision 0: progress notice)", got, want)
	}
}

// Old changes are compacted; asking for them is FAILED_PRECONDITION REVISION_COMPACTED with a
// message telling the consumer to re-list; re-listing and following from the listing's
// revision works.
func TestFeedCompaction(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.FeedRetention = 5 })
	for range 12 {
		e.createVacancy(goodVacancy(t))
	}
	n, err := e.svc.compactDemand(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if n != 7 {
		t.Fatalf("compaction removed %d changes, want 7", n)
	}
	for _, after := range []int64{0, 3, 6} {
		stream, err := e.feed.WatchDemand(ctx(t), &receivingv1.WatchDemandRequest{SendingRegion: sending, AfterRevision: after})
		if err != nil {
			t.Fatal(err)
		}
		_, err = nextChange(stream)
		st := wantCode(t, err, codes.FailedPrecondition, "REVISION_COMPACTED")
		if !strings.Contains(st.Message(), "ListOpenDemand") {
			t.Errorf("message %q does not say to re-list with ListOpenDemand", st.Message())
		}
		_, err = e.feed.ListDemandChanges(ctx(t), &receivingv1.ListDemandChangesRequest{SendingRegion: sending, AfterRevision: after})
		wantCode(t, err, codes.FailedPrecondition, "REVISION_COMPACTED")
	}
	kept, err := e.feed.ListDemandChanges(ctx(t), &receivingv1.ListDemandChangesRequest{SendingRegion: sending, AfterRevision: 7})
	if err != nil {
		t.Fatal(err)
	}
	if len(kept.GetChanges()) != 5 || kept.GetChanges()[0].GetRevision() != 8 {
		t.Fatalf("kept changes: %d from %d", len(kept.GetChanges()), kept.GetChanges()[0].GetRevision())
	}
	_, err = e.feed.ListDemandChanges(ctx(t), &receivingv1.ListDemandChangesRequest{SendingRegion: sending, AfterRevision: 13})
	wantCode(t, err, codes.FailedPrecondition, "REVISION_AHEAD")

	// Re-list, then follow from the listing's revision.
	open, err := e.feed.ListOpenDemand(ctx(t), &receivingv1.ListOpenDemandRequest{SendingRegion: sending, PageSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	if open.GetRevision() != 12 || len(open.GetVacancies()) != 5 || open.GetNextPageToken() == "" {
		t.Fatalf("ListOpenDemand: %d vacancies at revision %d, token %q", len(open.GetVacancies()), open.GetRevision(), open.GetNextPageToken())
	}
	sctx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	stream, err := e.feed.WatchDemand(sctx, &receivingv1.WatchDemandRequest{SendingRegion: sending, AfterRevision: open.GetRevision()})
	if err != nil {
		t.Fatal(err)
	}
	e.createVacancy(goodVacancy(t))
	resp, err := nextChange(stream)
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetChange().GetRevision() != 13 {
		t.Fatalf("after re-listing got revision %d, want 13", resp.GetChange().GetRevision())
	}
	// Compaction again keeps 5 and is idempotent.
	for range 2 {
		if _, err := e.svc.compactDemand(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	_, err = e.feed.ListDemandChanges(ctx(t), &receivingv1.ListDemandChangesRequest{SendingRegion: sending, AfterRevision: 7})
	wantCode(t, err, codes.FailedPrecondition, "REVISION_COMPACTED")
	kept, err = e.feed.ListDemandChanges(ctx(t), &receivingv1.ListDemandChangesRequest{SendingRegion: sending, AfterRevision: 8})
	if err != nil || len(kept.GetChanges()) != 5 {
		t.Fatalf("after second compaction: %v, %v", kept, err)
	}
}

// fakeRegistry is a coordination registry with fixed pairings.
type fakeRegistry struct {
	coordinationv1.UnimplementedRegistryServiceServer
	pairings []*coordinationv1.Pairing
}

func (f *fakeRegistry) ListPairings(_ context.Context, req *coordinationv1.ListPairingsRequest) (*coordinationv1.ListPairingsResponse, error) {
	resp := &coordinationv1.ListPairingsResponse{}
	for _, p := range f.pairings {
		if p.GetReceivingRegion() == req.GetRegion() || p.GetSendingRegion() == req.GetRegion() {
			resp.Pairings = append(resp.Pairings, p)
		}
	}
	return resp, nil
}

// Only paired sending provinces read the feeds, submit and withdraw candidates and announce
// batches; others get PERMISSION_DENIED (NOT_PAIRED).
func TestOnlyPairedProvinces(t *testing.T) {
	t.Parallel()
	// A coordination registry that pairs 440000 with 530000 only.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	coordinationv1.RegisterRegistryServiceServer(gs, &fakeRegistry{pairings: []*coordinationv1.Pairing{
		{ReceivingRegion: region, SendingRegion: "530000"}, {ReceivingRegion: "310000", SendingRegion: sending},
	}})
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)

	tests := []struct {
		name    string
		adjust  func(*Config)
		allowed string
		denied  []string
	}{
		{"default pairings table", nil, sending, []string{unpaired, "110000"}},
		{"static allow list", func(c *Config) { c.Paired = []string{"530000"} }, "530000", []string{sending}},
		{"empty allow list", func(c *Config) { c.Paired = []string{} }, "", []string{sending, "530000"}},
		{"coordination registry", func(c *Config) { c.Coordination = lis.Addr().String() }, "530000", []string{sending, "450000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			adjust := func(*Config) {}
			if tt.adjust != nil {
				adjust = tt.adjust
			}
			e := newEnv(t, adjust)
			go func() { _ = e.svc.Run(ctx(t)) }() // closes the registry connection at the end
			calls := func(region string) map[string]error {
				c := ctx(t)
				out := map[string]error{}
				watch, err := e.feed.WatchDemand(c, &receivingv1.WatchDemandRequest{SendingRegion: region})
				if err == nil {
					// A permitted watch blocks: only an error ends the first Recv here.
					if region != tt.allowed {
						_, err = watch.Recv()
					}
				}
				out["WatchDemand"] = err
				_, out["ListDemandChanges"] = e.feed.ListDemandChanges(c, &receivingv1.ListDemandChangesRequest{SendingRegion: region})
				_, out["ListOpenDemand"] = e.feed.ListOpenDemand(c, &receivingv1.ListOpenDemandRequest{SendingRegion: region})
				_, out["ListDecisions"] = e.cand.ListDecisions(c, &receivingv1.ListDecisionsRequest{SendingRegion: region})
				_, out["SubmitCandidates"] = e.cand.SubmitCandidates(c, &receivingv1.SubmitCandidatesRequest{SendingRegion: region,
					Candidates: []*receivingv1.Candidate{candidate("vacancies/440000-V0000000001", "520000-w-1")}})
				_, out["WithdrawCandidate"] = e.cand.WithdrawCandidate(c, &receivingv1.WithdrawCandidateRequest{SendingRegion: region, Name: "candidates/x"})
				_, out["ReportBatchDeparture"] = e.intake.ReportBatchDeparture(c, &receivingv1.ReportBatchDepartureRequest{SendingRegion: region, BatchId: region + "-b"})
				return out
			}
			for _, r := range tt.denied {
				for method, err := range calls(r) {
					if method == "SubmitCandidates" && r != sending {
						// home_county 520102 is not in r: INVALID_ARGUMENT comes first.
						continue
					}
					st := wantCodeNoFatal(t, err, codes.PermissionDenied, "NOT_PAIRED")
					if st != "" {
						t.Errorf("%s from %s: %s", method, r, st)
					}
				}
			}
			if tt.allowed == "" {
				return
			}
			for method, err := range calls(tt.allowed) {
				if err != nil && (status.Code(err) == codes.PermissionDenied || status.Code(err) == codes.Unavailable) {
					t.Errorf("%s from paired %s: %v", method, tt.allowed, err)
				}
			}
		})
	}
	// A province code that is not a province is INVALID_ARGUMENT.
	e := newEnv(t)
	for _, r := range []string{"", "52", "520100", "999999"} {
		_, err := e.feed.ListOpenDemand(ctx(t), &receivingv1.ListOpenDemandRequest{SendingRegion: r})
		if _, ok := violations(t, err)["sending_region"]; !ok {
			t.Errorf("sending_region %q: %v", r, err)
		}
	}
	// The registry unreachable: UNAVAILABLE, not a denial.
	down := newEnv(t, func(c *Config) { c.Coordination = "127.0.0.1:1" })
	c, cancel := context.WithCancel(ctx(t))
	go func() { _ = down.svc.Run(c) }()
	defer cancel()
	_, err = down.feed.ListOpenDemand(ctx(t), &receivingv1.ListOpenDemandRequest{SendingRegion: sending})
	wantCode(t, err, codes.Unavailable, "")
}

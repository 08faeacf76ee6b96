package receiving

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
)

// Concurrent accepts over gRPC never reserve more positions than the headcount: exactly
// headcount of them succeed, the others get HEADCOUNT_FULL.
func TestConcurrentAcceptsNeverExceedHeadcount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, headcount := range []int32{1, 5, 17} {
		t.Run(fmt.Sprintf("headcount%d", headcount), func(t *testing.T) {
			in := goodVacancy(t)
			in.Headcount = headcount
			v := e.createVacancy(in)
			const candidates = 60
			var cs []*receivingv1.Candidate
			for i := range candidates {
				cs = append(cs, candidate(v.GetName(), fmt.Sprintf("520000-W%d-%d", headcount, i)))
			}
			submitted := e.submit(cs...)
			var wg sync.WaitGroup
			var mu sync.Mutex
			accepted, full := map[string]bool{}, 0
			start := make(chan struct{})
			for _, c := range submitted {
				// Two accepts per candidate (with different request ids) make the race harder.
				for k := range 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						_, err := e.cand.DecideCandidate(context.Background(), &receivingv1.DecideCandidateRequest{
							Name: c.GetName(), Decision: receivingv1.Decision_DECISION_ACCEPT, RequestId: fmt.Sprintf("%s-%d", c.GetName(), k),
						})
						mu.Lock()
						defer mu.Unlock()
						switch {
						case err == nil:
							accepted[c.GetName()] = true
						case wantCodeNoFatal(t, err, codes.FailedPrecondition, "HEADCOUNT_FULL") == "":
							full++
						default:
							t.Errorf("DecideCandidate: %v", err)
						}
					}()
				}
			}
			close(start)
			wg.Wait()
			got, err := e.vac.GetVacancy(ctx(t), &receivingv1.GetVacancyRequest{Name: v.GetName()})
			if err != nil {
				t.Fatal(err)
			}
			if r := got.GetVacancy().GetReserved(); r != headcount {
				t.Fatalf("reserved = %d, headcount %d", r, headcount)
			}
			if got.GetVacancy().GetStatus() != statusFilled {
				t.Errorf("status = %v, want FILLED", got.GetVacancy().GetStatus())
			}
			list, err := e.cand.ListCandidates(ctx(t), &receivingv1.ListCandidatesRequest{Vacancy: v.GetName(), State: stateAccepted, PageSize: 1000})
			if err != nil {
				t.Fatal(err)
			}
			if int32(len(list.GetCandidates())) != headcount {
				t.Fatalf("%d accepted candidates for headcount %d", len(list.GetCandidates()), headcount)
			}
			if int32(len(accepted)) != headcount || full != 2*(candidates-int(headcount)) {
				t.Errorf("%d candidates accepted, %d calls refused HEADCOUNT_FULL; want %d and %d", len(accepted), full, headcount, 2*(candidates-int(headcount)))
			}
			// Withdrawing one frees a place: one more accept succeeds, the next is full.
			_, err = e.cand.WithdrawCandidate(ctx(t), &receivingv1.WithdrawCandidateRequest{Name: list.GetCandidates()[0].GetName(), SendingRegion: sending, Reason: "went home"})
			if err != nil {
				t.Fatal(err)
			}
			pending, err := e.cand.ListCandidates(ctx(t), &receivingv1.ListCandidatesRequest{Vacancy: v.GetName(), State: statePending, PageSize: 2})
			if err != nil {
				t.Fatal(err)
			}
			e.accept(pending.GetCandidates()[0].GetName())
			_, err = e.cand.DecideCandidate(ctx(t), &receivingv1.DecideCandidateRequest{Name: pending.GetCandidates()[1].GetName(), Decision: receivingv1.Decision_DECISION_ACCEPT})
			wantCode(t, err, codes.FailedPrecondition, "HEADCOUNT_FULL")
		})
	}
}

func TestSubmitCandidatesIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v := e.createVacancy(goodVacancy(t))
	req := &receivingv1.SubmitCandidatesRequest{SendingRegion: sending, RequestId: "outbox-7",
		Candidates: []*receivingv1.Candidate{candidate(v.GetName(), "520000-W1"), candidate(v.GetName(), "520000-W2")}}
	first, err := e.cand.SubmitCandidates(ctx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	c := first.GetCandidates()[0]
	if c.GetState() != statePending || c.GetRevision() != 0 || c.GetSendingRegion() != sending || !c.GetRegisteredPoor() {
		t.Errorf("new candidate = %v", c)
	}
	again, err := e.cand.SubmitCandidates(ctx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(first, again) {
		t.Errorf("repeat by request id = %v, want %v", again, first)
	}
	// Same (region, worker, vacancy) under another request id: the existing candidate.
	e.accept(c.GetName())
	other, err := e.cand.SubmitCandidates(ctx(t), &receivingv1.SubmitCandidatesRequest{SendingRegion: sending, RequestId: "outbox-8",
		Candidates: []*receivingv1.Candidate{candidate(v.GetName(), "520000-W1"), candidate(v.GetName(), "520000-W3"), candidate(v.GetName(), "520000-W3")}})
	if err != nil {
		t.Fatal(err)
	}
	if got := other.GetCandidates(); got[0].GetCandidateId() != c.GetCandidateId() || got[0].GetState() != stateAccepted || got[1].GetCandidateId() != got[2].GetCandidateId() {
		t.Errorf("resubmission = %v", got)
	}
	list, err := e.cand.ListCandidates(ctx(t), &receivingv1.ListCandidatesRequest{SendingRegion: sending})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetCandidates()) != 3 {
		t.Errorf("%d candidates stored, want 3", len(list.GetCandidates()))
	}
	// An unknown vacancy refuses its candidate only; a worker of another province is refused; the
	// others are taken.
	mixed, err := e.cand.SubmitCandidates(ctx(t), &receivingv1.SubmitCandidatesRequest{SendingRegion: sending,
		Candidates: []*receivingv1.Candidate{candidate("vacancies/440000-V0000000099", "520000-W9"), candidate(v.GetName(), "450000-W1"), candidate(v.GetName(), "520000-W9")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(mixed.GetCandidates()) != 1 || mixed.GetCandidates()[0].GetWorkerId() != "520000-W9" || len(mixed.GetRefusals()) != 2 ||
		mixed.GetRefusals()[0].GetIndex() != 0 || mixed.GetRefusals()[0].GetCode() != code.Code_NOT_FOUND ||
		mixed.GetRefusals()[1].GetIndex() != 1 || mixed.GetRefusals()[1].GetReason() != "WORKER_NOT_OF_REGION" || mixed.GetRefusals()[1].GetField() != "worker_id" {
		t.Fatalf("mixed submission %v", mixed)
	}
	list, err = e.cand.ListCandidates(ctx(t), &receivingv1.ListCandidatesRequest{})
	if err != nil || len(list.GetCandidates()) != 4 {
		t.Fatalf("after the mixed submission: %d candidates, %v; want 4", len(list.GetCandidates()), err)
	}
	got, err := e.cand.GetCandidate(ctx(t), &receivingv1.GetCandidateRequest{Name: c.GetName()})
	if err != nil || got.GetCandidate().GetState() != stateAccepted {
		t.Fatalf("GetCandidate = %v, %v", got, err)
	}
}

func TestDecideCandidate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v := e.createVacancy(goodVacancy(t))
	cs := e.submit(candidate(v.GetName(), "520000-w-1"), candidate(v.GetName(), "520000-w-2"), candidate(v.GetName(), "520000-w-3"))
	_, err := e.cand.DecideCandidate(ctx(t), &receivingv1.DecideCandidateRequest{Name: cs[0].GetName(), Decision: receivingv1.Decision_DECISION_REJECT})
	if _, ok := violations(t, err)["reason"]; !ok {
		t.Error("reject without reason accepted")
	}
	_, err = e.cand.DecideCandidate(ctx(t), &receivingv1.DecideCandidateRequest{Name: cs[0].GetName()})
	violations(t, err)
	rej, err := e.cand.DecideCandidate(ctx(t), &receivingv1.DecideCandidateRequest{Name: cs[0].GetName(), Decision: receivingv1.Decision_DECISION_REJECT, Reason: "needs forklift licence"})
	if err != nil {
		t.Fatal(err)
	}
	if rej.GetCandidate().GetState() != stateRejected || rej.GetCandidate().GetRevision() != 1 {
		t.Errorf("rejected = %v", rej.GetCandidate())
	}
	// The same decision again is a no-op; the other decision is refused.
	same, err := e.cand.DecideCandidate(ctx(t), &receivingv1.DecideCandidateRequest{Name: cs[0].GetName(), Decision: receivingv1.Decision_DECISION_REJECT, Reason: "again"})
	if err != nil || same.GetCandidate().GetRevision() != 1 {
		t.Errorf("repeated reject: %v, %v", same, err)
	}
	_, err = e.cand.DecideCandidate(ctx(t), &receivingv1.DecideCandidateRequest{Name: cs[0].GetName(), Decision: receivingv1.Decision_DECISION_ACCEPT})
	wantCode(t, err, codes.FailedPrecondition, "CANDIDATE_ALREADY_DECIDED")
	// Withdrawn candidates cannot be decided; only the submitting province may withdraw.
	_, err = e.cand.WithdrawCandidate(ctx(t), &receivingv1.WithdrawCandidateRequest{Name: cs[1].GetName(), SendingRegion: "450000"})
	wantCode(t, err, codes.PermissionDenied, "NOT_OWNER")
	if _, err := e.cand.WithdrawCandidate(ctx(t), &receivingv1.WithdrawCandidateRequest{Name: cs[1].GetName(), SendingRegion: sending}); err != nil {
		t.Fatal(err)
	}
	_, err = e.cand.DecideCandidate(ctx(t), &receivingv1.DecideCandidateRequest{Name: cs[1].GetName(), Decision: receivingv1.Decision_DECISION_ACCEPT})
	wantCode(t, err, codes.FailedPrecondition, "CANDIDATE_WITHDRAWN")
	// Closed vacancy: no accept.
	if _, err := e.vac.CloseVacancy(ctx(t), &receivingv1.CloseVacancyRequest{Name: v.GetName()}); err != nil {
		t.Fatal(err)
	}
	_, err = e.cand.DecideCandidate(ctx(t), &receivingv1.DecideCandidateRequest{Name: cs[2].GetName(), Decision: receivingv1.Decision_DECISION_ACCEPT})
	wantCode(t, err, codes.FailedPrecondition, "VACANCY_CLOSED")
	_, err = e.cand.DecideCandidate(ctx(t), &receivingv1.DecideCandidateRequest{Name: "candidates/nope", Decision: receivingv1.Decision_DECISION_ACCEPT})
	wantCode(t, err, codes.NotFound, "")
}

// The decision feed holds every state change with a revision, per sending province, and a
// consumer that disconnects at random points and resumes sees each of its decisions once.
func TestDecisionFeedResumable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.Paired = []string{sending, "450000"} })
	in := goodVacancy(t)
	in.Headcount = 1000
	big := e.createVacancy(in)
	var mine, theirs []*receivingv1.Candidate
	for i := range 40 {
		mine = append(mine, candidate(big.GetName(), fmt.Sprintf("520000-gz-%d", i)))
		c := candidate(big.GetName(), fmt.Sprintf("450000-gx-%d", i))
		c.HomeCounty = "450102"
		theirs = append(theirs, c)
	}
	mineSub := e.submit(mine...)
	resp, err := e.cand.SubmitCandidates(ctx(t), &receivingv1.SubmitCandidatesRequest{SendingRegion: "450000", Candidates: theirs})
	if err != nil {
		t.Fatal(err)
	}
	all := append(append([]*receivingv1.Candidate{}, mineSub...), resp.GetCandidates()...)
	rng := rand.New(rand.NewPCG(7, 7))
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i, c := range all {
			d := receivingv1.Decision_DECISION_ACCEPT
			if i%3 == 0 {
				d = receivingv1.Decision_DECISION_REJECT
			}
			if _, err := e.cand.DecideCandidate(context.Background(), &receivingv1.DecideCandidateRequest{Name: c.GetName(), Decision: d, Reason: "r"}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	seen := map[string]int64{}
	last := int64(0)
	for len(seen) < len(mineSub) {
		sctx, cancel := context.WithCancel(context.Background())
		stream, err := e.cand.WatchDecisions(sctx, &receivingv1.WatchDecisionsRequest{SendingRegion: sending, AfterRevision: last})
		if err != nil {
			t.Fatal(err)
		}
		for n := rng.IntN(6); n > 0 && len(seen) < len(mineSub); n-- {
			r, err := nextDecision(stream)
			if err != nil {
				t.Fatal(err)
			}
			c := r.GetCandidate()
			if c.GetSendingRegion() != sending {
				t.Fatalf("decision of %s sent to %s", c.GetSendingRegion(), sending)
			}
			if c.GetRevision() <= last {
				t.Fatalf("revision %d after %d", c.GetRevision(), last)
			}
			if _, dup := seen[c.GetCandidateId()]; dup {
				t.Fatalf("decision on %s seen twice", c.GetCandidateId())
			}
			seen[c.GetCandidateId()] = c.GetRevision()
			last = c.GetRevision()
		}
		cancel()
	}
	<-done
	// The paged call gives the same, and head_revision lets a consumer skip others' decisions.
	page, err := e.cand.ListDecisions(ctx(t), &receivingv1.ListDecisionsRequest{SendingRegion: sending, PageSize: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.GetCandidates()) != len(mineSub) || page.GetHeadRevision() != int64(len(all)) {
		t.Fatalf("ListDecisions: %d decisions, head %d", len(page.GetCandidates()), page.GetHeadRevision())
	}
	for _, c := range page.GetCandidates() {
		if seen[c.GetCandidateId()] != c.GetRevision() {
			t.Errorf("candidate %s: revision %d listed, %d watched", c.GetCandidateId(), c.GetRevision(), seen[c.GetCandidateId()])
		}
	}
	got, err := e.vac.GetVacancy(ctx(t), &receivingv1.GetVacancyRequest{Name: big.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetVacancy().GetReserved() != int32(len(all)-(len(all)+2)/3) {
		t.Errorf("reserved = %d", got.GetVacancy().GetReserved())
	}
	// Compaction of the decision feed: REVISION_COMPACTED with a re-list hint.
	e.svc.cfg.FeedRetention = 10
	if _, err := e.svc.compactDecisions(ctx(t)); err != nil {
		t.Fatal(err)
	}
	_, err = e.cand.ListDecisions(ctx(t), &receivingv1.ListDecisionsRequest{SendingRegion: sending})
	st := wantCode(t, err, codes.FailedPrecondition, "REVISION_COMPACTED")
	if !strings.Contains(st.Message(), "ListCandidates") {
		t.Errorf("message %q", st.Message())
	}
}

// No identity number reaches the service through a candidate (or any other request): a
// worker id that parses as (or has the shape of) an identity number, a name with digits, or an
// identity number in any text field is refused.
func TestCandidatesRefuseIdentityNumbers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v := e.createVacancy(goodVacancy(t))
	id := idNumber("52010219900307123")
	badCheck := id[:17] + map[bool]string{true: "1", false: "0"}[id[17] == '0']
	tests := []struct {
		name  string
		field string
		want  string
		edit  func(c *receivingv1.Candidate)
	}{
		{"worker id is an identity number", "candidates[0].worker_id", workerIDMessage, func(c *receivingv1.Candidate) { c.WorkerId = id }},
		{"worker id lower-case x", "candidates[0].worker_id", workerIDMessage, func(c *receivingv1.Candidate) { c.WorkerId = idNumber("11010519491231002")[:17] + "x" }},
		{"worker id with a wrong check character", "candidates[0].worker_id", workerIDMessage, func(c *receivingv1.Candidate) { c.WorkerId = badCheck }},
		{"worker id embeds an identity number", "candidates[0].worker_id", workerIDMessage, func(c *receivingv1.Candidate) { c.WorkerId = "520000-gz-" + id }},
		{"identity number as name", "candidates[0].full_name", "", func(c *receivingv1.Candidate) { c.FullName = id }},
		{"name with digits", "candidates[0].full_name", "", func(c *receivingv1.Candidate) { c.FullName = "王小明 1990" }},
		{"name empty", "candidates[0].full_name", "", func(c *receivingv1.Candidate) { c.FullName = " " }},
		{"identity number in an occupation", "candidates[0].occupations[1]", identityMessage, func(c *receivingv1.Candidate) { c.Occupations = append(c.Occupations, id) }},
		{"identity number as home county", "candidates[0].home_county", identityMessage, func(c *receivingv1.Candidate) { c.HomeCounty = id }},
		{"identity number in the reason", "candidates[0].state_reason", identityMessage, func(c *receivingv1.Candidate) { c.StateReason = "身份证 " + id }},
		{"sex missing", "candidates[0].sex", "", func(c *receivingv1.Candidate) { c.Sex = commonv1.Sex_SEX_UNSPECIFIED }},
		{"age under 16", "candidates[0].age", "", func(c *receivingv1.Candidate) { c.Age = 15 }},
		{"home county in the receiving province", "candidates[0].home_county", "", func(c *receivingv1.Candidate) { c.HomeCounty = workCounty }},
		{"unknown occupation", "candidates[0].occupations[0]", "", func(c *receivingv1.Candidate) { c.Occupations = []string{"12"} }},
		{"worker id with a slash", "candidates[0].worker_id", "", func(c *receivingv1.Candidate) { c.WorkerId = "a/b" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := candidate(v.GetName(), "520000-W1")
			tt.edit(c)
			resp, err := e.cand.SubmitCandidates(ctx(t), &receivingv1.SubmitCandidatesRequest{SendingRegion: sending, Candidates: []*receivingv1.Candidate{c}})
			if err == nil {
				// A bad field is the candidate's own refusal; an identity number anywhere refuses
				// the whole request before it is read (below).
				if len(resp.GetRefusals()) != 1 || len(resp.GetCandidates()) != 0 {
					t.Fatalf("response %v, want the candidate refused", resp)
				}
				r := resp.GetRefusals()[0]
				if "candidates[0]."+r.GetField() != tt.field || r.GetCode() != code.Code_INVALID_ARGUMENT || tt.want != "" {
					t.Fatalf("refusal %v, want INVALID_ARGUMENT on %s", r, tt.field)
				}
				return
			}
			got := violations(t, err)
			desc, ok := got[tt.field]
			if !ok {
				t.Fatalf("violations %v, want one on %s", got, tt.field)
			}
			if tt.want != "" && desc != tt.want {
				t.Errorf("%s: %q, want %q", tt.field, desc, tt.want)
			}
			if st, _ := status.FromError(err); strings.Contains(st.Message(), id) {
				t.Errorf("the error message repeats the identity number: %s", st.Message())
			}
		})
	}
	// Other requests are scanned too.
	_, err := e.cand.WithdrawCandidate(ctx(t), &receivingv1.WithdrawCandidateRequest{Name: "candidates/x", SendingRegion: sending, Reason: id})
	if _, ok := violations(t, err)["reason"]; !ok {
		t.Error("identity number in a withdrawal reason accepted")
	}
	_, err = e.intake.RecordOnboarding(ctx(t), &receivingv1.RecordOnboardingRequest{WorkerId: id, OnboardDate: date(2025, 3, 1)})
	if got := violations(t, err)["worker_id"]; got != workerIDMessage {
		t.Errorf("RecordOnboarding with an identity number: %q", got)
	}
	list, err := e.cand.ListCandidates(ctx(t), &receivingv1.ListCandidatesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetCandidates()) != 0 {
		t.Errorf("%d candidates stored after refused requests", len(list.GetCandidates()))
	}
}

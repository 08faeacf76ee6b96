package sending

import (
	"fmt"
	"testing"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
)

// TestFollowStatusCaughtUpOverOtherProvincesDecisions: against a real receiving service, follow
// status shows both feeds caught up with nothing behind; the decision feed's caught-up notice
// moves this province's decision position to the feed's head over another province's decisions
// (which this province's watch never sees), so the lag is 0, and the position is stored: it is
// the same after a restart.
func TestFollowStatusCaughtUpOverOtherProvincesDecisions(t *testing.T) {
	r := startReceiving(t, fastFeeds)
	v := r.createVacancy(testVacancy(t, 1, flowCounty, "8212", 5))
	ctx := testCtx(t)
	const guangxi = "450000"
	sub, err := r.cand.SubmitCandidates(ctx, &receivingv1.SubmitCandidatesRequest{SendingRegion: guangxi, Candidates: []*receivingv1.Candidate{{
		Vacancy: v.GetName(), WorkerId: guangxi + "-W1", FullName: "王小明", Sex: commonv1.Sex_SEX_MALE, Age: 28,
		Occupations: []string{"8212"}, HomeCounty: "450102", RegisteredPoor: true,
	}}})
	if err != nil || len(sub.GetCandidates()) != 1 {
		t.Fatalf("SubmitCandidates for %s: %v %v", guangxi, sub, err)
	}
	if _, err := r.cand.DecideCandidate(ctx, &receivingv1.DecideCandidateRequest{Name: sub.GetCandidates()[0].GetName(), Decision: receivingv1.Decision_DECISION_ACCEPT}); err != nil {
		t.Fatal(err)
	}

	n := startSending(t, "", fastConfig(r.addr), true)
	eventually(t, "both feeds caught up", func() (bool, string) {
		p, err := n.followPosition(ctx)
		if err != nil {
			return false, err.Error()
		}
		d, c := p.GetDemandLag(), p.GetDecisionLag()
		return d.GetCaughtUp() && c.GetCaughtUp() && p.GetDecisionRevision() == 1, fmt.Sprintf("%v", p)
	})
	p, err := n.followPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	head := r.head() // the vacancy's creation and its reservation
	if d := p.GetDemandLag(); d.GetHeadRevision() != head || d.GetAppliedRevision() != head || d.GetRevisionsBehind() != 0 || d.GetCaughtUpTime() == nil {
		t.Errorf("demand lag %v, want head %d applied, 0 behind, with its time", d, head)
	}
	if c := p.GetDecisionLag(); c.GetHeadRevision() != 1 || c.GetAppliedRevision() != 1 || c.GetRevisionsBehind() != 0 {
		t.Errorf("decision lag %v, want head 1 (Guangxi's decision) applied, 0 behind", c)
	}

	n.stop()
	n.start(false) // not following: what is shown is what was stored
	p, err = n.followPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p.GetDecisionRevision() != 1 || p.GetDecisionLag() != nil {
		t.Errorf("after a restart: decision revision %d, lag %v; want the stored 1 and no lag (not followed yet)", p.GetDecisionRevision(), p.GetDecisionLag())
	}
}

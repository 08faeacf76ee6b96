package receiving

import (
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/devtools/proctest"
	"github.com/eastwest/labourlink/services/platform/store"
)

// A real receiving process killed with SIGKILL right after confirming arrivals keeps the
// outbox entries of every acknowledged record; after a restart, repeating the records adds
// none.
func TestOutboxSurvivesProcessKill(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs the labourlink binary")
	}
	dir := t.TempDir()
	args := []string{"-region", region, "-data", dir, "-coordination", ""}
	p := proctest.Start(t, "receiving", "", args...)
	cc := p.Conn()
	vac := receivingv1.NewVacancyServiceClient(cc)
	cand := receivingv1.NewCandidateServiceClient(cc)
	intake := receivingv1.NewIntakeServiceClient(cc)
	c := ctx(t)

	in := goodVacancy(t)
	now := time.Now()
	in.StartDate, in.ValidThrough = today(now.AddDate(0, 0, 1)), today(now.AddDate(0, 3, 0))
	v, err := vac.CreateVacancy(c, &receivingv1.CreateVacancyRequest{Vacancy: in})
	if err != nil {
		t.Fatal(err)
	}
	var entries []*receivingv1.IntakeEntry
	for _, w := range []string{"520000-gz-k-1", "520000-gz-k-2"} {
		sub, err := cand.SubmitCandidates(c, &receivingv1.SubmitCandidatesRequest{SendingRegion: sending, Candidates: []*receivingv1.Candidate{candidate(v.GetVacancy().GetName(), w)}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cand.DecideCandidate(c, &receivingv1.DecideCandidateRequest{Name: sub.GetCandidates()[0].GetName(), Decision: receivingv1.Decision_DECISION_ACCEPT}); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, &receivingv1.IntakeEntry{WorkerId: w, Vacancy: v.GetVacancy().GetName()})
	}
	if _, err := intake.AnnounceBatch(c, &receivingv1.AnnounceBatchRequest{Batch: &receivingv1.IntakeBatch{
		BatchId: "520000-gz-kill", SendingRegion: sending, Mode: commonv1.TransportMode_TRANSPORT_MODE_TRAIN, DestinationCounty: workCounty,
		ExpectedArrivalTime: timestamppb.New(now), Entries: entries,
	}}); err != nil {
		t.Fatal(err)
	}
	confirm := &receivingv1.ConfirmArrivalsRequest{Name: "intakeBatches/520000-gz-kill", RequestId: "arr-kill", Confirmations: []*receivingv1.ArrivalConfirmation{
		{WorkerId: "520000-gz-k-1", Outcome: outcomeArrived}, {WorkerId: "520000-gz-k-2", Outcome: outcomeNoShow}}}
	if _, err := intake.ConfirmArrivals(c, confirm); err != nil {
		t.Fatal(err)
	}
	onboard := &receivingv1.RecordOnboardingRequest{WorkerId: "520000-gz-k-1", OnboardDate: today(now)}
	if _, err := intake.RecordOnboarding(c, onboard); err != nil {
		t.Fatal(err)
	}
	cc.Close()
	p.Kill()

	count := func() int {
		t.Helper()
		db, err := store.Open(filepath.Join(dir, "receiving.db"), Schema, zaptest.NewLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		events, err := readOutbox(db)
		if err != nil {
			t.Fatal(err)
		}
		return len(events)
	}
	if n := count(); n != 3 {
		t.Fatalf("after SIGKILL: %d outbox entries, want 3", n)
	}
	p = proctest.Start(t, "receiving", "", args...)
	cc = p.Conn()
	intake = receivingv1.NewIntakeServiceClient(cc)
	if _, err := intake.ConfirmArrivals(c, confirm); err != nil {
		t.Fatal(err)
	}
	confirm.RequestId = ""
	if _, err := intake.ConfirmArrivals(c, confirm); err != nil {
		t.Fatal(err)
	}
	if _, err := intake.RecordOnboarding(c, onboard); err != nil {
		t.Fatal(err)
	}
	cc.Close()
	p.Stop()
	if n := count(); n != 3 {
		t.Fatalf("after restart and repeats: %d outbox entries, want 3", n)
	}
}

package receiving

import (
	"bytes"
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/platform/store"
)

const (
	guangxi = "450000"

	kindArrived    = receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_ARRIVED
	kindNoShow     = receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_NO_SHOW
	kindOnboarded  = receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_ONBOARDED
	kindCheckpoint = receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_CHECKPOINT
	kindLeftJob    = receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_LEFT_JOB
	kindIncident   = receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_INCIDENT
)

// employment lists every change of from's employment feed after revision after, page by page,
// and returns them with the head revision.
func (e *env) employment(from string, after int64) ([]*receivingv1.EmploymentChange, int64) {
	e.t.Helper()
	var all []*receivingv1.EmploymentChange
	for {
		resp, err := e.emp.ListEmploymentChanges(ctx(e.t), &receivingv1.ListEmploymentChangesRequest{SendingRegion: from, AfterRevision: after, PageSize: 2})
		if err != nil {
			e.t.Fatalf("ListEmploymentChanges %s after %d: %v", from, after, err)
		}
		all = append(all, resp.GetChanges()...)
		if len(resp.GetChanges()) == 0 {
			return all, resp.GetHeadRevision()
		}
		after = resp.GetChanges()[len(resp.GetChanges())-1].GetRevision()
	}
}

// confirm confirms the outcomes of workers on batch b.
func (e *env) confirm(b *receivingv1.IntakeBatch, outcomes map[string]receivingv1.ArrivalOutcome) error {
	e.t.Helper()
	var cs []*receivingv1.ArrivalConfirmation
	for _, w := range slices.Sorted(maps.Keys(outcomes)) {
		cs = append(cs, &receivingv1.ArrivalConfirmation{WorkerId: w, Outcome: outcomes[w]})
	}
	_, err := e.intake.ConfirmArrivals(ctx(e.t), &receivingv1.ConfirmArrivalsRequest{Name: b.GetName(), Confirmations: cs})
	return err
}

// fact is what a test expects of a change: kind and worker.
type fact struct {
	kind   receivingv1.EmploymentChangeKind
	worker string
}

func facts(cs []*receivingv1.EmploymentChange) []fact {
	var out []fact
	for _, c := range cs {
		out = append(out, fact{c.GetKind(), c.GetWorkerId()})
	}
	return out
}

// feedScenario records facts about the workers of two sending provinces, interleaved, with
// repeats (by content and by request id) and refused facts among them; it returns the facts each feed must hold.
func (e *env) feedScenario() map[string][]fact {
	t := e.t
	t.Helper()
	gz := e.intakeScenarioFrom(sending, sending+"-b1", 2)
	gx := e.intakeScenarioFrom(guangxi, guangxi+"-b1", 2)
	gz1, gz2, gx1, gx2 := sending+"-b1-w-1", sending+"-b1-w-2", guangxi+"-b1-w-1", guangxi+"-b1-w-2"
	e.clock.Add(20 * time.Hour)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("gz arrival", e.confirm(gz, map[string]receivingv1.ArrivalOutcome{gz1: outcomeArrived}))
	must("gx arrivals", e.confirm(gx, map[string]receivingv1.ArrivalOutcome{gx1: outcomeArrived, gx2: outcomeNoShow}))
	must("gz arrival again", e.confirm(gz, map[string]receivingv1.ArrivalOutcome{gz1: outcomeArrived})) // nothing new
	day := today(e.clock.Now())
	for _, w := range []string{gz1, gx1, gz1} { // the second gz1 is a repeat by content
		_, err := e.intake.RecordOnboarding(ctx(t), &receivingv1.RecordOnboardingRequest{WorkerId: w, OnboardDate: day})
		must("onboarding "+w, err)
	}
	_, err := e.intake.RecordIncident(ctx(t), &receivingv1.RecordIncidentRequest{WorkerId: gz1, Incident: &receivingv1.Incident{
		IncidentDate: day, IncidentKind: receivingv1.IncidentKind_INCIDENT_KIND_INJURY, Detail: "左手", Description: "装配线上划伤左手，已就医"}})
	must("incident", err)

	// Refused facts change nothing, in no feed: a checkpoint of a worker who never arrived; an
	// arrival confirmed in the same request as a refused one (the whole request is refused).
	_, err = e.intake.RecordCheckpoint(ctx(t), &receivingv1.RecordCheckpointRequest{WorkerId: gx2, Checkpoint: &receivingv1.Checkpoint{CheckDate: day, Months: 1, StillEmployed: true}})
	wantCode(t, err, codes.FailedPrecondition, "NOT_ONBOARDED")
	err = e.confirm(gz, map[string]receivingv1.ArrivalOutcome{gz2: outcomeArrived, gz1: outcomeNoShow})
	wantCode(t, err, codes.FailedPrecondition, "ARRIVAL_ALREADY_CONFIRMED")
	_, err = e.intake.RecordOnboarding(ctx(t), &receivingv1.RecordOnboardingRequest{WorkerId: gx2, OnboardDate: day})
	wantCode(t, err, codes.FailedPrecondition, "NOT_ARRIVED")

	e.clock.Add(32 * 24 * time.Hour)
	later := today(e.clock.Now())
	for range 2 { // the second is a retry by request id
		_, err = e.intake.RecordCheckpoint(ctx(t), &receivingv1.RecordCheckpointRequest{WorkerId: gz1, RequestId: "cp-gz1-1",
			Checkpoint: &receivingv1.Checkpoint{CheckDate: later, Months: 1, StillEmployed: true}})
		must("checkpoint", err)
	}
	_, err = e.intake.RecordJobLeft(ctx(t), &receivingv1.RecordJobLeftRequest{WorkerId: gx1, LeftDate: later, Reason: "家中有事，返乡"})
	must("left job", err)
	must("gz no-show", e.confirm(gz, map[string]receivingv1.ArrivalOutcome{gz2: outcomeNoShow}))
	return map[string][]fact{
		sending: {{kindArrived, gz1}, {kindOnboarded, gz1}, {kindIncident, gz1}, {kindCheckpoint, gz1}, {kindNoShow, gz2}},
		guangxi: {{kindArrived, gx1}, {kindNoShow, gx2}, {kindOnboarded, gx1}, {kindLeftJob, gx1}},
	}
}

// Every fact the intake records appends exactly one change to the feed of its worker's sending
// province, in the transaction of the fact and its ledger entry: each province's revisions run
// 1, 2, ... without gaps and hold only its workers; a repeated fact appends nothing, a refused
// one appends nothing (neither to the feed nor to the outbox); a follower resumes after any
// revision; the changes carry the trip, the employer, the county and the details of their kind.
func TestEmploymentFeedPerProvince(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	want := e.feedScenario()
	total := 0
	for _, from := range []string{sending, guangxi} {
		got, head := e.employment(from, 0)
		if !slices.Equal(facts(got), want[from]) {
			t.Errorf("%s feed: %v, want %v", from, facts(got), want[from])
		}
		if head != int64(len(want[from])) {
			t.Errorf("%s feed head %d, want %d", from, head, len(want[from]))
		}
		for i, c := range got {
			if c.GetRevision() != int64(i+1) {
				t.Errorf("%s change %d has revision %d (gapless from 1)", from, i, c.GetRevision())
			}
			if !strings.HasPrefix(c.GetWorkerId(), from+"-") || !strings.HasPrefix(c.GetBatchId(), from+"-") {
				t.Errorf("%s feed holds %s on %s", from, c.GetWorkerId(), c.GetBatchId())
			}
			if c.GetRecord() != "employmentRecords/"+c.GetWorkerId()+"~"+c.GetBatchId() || !strings.HasPrefix(c.GetVacancy(), "vacancies/") ||
				c.GetEmployerName() != goodVacancy(t).GetEmployerName() || c.GetWorkCounty() != workCounty ||
				c.GetOccurTime() == nil || c.GetChangeTime() == nil {
				t.Errorf("%s change %d: %v", from, c.GetRevision(), c)
			}
		}
		total += len(got)
		// Resume after a revision.
		rest, _ := e.employment(from, 2)
		if !proto.Equal(&receivingv1.ListEmploymentChangesResponse{Changes: rest}, &receivingv1.ListEmploymentChangesResponse{Changes: got[2:]}) {
			t.Errorf("%s after revision 2: %v, want %v", from, facts(rest), facts(got[2:]))
		}
	}
	if n := len(e.ledgerEvents()); n != total {
		t.Errorf("%d ledger events in the outbox, %d feed changes: each fact is both", n, total)
	}

	gz, _ := e.employment(sending, 0)
	if cp := gz[3].GetCheckpoint(); cp.GetMonths() != 1 || !cp.GetStillEmployed() {
		t.Errorf("checkpoint detail %v", gz[3])
	}
	if in := gz[2].GetIncident(); in.GetIncidentKind() != receivingv1.IncidentKind_INCIDENT_KIND_INJURY || in.GetDetail() != "左手" {
		t.Errorf("incident detail %v", gz[2])
	}
	if strings.Contains(prototext.Format(gz[2]), "装配线") {
		t.Errorf("the incident's description is in the feed: %v", gz[2])
	}
	gx, _ := e.employment(guangxi, 0)
	if gx[3].GetLeftJob().GetReason() != "家中有事，返乡" {
		t.Errorf("left-job detail %v", gx[3])
	}
	if got, want := gz[0].GetOccurTime().AsTime(), e.record("employmentRecords/"+sending+"-b1-w-1").GetArrivalTime().AsTime(); !got.Equal(want) {
		t.Errorf("arrival occur_time %v, want the arrival time %v", got, want)
	}

	// The feed survives a restart, and continues with the next revision.
	e.restart()
	for _, from := range []string{sending, guangxi} {
		before := map[string][]*receivingv1.EmploymentChange{sending: gz, guangxi: gx}[from]
		after, _ := e.employment(from, 0)
		if len(after) != len(before) {
			t.Fatalf("%s after a restart: %d changes, want %d", from, len(after), len(before))
		}
		for i := range after {
			if !proto.Equal(after[i], before[i]) {
				t.Errorf("%s change %d after a restart: %v, want %v", from, i+1, after[i], before[i])
			}
		}
	}
	if _, err := e.intake.RecordJobLeft(ctx(t), &receivingv1.RecordJobLeftRequest{WorkerId: sending + "-b1-w-1", LeftDate: today(e.clock.Now()), Reason: "合同期满"}); err != nil {
		t.Fatal(err)
	}
	if got, head := e.employment(sending, int64(len(gz))); len(got) != 1 || got[0].GetRevision() != 6 || got[0].GetKind() != kindLeftJob || head != 6 {
		t.Errorf("after a restart the next change is %v (head %d), want LEFT_JOB at revision 6", got, head)
	}
	if got, head := e.employment(guangxi, int64(len(gx))); len(got) != 0 || head != 4 {
		t.Errorf("Guangxi's feed moved with Guizhou's fact: %v, head %d", got, head)
	}
}

// A watch sends the backlog after its revision, then a caught-up progress notice with the head,
// then live changes as they are committed, each message with the feed's head revision; a
// province's watch sees nothing of another province's facts (its head is its own feed's).
func TestEmploymentWatch(t *testing.T) {
	t.Parallel()
	tickers := make(testTickers, 2)
	e := newEnv(t, func(c *Config) { c.ProgressTicker = tickers.ticker })
	b := e.intakeScenarioFrom(sending, sending+"-b1", 3)
	gx := e.intakeScenarioFrom(guangxi, guangxi+"-b1", 2)
	e.clock.Add(20 * time.Hour)
	if err := e.confirm(b, map[string]receivingv1.ArrivalOutcome{sending + "-b1-w-1": outcomeArrived, sending + "-b1-w-2": outcomeArrived}); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	stream, err := e.emp.WatchEmployment(sctx, &receivingv1.WatchEmploymentRequest{SendingRegion: sending, AfterRevision: 1})
	if err != nil {
		t.Fatal(err)
	}
	ticks := <-tickers
	var got []watchMsg
	next := func() *receivingv1.WatchEmploymentResponse {
		t.Helper()
		r, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, watchMsg{r.GetChange().GetRevision(), r.GetProgress().GetCaughtUp(), r.GetHeadRevision()})
		return r
	}
	if r := next(); r.GetChange().GetWorkerId() != sending+"-b1-w-2" { // the backlog after revision 1
		t.Errorf("backlog: %v", r)
	}
	next() // caught up at head 2
	if err := e.confirm(gx, map[string]receivingv1.ArrivalOutcome{guangxi + "-b1-w-1": outcomeArrived}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.intake.RecordOnboarding(ctx(t), &receivingv1.RecordOnboardingRequest{WorkerId: sending + "-b1-w-1", OnboardDate: today(e.clock.Now())}); err != nil {
		t.Fatal(err)
	}
	if r := next(); r.GetChange().GetKind() != kindOnboarded { // live; Guangxi's arrival is not in it
		t.Errorf("live change: %v", r)
	}
	ticks <- time.Time{}
	next()
	want := []watchMsg{{2, false, 2}, {0, true, 2}, {3, false, 3}, {0, true, 3}}
	if !slices.Equal(got, want) {
		t.Fatalf("employment watch sent %v, want %v ({revision caught_up head}, revision 0: progress notice)", got, want)
	}

	// Guangxi's watch from the start: its own arrival only.
	gs, err := e.emp.WatchEmployment(sctx, &receivingv1.WatchEmploymentRequest{SendingRegion: guangxi})
	if err != nil {
		t.Fatal(err)
	}
	<-tickers
	r, err := gs.Recv()
	if err != nil || r.GetChange().GetRevision() != 1 || r.GetChange().GetWorkerId() != guangxi+"-b1-w-1" || r.GetHeadRevision() != 1 {
		t.Fatalf("Guangxi's watch: %v, %v", r, err)
	}
	if r, err := gs.Recv(); err != nil || !r.GetProgress().GetCaughtUp() || r.GetHeadRevision() != 1 {
		t.Fatalf("Guangxi's watch after its one change: %v, %v", r, err)
	}
}

// Each province's feed is compacted to the newest FeedRetention changes on its own; a position
// compacted away is FAILED_PRECONDITION REVISION_COMPACTED with compacted_revision, for a watch
// and a list, and following from compacted_revision works. A position ahead of the head is
// REVISION_AHEAD.
func TestEmploymentFeedCompaction(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.FeedRetention = 2 })
	want := e.feedScenario() // Guizhou 5 changes, Guangxi 4
	removed, err := e.svc.compactEmployment(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if removed[sending] != 3 || removed[guangxi] != 2 || len(removed) != 2 {
		t.Fatalf("compaction removed %v, want 3 of %s and 2 of %s", removed, sending, guangxi)
	}
	for _, after := range []int64{0, 2} {
		_, err := e.emp.ListEmploymentChanges(ctx(t), &receivingv1.ListEmploymentChangesRequest{SendingRegion: sending, AfterRevision: after})
		st := wantCode(t, err, codes.FailedPrecondition, "REVISION_COMPACTED")
		if md := metadata(st); md["compacted_revision"] != "3" {
			t.Errorf("after %d: metadata %v, want compacted_revision 3", after, md)
		}
		if !strings.Contains(st.Message(), "ListEmploymentRecords") {
			t.Errorf("message %q does not say to re-read the trips with ListEmploymentRecords", st.Message())
		}
		stream, err := e.emp.WatchEmployment(ctx(t), &receivingv1.WatchEmploymentRequest{SendingRegion: sending, AfterRevision: after})
		if err == nil {
			_, err = stream.Recv()
		}
		wantCode(t, err, codes.FailedPrecondition, "REVISION_COMPACTED")
	}
	kept, head := e.employment(sending, 3)
	if !slices.Equal(facts(kept), want[sending][3:]) || kept[0].GetRevision() != 4 || head != 5 {
		t.Errorf("kept after compacted_revision: %v (head %d)", facts(kept), head)
	}
	if kept, _ := e.employment(guangxi, 2); !slices.Equal(facts(kept), want[guangxi][2:]) {
		t.Errorf("Guangxi kept %v", facts(kept))
	}
	_, err = e.emp.ListEmploymentChanges(ctx(t), &receivingv1.ListEmploymentChangesRequest{SendingRegion: sending, AfterRevision: 6})
	wantCode(t, err, codes.FailedPrecondition, "REVISION_AHEAD")
	// Compacting again removes nothing more.
	if removed, err := e.svc.compactEmployment(ctx(t)); err != nil || len(removed) != 0 {
		t.Errorf("second compaction: %v, %v", removed, err)
	}
}

// Only a paired sending province's feed is served; a request naming no province, a code that is
// not a province, or a negative revision is INVALID_ARGUMENT on its field.
func TestEmploymentFeedRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, err := e.emp.ListEmploymentChanges(ctx(t), &receivingv1.ListEmploymentChangesRequest{SendingRegion: unpaired})
	wantCode(t, err, codes.PermissionDenied, "NOT_PAIRED")
	stream, err := e.emp.WatchEmployment(ctx(t), &receivingv1.WatchEmploymentRequest{SendingRegion: unpaired})
	if err == nil {
		_, err = stream.Recv()
	}
	wantCode(t, err, codes.PermissionDenied, "NOT_PAIRED")

	tests := []struct {
		name  string
		call  func() error
		field string
	}{
		{"no province", func() error {
			_, err := e.emp.ListEmploymentChanges(ctx(t), &receivingv1.ListEmploymentChangesRequest{})
			return err
		}, "sending_region"},
		{"a county, not a province", func() error {
			_, err := e.emp.ListEmploymentChanges(ctx(t), &receivingv1.ListEmploymentChangesRequest{SendingRegion: homeCounty})
			return err
		}, "sending_region"},
		{"negative revision", func() error {
			_, err := e.emp.ListEmploymentChanges(ctx(t), &receivingv1.ListEmploymentChangesRequest{SendingRegion: sending, AfterRevision: -1})
			return err
		}, "after_revision"},
		{"negative page size", func() error {
			_, err := e.emp.ListEmploymentChanges(ctx(t), &receivingv1.ListEmploymentChangesRequest{SendingRegion: sending, PageSize: -1})
			return err
		}, "page_size"},
		{"watch, negative revision", func() error {
			s, err := e.emp.WatchEmployment(ctx(t), &receivingv1.WatchEmploymentRequest{SendingRegion: sending, AfterRevision: -1})
			if err == nil {
				_, err = s.Recv()
			}
			return err
		}, "after_revision"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := violations(t, tt.call()); got[tt.field] == "" {
				t.Errorf("violations %v, want one on %s", got, tt.field)
			}
		})
	}
}

// metadata is the ErrorInfo metadata of st.
func metadata(st *status.Status) map[string]string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetMetadata()
		}
	}
	return nil
}

// A file of schema version 4 has employment records but no employment feeds: it opens with
// version 5 and each sending province's feed is built from the stored records, worker by worker
// (in worker-id order) and each worker's trips in the order they were announced, from revision
// 1, with the changes the live service wrote for the same facts (a NO_SHOW dated at the batch's
// expected arrival, since a record keeps no time of it); new facts continue the revisions.
func TestOpenVersion4FileBuildsEmploymentFeeds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.feedScenario()
	// A second trip of Guizhou's no-show worker, who then arrives.
	gz2 := sending + "-b1-w-2"
	v := e.createVacancy(goodVacancy(t))
	e.accept(e.submit(candidate(v.GetName(), gz2))[0].GetName())
	b2 := e.announceOne(sending+"-b2", gz2, v.GetName(), true)
	e.clock.Add(20 * time.Hour)
	if err := e.confirm(b2, map[string]receivingv1.ArrivalOutcome{gz2: outcomeArrived}); err != nil {
		t.Fatal(err)
	}
	live := map[string][]*receivingv1.EmploymentChange{}
	for _, from := range []string{sending, guangxi} {
		live[from], _ = e.employment(from, 0)
	}
	e.stop()
	// Version 4 is this file without the feeds: drop them and mark the file version 4.
	raw, err := bbolt.Open(e.path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Update(func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket([]byte("employmentChanges")); err != nil {
			return err
		}
		counters := tx.Bucket(store.BucketCounters)
		var drop [][]byte
		if err := counters.ForEach(func(k, _ []byte) error {
			if strings.HasPrefix(string(k), "employment.") {
				drop = append(drop, bytes.Clone(k))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range drop {
			if err := counters.Delete(k); err != nil {
				return err
			}
		}
		return tx.Bucket(store.BucketMeta).Put([]byte("version"), store.Uint64Key(4))
	}); err != nil {
		t.Fatal(err)
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}

	e.start()
	gz1, gx1, gx2 := sending+"-b1-w-1", guangxi+"-b1-w-1", guangxi+"-b1-w-2"
	want := map[string][]fact{
		sending: {{kindArrived, gz1}, {kindOnboarded, gz1}, {kindIncident, gz1}, {kindCheckpoint, gz1}, {kindNoShow, gz2}, {kindArrived, gz2}},
		guangxi: {{kindArrived, gx1}, {kindOnboarded, gx1}, {kindLeftJob, gx1}, {kindNoShow, gx2}},
	}
	batches := map[string]*receivingv1.IntakeBatch{}
	for _, from := range []string{sending, guangxi} {
		got, head := e.employment(from, 0)
		if !slices.Equal(facts(got), want[from]) || head != int64(len(want[from])) {
			t.Fatalf("%s feed built from the records: %v (head %d), want %v", from, facts(got), head, want[from])
		}
		for i, c := range got {
			if c.GetRevision() != int64(i+1) {
				t.Errorf("%s built change %d has revision %d", from, i, c.GetRevision())
			}
			var same *receivingv1.EmploymentChange
			for _, l := range live[from] {
				if l.GetKind() == c.GetKind() && l.GetRecord() == c.GetRecord() {
					same = proto.Clone(l).(*receivingv1.EmploymentChange)
				}
			}
			if same == nil {
				t.Fatalf("%s built change %v was never written live", from, c)
			}
			c = proto.Clone(c).(*receivingv1.EmploymentChange)
			if c.GetKind() == kindNoShow {
				if batches[c.GetBatchId()] == nil {
					resp, err := e.intake.GetIntakeBatch(ctx(t), &receivingv1.GetIntakeBatchRequest{Name: "intakeBatches/" + c.GetBatchId()})
					if err != nil {
						t.Fatal(err)
					}
					batches[c.GetBatchId()] = resp.GetBatch()
				}
				if !c.GetOccurTime().AsTime().Equal(batches[c.GetBatchId()].GetExpectedArrivalTime().AsTime()) {
					t.Errorf("built NO_SHOW dated %v, want the batch's expected arrival", c.GetOccurTime().AsTime())
				}
				c.OccurTime, same.OccurTime = nil, nil
			}
			c.Revision, c.ChangeTime, same.Revision, same.ChangeTime = 0, nil, 0, nil
			if !proto.Equal(c, same) {
				t.Errorf("%s built change\n%v\nwant as written live\n%v", from, c, same)
			}
		}
	}
	if _, err := e.intake.RecordJobLeft(ctx(t), &receivingv1.RecordJobLeftRequest{WorkerId: gz1, LeftDate: today(e.clock.Now()), Reason: "合同期满"}); err != nil {
		t.Fatal(err)
	}
	e.restart() // version 5 now: opens without a migration, keeps the built feed
	if got, head := e.employment(sending, 6); len(got) != 1 || got[0].GetRevision() != 7 || got[0].GetKind() != kindLeftJob || head != 7 {
		t.Errorf("the next fact after the upgrade: %v (head %d), want LEFT_JOB at revision 7", facts(got), head)
	}
}

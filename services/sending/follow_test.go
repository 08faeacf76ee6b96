package sending

import (
	"fmt"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/receiving"
	"github.com/eastwest/labourlink/services/sending/demand"
)

// waitReplica waits until the sending service's replica equals the receiving service's open
// demand, its demand position is the feed's head and the demand watch has answered (the replica
// is known current).
func waitReplica(t *testing.T, r *recvNode, n *sendNode) {
	t.Helper()
	ctx := testCtx(t)
	eventually(t, "the replica to catch up with the receiving service", func() (bool, string) {
		head := r.head()
		pos, err := n.followPosition(ctx)
		if err != nil {
			return false, err.Error()
		}
		if pos.GetDemandRevision() != head {
			return false, fmt.Sprintf("demand position %d, head %d (last error %q)", pos.GetDemandRevision(), head, pos.GetLastError())
		}
		if f := pos.GetDemandFreshness(); !f.GetConnected() || f.GetCurrentAsOf() == nil {
			return false, fmt.Sprintf("demand watch not answering yet: %v", f)
		}
		got, err := n.replica(ctx)
		if err != nil {
			return false, err.Error()
		}
		return sameDemand(got, r.openDemand())
	})
}

func (r *recvNode) closeVacancy(v *receivingv1.Vacancy) {
	r.t.Helper()
	if _, err := r.vac.CloseVacancy(testCtx(r.t), &receivingv1.CloseVacancyRequest{Name: v.GetName()}); err != nil {
		r.t.Fatalf("CloseVacancy: %v", err)
	}
}

func (r *recvNode) setHeadcount(v *receivingv1.Vacancy, n int32) {
	r.t.Helper()
	_, err := r.vac.UpdateVacancy(testCtx(r.t), &receivingv1.UpdateVacancyRequest{
		Vacancy:    &receivingv1.Vacancy{Name: v.GetName(), Headcount: n},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"headcount"}},
	})
	if err != nil {
		r.t.Fatalf("UpdateVacancy: %v", err)
	}
}

// TestFollowDemandListsWatchesAndResumes: a sending service that starts without a position
// lists the open demand, then follows the feed; stopped and restarted while vacancies change,
// it resumes from its position: its replica equals the receiving service's open demand, and
// its counters show every change after the listing applied exactly once.
func TestFollowDemandListsWatchesAndResumes(t *testing.T) {
	r := startReceiving(t)
	var vs []*receivingv1.Vacancy
	for i := range 4 {
		vs = append(vs, r.createVacancy(testVacancy(t, i, flowCounty, "8212", 5)))
	}
	r.closeVacancy(vs[0]) // not open: not listed
	listedAt := r.head()

	n := startSending(t, "", fastConfig(r.addr), true)
	waitReplica(t, r, n)

	// Changes while following: created, updated, closed.
	for i := 4; i < 7; i++ {
		vs = append(vs, r.createVacancy(testVacancy(t, i, flowCounty2, "GENERAL", 3)))
	}
	r.setHeadcount(vs[1], 9)
	r.closeVacancy(vs[2])
	waitReplica(t, r, n)

	// Changes while the sending service is down.
	n.stop()
	vs = append(vs, r.createVacancy(testVacancy(t, 7, flowCounty, "9313", 2)))
	r.setHeadcount(vs[4], 8)
	r.closeVacancy(vs[5])
	n.start(true)
	waitReplica(t, r, n)

	ctx := testCtx(t)
	eventually(t, "both feeds connected", func() (bool, string) {
		pos, err := n.followPosition(ctx)
		if err != nil {
			return false, err.Error()
		}
		return pos.GetConnected(), fmt.Sprintf("%+v", pos)
	})
	counts, err := n.svc.demand.FeedCounters(flowReceiving)
	if err != nil {
		t.Fatal(err)
	}
	head := r.head()
	if got, want := counts["demand.applied"], uint64(head-listedAt); got != want {
		t.Errorf("changes applied = %d, want %d (the revisions after the listing at %d up to %d)", got, want, listedAt, head)
	}
	if counts["demand.repeated"] != 0 || counts["demand.stale"] != 0 {
		t.Errorf("changes repeated = %d, stale = %d; want none", counts["demand.repeated"], counts["demand.stale"])
	}
	if counts["demand.listed"] != 3 {
		t.Errorf("vacancies listed = %d, want 3", counts["demand.listed"])
	}
}

// TestFollowDemandRelistsAfterCompaction: when the feed no longer keeps the changes after the
// stored position, the follower re-lists the open demand and follows from there; a vacancy
// closed meanwhile leaves the open demand but keeps its data for transport planning.
func TestFollowDemandRelistsAfterCompaction(t *testing.T) {
	r := startReceiving(t, func(c *receiving.Config) {
		c.FeedRetention = 3
		c.MaintenanceInterval = 20 * time.Millisecond
	})
	v0 := r.createVacancy(testVacancy(t, 0, flowCounty, "8212", 5))
	v1 := r.createVacancy(testVacancy(t, 1, flowCounty, "8212", 5))
	n := startSending(t, "", fastConfig(r.addr), true)
	waitReplica(t, r, n)
	pos, err := n.followPosition(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}

	n.stop()
	r.closeVacancy(v0)
	r.setHeadcount(v1, 7)
	for i := 2; i < 8; i++ {
		r.createVacancy(testVacancy(t, i, flowCounty2, "GENERAL", 4))
	}
	eventually(t, "the receiving feed to compact past the sending position", func() (bool, string) {
		_, err := r.feed.ListDemandChanges(testCtx(t), &receivingv1.ListDemandChangesRequest{SendingRegion: rosterRegion, AfterRevision: pos.GetDemandRevision()})
		return hasCode(err, codes.FailedPrecondition), fmt.Sprint(err)
	})

	n.start(true)
	waitReplica(t, r, n)
	counts, err := n.svc.demand.FeedCounters(flowReceiving)
	if err != nil {
		t.Fatal(err)
	}
	if counts["demand.listed"] < 7 {
		t.Errorf("vacancies listed = %d, want at least 7 (2 at the start, then the re-listing)", counts["demand.listed"])
	}
	var dv *sendingv1.DemandVacancy
	err = n.db.View(func(tx *bbolt.Tx) error {
		var err error
		dv, _, err = demand.Vacancy(tx, flowReceiving, v0.GetVacancyId())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if dv.GetVacancy().GetStatus() == receivingv1.VacancyStatus_VACANCY_STATUS_OPEN || dv.GetVacancy().GetWorkCounty() != flowCounty {
		t.Errorf("closed vacancy in the replica = %v, want not open with its data kept", &dv)
	}
}

// hasCode reports whether err has the gRPC code.
func hasCode(err error, code codes.Code) bool {
	return err != nil && status.Code(err) == code
}

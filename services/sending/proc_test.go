package sending

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/devtools/proctest"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending/demand"
)

// TestFeedConsumerKilledMissesAndRepeatsNothing runs a receiving and a sending service as real
// processes. While vacancies are created, changed and closed on the receiving side, the sending
// process is killed with SIGKILL twice and started again on its data. In the end its replica
// equals the receiving service's open demand and its counters show that every revision of the
// feed was applied exactly once: applied = head, none repeated, none stale.
func TestFeedConsumerKilledMissesAndRepeatsNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs real processes")
	}
	recvDir, sendDir := t.TempDir(), t.TempDir()
	recv := proctest.Start(t, "receiving", "", "-region", flowReceiving, "-data", recvDir, "-coordination", "", "-log-level", "warn")
	sendArgs := []string{"-region", rosterRegion, "-data", sendDir, "-coordination", "", "-receiving", flowReceiving + "=" + recv.Addr, "-log-level", "warn"}
	send := proctest.Start(t, "sending", "", sendArgs...)
	sendAddr := send.Addr

	rc := recv.Conn()
	defer rc.Close()
	r := &recvNode{t: t, vac: receivingv1.NewVacancyServiceClient(rc), feed: receivingv1.NewDemandFeedServiceClient(rc)}
	sendClient := func() (*sendNode, func()) {
		cc := send.Conn()
		return &sendNode{t: t, matching: sendingv1.NewMatchingServiceClient(cc)}, func() { cc.Close() }
	}
	n, closeN := sendClient()
	ctx := testCtx(t)
	// The first listing (of nothing, at revision 0) is done once both streams are open: every
	// vacancy then reaches the sending service as a feed change.
	eventually(t, "the sending service to follow the feeds", func() (bool, string) {
		pos, err := n.followPosition(ctx)
		return err == nil && pos.GetConnected(), fmt.Sprint(pos, err)
	})
	closeN()

	// The creator makes changes until told to stop: a new vacancy each time, and every few a
	// headcount change or a closing of an earlier one.
	var created atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var vs []*receivingv1.Vacancy
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			resp, err := r.vac.CreateVacancy(cctx, &receivingv1.CreateVacancyRequest{Vacancy: testVacancy(t, i, flowCounty, "8212", 5)})
			if err != nil {
				cancel()
				t.Errorf("CreateVacancy: %v", err)
				return
			}
			vs = append(vs, resp.GetVacancy())
			switch {
			case i%5 == 4:
				r.setHeadcountCtx(cctx, vs[i-2], int32(6+i%4))
			case i%7 == 6:
				_, err = r.vac.CloseVacancy(cctx, &receivingv1.CloseVacancyRequest{Name: vs[i-3].GetName()})
			}
			cancel()
			if err != nil {
				t.Errorf("change vacancy: %v", err)
				return
			}
			created.Add(1)
		}
	}()
	waitCreated := func(k int64) {
		eventually(t, fmt.Sprintf("%d vacancies created", k), func() (bool, string) {
			return created.Load() >= k, fmt.Sprint(created.Load())
		})
	}
	for round := 1; round <= 2; round++ {
		waitCreated(int64(60 * round))
		n, closeN := sendClient()
		eventually(t, "the sending service to be applying changes", func() (bool, string) {
			pos, err := n.followPosition(ctx)
			return err == nil && pos.GetDemandRevision() >= int64(40*round), fmt.Sprint(pos, err)
		})
		closeN()
		send.Kill() // while the creator goes on
		waitCreated(int64(60*round + 30))
		send = proctest.Start(t, "sending", sendAddr, sendArgs...)
	}
	waitCreated(200)
	close(stop)
	wg.Wait()

	n, closeN = sendClient()
	defer closeN()
	head := r.head()
	eventually(t, "the replica to catch up", func() (bool, string) {
		pos, err := n.followPosition(ctx)
		if err != nil {
			return false, err.Error()
		}
		if pos.GetDemandRevision() != head {
			return false, fmt.Sprintf("position %d, head %d", pos.GetDemandRevision(), head)
		}
		got, err := n.replica(ctx)
		if err != nil {
			return false, err.Error()
		}
		return sameDemand(got, r.openDemand())
	})
	send.Stop()

	db, err := store.Open(filepath.Join(sendDir, "sending.db"), Schema, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	counts, err := demand.New(db, nil, demand.Config{}).FeedCounters(flowReceiving)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("feed head %d; counters %v", head, counts)
	if counts["demand.applied"] != uint64(head) || counts["demand.repeated"] != 0 || counts["demand.stale"] != 0 || counts["demand.listed"] != 0 {
		t.Fatalf("counters %v, want %d changes applied once each and nothing repeated, stale or listed", counts, head)
	}
}

func (r *recvNode) setHeadcountCtx(ctx context.Context, v *receivingv1.Vacancy, n int32) {
	req := &receivingv1.UpdateVacancyRequest{Vacancy: &receivingv1.Vacancy{Name: v.GetName(), Headcount: n}}
	req.UpdateMask = &fieldmaskpb.FieldMask{Paths: []string{"headcount"}}
	if _, err := r.vac.UpdateVacancy(ctx, req); err != nil {
		r.t.Errorf("UpdateVacancy: %v", err)
	}
}

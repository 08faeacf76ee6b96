package sending

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/devtools/faultproxy"
	"github.com/eastwest/labourlink/services/receiving"
	"github.com/eastwest/labourlink/services/sending/demand"
)

// healthLog records what a sending service publishes with Config.Health.
type healthLog struct {
	mu   sync.Mutex
	last map[string]bool
}

func (h *healthLog) set(name string, serving bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.last == nil {
		h.last = map[string]bool{}
	}
	h.last[name] = serving
}

// serving returns the last status published for name and whether one was.
func (h *healthLog) serving(name string) (bool, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.last[name]
	return v, ok
}

// linkConfig is fastConfig through a fault proxy, with a short watch silence and link grace
// (the receiving side sends progress notices every 20 ms: fastFeeds).
func linkConfig(p *faultproxy.Proxy, h *healthLog) Config {
	cfg := fastConfig(p.Addr())
	cfg.FeedSilence = 400 * time.Millisecond
	cfg.LinkGrace = 200 * time.Millisecond
	if h != nil {
		cfg.Health = h.set
	}
	return cfg
}

func fastFeeds(c *receiving.Config) { c.ProgressInterval = 20 * time.Millisecond }

const guangdongLink = "labourlink.link.receiving.440000"

// TestFollowerSeesBlackholedLink: when the link to the receiving service is blackholed (the
// connection stays open, nothing gets through), follow status says within seconds that the
// watches are not connected, with a timed last error, and the link's health name turns
// NOT_SERVING; once the link is back the error is cleared, the watches are connected, the
// replica is current again and the health is SERVING. The service's own health names are not
// the link's.
func TestFollowerSeesBlackholedLink(t *testing.T) {
	r := startReceiving(t, fastFeeds)
	r.createVacancy(testVacancy(t, 1, flowCounty, "8212", 5))
	proxy := faultproxy.Start(t, r.addr)
	var health healthLog
	n := startSending(t, "", linkConfig(proxy, &health), true)
	waitReplica(t, r, n)
	ctx := testCtx(t)
	eventually(t, "the link SERVING", func() (bool, string) {
		ok, seen := health.serving(guangdongLink)
		return ok, fmt.Sprintf("published %v (seen %v)", ok, seen)
	})
	if slices.Contains(n.svc.ServiceNames(), guangdongLink) {
		t.Fatalf("the link's health name %s is one of the service's own names", guangdongLink)
	}

	blackholed := time.Now()
	proxy.Blackhole()
	var down *sendingv1.FollowPosition
	eventually(t, "follow status to show the link down", func() (bool, string) {
		p, err := n.followPosition(ctx)
		if err != nil {
			return false, err.Error()
		}
		down = p
		return !p.GetConnected() && !p.GetDemandFreshness().GetConnected() && p.GetLastError() != "" && p.GetLastErrorTime() != nil,
			fmt.Sprintf("%v", p)
	})
	t.Logf("link seen down after %v: %s", time.Since(blackholed).Round(10*time.Millisecond), down.GetLastError())
	if errAt := down.GetLastErrorTime().AsTime(); errAt.Before(blackholed) {
		t.Errorf("last error time %v is before the blackhole (%v)", errAt, blackholed)
	}
	if !strings.Contains(down.GetLastError(), "nothing received") {
		t.Errorf("last error %q does not say the feed went silent", down.GetLastError())
	}
	// A message already on its way when the proxy went dark may land just after the blackhole,
	// so the last message is compared with the error it led to: the link was called silent
	// after the last thing it received.
	if down.GetLastMessageTime() == nil || down.GetLastMessageTime().AsTime().After(down.GetLastErrorTime().AsTime()) {
		t.Errorf("last message time %v, want a time before the error's (%v)", down.GetLastMessageTime(), down.GetLastErrorTime())
	}
	eventually(t, "the link NOT_SERVING", func() (bool, string) {
		ok, seen := health.serving(guangdongLink)
		return seen && !ok, fmt.Sprintf("published %v (seen %v)", ok, seen)
	})

	proxy.Restore()
	eventually(t, "follow status to show the link back and the error cleared", func() (bool, string) {
		p, err := n.followPosition(ctx)
		if err != nil {
			return false, err.Error()
		}
		f := p.GetDemandFreshness()
		return p.GetConnected() && p.GetLastError() == "" && p.GetLastErrorTime() == nil &&
				f.GetConnected() && f.GetCurrentAsOf().AsTime().After(blackholed),
			fmt.Sprintf("%v", p)
	})
	eventually(t, "the link SERVING again", func() (bool, string) {
		ok, seen := health.serving(guangdongLink)
		return ok, fmt.Sprintf("published %v (seen %v)", ok, seen)
	})
}

// TestFollowerSeesReceivingStopped: a receiving service that stops (its connections closed)
// shows as not connected with a timed error; started again on the same address it is
// followed again and the error is cleared.
func TestFollowerSeesReceivingStopped(t *testing.T) {
	r := startReceiving(t, fastFeeds)
	n := startSending(t, "", fastConfig(r.addr), true)
	waitReplica(t, r, n)
	ctx := testCtx(t)
	r.stop()
	eventually(t, "follow status to show the link down", func() (bool, string) {
		p, err := n.followPosition(ctx)
		if err != nil {
			return false, err.Error()
		}
		return !p.GetConnected() && p.GetLastError() != "" && p.GetLastErrorTime() != nil, fmt.Sprintf("%v", p)
	})
	r.start()
	eventually(t, "the error cleared", func() (bool, string) {
		p, err := n.followPosition(ctx)
		if err != nil {
			return false, err.Error()
		}
		return p.GetConnected() && p.GetLastError() == "" && p.GetLastErrorTime() == nil, fmt.Sprintf("%v", p)
	})
}

// startMatch starts a match run and returns the error of StartMatchRun.
func (n *sendNode) startMatch(req *sendingv1.StartMatchRunRequest) (*sendingv1.MatchRun, error) {
	if req.RequestId == "" {
		req.RequestId = fmt.Sprintf("run-%d", time.Now().UnixNano())
	}
	resp, err := n.matching.StartMatchRun(testCtx(n.t), req)
	return resp.GetMatchRun(), err
}

// waitRun waits for run name to end and returns it.
func (n *sendNode) waitRun(name string) *sendingv1.MatchRun {
	n.t.Helper()
	var run *sendingv1.MatchRun
	eventually(n.t, "the match run to end", func() (bool, string) {
		got, err := n.matching.GetMatchRun(testCtx(n.t), &sendingv1.GetMatchRunRequest{Name: name})
		if err != nil {
			return false, err.Error()
		}
		run = got.GetMatchRun()
		return run.GetState() != runRunning, run.GetStage()
	})
	return run
}

// TestMatchRunOnStaleReplica: with the link to the receiving service down (a partition) and
// the demand closed meanwhile, a match run is warned while the replica is behind by less than
// max_replica_staleness, and refused with REPLICA_STALE naming the province beyond it; a larger
// limit allows it, with a warning; once the link is back the replica is current, the closed
// vacancy is gone and a run has no warning. The replica's freshness survives a restart (it is
// stored). The clock is the test's: staleness is exact.
func TestMatchRunOnStaleReplica(t *testing.T) {
	r := startReceiving(t, fastFeeds)
	vac := r.createVacancy(testVacancy(t, 1, flowCounty, "8212", 20))
	proxy := faultproxy.Start(t, r.addr)
	clock := &testClock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, civil.Zone)}
	cfg := linkConfig(proxy, nil)
	cfg.Now = clock.now
	n := startSending(t, "", cfg, true)
	workers := n.importWorkers(mixedRows(40))
	waitReplica(t, r, n)
	ctx := testCtx(t)

	fresh := n.runMatch(true)
	if len(fresh.GetWarnings()) != 0 || len(fresh.GetReplicas()) != 1 || fresh.GetReplicas()[0].GetStaleness().AsDuration() != 0 ||
		!fresh.GetReplicas()[0].GetConnected() || fresh.GetOpenings() != 20 {
		t.Fatalf("run on a current replica: warnings %q, replicas %v, openings %d", fresh.GetWarnings(), fresh.GetReplicas(), fresh.GetOpenings())
	}

	// The partition: the link is blackholed, then the employer closes the vacancy.
	proxy.Blackhole()
	eventually(t, "the demand watch down", func() (bool, string) {
		p, err := n.followPosition(ctx)
		return err == nil && !p.GetDemandFreshness().GetConnected(), fmt.Sprint(p, err)
	})
	r.closeVacancy(vac)
	knownAt := clock.now()

	clock.set(knownAt.Add(time.Minute))
	run, err := n.startMatch(&sendingv1.StartMatchRunRequest{DryRun: true})
	if err != nil {
		t.Fatalf("a replica behind by 1m (limit 5m): %v", err)
	}
	run = n.waitRun(run.GetName())
	if run.GetState() != runSucceeded || len(run.GetWarnings()) != 1 || !strings.Contains(run.GetWarnings()[0], "440000") ||
		!strings.Contains(run.GetWarnings()[0], "1m0s ago") {
		t.Fatalf("run on a replica behind by 1m: %s, warnings %q, want one warning naming 440000", run.GetState(), run.GetWarnings())
	}
	if f := run.GetReplicas(); len(f) != 1 || f[0].GetStaleness().AsDuration() != time.Minute || f[0].GetConnected() ||
		!f[0].GetCurrentAsOf().AsTime().Equal(knownAt) {
		t.Fatalf("replicas of the run = %v, want 440000 behind by 1m, current as of %v, not connected", f, knownAt)
	}

	clock.set(knownAt.Add(6 * time.Minute))
	_, err = n.startMatch(&sendingv1.StartMatchRunRequest{})
	st := wantCode(t, err, codes.FailedPrecondition)
	info := errorInfo(err)
	if info.GetReason() != "REPLICA_STALE" || info.GetMetadata()["receiving_regions"] != flowReceiving ||
		!strings.Contains(st.Message(), "440000") || !strings.Contains(st.Message(), "6m0s ago") {
		t.Fatalf("run on a replica behind by 6m: %v (%v), want REPLICA_STALE naming 440000", err, info)
	}
	t.Logf("the operator reads: %s", st.Message())
	if got := countStatus(n.statuses(workers), stProposed); got != 0 {
		t.Fatalf("%d workers proposed by a refused run", got)
	}

	// A restart keeps what was known: the replica is still known current as of knownAt.
	n.restart(true)
	p, err := n.followPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f := p.GetDemandFreshness(); !f.GetCurrentAsOf().AsTime().Equal(knownAt) || f.GetStaleness().AsDuration() != 6*time.Minute {
		t.Fatalf("after a restart the replica is %v, want current as of %v (6m ago)", f, knownAt)
	}
	_, err = n.startMatch(&sendingv1.StartMatchRunRequest{})
	wantCode(t, err, codes.FailedPrecondition)

	// A larger limit allows it, with a warning.
	run, err = n.startMatch(&sendingv1.StartMatchRunRequest{DryRun: true, MaxReplicaStaleness: durationpb.New(10 * time.Minute)})
	if err != nil {
		t.Fatalf("limit 10m: %v", err)
	}
	if run = n.waitRun(run.GetName()); run.GetState() != runSucceeded || len(run.GetWarnings()) != 1 {
		t.Fatalf("run with limit 10m: %s, warnings %q", run.GetState(), run.GetWarnings())
	}

	// A negative limit is refused with the field.
	_, err = n.startMatch(&sendingv1.StartMatchRunRequest{MaxReplicaStaleness: durationpb.New(-time.Second)})
	if fields := violationFields(t, err); !slices.Equal(fields, []string{"max_replica_staleness"}) {
		t.Fatalf("negative max_replica_staleness: violations %v", fields)
	}

	// The link is back: the replica is current again and the closed vacancy is gone.
	proxy.Restore()
	eventually(t, "the replica current again", func() (bool, string) {
		p, err := n.followPosition(ctx)
		if err != nil {
			return false, err.Error()
		}
		f := p.GetDemandFreshness()
		return f.GetConnected() && f.GetStaleness().AsDuration() == 0, fmt.Sprint(f)
	})
	waitReplica(t, r, n)
	run = n.runMatch(false)
	if len(run.GetWarnings()) != 0 || run.GetOpenings() != 0 || run.GetProposed() != 0 {
		t.Fatalf("run after the partition: warnings %q, openings %d, proposed %d; want none (the vacancy closed)",
			run.GetWarnings(), run.GetOpenings(), run.GetProposed())
	}
	if dv := mustReplica(t, n, vac.GetVacancyId()); dv.GetVacancy().GetStatus() == receivingv1.VacancyStatus_VACANCY_STATUS_OPEN {
		t.Fatalf("the closed vacancy is open in the replica")
	}
}

// mustReplica reads the replica's record of a vacancy of the test's receiving province.
func mustReplica(t *testing.T, n *sendNode, vacancyID string) *sendingv1.DemandVacancy {
	t.Helper()
	var dv *sendingv1.DemandVacancy
	err := n.db.View(func(tx *bbolt.Tx) error {
		var ok bool
		var err error
		dv, ok, err = demand.Vacancy(tx, flowReceiving, vacancyID)
		if err == nil && !ok {
			err = fmt.Errorf("vacancy %s not in the replica", vacancyID)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return dv
}

package federation_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/devtools/proctest"
	"github.com/eastwest/labourlink/services/devtools/scenario"
	"github.com/eastwest/labourlink/services/devtools/wait"
)

// node is one service process of the test's federation, restartable on its data and address.
type node struct {
	t    *testing.T
	kind string
	addr string
	args []string
	p    *proctest.Process
}

func startNode(t *testing.T, kind, addr string, args ...string) *node {
	n := &node{t: t, kind: kind, addr: addr, args: append([]string{"-data", t.TempDir(), "-log-level", "warn"}, args...)}
	n.p = proctest.Start(t, kind, addr, n.args...)
	return n
}

// restart kills the process (SIGKILL, no graceful stop) and starts it again on the same data
// and address.
func (n *node) restart() {
	n.t.Helper()
	n.p.Kill()
	n.p = proctest.Start(n.t, n.kind, n.addr, n.args...)
}

// TestMultiTripJourney is issue 12's "Done when", through real processes: a coordination
// service, Guizhou (520000) sending to Guangdong (440000) and Sichuan (510000) to Zhejiang
// (330000). The scenario (services/devtools/scenario, RunMultiTrip) sends a worker out twice in
// a year, brings one home and places them in a workshop, has a no-show in each province, a late
// arrival and a worker confirmed arrived who did not board, and tries contradictions in time;
// each of the five processes is killed and started again on its data at some point of it. Then
// both rosters, both sides' trip records, the ledger, reconciliation (batches, pairings,
// discrepancies), assessment and the employment dynamics (the province's and the national
// figures) must equal what the test counts from the scenario's script.
func TestMultiTripJourney(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs real processes")
	}
	t.Parallel()
	const grace = 3 * time.Second
	coordAddr := proctest.FreeAddr(t)
	recvAddr := map[string]string{"440000": proctest.FreeAddr(t), "330000": proctest.FreeAddr(t)}
	coord := startNode(t, "coordination", coordAddr, "-grace-period", grace.String())
	nodes := map[string]*node{"coordination": coord}
	for i, pr := range [][2]string{{"520000", "440000"}, {"510000", "330000"}} {
		s, r := pr[0], pr[1]
		nodes[fmt.Sprintf("receiving-%d", i+1)] = startNode(t, "receiving", recvAddr[r], "-region", r, "-coordination", coordAddr)
		nodes[fmt.Sprintf("sending-%d", i+1)] = startNode(t, "sending", proctest.FreeAddr(t), "-region", s, "-coordination", coordAddr,
			"-receiving", r+"="+recvAddr[r])
	}
	conn := func(name string) *grpc.ClientConn {
		cc := nodes[name].p.Conn()
		t.Cleanup(func() { cc.Close() })
		return cc
	}
	pairs := [2]scenario.Pair{
		{Sending: conn("sending-1"), Receiving: conn("receiving-1"), SendingRegion: "520000", ReceivingRegion: "440000",
			Counties: []string{"520102", "520103"}, WorkCounty: "440106"},
		{Sending: conn("sending-2"), Receiving: conn("receiving-2"), SendingRegion: "510000", ReceivingRegion: "330000",
			Counties: []string{"510104", "510105"}, WorkCounty: "330106"},
	}
	coordConn := conn("coordination")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	restarted := map[string]bool{}
	script, err := scenario.RunMultiTrip(ctx, coordConn, pairs, scenario.MultiTripOptions{
		Step: func(msg string) { t.Log(msg) },
		Pause: func(point string) {
			for _, name := range map[string][]string{"sending-1": {"sending-1"}, "receiving-1": {"receiving-1"},
				"coordination": {"coordination"}, "sending-2": {"sending-2", "receiving-2"}}[point] {
				t.Logf("restart %s", name)
				nodes[name].restart()
				restarted[name] = true
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(restarted) != len(nodes) {
		t.Errorf("restarted %v, want every process", restarted)
	}

	checkRefusals(t, script)
	checkRosters(t, ctx, script, pairs)
	checkTripRecords(t, ctx, script, pairs)
	checkLedger(t, ctx, script, coordConn)
	checkReconciliation(t, ctx, script, coordConn)
	checkAssessment(t, ctx, script, coordConn)
	checkDynamics(t, ctx, script, pairs, coordConn)
}

func checkRefusals(t *testing.T, s *scenario.Script) {
	if len(s.Refusals) < 3 {
		t.Errorf("%d contradictions tried, want at least 3", len(s.Refusals))
	}
	for _, r := range s.Refusals {
		t.Logf("%s: %v", r.What, r.Err)
		if status.Code(r.Err) != codes.InvalidArgument || !slices.Contains(r.Fields(), r.Field) {
			t.Errorf("%s: %v (fields %v), want INVALID_ARGUMENT on %s", r.What, r.Err, r.Fields(), r.Field)
		}
	}
}

func pairOf(pairs [2]scenario.Pair, w *scenario.ScriptWorker) scenario.Pair {
	if pairs[0].SendingRegion == w.SendingRegion {
		return pairs[0]
	}
	return pairs[1]
}

// checkRosters: every worker's status and trips on the sending roster are the script's.
func checkRosters(t *testing.T, ctx context.Context, s *scenario.Script, pairs [2]scenario.Pair) {
	for _, w := range s.Workers {
		got, err := sendingv1.NewRosterServiceClient(pairOf(pairs, w).Sending).GetWorker(ctx, &sendingv1.GetWorkerRequest{Name: "workers/" + w.ID})
		if err != nil {
			t.Fatal(err)
		}
		gw := got.GetWorker()
		t.Logf("%s %s: %s, %d trips", w.SendingRegion, w.Role, gw.GetStatus(), len(gw.GetTrips()))
		if gw.GetStatus() != w.Status {
			t.Errorf("%s %s (%s): status %s, want %s", w.SendingRegion, w.Role, w.ID, gw.GetStatus(), w.Status)
		}
		if len(gw.GetTrips()) != len(w.Trips) {
			t.Errorf("%s %s: %d trips, want %d: %v", w.SendingRegion, w.Role, len(gw.GetTrips()), len(w.Trips), gw.GetTrips())
			continue
		}
		for i, want := range w.Trips {
			tr := gw.GetTrips()[i]
			var cps []int32
			for _, c := range tr.GetCheckpoints() {
				cps = append(cps, c.GetMonths())
			}
			if tr.GetBatchId() != want.Batch || (tr.GetArrivalTime() != nil) != want.Arrived || tr.GetNoShow() != (want.NoShow && !want.Arrived) ||
				(tr.GetOnboardDate() != nil) != want.Onboarded || !slices.Equal(cps, want.Checkpoints) ||
				(tr.GetLeftJobDate() != nil) != want.LeftJob || (tr.GetReturnTime() != nil) != want.ReturnedHome ||
				tr.GetArrivedWithoutDeparture() != !want.Departed || !tr.GetDepartureTime().AsTime().Equal(want.Departure) ||
				(want.Onboarded && civil.Format(tr.GetOnboardDate()) != want.OnboardDay.Format("2006-01-02")) {
				t.Errorf("%s %s trip %d: %v\nwant %+v", w.SendingRegion, w.Role, i+1, tr, want)
			}
		}
	}
}

// checkTripRecords: the receiving side keeps one employment record per trip of the script.
func checkTripRecords(t *testing.T, ctx context.Context, s *scenario.Script, pairs [2]scenario.Pair) {
	for _, w := range s.Workers {
		resp, err := receivingv1.NewIntakeServiceClient(pairOf(pairs, w).Receiving).ListEmploymentRecords(ctx, &receivingv1.ListEmploymentRecordsRequest{WorkerId: w.ID, PageSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		var got, want []string
		for _, r := range resp.GetRecords() {
			got = append(got, fmt.Sprintf("%s onboarded=%t checkpoints=%d left=%t", r.GetBatchId(), r.GetOnboardDate() != nil, len(r.GetCheckpoints()), r.GetLeftDate() != nil))
		}
		for _, tr := range w.Trips {
			want = append(want, fmt.Sprintf("%s onboarded=%t checkpoints=%d left=%t", tr.Batch, tr.Onboarded, len(tr.Checkpoints), tr.LeftJob))
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s %s: employment records %v, want %v", w.ReceivingRegion, w.Role, got, want)
		}
	}
}

// checkLedger: as many events of each kind as the script reported facts: nothing lost, nothing
// counted twice across the restarts.
func checkLedger(t *testing.T, ctx context.Context, s *scenario.Script, cc grpc.ClientConnInterface) {
	got, err := scenario.CountEvents(ctx, coordinationv1.NewLedgerServiceClient(cc))
	if err != nil {
		t.Fatal(err)
	}
	want := s.EventCounts()
	t.Logf("ledger events by kind: %v", got)
	for k := range coordinationv1.EventKind_name {
		kind := coordinationv1.EventKind(k)
		if got[kind] != want[kind] {
			t.Errorf("ledger: %d %s events, want %d", got[kind], kind, want[kind])
		}
	}
}

type batchCount struct{ departed, arrived, noShow, unexpected, unaccounted int64 }

// checkReconciliation: per batch, per pairing and the open discrepancies, from the script.
func checkReconciliation(t *testing.T, ctx context.Context, s *scenario.Script, cc grpc.ClientConnInterface) {
	recon := coordinationv1.NewReconciliationServiceClient(cc)
	batches := map[[2]string]*batchCount{}
	wantOpen := map[string]coordinationv1.DiscrepancyKind{}
	type pairCount struct{ departed, arrived, noShow, onboarded, leftJob, returned map[string]bool }
	pairs := map[string]*pairCount{}
	for _, w := range s.Workers {
		key := w.ReceivingRegion + "-" + w.SendingRegion
		if pairs[key] == nil {
			pairs[key] = &pairCount{map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}}
		}
		p := pairs[key]
		for _, tr := range w.Trips {
			k := [2]string{w.SendingRegion, tr.Batch}
			if batches[k] == nil {
				batches[k] = &batchCount{}
			}
			b := batches[k]
			add := func(n *int64, m map[string]bool, ok bool) {
				if ok {
					*n++
					if m != nil {
						m[w.ID] = true
					}
				}
			}
			add(&b.departed, p.departed, tr.Departed)
			add(&b.arrived, p.arrived, tr.Arrived)
			add(&b.noShow, p.noShow, tr.NoShow && !tr.Arrived)
			add(&b.unexpected, nil, tr.Arrived && !tr.Departed)
			add(&b.unaccounted, nil, tr.Departed && !tr.Arrived && !tr.NoShow)
			if tr.Onboarded {
				p.onboarded[w.ID] = true
			}
			if tr.LeftJob {
				p.leftJob[w.ID] = true
			}
			if tr.ReturnedHome {
				p.returned[w.ID] = true
			}
			switch {
			case tr.NoShow && !tr.Arrived:
				wantOpen[w.ID+" "+tr.Batch] = coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_NO_SHOW
			case tr.Arrived && !tr.Departed:
				wantOpen[w.ID+" "+tr.Batch] = coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_UNEXPECTED
			}
		}
	}
	for k, want := range batches {
		resp, err := recon.GetBatchReconciliation(ctx, &coordinationv1.GetBatchReconciliationRequest{SendingRegion: k[0], BatchId: k[1]})
		if err != nil {
			t.Fatal(err)
		}
		r := resp.GetReconciliation()
		got := batchCount{r.GetDeparted(), r.GetArrived(), r.GetNoShow(), r.GetUnexpected(), r.GetUnaccounted()}
		t.Logf("batch %s: %+v", k[1], got)
		if got != *want || r.GetUnverified() != 0 {
			t.Errorf("batch %s: %+v (unverified %d), want %+v", k[1], got, r.GetUnverified(), *want)
		}
	}
	ps, err := recon.ListPairingSummaries(ctx, &coordinationv1.ListPairingSummariesRequest{PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, p := range ps.GetSummaries() {
		want := pairs[p.GetReceivingRegion()+"-"+p.GetSendingRegion()]
		if want == nil {
			continue
		}
		seen++
		got := []int64{p.GetDeparted(), p.GetArrived(), p.GetNoShow(), p.GetOnboarded(), p.GetLeftJob(), p.GetReturnedHome()}
		t.Logf("pairing %s-%s: departed, arrived, no-show, onboarded, left job, returned home = %v", p.GetReceivingRegion(), p.GetSendingRegion(), got)
		exp := []int64{int64(len(want.departed)), int64(len(want.arrived)), int64(len(want.noShow)), int64(len(want.onboarded)), int64(len(want.leftJob)), int64(len(want.returned))}
		if !slices.Equal(got, exp) {
			t.Errorf("pairing %s-%s: departed, arrived, no-show, onboarded, left job, returned home = %v, want %v", p.GetReceivingRegion(), p.GetSendingRegion(), got, exp)
		}
	}
	if seen != len(pairs) {
		t.Errorf("%d of the %d pairings summarised", seen, len(pairs))
	}
	// The grace period has passed for every batch: the open discrepancies are the no-shows and
	// the worker who arrived without a departure; the late worker's UNACCOUNTED closed.
	var got map[string]coordinationv1.DiscrepancyKind
	wait.Until(30*time.Second, func() bool {
		resp, err := recon.ListDiscrepancies(ctx, &coordinationv1.ListDiscrepanciesRequest{PageSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		got = map[string]coordinationv1.DiscrepancyKind{}
		for _, d := range resp.GetDiscrepancies() {
			if d.GetState() == coordinationv1.DiscrepancyState_DISCREPANCY_STATE_OPEN {
				got[d.GetWorkerId()+" "+d.GetBatchId()] = d.GetKind()
			}
		}
		return fmt.Sprint(got) == fmt.Sprint(wantOpen)
	})
	t.Logf("open discrepancies: %v", got)
	if fmt.Sprint(got) != fmt.Sprint(wantOpen) {
		t.Errorf("open discrepancies %v, want %v", got, wantOpen)
	}
}

// checkAssessment: per province and year, the distinct registered-poor workers who went out
// (sending: a recorded departure that year) or were onboarded (receiving).
func checkAssessment(t *testing.T, ctx context.Context, s *scenario.Script, cc grpc.ClientConnInterface) {
	want := map[string]map[string]bool{} // "region/year" -> workers
	add := func(region string, year int, id string) {
		k := fmt.Sprintf("%s/%d", region, year)
		if want[k] == nil {
			want[k] = map[string]bool{}
		}
		want[k][id] = true
	}
	for _, w := range s.Workers {
		for _, tr := range w.Trips {
			if !w.Poor {
				add(w.SendingRegion, tr.Departure.In(civil.Zone).Year(), "") // the year is asked, with no one
				continue
			}
			if tr.Departed {
				add(w.SendingRegion, tr.Departure.In(civil.Zone).Year(), w.ID)
			}
			if tr.Onboarded {
				add(w.ReceivingRegion, tr.OnboardDay.Year(), w.ID)
			}
		}
	}
	as := coordinationv1.NewAssessmentServiceClient(cc)
	for k, ws := range want {
		delete(ws, "")
		var region string
		var year int32
		fmt.Sscanf(k, "%6s/%d", &region, &year)
		resp, err := as.GetAssessment(ctx, &coordinationv1.GetAssessmentRequest{Region: region, Year: year})
		if err != nil {
			t.Fatalf("assessment of %s: %v", k, err)
		}
		t.Logf("assessment of %s: %d", k, resp.GetAssessment().GetNumerator())
		if got := resp.GetAssessment().GetNumerator(); got != int64(len(ws)) {
			t.Errorf("assessment of %s: numerator %d, want %d", k, got, len(ws))
		}
	}
}

// outAtWorkRows are the rows' figures out at work by key, rows with none left out.
func outAtWorkRows(rows []*commonv1.DynamicsRow) map[string]int64 {
	got := map[string]int64{}
	for _, r := range rows {
		if r.GetOutAtWork() > 0 {
			got[r.GetKey()] = r.GetOutAtWork()
		}
	}
	return got
}

// checkDynamics: the employment dynamics of the first sending province (from its roster) and
// the national figures (from the ledger) equal the registered-poor workers of the script out at
// work (Script.OutAtWork), today and ten days ago, in total and by destination and occupation
// (nationally by home county too);
// the returnee's workshop (registered and resumed today) is the recovery rate, and the one
// placement is counted. Nothing happened last year. The worker who arrived without a recorded
// departure is out at work for the province (its roster has the trip) but not in the ledger's
// figures (the ledger has no departure of that trip: the UNEXPECTED discrepancy).
func checkDynamics(t *testing.T, ctx context.Context, s *scenario.Script, pairs [2]scenario.Pair, cc grpc.ClientConnInterface) {
	t.Helper()
	province := pairs[0].SendingRegion
	today := time.Now().In(civil.Zone)
	for _, day := range []time.Time{today, today.AddDate(0, 0, -10)} {
		asOf := &commonv1.Date{Year: int32(day.Year()), Month: int32(day.Month()), Day: int32(day.Day())}
		own := s.OutAtWork(day, func(w *scenario.ScriptWorker, _ *scenario.ScriptTrip) bool { return w.SendingRegion == province })
		resp, err := sendingv1.NewDynamicsServiceClient(pairs[0].Sending).GetEmploymentDynamics(ctx, &sendingv1.GetEmploymentDynamicsRequest{AsOf: asOf})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("dynamics of %s as of %s: %d out at work (script: %d); recovery %v; placed locally %d", province, civil.Format(asOf),
			resp.GetTotal().GetOutAtWork(), len(own), resp.GetRecoveryTotal().GetRecoveryRate(), resp.GetPlacedLocally())
		if tot := resp.GetTotal(); tot.GetOutAtWork() != int64(len(own)) || tot.GetSameDayLastYear() != 0 || tot.GetLastYearTotal() != 0 {
			t.Errorf("dynamics of %s as of %s: total %v, want %d out at work, none last year", province, civil.Format(asOf), tot, len(own))
		}
		for name, rows := range map[string][]*commonv1.DynamicsRow{"destination": resp.GetByDestination(), "occupation": resp.GetByOccupation()} {
			got := outAtWorkRows(rows)
			want := map[string]int64{}
			for w := range own {
				key := w.ReceivingRegion
				if name == "occupation" {
					key = "8212" // every vacancy of the scenario
				}
				want[key]++
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("dynamics of %s as of %s by %s: %v, want %v", province, civil.Format(asOf), name, got, want)
			}
		}
		// The workshop was registered (resumed) and the returnee placed today.
		rate, placed := resp.GetRecoveryTotal().GetRecoveryRate(), resp.GetPlacedLocally()
		wantReg, wantPlaced := int64(0), int64(0)
		if day == today {
			wantReg, wantPlaced = 1, 1
		}
		if rate.GetNumerator() != wantReg || rate.GetDenominator() != wantReg || placed != wantPlaced {
			t.Errorf("dynamics of %s as of %s: recovery %v, placed locally %d; want %d of %d, %d placed", province, civil.Format(asOf), rate, placed, wantReg, wantReg, wantPlaced)
		}

		national := s.OutAtWork(day, func(_ *scenario.ScriptWorker, tr *scenario.ScriptTrip) bool { return tr.Departed })
		nat, err := coordinationv1.NewDynamicsServiceClient(cc).GetNationalEmploymentDynamics(ctx, &coordinationv1.GetNationalEmploymentDynamicsRequest{AsOf: asOf})
		if err != nil {
			t.Fatal(err)
		}
		got, want := outAtWorkRows(nat.GetBySendingRegion()), map[string]int64{}
		for w := range national {
			want[w.SendingRegion]++
		}
		t.Logf("national dynamics as of %s: total %d by sending province %v (script: %d, %v)", civil.Format(asOf), nat.GetTotal().GetOutAtWork(), got, len(national), want)
		if nat.GetTotal().GetOutAtWork() != int64(len(national)) || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("national dynamics as of %s: total %d by sending province %v, want %d, %v", civil.Format(asOf), nat.GetTotal().GetOutAtWork(), got, len(national), want)
		}
		// By home county and occupation: every departure said the worker's county and the
		// vacancy's occupation.
		for name, rows := range map[string][]*commonv1.DynamicsRow{"home county": nat.GetByHomeCounty(), "occupation": nat.GetByOccupation()} {
			got, want := outAtWorkRows(rows), map[string]int64{}
			for w := range national {
				key := w.HomeCounty
				if name == "occupation" {
					key = "8212" // every vacancy of the scenario
				}
				want[key]++
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("national dynamics as of %s by %s: %v, want %v", civil.Format(asOf), name, got, want)
			}
		}
	}
}

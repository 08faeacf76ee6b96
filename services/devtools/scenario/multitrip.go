package scenario

// The multi-trip scenario: the whole journey back home, with two sending provinces, each paired with its
// receiving province, and in the first a worker who goes out twice in a year. RunMultiTrip
// performs it and returns its Script: what it did, worker by worker and trip by trip, from
// which a test computes every count it expects (ledger, reconciliation, assessment, both
// rosters, both sides' trip records) without reading them from the services. The time
// contradictions it tries, and how they were refused, are in Script.Refusals.
//
// First pair (Guizhou 520000 → Guangdong 440000 by default), five workers on one bus that left
// 70 days ago:
//
//	twice     boards, arrives, onboards, 2-month checkpoint, leaves the job, comes home, back
//	          in the pool, is matched again and goes out again today (arrives, onboards)
//	home      boards, arrives, onboards, comes home and is placed locally (a workshop)
//	unboarded does not board (the place kept), but the receiving side confirms the arrival and
//	          the onboarding: the sending roster takes the trip from the manifest
//	noShow    boards, reported a no-show
//	late      boards, confirmed arrived only after the grace period has made them unaccounted
//
// Second pair (Sichuan 510000 → Zhejiang 330000 by default), three workers on a bus: a departure
// dated 100 days ago, before the vacancy's start window, is refused; recorded as having left 70
// days ago, two arrive yesterday and onboard, one is a no-show.

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/platform/apierror"
)

// Pair is one sending province and its paired receiving province.
type Pair struct {
	// Sending and Receiving are the connections to the two services.
	Sending, Receiving grpc.ClientConnInterface
	// SendingRegion and ReceivingRegion are their province codes.
	SendingRegion, ReceivingRegion string
	// Counties are two home counties of the sending province; WorkCounty a county of the
	// receiving one.
	Counties   []string
	WorkCounty string
}

// MultiTripOptions tune RunMultiTrip.
type MultiTripOptions struct {
	// Step is told of each step as it starts.
	Step func(msg string)
	// Pause, when set, is called at the named points of the run — "sending-1" (after the first
	// pair's departure), "receiving-1" (after its onboardings), "coordination" (after the late
	// arrival), "sending-2" (after the second pair's arrivals) — so that a test can restart a
	// process there; the run goes on when it returns.
	Pause func(point string)
	// Timeout bounds each wait (default 60 s).
	Timeout time.Duration
}

// ScriptTrip is what the scenario did on one trip of a worker.
type ScriptTrip struct {
	// Batch is the batch id of the trip.
	Batch string
	// Departed: recorded boarding at the sending side (false: arrived without a departure).
	Departed bool
	// Departure is the batch's departure time.
	Departure time.Time
	// Arrived, NoShow, Onboarded, LeftJob, ReturnedHome: the facts reported.
	Arrived, NoShow, Onboarded, LeftJob, ReturnedHome bool
	// Late: the arrival was confirmed after the worker had become unaccounted.
	Late bool
	// OnboardDay is the day of onboarding (China time), when Onboarded; LeftDay and ReturnDay
	// those of leaving the job and coming home, when LeftJob and ReturnedHome.
	OnboardDay, LeftDay, ReturnDay time.Time
	// Checkpoints are the months of the checkpoints reported (still employed).
	Checkpoints []int32
}

// ScriptWorker is one worker of the scenario.
type ScriptWorker struct {
	// Role is the worker's part in the scenario (twice, home, unboarded, noShow, late, arrived).
	Role string
	// ID is the worker id; Poor the registered-poor flag.
	ID   string
	Poor bool
	// SendingRegion and ReceivingRegion are the worker's pair; HomeCounty the worker's county.
	SendingRegion, ReceivingRegion, HomeCounty string
	// Trips in order.
	Trips []*ScriptTrip
	// Status is the status the sending roster must show at the end.
	Status sendingv1.WorkerStatus
	// PlacedLocally: placed with a local employer at the end.
	PlacedLocally bool
}

// Refusal is a contradiction in time the scenario tried, and the answer.
type Refusal struct {
	// What was tried, in words.
	What string
	// Field is the field that must be named; Err the error returned (nil: accepted!).
	Field string
	Err   error
}

// Fields returns the fields r's error names (its BadRequest violations).
func (r Refusal) Fields() []string {
	_, fv := apierror.DetailsOf(status.Convert(r.Err))
	var out []string
	for _, f := range fv {
		out = append(out, f.Field)
	}
	return out
}

// Script is what RunMultiTrip did.
type Script struct {
	Workers  []*ScriptWorker
	Refusals []Refusal
	// LocalEmployer is the local employer the returnee was placed with.
	LocalEmployer string
}

// Worker returns the worker with role in the pair of sendingRegion, or nil.
func (s *Script) Worker(sendingRegion, role string) *ScriptWorker {
	for _, w := range s.Workers {
		if w.SendingRegion == sendingRegion && w.Role == role {
			return w
		}
	}
	return nil
}

// RunMultiTrip performs the multi-trip scenario on an empty federation of the pairs (the first
// carries the multi-trip worker) and returns when every fact of it has reached the coordination
// service and both rosters.
func RunMultiTrip(ctx context.Context, coordination grpc.ClientConnInterface, pairs [2]Pair, o MultiTripOptions) (*Script, error) {
	if o.Step == nil {
		o.Step = func(string) {}
	}
	if o.Pause == nil {
		o.Pause = func(string) {}
	}
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	nonce := time.Now().UnixNano()
	var rs [2]*runner
	for i, p := range pairs {
		rs[i] = &runner{
			o: Options{Workers: []int{5, 3}[i], SendingRegion: p.SendingRegion, ReceivingRegion: p.ReceivingRegion, Step: o.Step,
				Timeout: o.Timeout, Now: time.Now, Counties: p.Counties, WorkCounty: p.WorkCounty},
			roster:    sendingv1.NewRosterServiceClient(p.Sending),
			matching:  sendingv1.NewMatchingServiceClient(p.Sending),
			transport: sendingv1.NewTransportServiceClient(p.Sending),
			vacancies: receivingv1.NewVacancyServiceClient(p.Receiving),
			cands:     receivingv1.NewCandidateServiceClient(p.Receiving),
			intake:    receivingv1.NewIntakeServiceClient(p.Receiving),
			recon:     coordinationv1.NewReconciliationServiceClient(coordination),
			ledger:    coordinationv1.NewLedgerServiceClient(coordination),
			nonce:     nonce + int64(i)*1_000_003,
		}
		if err := rs[i].checkEmpty(ctx); err != nil {
			return nil, err
		}
	}
	m := &multi{o: o, s: &Script{}, returnees: sendingv1.NewReturneeServiceClient(pairs[0].Sending)}
	if err := m.first(ctx, rs[0]); err != nil {
		return m.s, fmt.Errorf("%s → %s: %w", pairs[0].SendingRegion, pairs[0].ReceivingRegion, err)
	}
	if err := m.second(ctx, rs[1]); err != nil {
		return m.s, fmt.Errorf("%s → %s: %w", pairs[1].SendingRegion, pairs[1].ReceivingRegion, err)
	}
	return m.s, m.settled(ctx, rs)
}

type multi struct {
	o         MultiTripOptions
	s         *Script
	returnees sendingv1.ReturneeServiceClient
}

// at returns the China-time instant days days from today at hour.
func at(days, hour int) time.Time {
	t := time.Now().In(civil.Zone)
	return time.Date(t.Year(), t.Month(), t.Day()+days, hour, 0, 0, 0, civil.Zone)
}

// outbound imports r's roster, publishes a vacancy, matches and accepts every worker and plans
// their bus. It returns the batch with the workers in manifest order, named by roles.
func (m *multi) outbound(ctx context.Context, r *runner, employer string, roles []string) (*sendingv1.Batch, error) {
	if err := r.importRoster(ctx, time.Now().In(civil.Zone)); err != nil {
		return nil, fmt.Errorf("import roster: %w", err)
	}
	start, through := date(at(14, 0)), date(at(120, 0))
	vac, err := r.publishVacancy(ctx, "vacancy-1", employer, len(roles), start, through)
	if err != nil {
		return nil, err
	}
	accepted, err := r.matchAndAccept(ctx, "match-1", len(roles), func(ctx context.Context) ([]*receivingv1.Candidate, error) {
		resp, err := r.cands.ListCandidates(ctx, &receivingv1.ListCandidatesRequest{Vacancy: vac, PageSize: 1000})
		return resp.GetCandidates(), err
	})
	if err != nil {
		return nil, err
	}
	b, err := r.plan(ctx, "plan-1", start, accepted)
	if err != nil {
		return nil, err
	}
	if len(b.GetManifest()) != len(roles) {
		return nil, fmt.Errorf("batch %s carries %d workers, want %d", b.GetBatchId(), len(b.GetManifest()), len(roles))
	}
	for i, e := range b.GetManifest() {
		got, err := r.roster.GetWorker(ctx, &sendingv1.GetWorkerRequest{Name: "workers/" + e.GetWorkerId()})
		if err != nil {
			return nil, err
		}
		m.s.Workers = append(m.s.Workers, &ScriptWorker{Role: roles[i], ID: e.GetWorkerId(), Poor: got.GetWorker().GetRegisteredPoor(),
			SendingRegion: r.o.SendingRegion, ReceivingRegion: r.o.ReceivingRegion, HomeCounty: got.GetWorker().GetHomeCounty()})
	}
	return b, nil
}

// trip starts trip on batch for each worker of the pair with the roles, departed or not.
func (m *multi) trip(sending, batch string, dep time.Time, departed bool, roles ...string) {
	for _, role := range roles {
		w := m.s.Worker(sending, role)
		w.Trips = append(w.Trips, &ScriptTrip{Batch: batch, Departed: departed, Departure: dep})
	}
}

func (m *multi) cur(sending, role string) *ScriptTrip {
	w := m.s.Worker(sending, role)
	return w.Trips[len(w.Trips)-1]
}

func (m *multi) refused(what, field string, err error) {
	m.s.Refusals = append(m.s.Refusals, Refusal{What: what, Field: field, Err: err})
}

func (m *multi) confirm(ctx context.Context, r *runner, step, batch string, outcome receivingv1.ArrivalOutcome, when time.Time, ids ...string) error {
	req := &receivingv1.ConfirmArrivalsRequest{Name: "intakeBatches/" + batch, RequestId: r.id(step)}
	for _, id := range ids {
		req.Confirmations = append(req.Confirmations, &receivingv1.ArrivalConfirmation{WorkerId: id, Outcome: outcome, Time: timestamppb.New(when)})
	}
	_, err := r.intake.ConfirmArrivals(ctx, req)
	return err
}

func (m *multi) onboard(ctx context.Context, r *runner, step, id string, day time.Time) error {
	_, err := r.intake.RecordOnboarding(ctx, &receivingv1.RecordOnboardingRequest{WorkerId: id, OnboardDate: date(day), RequestId: r.id(step + "-" + id)})
	return err
}

// status waits until the sending roster shows worker id in status want, and returns it.
func (m *multi) status(ctx context.Context, r *runner, id string, want sendingv1.WorkerStatus) (*sendingv1.Worker, error) {
	var w *sendingv1.Worker
	err := r.until(ctx, fmt.Sprintf("see worker %s %s on the sending roster", id, want), func(ctx context.Context) (bool, error) {
		got, err := r.roster.GetWorker(ctx, &sendingv1.GetWorkerRequest{Name: "workers/" + id})
		w = got.GetWorker()
		return err == nil && w.GetStatus() == want, err
	})
	return w, err
}

func (m *multi) first(ctx context.Context, r *runner) error {
	sr := r.o.SendingRegion
	roles := []string{"twice", "home", "unboarded", "noShow", "late"}
	b, err := m.outbound(ctx, r, "广州示范电子有限公司", roles)
	if err != nil {
		return err
	}
	id := func(role string) string { return m.s.Worker(sr, role).ID }
	dep, arrival, onboardDay := at(-70, 8), at(-69, 10), at(-68, 0)
	m.o.Step(fmt.Sprintf("batch %s left 70 days ago; %s did not board (the place kept)", b.GetBatchId(), id("unboarded")))
	boarded := []string{id("twice"), id("home"), id("noShow"), id("late")}
	if err := r.depart(ctx, "depart-1", b, boarded, timestamppb.New(dep)); err != nil {
		return err
	}
	m.trip(sr, b.GetBatchId(), dep, true, "twice", "home", "noShow", "late")
	m.trip(sr, b.GetBatchId(), dep, false, "unboarded")
	m.o.Pause("sending-1")

	m.o.Step("contradictions in time are refused: an arrival before the departure")
	m.refused("arrival a day before the batch's departure", "confirmations[0].time",
		m.confirm(ctx, r, "arrive-early", b.GetBatchId(), receivingv1.ArrivalOutcome_ARRIVAL_OUTCOME_ARRIVED, dep.Add(-24*time.Hour), id("late")))

	m.o.Step("the receiving side confirms three arrivals (one of a worker who did not board) and a no-show")
	if err := m.confirm(ctx, r, "arrive-1", b.GetBatchId(), receivingv1.ArrivalOutcome_ARRIVAL_OUTCOME_ARRIVED, arrival, id("twice"), id("home"), id("unboarded")); err != nil {
		return fmt.Errorf("confirm arrivals: %w", err)
	}
	if err := m.confirm(ctx, r, "noshow-1", b.GetBatchId(), receivingv1.ArrivalOutcome_ARRIVAL_OUTCOME_NO_SHOW, arrival, id("noShow")); err != nil {
		return fmt.Errorf("confirm the no-show: %w", err)
	}
	for _, role := range []string{"twice", "home", "unboarded"} {
		m.cur(sr, role).Arrived = true
	}
	m.cur(sr, "noShow").NoShow = true

	m.refused("onboarding the day before the arrival", "onboard_date", m.onboard(ctx, r, "onboard-early", id("twice"), arrival.AddDate(0, 0, -1)))
	for _, role := range []string{"twice", "home", "unboarded"} {
		if err := m.onboard(ctx, r, "onboard-1", id(role), onboardDay); err != nil {
			return fmt.Errorf("onboard %s: %w", role, err)
		}
		m.cur(sr, role).Onboarded, m.cur(sr, role).OnboardDay = true, onboardDay
	}
	m.o.Pause("receiving-1")

	m.o.Step("a checkpoint of the worker who goes out twice: 3 months is too early, 2 months is recorded")
	cp := func(months int32, step string) error {
		_, err := r.intake.RecordCheckpoint(ctx, &receivingv1.RecordCheckpointRequest{WorkerId: id("twice"), RequestId: r.id(step),
			Checkpoint: &receivingv1.Checkpoint{CheckDate: date(at(-5, 0)), Months: months, StillEmployed: true}})
		return err
	}
	m.refused("a 3-month checkpoint 63 days after onboarding", "checkpoint.months", cp(3, "checkpoint-early"))
	if err := cp(2, "checkpoint-1"); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	m.cur(sr, "twice").Checkpoints = []int32{2}
	if _, err := r.intake.RecordJobLeft(ctx, &receivingv1.RecordJobLeftRequest{WorkerId: id("twice"), LeftDate: date(at(-4, 0)), Reason: "合同期满", RequestId: r.id("left-1")}); err != nil {
		return fmt.Errorf("leave the job: %w", err)
	}
	m.cur(sr, "twice").LeftJob, m.cur(sr, "twice").LeftDay = true, at(-4, 0)

	m.o.Step("the late worker is unaccounted after the grace period, then confirmed arrived")
	if err := r.until(ctx, "the late worker unaccounted", func(ctx context.Context) (bool, error) {
		resp, err := r.recon.ListDiscrepancies(ctx, &coordinationv1.ListDiscrepanciesRequest{PageSize: 100})
		for _, d := range resp.GetDiscrepancies() {
			if d.GetWorkerId() == id("late") && d.GetKind() == coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_UNACCOUNTED {
				return true, nil
			}
		}
		return false, err
	}); err != nil {
		return err
	}
	if err := m.confirm(ctx, r, "arrive-late", b.GetBatchId(), receivingv1.ArrivalOutcome_ARRIVAL_OUTCOME_ARRIVED, arrival.Add(6*time.Hour), id("late")); err != nil {
		return fmt.Errorf("confirm the late arrival: %w", err)
	}
	m.cur(sr, "late").Arrived, m.cur(sr, "late").Late = true, true
	m.o.Pause("coordination")

	m.o.Step("the sending roster follows: the worker who went out twice has LEFT_JOB and comes home; so does another, placed in a workshop")
	if _, err := m.status(ctx, r, id("twice"), sendingv1.WorkerStatus_WORKER_STATUS_LEFT_JOB); err != nil {
		return err
	}
	if _, err := m.status(ctx, r, id("home"), sendingv1.WorkerStatus_WORKER_STATUS_EMPLOYED); err != nil {
		return err
	}
	for _, role := range []string{"twice", "home"} {
		if _, err := r.roster.RecordReturnHome(ctx, &sendingv1.RecordReturnHomeRequest{Name: "workers/" + id(role), ReturnTime: timestamppb.New(at(-3, 12)),
			Note: "回乡", RequestId: r.id("home-" + role)}); err != nil {
			return fmt.Errorf("return home %s: %w", role, err)
		}
		m.cur(sr, role).ReturnedHome, m.cur(sr, role).ReturnDay = true, at(-3, 0)
	}
	emp, err := m.returnees.CreateLocalEmployer(ctx, &sendingv1.CreateLocalEmployerRequest{RequestId: r.id("workshop"), LocalEmployer: &sendingv1.LocalEmployer{
		DisplayName: "花溪区扶贫车间", Kind: sendingv1.LocalEmployerKind_LOCAL_EMPLOYER_KIND_POVERTY_ALLEVIATION_WORKSHOP,
		County: r.o.counties()[0], Capacity: 20, Resumed: true}})
	if err != nil {
		return fmt.Errorf("register a workshop: %w", err)
	}
	m.s.LocalEmployer = emp.GetLocalEmployer().GetName()
	if _, err := m.returnees.PlaceWorkerLocally(ctx, &sendingv1.PlaceWorkerLocallyRequest{Worker: "workers/" + id("home"), LocalEmployer: m.s.LocalEmployer,
		RequestId: r.id("place")}); err != nil {
		return fmt.Errorf("place locally: %w", err)
	}
	m.s.Worker(sr, "home").PlacedLocally = true

	m.o.Step("the worker who came home goes back in the pool, is matched again and goes out again today")
	if _, err := r.roster.ChangeWorkerStatus(ctx, &sendingv1.ChangeWorkerStatusRequest{Name: "workers/" + id("twice"),
		Status: sendingv1.WorkerStatus_WORKER_STATUS_AVAILABLE, Reason: "wants to go out again", RequestId: r.id("pool")}); err != nil {
		return fmt.Errorf("back in the pool: %w", err)
	}
	start2 := date(at(14, 0))
	if _, err := r.publishVacancy(ctx, "vacancy-2", "东莞示范电子有限公司", 1, start2, date(at(120, 0))); err != nil {
		return err
	}
	accepted, err := r.matchAndAccept(ctx, "match-2", 1, func(ctx context.Context) ([]*receivingv1.Candidate, error) {
		resp, err := r.cands.ListCandidates(ctx, &receivingv1.ListCandidatesRequest{WorkerId: id("twice"),
			State: receivingv1.CandidateState_CANDIDATE_STATE_PENDING, PageSize: 10})
		return resp.GetCandidates(), err
	})
	if err != nil {
		return err
	}
	b2, err := r.plan(ctx, "plan-2", start2, accepted)
	if err != nil {
		return err
	}
	dep2 := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := r.depart(ctx, "depart-2", b2, []string{id("twice")}, timestamppb.New(dep2)); err != nil {
		return err
	}
	m.trip(sr, b2.GetBatchId(), dep2, true, "twice")
	if err := m.confirm(ctx, r, "arrive-2", b2.GetBatchId(), receivingv1.ArrivalOutcome_ARRIVAL_OUTCOME_ARRIVED, time.Now().Truncate(time.Second), id("twice")); err != nil {
		return fmt.Errorf("confirm the second arrival: %w", err)
	}
	m.cur(sr, "twice").Arrived = true
	if err := m.onboard(ctx, r, "onboard-2", id("twice"), at(0, 0)); err != nil {
		return fmt.Errorf("onboard again: %w", err)
	}
	m.cur(sr, "twice").Onboarded, m.cur(sr, "twice").OnboardDay = true, at(0, 0)

	for role, st := range map[string]sendingv1.WorkerStatus{
		"twice": sendingv1.WorkerStatus_WORKER_STATUS_EMPLOYED, "home": sendingv1.WorkerStatus_WORKER_STATUS_PLACED_LOCALLY,
		"unboarded": sendingv1.WorkerStatus_WORKER_STATUS_EMPLOYED, "noShow": sendingv1.WorkerStatus_WORKER_STATUS_DEPARTED,
		"late": sendingv1.WorkerStatus_WORKER_STATUS_ARRIVED,
	} {
		m.s.Worker(sr, role).Status = st
	}
	return nil
}

func (m *multi) second(ctx context.Context, r *runner) error {
	sr := r.o.SendingRegion
	roles := []string{"arrived", "arrived2", "noShow"}
	b, err := m.outbound(ctx, r, "杭州示范制衣有限公司", roles)
	if err != nil {
		return err
	}
	id := func(role string) string { return m.s.Worker(sr, role).ID }
	// A departure dated 100 days ago, before the vacancy's start window opened (92 days before
	// its start), is refused by the sending side; the bus is then recorded as having left 70
	// days ago, inside the window.
	boarded := []string{id("arrived"), id("arrived2"), id("noShow")}
	_, early := r.transport.RecordDeparture(ctx, &sendingv1.RecordDepartureRequest{
		Name: b.GetName(), BoardedWorkerIds: boarded, RequestId: r.id("depart-early"), ActualDepartureTime: timestamppb.New(at(-100, 8)),
	})
	m.refused("a departure before the vacancy's start window opens", "actual_departure_time", early)
	dep := at(-70, 8)
	if err := r.depart(ctx, "depart-1", b, boarded, timestamppb.New(dep)); err != nil {
		return err
	}
	m.trip(sr, b.GetBatchId(), dep, true, roles...)
	if err := m.confirm(ctx, r, "arrive-1", b.GetBatchId(), receivingv1.ArrivalOutcome_ARRIVAL_OUTCOME_ARRIVED, at(-1, 9), id("arrived"), id("arrived2")); err != nil {
		return fmt.Errorf("confirm arrivals: %w", err)
	}
	if err := m.confirm(ctx, r, "noshow-1", b.GetBatchId(), receivingv1.ArrivalOutcome_ARRIVAL_OUTCOME_NO_SHOW, at(-1, 9), id("noShow")); err != nil {
		return fmt.Errorf("confirm the no-show: %w", err)
	}
	m.cur(sr, "noShow").NoShow = true
	m.o.Pause("sending-2")
	for _, role := range []string{"arrived", "arrived2"} {
		m.cur(sr, role).Arrived = true
		if err := m.onboard(ctx, r, "onboard-1", id(role), at(0, 0)); err != nil {
			return fmt.Errorf("onboard %s: %w", role, err)
		}
		m.cur(sr, role).Onboarded, m.cur(sr, role).OnboardDay = true, at(0, 0)
		m.s.Worker(sr, role).Status = sendingv1.WorkerStatus_WORKER_STATUS_EMPLOYED
	}
	m.s.Worker(sr, "noShow").Status = sendingv1.WorkerStatus_WORKER_STATUS_DEPARTED
	return nil
}

// settled waits until both rosters show every worker in its final status and the ledger holds
// every fact of the script (as many events of each kind as the script reported).
func (m *multi) settled(ctx context.Context, rs [2]*runner) error {
	m.o.Step("both rosters follow every worker; every fact reaches the ledger")
	for _, w := range m.s.Workers {
		r := rs[0]
		if w.SendingRegion != r.o.SendingRegion {
			r = rs[1]
		}
		if _, err := m.status(ctx, r, w.ID, w.Status); err != nil {
			return err
		}
	}
	want := m.s.EventCounts()
	return rs[0].until(ctx, "every fact in the ledger", func(ctx context.Context) (bool, error) {
		got, err := CountEvents(ctx, rs[0].ledger)
		if err != nil {
			return false, err
		}
		for k, n := range want {
			if got[k] < n {
				return false, nil
			}
		}
		return true, nil
	})
}

// EventCounts are the ledger events the script reported, by kind: one per fact (a departure
// recorded, an arrival, a no-show, an onboarding, a checkpoint, a job left, a return home).
func (s *Script) EventCounts() map[coordinationv1.EventKind]int {
	out := map[coordinationv1.EventKind]int{}
	for _, w := range s.Workers {
		for _, t := range w.Trips {
			for k, ok := range map[coordinationv1.EventKind]bool{
				coordinationv1.EventKind_EVENT_KIND_DEPARTED:      t.Departed,
				coordinationv1.EventKind_EVENT_KIND_ARRIVED:       t.Arrived,
				coordinationv1.EventKind_EVENT_KIND_NO_SHOW:       t.NoShow,
				coordinationv1.EventKind_EVENT_KIND_ONBOARDED:     t.Onboarded,
				coordinationv1.EventKind_EVENT_KIND_LEFT_JOB:      t.LeftJob,
				coordinationv1.EventKind_EVENT_KIND_RETURNED_HOME: t.ReturnedHome,
			} {
				if ok {
					out[k]++
				}
			}
			out[coordinationv1.EventKind_EVENT_KIND_EMPLOYMENT_CHECKPOINT] += len(t.Checkpoints)
		}
	}
	return out
}

// CountEvents counts the coordination ledger's events by kind, every page.
func CountEvents(ctx context.Context, ledger coordinationv1.LedgerServiceClient) (map[coordinationv1.EventKind]int, error) {
	out := map[coordinationv1.EventKind]int{}
	token := ""
	for {
		resp, err := ledger.ListEvents(ctx, &coordinationv1.ListEventsRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			return nil, err
		}
		for _, e := range resp.GetEvents() {
			out[e.GetKind()]++
		}
		if token = resp.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

// OutAtWork returns the registered-poor workers of the script out at work on day (China time),
// by the definition of employment dynamics (docs/dynamics.md): a trip that departed on or before
// the day, not a no-show, and not ended by then (the day the worker left the job or came home,
// or the departure of the worker's next trip). keep chooses the workers and the trips counted
// (the coordination ledger, for one, has no trip without a recorded departure). The result maps
// each worker to the trip that covers the day.
func (s *Script) OutAtWork(day time.Time, keep func(w *ScriptWorker, t *ScriptTrip) bool) map[*ScriptWorker]*ScriptTrip {
	d := civil.Format(date(day))
	dayOf := func(t time.Time) string { return civil.Format(date(t.In(civil.Zone))) }
	out := map[*ScriptWorker]*ScriptTrip{}
	for _, w := range s.Workers {
		if !w.Poor {
			continue
		}
		for i, t := range w.Trips {
			if t.NoShow && !t.Arrived || !keep(w, t) || dayOf(t.Departure) > d {
				continue
			}
			ended := (t.LeftJob && dayOf(t.LeftDay) <= d) || (t.ReturnedHome && dayOf(t.ReturnDay) <= d) ||
				(i+1 < len(w.Trips) && dayOf(w.Trips[i+1].Departure) <= d)
			if !ended {
				out[w] = t
			}
		}
	}
	return out
}

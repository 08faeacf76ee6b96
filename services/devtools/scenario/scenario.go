// Package scenario drives the whole point-to-point flow through a running federation, the way
// the provinces' systems and operators would: a sending province imports a roster, a receiving
// province publishes a vacancy, the sending service matches workers to it, the employer accepts
// them, a batch is planned and departs, the receiving side confirms arrivals (one worker is a
// no-show and one is never confirmed) and onboards the others, both sides' events reach the
// coordination ledger, and one onboarded worker comes back home (the sending service records it
// and reports it to the ledger). It is used by `labourlink scenario` and by the end-to-end tests.
package scenario

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/creditcode"
	"github.com/eastwest/labourlink/services/codes/idnumber"
)

// Conns are connections to the three services of a federation.
type Conns struct {
	Coordination, Sending, Receiving grpc.ClientConnInterface
}

// Options tune a run.
type Options struct {
	// Workers is the number of workers placed (at least 3: one no-show, one never confirmed).
	Workers int
	// SendingRegion and ReceivingRegion are the paired provinces (default 520000 and 440000).
	SendingRegion, ReceivingRegion string
	// Step is told of each step as it starts.
	Step func(msg string)
	// Timeout bounds each wait for the services to catch up (default 60 s).
	Timeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Counties are the home counties of the workers, alternately (default 520102 and 520103,
	// of Guizhou; they must be counties of SendingRegion).
	Counties []string
	// WorkCounty is the county of the vacancies (default 440106, of Guangdong; it must be a
	// county of ReceivingRegion).
	WorkCounty string
}

func (o Options) counties() []string {
	if len(o.Counties) > 0 {
		return o.Counties
	}
	return []string{"520102", "520103"}
}

func (o Options) workCounty() string {
	if o.WorkCounty != "" {
		return o.WorkCounty
	}
	return "440106"
}

// Result says what the run did.
type Result struct {
	// Vacancy is the resource name of the vacancy in the receiving service.
	Vacancy string
	// BatchID is the transport batch.
	BatchID string
	// Workers are the opaque ids of the workers on the batch.
	Workers []string
	// NoShow is the worker the receiving side reported as a no-show.
	NoShow string
	// Missing is the worker who departed and was never confirmed.
	Missing string
	// Onboarded are the workers who arrived and started work.
	Onboarded []string
	// ReturnedHome is the onboarded worker who came back home at the end.
	ReturnedHome string
}

// ErrNotEmpty is returned by Run on a federation that holds workers or open vacancies already:
// the scenario's match run would propose those workers to those vacancies, changing a user's data.
var ErrNotEmpty = errors.New("the federation is not empty")

// Run performs the scenario and returns when the coordination service has recorded every event
// of it. It works only on an empty federation (no worker in the sending roster, no open vacancy
// in the receiving province), and otherwise returns ErrNotEmpty before changing anything.
func Run(ctx context.Context, c Conns, o Options) (*Result, error) {
	if o.Workers == 0 {
		o.Workers = 6
	}
	if o.Workers < 3 || o.Workers > 45 {
		return nil, fmt.Errorf("workers must be between 3 and 45, not %d", o.Workers)
	}
	if o.SendingRegion == "" {
		o.SendingRegion = "520000"
	}
	if o.ReceivingRegion == "" {
		o.ReceivingRegion = "440000"
	}
	if o.Step == nil {
		o.Step = func(string) {}
	}
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &runner{o: o,
		roster:    sendingv1.NewRosterServiceClient(c.Sending),
		matching:  sendingv1.NewMatchingServiceClient(c.Sending),
		transport: sendingv1.NewTransportServiceClient(c.Sending),
		vacancies: receivingv1.NewVacancyServiceClient(c.Receiving),
		cands:     receivingv1.NewCandidateServiceClient(c.Receiving),
		intake:    receivingv1.NewIntakeServiceClient(c.Receiving),
		recon:     coordinationv1.NewReconciliationServiceClient(c.Coordination),
		ledger:    coordinationv1.NewLedgerServiceClient(c.Coordination),
		nonce:     o.Now().UnixNano(),
	}
	if err := r.checkEmpty(ctx); err != nil {
		return nil, err
	}
	return r.run(ctx)
}

// checkEmpty refuses a federation that holds data the scenario's match run would touch.
func (r *runner) checkEmpty(ctx context.Context) error {
	ws, err := r.roster.ListWorkers(ctx, &sendingv1.ListWorkersRequest{PageSize: 1})
	if err != nil {
		return fmt.Errorf("list workers: %w", err)
	}
	vs, err := r.vacancies.ListVacancies(ctx, &receivingv1.ListVacanciesRequest{Status: receivingv1.VacancyStatus_VACANCY_STATUS_OPEN, PageSize: 1})
	if err != nil {
		return fmt.Errorf("list vacancies: %w", err)
	}
	if len(ws.GetWorkers()) > 0 || len(vs.GetVacancies()) > 0 {
		return fmt.Errorf("%w: sending %s has workers or receiving %s has open vacancies, and the scenario's match run would propose those workers; "+
			"run it on a fresh federation (labourlink dev -data with an empty folder)", ErrNotEmpty, r.o.SendingRegion, r.o.ReceivingRegion)
	}
	return nil
}

type runner struct {
	o         Options
	roster    sendingv1.RosterServiceClient
	matching  sendingv1.MatchingServiceClient
	transport sendingv1.TransportServiceClient
	vacancies receivingv1.VacancyServiceClient
	cands     receivingv1.CandidateServiceClient
	intake    receivingv1.IntakeServiceClient
	recon     coordinationv1.ReconciliationServiceClient
	ledger    coordinationv1.LedgerServiceClient
	nonce     int64
}

func (r *runner) id(step string) string { return fmt.Sprintf("scenario-%d-%s", r.nonce, step) }

// until polls check every 200 ms until it reports done, fails, or the timeout passes.
func (r *runner) until(ctx context.Context, what string, check func(ctx context.Context) (bool, error)) error {
	deadline := time.Now().Add(r.o.Timeout)
	var last error
	for {
		callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		done, err := check(callCtx)
		cancel()
		if err == nil && done {
			return nil
		}
		if err != nil {
			last = err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			if last != nil {
				return fmt.Errorf("%s: not done after %s (last error: %w)", what, r.o.Timeout, last)
			}
			return fmt.Errorf("%s: not done after %s", what, r.o.Timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (r *runner) run(ctx context.Context) (*Result, error) {
	res := &Result{}
	today := r.o.Now().In(civil.Zone)
	start := today.AddDate(0, 0, 14)
	startDate := date(start)

	r.o.Step(fmt.Sprintf("sending %s imports a roster of %d workers", r.o.SendingRegion, r.o.Workers))
	if err := r.importRoster(ctx, today); err != nil {
		return nil, fmt.Errorf("import roster: %w", err)
	}

	vacancy, err := r.publishVacancy(ctx, "vacancy", "广州示范电子有限公司", r.o.Workers, startDate, date(today.AddDate(0, 0, 60)))
	if err != nil {
		return nil, err
	}
	res.Vacancy = vacancy
	accepted, err := r.matchAndAccept(ctx, "match", r.o.Workers, func(ctx context.Context) ([]*receivingv1.Candidate, error) {
		resp, err := r.cands.ListCandidates(ctx, &receivingv1.ListCandidatesRequest{Vacancy: res.Vacancy, PageSize: 1000})
		return resp.GetCandidates(), err
	})
	if err != nil {
		return nil, err
	}
	r.o.Step("the sending service plans a bus and records the departure; manifest and departure go to the receiving service")
	batch, err := r.plan(ctx, "plan", startDate, accepted)
	if err != nil {
		return nil, err
	}
	res.BatchID = batch.GetBatchId()
	for _, m := range batch.GetManifest() {
		res.Workers = append(res.Workers, m.GetWorkerId())
	}
	if err := r.depart(ctx, "depart", batch, res.Workers, nil); err != nil {
		return nil, err
	}
	intakeName := "intakeBatches/" + res.BatchID

	n := len(res.Workers)
	res.NoShow, res.Missing = res.Workers[n-2], res.Workers[n-1]
	arrivedIDs := res.Workers[:n-2]
	r.o.Step(fmt.Sprintf("the receiving service confirms %d arrivals and one no-show; one worker is never confirmed", len(arrivedIDs)))
	var confs []*receivingv1.ArrivalConfirmation
	for _, w := range arrivedIDs {
		confs = append(confs, &receivingv1.ArrivalConfirmation{WorkerId: w, Outcome: receivingv1.ArrivalOutcome_ARRIVAL_OUTCOME_ARRIVED})
	}
	confs = append(confs, &receivingv1.ArrivalConfirmation{WorkerId: res.NoShow, Outcome: receivingv1.ArrivalOutcome_ARRIVAL_OUTCOME_NO_SHOW})
	if _, err := r.intake.ConfirmArrivals(ctx, &receivingv1.ConfirmArrivalsRequest{Name: intakeName, Confirmations: confs, RequestId: r.id("arrivals")}); err != nil {
		return nil, fmt.Errorf("confirm arrivals: %w", err)
	}

	r.o.Step(fmt.Sprintf("the employer onboards the %d workers who arrived", len(arrivedIDs)))
	for _, w := range arrivedIDs {
		if _, err := r.intake.RecordOnboarding(ctx, &receivingv1.RecordOnboardingRequest{
			WorkerId: w, OnboardDate: date(today), RequestId: r.id("onboard-" + w),
		}); err != nil {
			return nil, fmt.Errorf("onboard %s: %w", w, err)
		}
		res.Onboarded = append(res.Onboarded, w)
	}

	r.o.Step("both sides' events reach the coordination ledger")
	if err := r.until(ctx, "record every event in the ledger", func(ctx context.Context) (bool, error) {
		resp, err := r.recon.GetBatchReconciliation(ctx, &coordinationv1.GetBatchReconciliationRequest{BatchId: res.BatchID, SendingRegion: r.o.SendingRegion})
		if err != nil {
			return false, nil // no event of the batch yet
		}
		rec := resp.GetReconciliation()
		return rec.GetDeparted() == int64(n) && rec.GetArrived() == int64(len(arrivedIDs)) && rec.GetNoShow() == 1, nil
	}); err != nil {
		return nil, err
	}

	r.o.Step(fmt.Sprintf("the sending roster follows the employment feed: %d workers EMPLOYED, the no-show marked on its trip, without a hand-made status change", len(res.Onboarded)))
	if err := r.until(ctx, "see the onboardings on the sending roster", func(ctx context.Context) (bool, error) {
		for _, w := range res.Onboarded {
			got, err := r.roster.GetWorker(ctx, &sendingv1.GetWorkerRequest{Name: "workers/" + w})
			if err != nil {
				return false, err
			}
			if got.GetWorker().GetStatus() != sendingv1.WorkerStatus_WORKER_STATUS_EMPLOYED {
				return false, nil
			}
		}
		got, err := r.roster.GetWorker(ctx, &sendingv1.GetWorkerRequest{Name: "workers/" + res.NoShow})
		if err != nil {
			return false, err
		}
		trips := got.GetWorker().GetTrips()
		return len(trips) == 1 && trips[0].GetNoShow(), nil
	}); err != nil {
		return nil, err
	}

	res.ReturnedHome = res.Onboarded[0]
	r.o.Step(fmt.Sprintf("worker %s comes back home: the sending service ends the trip and reports RETURNED_HOME to the ledger", res.ReturnedHome))
	if _, err := r.roster.RecordReturnHome(ctx, &sendingv1.RecordReturnHomeRequest{
		Name: "workers/" + res.ReturnedHome, Note: "back for the harvest", RequestId: r.id("home"),
	}); err != nil {
		return nil, fmt.Errorf("record return home: %w", err)
	}
	if err := r.until(ctx, "record the return home in the ledger", func(ctx context.Context) (bool, error) {
		resp, err := r.ledger.ListEvents(ctx, &coordinationv1.ListEventsRequest{
			WorkerId: res.ReturnedHome, Kind: coordinationv1.EventKind_EVENT_KIND_RETURNED_HOME, PageSize: 10,
		})
		if err != nil {
			return false, err
		}
		return len(resp.GetEvents()) == 1, nil
	}); err != nil {
		return nil, err
	}
	return res, nil
}

// publishVacancy has the receiving province publish a vacancy for headcount electronic
// equipment assemblers (ISCO-08 8212) starting on start, and waits until the sending service
// has replicated it. It returns the vacancy's name. step names the request id.
func (r *runner) publishVacancy(ctx context.Context, step, employer string, headcount int, start, through *commonv1.Date) (string, error) {
	r.o.Step(fmt.Sprintf("receiving %s publishes a vacancy for %d electronic equipment assemblers (ISCO-08 8212) at %s", r.o.ReceivingRegion, headcount, employer))
	code, err := creditCode(r.nonce + int64(len(step))*7919 + int64(len(employer)))
	if err != nil {
		return "", err
	}
	vac, err := r.vacancies.CreateVacancy(ctx, &receivingv1.CreateVacancyRequest{
		RequestId: r.id(step),
		Vacancy: &receivingv1.Vacancy{
			EmployerName:       employer,
			EmployerCreditCode: code,
			WorkCounty:         r.o.workCounty(),
			Occupation:         "8212",
			Headcount:          int32(headcount),
			MonthlyWageMinYuan: 4500,
			MonthlyWageMaxYuan: 6500,
			StartDate:          start,
			ValidThrough:       through,
			MinAge:             proto.Int32(18),
			MaxAge:             proto.Int32(50),
			HousingProvided:    true,
			MealsProvided:      true,
			Contact:            "人事部 020-0000-0000",
		},
	})
	if err != nil {
		return "", fmt.Errorf("create vacancy: %w", err)
	}
	name := vac.GetVacancy().GetName()
	r.o.Step("the sending service replicates the vacancy from the demand feed")
	err = r.until(ctx, "replicate the vacancy", func(ctx context.Context) (bool, error) {
		resp, err := r.matching.ListDemand(ctx, &sendingv1.ListDemandRequest{ReceivingRegion: r.o.ReceivingRegion, PageSize: 1000})
		if err != nil {
			return false, err
		}
		found := false
		for _, d := range resp.GetVacancies() {
			found = found || d.GetVacancy().GetName() == name
		}
		if !found {
			return false, nil
		}
		// A match run needs the replica known current too (the follower marks it once it has
		// caught up with the feed's head, just after applying the change): what the run's
		// refusal tells a user to wait for.
		st, err := r.matching.GetFollowStatus(ctx, &sendingv1.GetFollowStatusRequest{})
		if err != nil {
			return false, err
		}
		for _, p := range st.GetPositions() {
			if p.GetReceivingRegion() == r.o.ReceivingRegion && p.GetDemandFreshness().GetCurrentAsOf() != nil {
				return true, nil
			}
		}
		return false, nil
	})
	return name, err
}

// matchAndAccept starts a match run, waits until it succeeds and list returns at least n
// candidates, has the employer accept the first n, and waits until the sending side sees the
// acceptances. It returns the accepted workers' ids.
func (r *runner) matchAndAccept(ctx context.Context, step string, n int, list func(ctx context.Context) ([]*receivingv1.Candidate, error)) (map[string]bool, error) {
	r.o.Step("a match run proposes workers; candidates reach the receiving service through the outbox")
	run, err := r.matching.StartMatchRun(ctx, &sendingv1.StartMatchRunRequest{RequestId: r.id(step)})
	if err != nil {
		return nil, fmt.Errorf("start match run: %w", err)
	}
	if err := r.until(ctx, "finish the match run", func(ctx context.Context) (bool, error) {
		resp, err := r.matching.GetMatchRun(ctx, &sendingv1.GetMatchRunRequest{Name: run.GetMatchRun().GetName()})
		if err != nil {
			return false, err
		}
		switch resp.GetMatchRun().GetState() {
		case sendingv1.MatchRunState_MATCH_RUN_STATE_SUCCEEDED:
			return true, nil
		case sendingv1.MatchRunState_MATCH_RUN_STATE_FAILED:
			return false, fmt.Errorf("match run failed: %s", resp.GetMatchRun().GetError())
		}
		return false, nil
	}); err != nil {
		return nil, err
	}
	var candidates []*receivingv1.Candidate
	if err := r.until(ctx, "receive the candidates", func(ctx context.Context) (bool, error) {
		candidates, err = list(ctx)
		return err == nil && len(candidates) >= n, err
	}); err != nil {
		return nil, err
	}
	r.o.Step(fmt.Sprintf("the employer accepts %d candidates", n))
	accepted := map[string]bool{}
	for _, c := range candidates[:n] {
		if _, err := r.cands.DecideCandidate(ctx, &receivingv1.DecideCandidateRequest{
			Name: c.GetName(), Decision: receivingv1.Decision_DECISION_ACCEPT, RequestId: r.id("accept-" + c.GetCandidateId()),
		}); err != nil {
			return nil, fmt.Errorf("accept %s: %w", c.GetName(), err)
		}
		accepted[c.GetWorkerId()] = true
	}
	err = r.until(ctx, "see the acceptances on the sending side", func(ctx context.Context) (bool, error) {
		for w := range accepted {
			got, err := r.roster.GetWorker(ctx, &sendingv1.GetWorkerRequest{Name: "workers/" + w})
			if err != nil {
				return false, err
			}
			if got.GetWorker().GetStatus() != sendingv1.WorkerStatus_WORKER_STATUS_ACCEPTED {
				return false, nil
			}
		}
		return true, nil
	})
	return accepted, err
}

// plan plans the buses of the accepted workers for start and returns the batch that carries
// them.
func (r *runner) plan(ctx context.Context, step string, start *commonv1.Date, accepted map[string]bool) (*sendingv1.Batch, error) {
	plan, err := r.transport.PlanBatches(ctx, &sendingv1.PlanBatchesRequest{
		RequestId: r.id(step), ReceivingRegion: r.o.ReceivingRegion, StartDate: start,
		Mode: commonv1.TransportMode_TRANSPORT_MODE_BUS, EscortName: "带队干部", EscortContact: "0851-0000-0000",
	})
	if err != nil {
		return nil, fmt.Errorf("plan batches: %w", err)
	}
	for _, b := range plan.GetBatches() {
		for _, m := range b.GetManifest() {
			if accepted[m.GetWorkerId()] {
				return b, nil
			}
		}
	}
	return nil, fmt.Errorf("no planned batch carries the accepted workers")
}

// depart records the departure of batch at at (nil: now) with boarded on it, and waits until
// the receiving service has the departure.
func (r *runner) depart(ctx context.Context, step string, batch *sendingv1.Batch, boarded []string, at *timestamppb.Timestamp) error {
	if _, err := r.transport.RecordDeparture(ctx, &sendingv1.RecordDepartureRequest{
		Name: batch.GetName(), BoardedWorkerIds: boarded, RequestId: r.id(step), ActualDepartureTime: at,
	}); err != nil {
		return fmt.Errorf("record departure: %w", err)
	}
	return r.until(ctx, "announce the departed batch to the receiving service", func(ctx context.Context) (bool, error) {
		resp, err := r.intake.GetIntakeBatch(ctx, &receivingv1.GetIntakeBatchRequest{Name: "intakeBatches/" + batch.GetBatchId()})
		if err != nil {
			return false, nil // not announced yet
		}
		return resp.GetBatch().GetState() == receivingv1.IntakeBatchState_INTAKE_BATCH_STATE_DEPARTED, nil
	})
}

// importRoster streams the scenario's workers to the sending service.
func (r *runner) importRoster(ctx context.Context, today time.Time) error {
	stream, err := r.roster.ImportWorkers(ctx)
	if err != nil {
		return err
	}
	var rows []*sendingv1.WorkerRow
	counties := r.o.counties()
	for i := 0; i < r.o.Workers; i++ {
		birth := time.Date(1985+int(r.nonce/7%10), time.Month(1+i%12), 1+int(r.nonce%28), 0, 0, 0, 0, civil.Zone)
		seq := fmt.Sprintf("%03d", (int(r.nonce/1000)+i*37)%1000)
		first17 := counties[i%2] + birth.Format("20060102") + seq
		id := first17 + string(idnumber.CheckChar(first17))
		poor := "否"
		if i%2 == 0 {
			poor = "是"
		}
		rows = append(rows, &sendingv1.WorkerRow{
			RowNumber:             int64(i + 2),
			IdNumber:              id,
			FullName:              workerName(i),
			Phone:                 fmt.Sprintf("1380000%04d", (int(r.nonce)+i)%10000),
			HomeCounty:            counties[i%2],
			RegisteredPoor:        poor,
			Occupations:           "8212",
			Education:             "junior_secondary",
			PreferredDestinations: r.o.ReceivingRegion,
			AvailableFrom:         today.Format("2006-01-02"),
			HealthCheckPassed:     "是",
			HealthCheckDate:       today.AddDate(0, 0, -7).Format("2006-01-02"),
		})
	}
	// One message, marked final with the row count: only that completes the import.
	if err := stream.Send(&sendingv1.ImportWorkersRequest{ImportId: r.id("roster"), Rows: rows, Final: true, TotalRows: int64(len(rows))}); err != nil {
		return err
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return err
	}
	if s := resp.GetSummary(); s.GetRejected() > 0 {
		var reasons []string
		for _, rj := range s.GetRejections() {
			reasons = append(reasons, fmt.Sprintf("row %d %s: %s", rj.GetRowNumber(), rj.GetField(), rj.GetReason()))
		}
		return fmt.Errorf("%d rows rejected: %s", s.GetRejected(), strings.Join(reasons, "; "))
	}
	return nil
}

// workerName makes a plain name for the i-th scenario worker (names carry no digits).
func workerName(i int) string {
	surnames := []rune("王李张刘陈杨黄赵吴周徐孙马朱胡")
	given := []string{"伟", "芳", "娜", "敏", "静", "磊", "洋", "勇", "军", "杰", "强", "霞"}
	return string(surnames[i%len(surnames)]) + given[(i/len(surnames)+i)%len(given)]
}

func date(t time.Time) *commonv1.Date {
	return &commonv1.Date{Year: int32(t.Year()), Month: int32(t.Month()), Day: int32(t.Day())}
}

// creditCode makes a valid unified social credit code (GB 32100) for a Guangzhou company.
func creditCode(nonce int64) (string, error) {
	const alphabet = creditcode.Alphabet
	body := []byte("91440106")
	n := nonce
	for len(body) < 17 {
		body = append(body, alphabet[int(n%31+31)%31])
		n /= 31
	}
	c, err := creditcode.CheckChar(string(body))
	if err != nil {
		return "", fmt.Errorf("make a credit code: %w", err)
	}
	return string(body) + string(c), nil
}

package matching

// Match runs: MatchingService.StartMatchRun starts one in a goroutine; it reads the AVAILABLE
// workers and the replica's OPEN vacancies with remaining openings, calls the matcher
// (services/sending/matching/matcher: a two-phase maximum flow, optimal for "most registered-poor
// workers, then most workers"; see its package comment) and proposes the result.
//
// Remaining openings of a vacancy = headcount - reserved - this province's proposals for it that
// wait for a decision (PENDING_SUBMISSION or SUBMITTED). Vacancies past their valid-through
// date are left out even before the receiving service's sweep records them EXPIRED.
//
// Proposing is ONE transaction: every proposal (PENDING_SUBMISSION), every worker's move
// AVAILABLE -> PROPOSED, the outbox entries of the candidates for each receiving province
// (SubmitCandidatesRequest, at most 1000 candidates each, destination "receiving/<code>") and
// the run's final record (SUCCEEDED with its result). A crash before that commit leaves nothing
// proposed and the run RUNNING on disk; New marks such runs FAILED. Inside the transaction each
// assignment is checked again (the worker still AVAILABLE, the vacancy still OPEN with room)
// since the feeds kept changing the store while the matcher worked; assignments that fail the
// check are left out.
//
// A worker is proposed for a vacancy at most once (see proposals.go). The vacancies each
// available worker was proposed for before (in any state: a rejected worker comes back
// AVAILABLE) are given to the matcher as the worker's exclusions, a hard constraint of the
// optimisation, so the optimum it returns never needs a pair dropped afterwards (dropping
// would leave the worker unplaced and the opening unfilled although the optimum without the
// pair may place both elsewhere). Only match runs create proposals and one runs at a time, so
// an assignment naming a pair proposed before is a bug: the run fails rather than overwrite
// the earlier proposal.
//
// CancelMatchRun records a RUNNING run CANCELLED in one transaction and cancels its context.
// The run checks its stored record at each stage boundary (after reading the workers, after
// reading the demand, after solving) and in the transaction that would commit its result: a
// run no longer RUNNING stops there and writes nothing more, so a cancelled run never proposes
// anyone, also when the cancel comes while it solves.
//
// Progress (stage and percent) is written to BucketMatchRuns as the run goes, so
// GetMatchRun reads it back during the run and after.
//
// A run does not work on a replica known to be behind (services/sending/demand/links.go): StartMatchRun refuses it
// (FAILED_PRECONDITION, reason REPLICA_STALE, metadata receiving_regions) when a province whose
// demand the run would use has open demand in the replica and has not been known current for
// longer than the request's max_replica_staleness (default 5 minutes); a vacancy may have
// closed during a partition, and proposing workers to it helps no one. A replica behind by
// more than 30 seconds but within the limit gives the run a warning. The check is made again
// in the same read as the demand; the run records how current each replica was then
// (MatchRun.replicas) and the warnings.
//
// A candidate carries what an employer needs: worker id, vacancy, name, sex, age on the start
// date, occupations, home county and the registered-poor flag; never the identity number or
// the phone.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/platform/tracing"
	"github.com/eastwest/labourlink/services/sending/demand"
	"github.com/eastwest/labourlink/services/sending/matching/matcher"
	"github.com/eastwest/labourlink/services/sending/roster"
)

const (
	runRunning   = sendingv1.MatchRunState_MATCH_RUN_STATE_RUNNING
	runSucceeded = sendingv1.MatchRunState_MATCH_RUN_STATE_SUCCEEDED
	runFailed    = sendingv1.MatchRunState_MATCH_RUN_STATE_FAILED
	runCancelled = sendingv1.MatchRunState_MATCH_RUN_STATE_CANCELLED

	matchRunNamePrefix = "matchRuns/"
	// maxCandidatesPerSubmission is the receiving service's limit per SubmitCandidatesRequest.
	maxCandidatesPerSubmission = 1000

	// Progress percentages at which the stages begin.
	pctReadWorkers = 0
	pctReadDemand  = 10
	PctSolve       = 15
	pctPropose     = 85
)

// matchState is the match run in progress in this process.
type matchState struct {
	mu      sync.Mutex
	running bool
	closed  bool // Run has returned: no new runs
	// seq and cancel are the run in progress and the cancel of its context (CancelMatchRun).
	seq    uint64
	cancel context.CancelFunc
	// done is closed when the run in progress has returned (running is false again).
	done chan struct{}
}

// errRunCancelled stops a run whose stored record is no longer RUNNING (CancelMatchRun
// recorded it CANCELLED): it commits nothing more.
var errRunCancelled = errors.New("match run cancelled")

func RunName(seq uint64) string { return matchRunNamePrefix + strconv.FormatUint(seq, 10) }

// parseRunName returns the sequence number of `matchRuns/{run_id}`, or a reason it is wrong.
func parseRunName(name string) (uint64, string) {
	id, ok := strings.CutPrefix(name, matchRunNamePrefix)
	if !ok || id == "" {
		return 0, "must be matchRuns/{run_id}, such as matchRuns/1"
	}
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil || n == 0 {
		return 0, "must be matchRuns/{run_id} with a positive whole number, such as matchRuns/1"
	}
	return n, ""
}

// ValidateRequest checks MatchingService requests before their handlers run.
func (x *matchingServer) ValidateRequest(_ string, req any) error {
	var v apierror.Violations
	switch r := req.(type) {
	case *sendingv1.StartMatchRunRequest:
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
		if d := r.GetMaxReplicaStaleness(); d != nil {
			if err := d.CheckValid(); err != nil {
				v.Add("max_replica_staleness", "is not a valid duration: "+err.Error())
			} else if d.AsDuration() < 0 {
				v.Add("max_replica_staleness", "must not be negative (unset or 0: the default, "+demand.DefaultMaxReplicaStaleness.String()+")")
			}
		}
	case *sendingv1.GetMatchRunRequest:
		if _, reason := parseRunName(r.GetName()); reason != "" {
			v.Add("name", reason)
		}
	case *sendingv1.CancelMatchRunRequest:
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
		if _, reason := parseRunName(r.GetName()); reason != "" {
			v.Add("name", reason)
		}
	case *sendingv1.ListMatchRunsRequest:
		if _, ok := sendingv1.MatchRunView_name[int32(r.GetView())]; !ok {
			v.Add("view", "is not a MatchRunView")
		}
		runsSize.Check(&v, r.GetPageSize())
		runsListing.Check(&v, r.GetPageToken())
	case *sendingv1.ListDemandRequest:
		x.s.CheckReceivingRegion(&v, "receiving_region", r.GetReceivingRegion(), false)
		demand.ValidateListDemand(r, &v)
	case *sendingv1.ListProposalsRequest:
		if n := r.GetVacancy(); n != "" {
			if id, ok := strings.CutPrefix(n, vacancyNamePrefix); !ok || id == "" || strings.Contains(id, "/") {
				v.Add("vacancy", "must be vacancies/{vacancy_id}, such as vacancies/440000-V0000000001")
			}
		}
		x.s.CheckReceivingRegion(&v, "receiving_region", r.GetReceivingRegion(), false)
		if _, ok := sendingv1.ProposalState_name[int32(r.GetState())]; !ok {
			v.Add("state", "is not a ProposalState")
		}
		proposalsSize.Check(&v, r.GetPageSize())
		proposalsListing(r).Check(&v, r.GetPageToken())
	case *sendingv1.GetFollowStatusRequest:
		// No fields.
	default:
		return apierror.NotValidated(req)
	}
	return v.Err()
}

// checkReceivingRegion adds a violation unless code is a province code other than this one
// (or empty, when not required).
func (s *Service) CheckReceivingRegion(v *apierror.Violations, field, code string, required bool) {
	switch {
	case code == "":
		if required {
			v.Add(field, "is required: the 6-digit code of a receiving province, such as 440000")
		}
	case !s.regions.IsProvince(code):
		v.Addf(field, "%q is not a province code (6 digits ending in 0000, such as 440000)", code)
	case code == s.cfg.Region:
		v.Addf(field, "%s is this sending province, not a receiving one", code)
	}
}

// updateRun changes the stored record of run seq while it is RUNNING; a run that was
// cancelled meanwhile is left as it is.
func (s *Service) updateRun(seq uint64, fn func(*sendingv1.MatchRun)) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		r, err := runningRun(tx, seq)
		if errors.Is(err, errRunCancelled) {
			return nil
		}
		if err != nil {
			return err
		}
		fn(r)
		return putRun(tx, seq, r)
	})
}

// failInterruptedRuns marks FAILED the runs stored as RUNNING: the process that ran them ended.
func (s *Service) failInterruptedRuns() error {
	now := tsOf(s.cfg.Now())
	return s.db.Update(func(tx *bbolt.Tx) error {
		type stuck struct {
			seq uint64
			run *sendingv1.MatchRun
		}
		var found []stuck
		if err := runs.Scan(tx, store.Range{}, func(k []byte, r *sendingv1.MatchRun) (bool, error) {
			if r.GetState() == runRunning {
				found = append(found, stuck{store.KeyUint64(k), r})
			}
			return true, nil
		}); err != nil {
			return err
		}
		for _, f := range found {
			f.run.State = runFailed
			f.run.Error = failure(apierror.Unavailable("interrupted: the service stopped while the run was working; nothing was proposed"))
			f.run.EndTime = now
			if err := putRun(tx, f.seq, f.run); err != nil {
				return err
			}
			s.lg.Warn("match run interrupted by a restart marked failed", zap.String("run", f.run.GetName()))
		}
		return nil
	})
}

// maxStaleness returns the replica staleness a run started by req allows.
func maxStaleness(req *sendingv1.StartMatchRunRequest) time.Duration {
	if d := req.GetMaxReplicaStaleness().AsDuration(); d > 0 {
		return d
	}
	return demand.DefaultMaxReplicaStaleness
}

// StartMatchRun records a new run and starts it in the background. A repeat of the request id
// returns the first response; a run already working is FAILED_PRECONDITION, and so is a run on
// a replica known to be behind (REPLICA_STALE; see the file comment).
func (x *matchingServer) StartMatchRun(ctx context.Context, req *sendingv1.StartMatchRunRequest) (*sendingv1.StartMatchRunResponse, error) {
	s := x.s
	limit := maxStaleness(req)
	method := sendingv1.MatchingService_StartMatchRun_FullMethodName
	s.match.mu.Lock()
	defer s.match.mu.Unlock()
	// A run whose record already says SUCCEEDED or FAILED is only returning: a client that read
	// that record and starts the next run waits for it instead of being told a run is working.
	for s.match.running && s.runEnded(s.match.seq) {
		done := s.match.done
		s.match.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
		}
		s.match.mu.Lock()
		if ctx.Err() != nil {
			break
		}
	}
	resp := &sendingv1.StartMatchRunResponse{}
	var started uint64
	err := s.db.UpdateOnce(s.cfg.Now(), method, req, resp, func(tx *bbolt.Tx) error {
		if s.match.closed {
			return apierror.Unavailable("the service is stopping; start the run again later")
		}
		if s.match.running {
			return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_MATCH_RUN_IN_PROGRESS,
				"a match run is still working: wait for it to end (ListMatchRuns shows it) and start again")
		}
		now := s.cfg.Now()
		rc, err := s.demand.CheckReplicas(tx, s.followedRegions(), limit, now)
		if err != nil {
			return err
		}
		if err := rc.Err(limit); err != nil {
			return err
		}
		seq, err := runs.NextSeq(tx)
		if err != nil {
			return err
		}
		run := &sendingv1.MatchRun{
			Name:       RunName(seq),
			State:      runRunning,
			DryRun:     req.GetDryRun(),
			Stage:      "starting",
			Algorithm:  matcher.Algorithm,
			CreateTime: tsOf(now),
			Replicas:   rc.Replicas,
			Warnings:   rc.Warnings,
		}
		if err := putRun(tx, seq, run); err != nil {
			return err
		}
		resp.MatchRun = run
		started = seq
		return nil
	})
	if err != nil {
		return nil, err
	}
	if started != 0 {
		// The run goes on after the call returns, in the call's trace (its proposals' outbox
		// entries carry it).
		ctx, cancel := context.WithCancel(tracing.Detached(s.bg, ctx))
		s.match.running, s.match.seq, s.match.cancel, s.match.done = true, started, cancel, make(chan struct{})
		s.bgWork.Add(1)
		go func() {
			defer s.bgWork.Done()
			defer cancel()
			s.executeRun(ctx, started, req.GetDryRun(), limit)
		}()
	}
	return resp, nil
}

// CancelMatchRun records a RUNNING run CANCELLED and stops it at its next stage boundary
// (checkRun): it commits nothing after that. A CANCELLED run is returned unchanged; a run that
// ended otherwise is FAILED_PRECONDITION.
func (x *matchingServer) CancelMatchRun(_ context.Context, req *sendingv1.CancelMatchRunRequest) (*sendingv1.CancelMatchRunResponse, error) {
	s := x.s
	seq, _ := parseRunName(req.GetName()) // checked by ValidateRequest
	method := sendingv1.MatchingService_CancelMatchRun_FullMethodName
	resp := &sendingv1.CancelMatchRunResponse{}
	err := s.db.UpdateOnce(s.cfg.Now(), method, req, resp, func(tx *bbolt.Tx) error {
		r, err := getRun(tx, seq)
		if err != nil {
			return err
		}
		switch r.GetState() {
		case runRunning:
			r.State, r.Stage, r.EndTime = runCancelled, "cancelled", tsOf(s.cfg.Now())
			if err := putRun(tx, seq, r); err != nil {
				return err
			}
		case runCancelled:
		default:
			return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION,
				"match run %s has ended (%s): only a running run can be cancelled", r.GetName(), r.GetState())
		}
		resp.MatchRun = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.match.mu.Lock()
	if s.match.running && s.match.seq == seq && s.match.cancel != nil {
		s.match.cancel()
	}
	s.match.mu.Unlock()
	return resp, nil
}

// runEnded reports whether run seq is recorded SUCCEEDED or FAILED (so its goroutine is only
// returning); a CANCELLED run may still be working up to its next stage boundary.
func (s *Service) runEnded(seq uint64) bool {
	var ended bool
	_ = s.db.View(func(tx *bbolt.Tx) error {
		r, err := getRun(tx, seq)
		ended = err == nil && (r.GetState() == runSucceeded || r.GetState() == runFailed)
		return nil
	})
	return ended
}

// runningRun reads run seq for a change by the run itself: errRunCancelled when it is no longer
// RUNNING (CancelMatchRun recorded it CANCELLED).
func runningRun(tx *bbolt.Tx, seq uint64) (*sendingv1.MatchRun, error) {
	r, err := getRun(tx, seq)
	if err != nil {
		return nil, err
	}
	if r.GetState() != runRunning {
		return nil, errRunCancelled
	}
	return r, nil
}

// checkRun is a stage boundary of run seq: errRunCancelled when the run was cancelled, the
// context's error when the service stops.
func (s *Service) checkRun(ctx context.Context, seq uint64) error {
	err := s.db.View(func(tx *bbolt.Tx) error {
		_, err := runningRun(tx, seq)
		return err
	})
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted: %w", err)
	}
	return nil
}

// failure is the google.rpc.Status recorded on a run that failed with err: the status the
// service would give for err, or INTERNAL with the message of an error it did not expect.
func failure(err error) *rpcstatus.Status {
	if !apierror.IsKnown(err) {
		return &rpcstatus.Status{Code: int32(grpccodes.Internal), Message: Clip("internal error: "+err.Error(), 500)}
	}
	st := apierror.Status(err).Proto()
	st.Message = Clip(st.GetMessage(), 500)
	return st
}

// GetMatchRun reads a run: its progress while it works, its result when done.
func (x *matchingServer) GetMatchRun(_ context.Context, req *sendingv1.GetMatchRunRequest) (*sendingv1.GetMatchRunResponse, error) {
	seq, reason := parseRunName(req.GetName())
	if reason != "" {
		return nil, apierror.InvalidArgument("name %s", reason)
	}
	var r *sendingv1.MatchRun
	err := x.s.db.View(func(tx *bbolt.Tx) error {
		var err error
		r, err = getRun(tx, seq)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &sendingv1.GetMatchRunResponse{MatchRun: r}, nil
}

// ListMatchRuns lists runs newest first, in the request's view: without their per-vacancy
// results unless it is FULL (the run as GetMatchRun reads it).
func (x *matchingServer) ListMatchRuns(_ context.Context, req *sendingv1.ListMatchRunsRequest) (*sendingv1.ListMatchRunsResponse, error) {
	after, err := runsListing.Decode(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	size := runsSize.Of(req.GetPageSize())
	resp := &sendingv1.ListMatchRunsResponse{}
	err = x.s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(BucketMatchRuns).Cursor() // newest first: Table scans go forward only
		var k, v []byte
		if after != nil {
			c.Seek(after)
			k, v = c.Prev()
		} else {
			k, v = c.Last()
		}
		var last []byte
		for ; k != nil; k, v = c.Prev() {
			if len(resp.MatchRuns) == size {
				resp.NextPageToken = runsListing.Token(last)
				return nil
			}
			r := &sendingv1.MatchRun{}
			if err := proto.Unmarshal(v, r); err != nil {
				return fmt.Errorf("decode match run: %w", err)
			}
			if req.GetView() != sendingv1.MatchRunView_MATCH_RUN_VIEW_FULL {
				r.Vacancies = nil
			}
			resp.MatchRuns = append(resp.MatchRuns, r)
			last = append(last[:0], k...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// runProgress writes a run's stage and percentage, at most every progressEvery unless the
// stage changes.
type runProgress struct {
	s       *Service
	seq     uint64
	stage   string
	percent int32
	written time.Time
}

const progressEvery = 250 * time.Millisecond

func (p *runProgress) set(stage string, percent int) {
	pct := int32(min(max(percent, 0), 100))
	if stage == p.stage && (pct == p.percent || time.Since(p.written) < progressEvery) {
		return
	}
	p.stage, p.percent, p.written = stage, pct, time.Now()
	if err := p.s.updateRun(p.seq, func(r *sendingv1.MatchRun) {
		r.Stage, r.ProgressPercent = stage, pct
	}); err != nil {
		p.s.lg.Warn("record match run progress", zap.Error(err))
	}
	if p.s.cfg.Progress != nil {
		p.s.cfg.Progress(stage)
	}
}

// executeRun does run seq, which allows replicas behind by up to limit, and records how it
// ended.
func (s *Service) executeRun(ctx context.Context, seq uint64, dryRun bool, limit time.Duration) {
	defer func() {
		s.match.mu.Lock()
		if s.match.done != nil {
			close(s.match.done)
		}
		s.match.running, s.match.seq, s.match.cancel, s.match.done = false, 0, nil, nil
		s.match.mu.Unlock()
	}()
	lg := s.lg.With(zap.String("run", RunName(seq)), zap.Bool("dry_run", dryRun))
	start := time.Now()
	lg.Info("match run started")
	run, err := s.matchAndPropose(ctx, seq, dryRun, limit, &runProgress{s: s, seq: seq})
	if err != nil && (errors.Is(err, errRunCancelled) || errors.Is(s.checkRun(context.Background(), seq), errRunCancelled)) {
		// Stopped by CancelMatchRun (at a stage boundary, or by the cancel of its context).
		lg.Info("match run cancelled", zap.Duration("duration", time.Since(start)))
		return
	}
	if err != nil {
		lg.Error("match run failed", zap.Error(err))
		if uerr := s.updateRun(seq, func(r *sendingv1.MatchRun) { // left CANCELLED if it was cancelled meanwhile
			r.State, r.Stage, r.Error, r.EndTime = runFailed, "failed", failure(err), tsOf(s.cfg.Now())
		}); uerr != nil {
			lg.Error("record failed match run", zap.Error(uerr))
		}
		return
	}
	for _, w := range run.GetWarnings() {
		lg.Warn("match run warning", zap.String("warning", w))
	}
	lg.Info("match run succeeded", zap.Int64("proposed", run.GetProposed()),
		zap.Int64("proposed_registered_poor", run.GetProposedRegisteredPoor()),
		zap.Int64("workers_eligible", run.GetWorkersEligible()), zap.Int64("openings", run.GetOpenings()),
		zap.Duration("duration", time.Since(start)))
}

// matchDate converts a calendar date for the matcher.
func matchDate(d *commonv1.Date) matcher.Date {
	return matcher.DateOf(int(d.GetYear()), time.Month(d.GetMonth()), int(d.GetDay()))
}

// demandInfo is what a run keeps of one vacancy.
type demandInfo struct {
	region   string
	vacancy  *receivingv1.Vacancy
	openings int
	pending  int // undecided proposals of ours when the run read the demand
}

// matchInput is what a run reads.
type matchInput struct {
	workers []matcher.Worker // in worker-id order
	vacs    []matcher.Vacancy
	demand  map[string]*demandInfo // by replica key
	// replicas is how current the replicas were when the demand was read (checkReplicas).
	replicas *demand.ReplicaCheck
}

// followedRegions returns the receiving provinces whose demand a run uses: the configured or
// currently followed ones, or every province in the replica when none is known yet.
func (s *Service) followedRegions() map[string]bool {
	out := map[string]bool{}
	for code := range s.cfg.Receiving {
		out[code] = true
	}
	for code := range s.demand.Followed() {
		out[code] = true
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// readMatchInput reads the available workers and the demand with room, refusing replicas
// behind by more than limit.
func (s *Service) readMatchInput(ctx context.Context, seq uint64, limit time.Duration, p *runProgress) (*matchInput, error) {
	in := &matchInput{demand: map[string]*demandInfo{}}
	p.set("reading workers", pctReadWorkers)
	err := s.db.View(func(tx *bbolt.Tx) error {
		n := 0
		return roster.ForEachAvailable(tx, func(w *sendingv1.Worker) error {
			if n++; n%10000 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			if w.GetBirthDate() == nil {
				return nil
			}
			mw := matcher.Worker{
				ID:           w.GetWorkerId(),
				County:       w.GetHomeCounty(),
				Poor:         w.GetRegisteredPoor(),
				Occupations:  w.GetOccupations(),
				BirthDate:    matchDate(w.GetBirthDate()),
				Destinations: w.GetPreferredDestinations(),
				HealthOK:     w.GetHealthCheckPassed(),
			}
			if af := w.GetAvailableFrom(); af != nil {
				mw.AvailableFrom = matchDate(af)
			}
			in.workers = append(in.workers, mw)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if err := s.checkRun(ctx, seq); err != nil {
		return nil, err
	}
	p.set("reading demand", pctReadDemand)
	regions := s.followedRegions()
	now := s.cfg.Now()
	today := matchDate(civil.Today(now))
	err = s.db.View(func(tx *bbolt.Tx) error {
		rc, err := s.demand.CheckReplicas(tx, regions, limit, now)
		if err != nil {
			return err
		}
		if err := rc.Err(limit); err != nil {
			return err
		}
		in.replicas = rc
		pending := map[string]int{}
		// proposedFor[vacancy id] are the input workers proposed for the vacancy before, in
		// any state: the proposal id is "<vacancy_id>~<worker_id>", so a pair is proposed at
		// most once, and the matcher gets them as exclusions (a hard constraint).
		proposedFor := map[string][]int{}
		if err := ForEachProposal(tx, func(pr *sendingv1.Proposal) error {
			if IsUndecided(pr.GetState()) {
				pending[demand.Key(pr.GetReceivingRegion(), VacancyIDOf(pr.GetVacancy()))]++
			}
			if i, ok := in.workerIndex(pr.GetWorkerId()); ok {
				id := VacancyIDOf(pr.GetVacancy())
				proposedFor[id] = append(proposedFor[id], i)
			}
			return nil
		}); err != nil {
			return err
		}
		return demand.ForEachVacancy(tx, func(key string, dv *sendingv1.DemandVacancy) error {
			vac := dv.GetVacancy()
			if vac.GetStatus() != receivingv1.VacancyStatus_VACANCY_STATUS_OPEN || vac.GetStartDate() == nil ||
				(regions != nil && !regions[dv.GetReceivingRegion()]) {
				return nil
			}
			if vt := vac.GetValidThrough(); vt != nil && matchDate(vt) < today {
				return nil
			}
			open := int(vac.GetHeadcount()) - int(vac.GetReserved()) - pending[key]
			if open <= 0 {
				return nil
			}
			in.demand[key] = &demandInfo{region: dv.GetReceivingRegion(), vacancy: vac, openings: open, pending: pending[key]}
			for _, i := range proposedFor[vac.GetVacancyId()] {
				in.workers[i].Excluded = append(in.workers[i].Excluded, key)
			}
			in.vacs = append(in.vacs, matcher.Vacancy{
				Key:        key,
				Province:   dv.GetReceivingRegion(),
				County:     vac.GetWorkCounty(),
				Occupation: vac.GetOccupation(),
				StartDate:  matchDate(vac.GetStartDate()),
				MinAge:     int(vac.GetMinAge()),
				MaxAge:     int(vac.GetMaxAge()),
				Openings:   open,
			})
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return in, nil
}

// matchAndPropose does the work of run seq and returns its final record.
func (s *Service) matchAndPropose(ctx context.Context, seq uint64, dryRun bool, limit time.Duration, p *runProgress) (*sendingv1.MatchRun, error) {
	in, err := s.readMatchInput(ctx, seq, limit, p)
	if err != nil {
		return nil, err
	}
	if err := s.checkRun(ctx, seq); err != nil {
		return nil, err
	}
	p.set("solving", PctSolve)
	res, err := matcher.Match(in.workers, in.vacs, matcher.Options{Progress: func(stage string, percent int) {
		p.set("solving: "+stage, PctSolve+percent*(pctPropose-PctSolve)/100)
	}})
	if err != nil {
		return nil, err
	}
	if err := s.checkRun(ctx, seq); err != nil {
		return nil, err
	}
	if dryRun {
		var run *sendingv1.MatchRun
		err := s.db.Update(func(tx *bbolt.Tx) error {
			r, err := runningRun(tx, seq)
			if err != nil {
				return err
			}
			var placed []placement
			for _, a := range res.Assignments {
				w := in.worker(a.WorkerID)
				placed = append(placed, placement{key: a.VacancyKey, county: w.County, poor: w.Poor})
			}
			s.finishRun(r, res, in, placed)
			run = r
			return putRun(tx, seq, r)
		})
		return run, err
	}
	p.set("proposing", pctPropose)
	var run *sendingv1.MatchRun
	var dests []string
	err = s.db.Update(func(tx *bbolt.Tx) error {
		r, err := runningRun(tx, seq) // a run cancelled meanwhile proposes nothing
		if err != nil {
			return err
		}
		placed, d, err := s.propose(ctx, tx, RunName(seq), res.Assignments, in)
		if err != nil {
			return err
		}
		dests = d
		s.finishRun(r, res, in, placed)
		run = r
		return putRun(tx, seq, r)
	})
	if err != nil {
		return nil, err
	}
	s.relays.Notify(dests...)
	return run, nil
}

// worker returns the input worker with id (the matcher only returns ids it was given).
func (in *matchInput) worker(id string) *matcher.Worker {
	i, ok := in.workerIndex(id)
	if !ok {
		return &matcher.Worker{ID: id}
	}
	return &in.workers[i]
}

// workerIndex returns the position of the input worker with id.
func (in *matchInput) workerIndex(id string) (int, bool) {
	return slices.BinarySearchFunc(in.workers, id, func(w matcher.Worker, id string) int { return strings.Compare(w.ID, id) })
}

// placement is one proposal of a run, for its summary.
type placement struct {
	key    string
	county string
	poor   bool
}

// finishRun fills the result of run r: counts and the per-vacancy summary in vacancy order.
func (s *Service) finishRun(r *sendingv1.MatchRun, res matcher.Result, in *matchInput, placed []placement) {
	r.State, r.Stage, r.ProgressPercent, r.EndTime = runSucceeded, "done", 100, tsOf(s.cfg.Now())
	r.WorkersEligible = int64(res.EligibleWorkers)
	r.Openings = int64(res.Openings)
	r.Algorithm = res.Algorithm
	r.Proposed, r.ProposedRegisteredPoor = 0, 0
	r.Vacancies = nil
	if in.replicas != nil {
		r.Replicas, r.Warnings = in.replicas.Replicas, in.replicas.Warnings
	}
	slices.SortStableFunc(placed, func(a, b placement) int { return strings.Compare(a.key, b.key) })
	for i := 0; i < len(placed); {
		j := i
		counties := map[string]bool{}
		var poor int64
		for j < len(placed) && placed[j].key == placed[i].key {
			counties[placed[j].county] = true
			if placed[j].poor {
				poor++
			}
			j++
		}
		d := in.demand[placed[i].key]
		r.Vacancies = append(r.Vacancies, &sendingv1.VacancyMatch{
			ReceivingRegion:        d.region,
			Vacancy:                VacancyName(d.vacancy.GetVacancyId()),
			EmployerName:           d.vacancy.GetEmployerName(),
			Occupation:             d.vacancy.GetOccupation(),
			Openings:               int64(d.openings),
			Proposed:               int64(j - i),
			ProposedRegisteredPoor: poor,
			HomeCounties:           int64(len(counties)),
		})
		r.Proposed += int64(j - i)
		r.ProposedRegisteredPoor += poor
		i = j
	}
}

// propose commits the assignments of a run in tx (see the file comment) and returns what it
// proposed and the outbox destinations it wrote to.
func (s *Service) propose(ctx context.Context, tx *bbolt.Tx, run string, assignments []matcher.Assignment, in *matchInput) ([]placement, []string, error) {
	now := tsOf(s.cfg.Now())
	proposedNow := map[string]int{}
	chunks := map[string][]*receivingv1.Candidate{}
	var regions []string
	flush := func(region string) error {
		if len(chunks[region]) == 0 {
			return nil
		}
		_, err := outbox.Put(ctx, tx, s.cfg.Now(), ReceivingDestination(region), CandidatesKey, &receivingv1.SubmitCandidatesRequest{
			SendingRegion: s.cfg.Region, Candidates: chunks[region],
		})
		chunks[region] = nil
		return err
	}
	var placed []placement
	skipped := 0
	// The replica's vacancies as this transaction reads them, decoded once each (a vacancy
	// takes up to thousands of the assignments; proposing does not change them).
	vacancies := map[string]*receivingv1.Vacancy{}
	for _, a := range assignments {
		d := in.demand[a.VacancyKey]
		if d == nil {
			return nil, nil, fmt.Errorf("matcher returned unknown vacancy %q", a.VacancyKey)
		}
		vac, ok := vacancies[a.VacancyKey]
		if !ok {
			dv, _, err := demand.VacancyByKey(tx, a.VacancyKey)
			if err != nil {
				return nil, nil, err
			}
			vac = dv.GetVacancy()
			vacancies[a.VacancyKey] = vac
		}
		room := int(vac.GetHeadcount()) - int(vac.GetReserved()) - d.pending - proposedNow[a.VacancyKey]
		if vac.GetStatus() != receivingv1.VacancyStatus_VACANCY_STATUS_OPEN || room <= 0 {
			skipped++
			continue
		}
		pid := ProposalID(vac.GetVacancyId(), a.WorkerID)
		if _, exists, err := GetProposal(tx, pid); err != nil {
			return nil, nil, err
		} else if exists {
			return nil, nil, fmt.Errorf("matcher assigned worker %s to vacancy %s although it was proposed before and excluded",
				a.WorkerID, vac.GetVacancyId())
		}
		w, err := roster.Read(tx, a.WorkerID)
		if err != nil {
			return nil, nil, err
		}
		if w.GetStatus() != stAvailable || w.GetErased() {
			skipped++
			continue
		}
		if err := s.roster.ChangeStatusOf(tx, w, stProposed, "proposed for "+VacancyName(vac.GetVacancyId())+" by "+run); err != nil {
			return nil, nil, err
		}
		if err := PutProposal(tx, &sendingv1.Proposal{
			Name:            proposalNamePrefix + pid,
			WorkerId:        a.WorkerID,
			ReceivingRegion: d.region,
			Vacancy:         VacancyName(vac.GetVacancyId()),
			MatchRun:        run,
			State:           proposalPending,
			CreateTime:      now,
			UpdateTime:      now,
		}); err != nil {
			return nil, nil, err
		}
		proposedNow[a.VacancyKey]++
		placed = append(placed, placement{key: a.VacancyKey, county: w.GetHomeCounty(), poor: w.GetRegisteredPoor()})
		if _, ok := chunks[d.region]; !ok {
			regions = append(regions, d.region)
		}
		chunks[d.region] = append(chunks[d.region], &receivingv1.Candidate{
			Vacancy:        VacancyName(vac.GetVacancyId()),
			WorkerId:       a.WorkerID,
			FullName:       w.GetFullName(),
			Sex:            w.GetSex(),
			Age:            int32(matcher.AgeOn(matchDate(w.GetBirthDate()), matchDate(vac.GetStartDate()))),
			Occupations:    w.GetOccupations(),
			HomeCounty:     w.GetHomeCounty(),
			RegisteredPoor: w.GetRegisteredPoor(),
		})
		if len(chunks[d.region]) == maxCandidatesPerSubmission {
			if err := flush(d.region); err != nil {
				return nil, nil, err
			}
		}
	}
	var dests []string
	for _, region := range regions {
		if err := flush(region); err != nil {
			return nil, nil, err
		}
		dests = append(dests, ReceivingDestination(region))
	}
	if skipped > 0 {
		s.lg.Info("match run left out assignments that no longer hold", zap.String("run", run), zap.Int("skipped", skipped))
	}
	return placed, dests, nil
}

// GetFollowStatus shows how the feeds of the receiving provinces are followed
// (services/sending/demand).
func (x *matchingServer) GetFollowStatus(ctx context.Context, req *sendingv1.GetFollowStatusRequest) (*sendingv1.GetFollowStatusResponse, error) {
	return x.s.demand.GetFollowStatus(ctx, req)
}

// ListDemand lists the replicated open vacancies (services/sending/demand).
func (x *matchingServer) ListDemand(ctx context.Context, req *sendingv1.ListDemandRequest) (*sendingv1.ListDemandResponse, error) {
	return x.s.demand.ListDemand(ctx, req)
}

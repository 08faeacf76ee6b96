// Package coordination is the coordination service, one for the nation. This package is its
// wiring; the subsystems are
//
//	registry    the region registry and the pairings (RegistryService)
//	ledger      the ledger of events both sides report, and their reconciliation per batch
//	            (LedgerService, ReconciliationService)
//	assessment  baselines and assessments (AssessmentService), over the ledger's counts
//	dynamics    national employment dynamics as of a date (DynamicsService), over the
//	            ledger's per-day counts
//	eligibility subsidy eligibility by rules that are data (EligibilityService), over the
//	            ledger's events
//
// each with its handlers, rules and storage; check holds the request checks they share.
package coordination

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/codes/workcalendar"
	"github.com/eastwest/labourlink/services/coordination/assessment"
	"github.com/eastwest/labourlink/services/coordination/dynamics"
	"github.com/eastwest/labourlink/services/coordination/eligibility"
	"github.com/eastwest/labourlink/services/coordination/ledger"
	"github.com/eastwest/labourlink/services/coordination/registry"
	"github.com/eastwest/labourlink/services/coordination/replicated"
	"github.com/eastwest/labourlink/services/platform/metrics"
	"github.com/eastwest/labourlink/services/platform/replog"
	"github.com/eastwest/labourlink/services/platform/store"
)

// Schema is what the coordination service keeps in its bbolt file: the buckets of its
// subsystems (and the shared counters).
var Schema = store.Schema{
	Name:    "coordination",
	Version: 11,
	Buckets: slices.Concat(registry.Buckets, ledger.Buckets, assessment.Buckets, dynamics.Buckets, replicated.Buckets, [][]byte{store.BucketCounters}),
	Migrate: migrate,
}

// migrate upgrades a file of an older version of the coordination schema.
//
// Version 2 gave ledger events per-kind details: the events recorded with the flat months,
// still_employed and detail fields are converted (ledger.MigrateDetails).
//
// Version 3 renamed the API's package root (labour.* to labourlink.*): the method names and type
// URLs of remembered responses are rewritten (store.MigratePackageRoot).
//
// Version 4 names discrepancies by number in an index (GetDiscrepancy): the index is built from
// the stored discrepancies (ledger.MigrateDiscrepancyNames).
//
// Version 5 keeps the employment dynamics' counts per day and year (DynamicsService): the
// workers' trips and the counts are built from the stored events (ledger.MigrateDynamics).
//
// Version 6 keeps the local employers the sending provinces report (dynamics.BucketLocalEmployers,
// for the national recovery rate): the bucket is created empty, nothing to convert; the provinces
// report their employers on their next start.
//
// Version 7 keeps the dynamics' counts by home county and by occupation too (from the DEPARTED
// events' details): the workers' trips and all the counts are built anew from the stored events
// (ledger.RebuildDynamics).
//
// Version 8 keeps the deadlines of the programme agreements (Pairing.agreement, ABSENCE events,
// BatchReconciliation.next_deadline): every batch is scheduled for the timer's first pass, which
// reconciles it under its deadlines (ledger.MigrateDeadlines).
//
// Version 9 keeps each reporter's events as a verifiable log (an RFC 6962 Merkle tree): the trees
// are built from the stored events in the order recorded (ledger.BuildTrees).
//
// Version 10 keeps counts in the ledger's write transactions, so that pairing summaries and
// assessments cost O(days of the period), not O(ledger), and indexes events by kind and region
// for ListEvents: all are built from the stored indexes, discrepancies and events
// (ledger.BuildCounts).
//
// Version 11 keeps, in the replicated mode, the sequence of the last command of the replicated
// log applied to the file (replicated.Buckets): the bucket is created empty, nothing to convert.
func migrate(tx *bbolt.Tx, from uint64) error {
	if from < 2 {
		if err := ledger.MigrateDetails(tx); err != nil {
			return fmt.Errorf("ledger event details: %w", err)
		}
	}
	if from < 3 {
		if _, err := store.MigratePackageRoot(tx); err != nil {
			return fmt.Errorf("package root: %w", err)
		}
	}
	if from < 4 {
		if err := ledger.MigrateDiscrepancyNames(tx); err != nil {
			return fmt.Errorf("discrepancy names: %w", err)
		}
	}
	if from < 7 {
		if err := ledger.RebuildDynamics(tx); err != nil {
			return fmt.Errorf("employment dynamics: %w", err)
		}
	}
	if from < 8 {
		if err := ledger.MigrateDeadlines(tx); err != nil {
			return fmt.Errorf("deadlines: %w", err)
		}
	}
	if from < 9 {
		if err := ledger.BuildTrees(tx); err != nil {
			return fmt.Errorf("ledger trees: %w", err)
		}
	}
	if from < 10 {
		if err := ledger.BuildCounts(tx); err != nil {
			return fmt.Errorf("ledger counts: %w", err)
		}
	}
	return nil
}

// DefaultGracePeriod is how long after a batch's departure a worker not confirmed arrived
// becomes unaccounted.
const DefaultGracePeriod = 72 * time.Hour

// DefaultCheckInterval is the longest the deadline timer sleeps before looking at the clock again.
const DefaultCheckInterval = time.Minute

// Config configures the coordination service.
type Config struct {
	// GracePeriod after departure before a missing arrival is unaccounted; 0 for 72 h.
	GracePeriod time.Duration
	// LoadDefaultPairings adds the default east–west pairings at start when none exist.
	LoadDefaultPairings bool
	// Now is the clock; nil for time.Now.
	Now func() time.Time
	// CheckInterval is the longest the deadline timer in Run sleeps between looks at the clock
	// (it also wakes at the next grace deadline and when events arrive); 0 for 1 minute. Tests
	// with an injected clock set it short.
	CheckInterval time.Duration
	// Metrics, when set, is where the service exports its metrics: ledger events ingested and
	// open discrepancies (services/platform/metrics).
	Metrics *metrics.Registry
	// LedgerKey signs the ledger's checkpoints (ledger.LoadOrCreateKey); nil: a key made for this
	// process (tests).
	LedgerKey *ledger.Key
	// SubsidyRules are the rules EligibilityService evaluates; nil for the project's
	// (eligibility.Default).
	SubsidyRules *eligibility.Rules
	// Health, when set, is told whether the work calendar covers the current year:
	// Health(CalendarHealthName, covered), at start and when it changes (calendar.go), and, in
	// the replicated mode, whether this node applies the log (ReplicationHealthName).
	Health func(name string, serving bool)
	// Log, when set, is the replicated mode (docs/replication.md): every write goes through this
	// replicated command log, which this node applies to db (services/coordination/replicated).
	// New returns once the node has caught up with the log; the LedgerKey must be the same on
	// every node.
	Log *replog.Log
	// Replica is this node's name in the replicated mode (its commands' ids).
	Replica string
	// Ready, when set, is told in the replicated mode whether this node's answers are current
	// (it applies the log and is not behind it: replicated.WatchConfig): false takes the server
	// as a whole out of the balancing of clients given every node and out of readiness probes,
	// while it goes on answering whoever asks it alone.
	Ready func(ready bool)
	// Watch sets how the replicated mode judges that a node is current (zero: the defaults).
	Watch replicated.WatchConfig
}

// ReplicationHealthName is the health service name under which a node of the replicated mode
// reports whether its answers are current: it applies the log (else it stopped, see its log,
// and answers writes UNAVAILABLE) and is not behind it (replicated.WatchConfig). The server as
// a whole ("") follows it (Config.Ready).
const ReplicationHealthName = "labourlink.replication"

// Service is the coordination service.
type Service struct {
	registry   *registry.Server
	ledger     *ledger.Ledger
	assessment *assessment.Server
	dynamics   *dynamics.Server

	lg       *zap.Logger
	now      func() time.Time
	regions  *regions.Table
	eligible *eligibility.Server
	health   func(name string, serving bool)
	interval time.Duration
	// repl is the replicated mode's writer and applier (nil: one process).
	repl  *replicated.Writer
	ready func(bool)
	watch replicated.WatchConfig

	// currency: whether this node applies the log and is current with it.
	currency struct {
		sync.Mutex
		applying, current bool
	}
}

// New returns the coordination service over db.
func New(db *store.DB, lg *zap.Logger, cfg Config) (*Service, error) {
	if cfg.GracePeriod == 0 {
		cfg.GracePeriod = DefaultGracePeriod
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	t := regions.Default()
	s := &Service{
		registry: registry.New(db, lg, t, cfg.Now),
		ledger: ledger.New(db, lg, ledger.Config{
			Regions: t, Now: cfg.Now, GracePeriod: cfg.GracePeriod, CheckInterval: cfg.CheckInterval,
			Metrics: cfg.Metrics, Key: cfg.LedgerKey,
		}),
		assessment: assessment.New(db, t, cfg.Now),
		dynamics:   dynamics.New(db, t, cfg.Now),
		lg:         lg,
		now:        cfg.Now,
		regions:    t,
		health:     cfg.Health,
		interval:   cfg.CheckInterval,
		ready:      cfg.Ready,
		watch:      cfg.Watch,
	}
	// A pairing's new programme agreement moves its batches' deadlines.
	s.registry.OnAgreement = s.ledger.ReconcilePairing
	if cfg.SubsidyRules == nil {
		cfg.SubsidyRules = eligibility.Default()
	}
	s.eligible = eligibility.New(db, t, cfg.SubsidyRules, cfg.Now)
	start := func(ctx context.Context) error {
		if cfg.LoadDefaultPairings {
			return s.registry.LoadDefaultPairingsIfEmpty(ctx)
		}
		return nil
	}
	if cfg.Log == nil {
		if err := start(context.Background()); err != nil {
			return nil, err
		}
		return s, nil
	}
	w, err := replicated.New(cfg.Log, db, cfg.Replica, lg, s.Mutations())
	if err != nil {
		return nil, err
	}
	s.repl = w
	s.SetWriter(w)
	if err := w.CatchUp(context.Background(), start); err != nil {
		return nil, fmt.Errorf("catch up with the replicated log: %w", err)
	}
	return s, nil
}

// Mutations are every write of the service, each a function of its request and time alone
// (store.Mutation): what a replicated coordination service applies from its log.
func (s *Service) Mutations() []*store.Mutation {
	var ms []*store.Mutation
	ms = append(ms, s.registry.Mutations()...)
	ms = append(ms, s.ledger.Mutations()...)
	ms = append(ms, s.assessment.Mutations()...)
	return append(ms, s.dynamics.Mutations()...)
}

// SetWriter sends every write of the service to w (before it serves: a replicated log).
func (s *Service) SetWriter(w store.Writer) {
	s.registry.SetWriter(w)
	s.ledger.SetWriter(w)
	s.assessment.SetWriter(w)
	s.dynamics.SetWriter(w)
}

// ServiceNames are the gRPC services this service registers (for health checks).
func (s *Service) ServiceNames() []string {
	return []string{
		coordinationv1.RegistryService_ServiceDesc.ServiceName,
		coordinationv1.LedgerService_ServiceDesc.ServiceName,
		coordinationv1.ReconciliationService_ServiceDesc.ServiceName,
		coordinationv1.AssessmentService_ServiceDesc.ServiceName,
		coordinationv1.DynamicsService_ServiceDesc.ServiceName,
		coordinationv1.EligibilityService_ServiceDesc.ServiceName,
	}
}

// Register registers the gRPC services on gs.
func (s *Service) Register(gs *grpc.Server) {
	coordinationv1.RegisterRegistryServiceServer(gs, s.registry)
	coordinationv1.RegisterLedgerServiceServer(gs, s.ledger.LedgerServer())
	coordinationv1.RegisterReconciliationServiceServer(gs, s.ledger.ReconciliationServer())
	coordinationv1.RegisterAssessmentServiceServer(gs, s.assessment)
	coordinationv1.RegisterDynamicsServiceServer(gs, s.dynamics)
	coordinationv1.RegisterEligibilityServiceServer(gs, s.eligible)
}

// Run does the service's background work until ctx is done: the ledger's deadline timer, which
// reconciles each batch again when its grace deadline passes (ledger.Ledger.Run), and the watch
// of the work calendar's years (watchCalendar).
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.watchCalendar(ctx, workcalendar.China())
	}()
	if s.repl != nil {
		s.setCurrency(func() { s.currency.applying, s.currency.current = true, true })
		wg.Add(2)
		go func() {
			defer wg.Done()
			err := s.repl.Run(ctx)
			if ctx.Err() == nil {
				// Its writes now answer UNAVAILABLE; its reads go on from its file as it stands.
				s.lg.Error("this node stopped applying the replicated log", zap.Error(err))
				s.setCurrency(func() { s.currency.applying = false })
			}
		}()
		go func() {
			defer wg.Done()
			s.repl.Watch(ctx, s.watch, func(current bool, why string) {
				if current {
					s.lg.Info("this node is current with the replicated log")
				} else {
					s.lg.Warn("this node is not current with the replicated log: out of the balancing until it is", zap.String("why", why))
				}
				s.setCurrency(func() { s.currency.current = current })
			})
		}()
	}
	err := s.ledger.Run(ctx)
	wg.Wait()
	return err
}

// setCurrency changes the node's currency with change and publishes it: ReplicationHealthName
// and Ready.
func (s *Service) setCurrency(change func()) {
	s.currency.Lock()
	defer s.currency.Unlock()
	change()
	ok := s.currency.applying && s.currency.current
	s.setHealth(ReplicationHealthName, ok)
	if s.ready != nil {
		s.ready(ok)
	}
}

func (s *Service) setHealth(name string, serving bool) {
	if s.health != nil {
		s.health(name, serving)
	}
}

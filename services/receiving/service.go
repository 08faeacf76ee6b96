// Package receiving is the receiving service: one instance per receiving province. It owns the
// province's vacancies and their change feed, candidates and decisions, intake batches, arrivals
// and employment records, and the outbox of ledger events for the coordination service.
//
// This package only composes the subsystems, each with its handlers, rules and storage:
//
//	vacancies/   VacancyService: vacancies, vacancy imports, the demand feed's entries
//	feed/        DemandFeedService: the demand change feed and ListOpenDemand
//	candidates/  CandidateService: candidates, decisions and the decision feed
//	intake/      IntakeService: batches, arrivals, employment records, ledger events;
//	             EmploymentFeedService: the employment feed of each sending province
//	internal/feedlog   the change log behind the feeds (revisions, watch, compaction)
//	internal/province  this province, its code table and its pairings
//	internal/check     request checks the subsystems share
package receiving

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/platform/identity"
	"github.com/eastwest/labourlink/services/platform/metrics"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/receiving/candidates"
	"github.com/eastwest/labourlink/services/receiving/feed"
	"github.com/eastwest/labourlink/services/receiving/intake"
	"github.com/eastwest/labourlink/services/receiving/internal/feedlog"
	"github.com/eastwest/labourlink/services/receiving/internal/province"
	"github.com/eastwest/labourlink/services/receiving/vacancies"
)

// Schema is what a receiving service keeps in its bbolt file: the buckets of its subsystems
// (their names are those of the files written before the split), the outbox and the counters.
//
// Versions: 1, the first; 2 replaced IntakeBatch's flags by its state and added the index of
// vacancies' external references; 3 renamed the API's package root; 4 keeps one employment
// record per trip; 5 adds the employment feeds, built from the stored records; 6 keeps what the ledger
// acknowledged (ledgerclient.WatchBuckets) (see migrate, schema.go).
var Schema = store.Schema{
	Name:    "receiving",
	Version: 6,
	Buckets: slices.Concat(vacancies.Buckets(), candidates.Buckets(), intake.Buckets(), ledgerclient.WatchBuckets(),
		[][]byte{store.BucketOutbox, store.BucketOutboxQuarantine, store.BucketCounters}),
	Migrate: migrate,
}

// LedgerDestination is the outbox destination of ledger events (intake.LedgerDestination).
const LedgerDestination = intake.LedgerDestination

// DefaultImportReplyRejections is the most rejections a vacancy import summary lists (the
// ImportVacancies reply and GetVacancyImport) unless Config.ImportReplyRejections says
// otherwise; the rest are counted (rejections_truncated) and read with
// ListVacancyImportRejections.
const DefaultImportReplyRejections = 10000

// Defaults for zero Config fields.
const (
	// DefaultFeedRetention is how many changes each feed keeps (demand, decisions, and each
	// sending province's employment feed).
	DefaultFeedRetention = 100000
	// DefaultMaintenanceInterval is how often Run sweeps expired vacancies and compacts feeds.
	DefaultMaintenanceInterval = time.Minute
	// DefaultPairingRecheck is how often an open feed watch checks that its sending province is
	// still paired.
	DefaultPairingRecheck = 30 * time.Second
	// DefaultProgressInterval is how often an open feed watch that has nothing to send sends a
	// progress notice (services/receiving/internal/feedlog). Sending services take a watch
	// silent for several intervals as a link down (sending.DefaultFeedSilence).
	DefaultProgressInterval = 2 * time.Second
)

// Config configures a receiving service.
type Config struct {
	// Region is the 6-digit code of this receiving province, such as 440000.
	Region string
	// Coordination is the address of the coordination service; empty runs without one (tests,
	// stand-alone). With it, the sending provinces allowed to read the feeds, submit candidates
	// and announce batches are the ones paired with Region in the coordination registry.
	Coordination string
	// Paired lists the sending provinces allowed when Coordination is empty. nil means the
	// default pairings of services/codes/regions for Region (440000 pairs with 450000 and 520000);
	// an empty non-nil list allows no one. Ignored when Coordination is set.
	Paired []string
	// Peers says how to connect to other services.
	Peers peers.Options
	// Now is the clock; nil for time.Now.
	Now func() time.Time
	// FeedRetention is how many of the newest changes the demand feed, the decision feed and
	// each sending province's employment feed keep; older ones are compacted by Run. 0 means
	// DefaultFeedRetention.
	FeedRetention int
	// MaintenanceInterval is how often Run marks vacancies past their valid-through date
	// EXPIRED (recording the change in the feed) and compacts the feeds. 0 means
	// DefaultMaintenanceInterval.
	MaintenanceInterval time.Duration
	// ImportReplyRejections is the most rejected rows the summary of a vacancy import lists
	// (ImportVacancies, GetVacancyImport); the rest are counted (rejections_truncated) and read
	// with ListVacancyImportRejections. 0 means DefaultImportReplyRejections.
	ImportReplyRejections int
	// PairingRecheck is how often an open WatchDemand, WatchDecisions or WatchEmployment stream checks that its
	// sending province is still paired; a province unpaired meanwhile has its stream ended with
	// PERMISSION_DENIED. 0 means DefaultPairingRecheck.
	PairingRecheck time.Duration
	// ProgressInterval is how often an open feed watch (WatchDemand, WatchDecisions,
	// WatchEmployment) that has nothing
	// to send sends a progress notice (FeedProgress with caught_up: "you have everything up to
	// head_revision"). 0 means
	// DefaultProgressInterval.
	ProgressInterval time.Duration
	// ProgressTicker, when set, starts the ticks of the progress notices instead of a
	// time.Ticker of ProgressInterval (tests: ticks the test sends; feedlog.Watching.Ticker).
	ProgressTicker func(d time.Duration) (ticks <-chan time.Time, stop func())
	// Draining, when not nil, is closed when the gRPC server begins its graceful stop
	// (grpcserver.Server.Draining): open ImportVacancies streams then end with UNAVAILABLE,
	// keeping the rows they committed, instead of holding the stop until its timeout.
	Draining <-chan struct{}
	// Metrics, when set, is where the service exports its metrics: vacancy import rows and the
	// outbox (services/platform/metrics).
	Metrics *metrics.Registry
	// Health, when set, is told the state of the ledger checks: Health(ledgerclient.HealthName,
	// ok). The daemon sets it to the gRPC server's health service.
	Health func(name string, serving bool)
	// LedgerWatch tunes the checks of what the coordination service's ledger acknowledged
	// (services/coordination/ledgerclient, watch.go): the pinned public key, the interval and
	// the events per check. Region, Health and Now are the service's.
	LedgerWatch ledgerclient.WatchConfig
}

// Service is a receiving service.
type Service struct {
	raw  *store.DB
	db   *feedlog.DB
	lg   *zap.Logger
	cfg  Config
	here *province.Province
	// closePairing releases the registry connection (nil without one).
	closePairing func() error

	// stopping is closed when Run's context ends, so that open feed watches end with the
	// process's graceful stop instead of holding it until its timeout.
	stopping     chan struct{}
	stoppingOnce sync.Once
	// relays are the running outbox relays (the ledger's), for the OutboxService.
	relays outbox.Set

	vacancies  *vacancies.Server
	feed       *feed.Server
	candidates *candidates.Server
	intake     *intake.Server
	employment *intake.FeedServer
	// ledgerWatch keeps and checks what the ledger acknowledged (ledgerclient.Watch).
	ledgerWatch *ledgerclient.Watch
}

// New returns the receiving service for cfg.Region over db.
func New(db *store.DB, lg *zap.Logger, cfg Config) (*Service, error) {
	t := regions.Default()
	if !t.IsProvince(cfg.Region) {
		return nil, fmt.Errorf("receiving region %q is not a GB/T 2260 province code", cfg.Region)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.FeedRetention <= 0 {
		cfg.FeedRetention = DefaultFeedRetention
	}
	if cfg.PairingRecheck <= 0 {
		cfg.PairingRecheck = DefaultPairingRecheck
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = DefaultProgressInterval
	}
	if cfg.MaintenanceInterval <= 0 {
		cfg.MaintenanceInterval = DefaultMaintenanceInterval
	}
	if cfg.ImportReplyRejections <= 0 {
		cfg.ImportReplyRejections = DefaultImportReplyRejections
	}
	if lg == nil {
		lg = zap.NewNop()
	}
	here, closer, err := province.New(cfg.Region, t, cfg.Coordination, cfg.Paired, cfg.Peers)
	if err != nil {
		return nil, err
	}
	s := &Service{raw: db, db: feedlog.NewDB(db), lg: lg, cfg: cfg, here: here, closePairing: closer, stopping: make(chan struct{})}
	watching := feedlog.Watching{PairingRecheck: cfg.PairingRecheck, ProgressInterval: cfg.ProgressInterval,
		Ticker: cfg.ProgressTicker, Stopping: s.stopping}
	s.vacancies = vacancies.New(vacancies.Config{DB: s.db, Log: lg, Now: cfg.Now, Province: here,
		ImportReplyRejections: cfg.ImportReplyRejections, Draining: cfg.Draining, Metrics: cfg.Metrics})
	s.feed = feed.New(feed.Config{DB: s.db, Now: cfg.Now, Province: here, Watching: watching})
	s.candidates = candidates.New(candidates.Config{DB: s.db, Now: cfg.Now, Province: here, Watching: watching, Onboarded: intake.Onboarded})
	intakeCfg := intake.Config{DB: s.db, Log: lg, Now: cfg.Now, Province: here, Watching: watching}
	s.intake = intake.New(intakeCfg)
	s.employment = intake.NewFeed(intakeCfg)
	outbox.Observe(cfg.Metrics, db, cfg.Now, &s.relays, LedgerDestination)
	wc := cfg.LedgerWatch
	wc.Region, wc.Health, wc.Now = cfg.Region, cfg.Health, cfg.Now
	s.ledgerWatch = ledgerclient.NewWatch(db, lg, wc)
	s.ledgerWatch.Observe(cfg.Metrics)
	return s, nil
}

// ServiceNames are the gRPC services this service registers (for health checks).
func (s *Service) ServiceNames() []string {
	return []string{
		receivingv1.VacancyService_ServiceDesc.ServiceName,
		receivingv1.DemandFeedService_ServiceDesc.ServiceName,
		receivingv1.CandidateService_ServiceDesc.ServiceName,
		receivingv1.IntakeService_ServiceDesc.ServiceName,
		receivingv1.EmploymentFeedService_ServiceDesc.ServiceName,
		outbox.ServiceName,
		ledgerclient.WatchServiceName,
	}
}

// Register registers the gRPC services on gs.
func (s *Service) Register(gs *grpc.Server) {
	receivingv1.RegisterVacancyServiceServer(gs, s.vacancies)
	receivingv1.RegisterDemandFeedServiceServer(gs, s.feed)
	receivingv1.RegisterCandidateServiceServer(gs, s.candidates)
	receivingv1.RegisterIntakeServiceServer(gs, s.intake)
	receivingv1.RegisterEmploymentFeedServiceServer(gs, s.employment)
	outbox.NewServer(s.raw, &s.relays, s.lg, outbox.ServerConfig{Now: s.cfg.Now}).Register(gs)
	ledgerclient.NewWatchServer(s.ledgerWatch).Register(gs)
}

// Run does the service's background work until ctx is done: every MaintenanceInterval it
// marks vacancies past their valid-through date EXPIRED and compacts the feeds; with a
// coordination service it also runs the outbox relay of ledger events to it. When Run returns,
// the registry connection is closed.
func (s *Service) Run(ctx context.Context) error {
	defer s.stoppingOnce.Do(func() { close(s.stopping) })
	defer func() {
		if s.closePairing != nil {
			if err := s.closePairing(); err != nil {
				s.lg.Warn("close registry connection", zap.Error(err))
			}
		}
	}()
	if s.cfg.Coordination != "" {
		// Deliver the outbox's ledger events to the coordination service (services/coordination/ledgerclient).
		cc, err := peers.Dial(s.cfg.Coordination, s.cfg.Peers.Expecting(identity.Coordination()))
		if err != nil {
			return err
		}
		defer cc.Close()
		ledgerClient := coordinationv1.NewLedgerServiceClient(cc)
		relay := outbox.NewRelay(s.raw, LedgerDestination, ledgerclient.DeliverWatched(ledgerClient, s.cfg.Peers.Deadlines, s.ledgerWatch), s.lg,
			outbox.Options{BatchSize: ledgerclient.RelayBatchSize, Describe: ledgerclient.Describe, Now: s.cfg.Now, Metrics: s.cfg.Metrics})
		s.relays.Add(relay)
		defer s.relays.Remove(relay)
		relayDone := make(chan struct{})
		go func() {
			defer close(relayDone)
			if err := relay.Run(ctx); err != nil {
				s.lg.Error("ledger relay stopped", zap.Error(err))
			}
		}()
		defer func() { <-relayDone }()
		// Check on a schedule that the ledger still holds what it acknowledged.
		watchDone := make(chan struct{})
		go func() {
			defer close(watchDone)
			s.ledgerWatch.Run(ctx, ledgerClient)
		}()
		defer func() { <-watchDone }()
	}
	t := time.NewTicker(s.cfg.MaintenanceInterval)
	defer t.Stop()
	for {
		s.maintain(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// maintain runs one round of background upkeep, logging failures (it is retried next round).
func (s *Service) maintain(ctx context.Context) {
	if n, err := s.sweepExpired(ctx); err != nil {
		s.lg.Error("expiry sweep failed", zap.Error(err))
	} else if n > 0 {
		s.lg.Info("vacancies expired", zap.Int("count", n))
	}
	for _, f := range []struct {
		name    string
		compact func(context.Context) (int, error)
	}{{vacancies.Demand.Name, s.compactDemand}, {candidates.Decisions.Name, s.compactDecisions}} {
		if n, err := f.compact(ctx); err != nil {
			s.lg.Error("feed compaction failed", zap.String("feed", f.name), zap.Error(err))
		} else if n > 0 {
			s.lg.Info("feed compacted", zap.String("feed", f.name), zap.Int("removed", n))
		}
	}
	removed, err := s.compactEmployment(ctx)
	for sending, n := range removed {
		s.lg.Info("feed compacted", zap.String("feed", intake.Employment.Name), zap.String("sending_region", sending), zap.Int("removed", n))
	}
	if err != nil {
		s.lg.Error("feed compaction failed", zap.String("feed", intake.Employment.Name), zap.Error(err))
	}
}

// sweepExpired records EXPIRED for every vacancy past its valid-through date.
func (s *Service) sweepExpired(ctx context.Context) (int, error) {
	return vacancies.SweepExpired(ctx, s.db, s.cfg.Now())
}

// compactDemand and compactDecisions keep the newest FeedRetention entries of the feeds.
func (s *Service) compactDemand(ctx context.Context) (int, error) {
	return vacancies.Demand.Compact(ctx, s.db, s.cfg.FeedRetention)
}

func (s *Service) compactDecisions(ctx context.Context) (int, error) {
	return candidates.Decisions.Compact(ctx, s.db, s.cfg.FeedRetention)
}

// compactEmployment keeps the newest FeedRetention entries of each sending province's
// employment feed, and returns how many it removed by province.
func (s *Service) compactEmployment(ctx context.Context) (map[string]int, error) {
	return intake.Employment.Compact(ctx, s.db, s.cfg.FeedRetention)
}

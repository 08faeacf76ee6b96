// Package receiving is the receiving service: one instance per receiving province. It owns the
// province's vacancies and their change feed, candidates and decisions, intake batches, arrivals
// and employment records, and the outbox of ledger events for the coordination service.
//
// Files: vacancies.go (VacancyService), vacancyimport.go (ImportVacancies), feed.go (the demand
// and decision feeds, DemandFeedService, compaction, expiry sweep), candidates.go
// (CandidateService), intake.go (IntakeService and its ledger events), pairing.go (who may read
// the feeds), text.go (identity-number guard and text checks), paging.go, dates.go.
package receiving

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"

	coordinationv1 "github.com/eastwest/labourlink/proto/labour/coordination/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labour/receiving/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/platform/identity"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/platform/store"
)

// Schema is what a receiving service keeps in its bbolt file.
var Schema = store.Schema{
	Name:    "receiving",
	Version: 1,
	Buckets: [][]byte{
		store.BucketVacancies, store.BucketVacancyChanges, store.BucketCandidates,
		store.BucketCandidateIndex, store.BucketDecisions, store.BucketIntakeBatches,
		store.BucketArrivals, store.BucketEmployment, store.BucketImports,
		store.BucketImportRejections, store.BucketOutbox, store.BucketOutboxQuarantine, store.BucketCounters,
	},
}

// Defaults for zero Config fields.
const (
	// DefaultFeedRetention is how many changes each feed keeps (demand, decisions).
	DefaultFeedRetention = 100000
	// DefaultMaintenanceInterval is how often Run sweeps expired vacancies and compacts feeds.
	DefaultMaintenanceInterval = time.Minute
	// DefaultPairingRecheck is how often an open feed watch checks that its sending province is
	// still paired.
	DefaultPairingRecheck = 30 * time.Second
	// DefaultProgressInterval is how often an open feed watch that has nothing to send sends a
	// progress notice (feed.go). Sending services take a watch silent for several intervals as
	// a link down (sending.DefaultFeedSilence).
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
	// FeedRetention is how many of the newest changes the demand feed and the decision feed
	// each keep; older ones are compacted by Run. 0 means DefaultFeedRetention.
	FeedRetention int
	// MaintenanceInterval is how often Run marks vacancies past their valid-through date
	// EXPIRED (recording the change in the feed) and compacts the feeds. 0 means
	// DefaultMaintenanceInterval.
	MaintenanceInterval time.Duration
	// ImportReplyRejections is the most rejected rows the summary of a vacancy import lists
	// (ImportVacancies, GetVacancyImport); the rest are counted (rejections_truncated) and read
	// with ListVacancyImportRejections. 0 means DefaultImportReplyRejections.
	ImportReplyRejections int
	// PairingRecheck is how often an open WatchDemand or WatchDecisions stream checks that its
	// sending province is still paired; a province unpaired meanwhile has its stream ended with
	// PERMISSION_DENIED. 0 means DefaultPairingRecheck.
	PairingRecheck time.Duration
	// ProgressInterval is how often an open WatchDemand or WatchDecisions stream sends a
	// progress notice (a response without a change: "you have everything up to now"). 0 means
	// DefaultProgressInterval.
	ProgressInterval time.Duration
	// Draining, when not nil, is closed when the gRPC server begins its graceful stop
	// (grpcserver.Server.Draining): open ImportVacancies streams then end with UNAVAILABLE,
	// keeping the rows they committed, instead of holding the stop until its timeout.
	Draining <-chan struct{}
}

// Service is a receiving service.
type Service struct {
	db      *store.DB
	lg      *zap.Logger
	cfg     Config
	regions *regions.Table
	pairing pairingChecker
	// closePairing releases the registry connection (nil without one).
	closePairing func() error

	demand    *feed
	decisions *feed

	// stopping is closed when Run's context ends, so that open feed watches end with the
	// process's graceful stop instead of holding it until its timeout.
	stopping     chan struct{}
	stoppingOnce sync.Once
	// relays are the running outbox relays (the ledger's), for the OutboxService.
	relays outbox.Set

	// importHook, when set (tests), is called with importMessage when an ImportVacancies stream
	// has committed a message that does not end it and is about to wait for the next, and with
	// importEnd when the handler returns.
	importHook func(importID, event string)
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
	s := &Service{db: db, lg: lg, cfg: cfg, regions: t, demand: demandFeed(), decisions: decisionFeed(), stopping: make(chan struct{})}
	pc, closer, err := newPairingChecker(cfg, t)
	if err != nil {
		return nil, err
	}
	s.pairing, s.closePairing = pc, closer
	return s, nil
}

// ServiceNames are the gRPC services this service registers (for health checks).
func (s *Service) ServiceNames() []string {
	return []string{
		receivingv1.VacancyService_ServiceDesc.ServiceName,
		receivingv1.DemandFeedService_ServiceDesc.ServiceName,
		receivingv1.CandidateService_ServiceDesc.ServiceName,
		receivingv1.IntakeService_ServiceDesc.ServiceName,
		outbox.ServiceName,
	}
}

// Register registers the gRPC services on gs.
func (s *Service) Register(gs *grpc.Server) {
	receivingv1.RegisterVacancyServiceServer(gs, &vacancyServer{s: s})
	receivingv1.RegisterDemandFeedServiceServer(gs, &feedServer{s: s})
	receivingv1.RegisterCandidateServiceServer(gs, &candidateServer{s: s})
	receivingv1.RegisterIntakeServiceServer(gs, &intakeServer{s: s})
	outbox.NewServer(s.db, &s.relays, s.lg, outbox.ServerConfig{Now: s.cfg.Now}).Register(gs)
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
		relay := outbox.NewRelay(s.db, LedgerDestination, ledgerclient.Deliver(coordinationv1.NewLedgerServiceClient(cc), s.cfg.Peers.Deadlines), s.lg,
			outbox.Options{Describe: ledgerclient.Describe, Now: s.cfg.Now})
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
	for _, f := range []*feed{s.demand, s.decisions} {
		if n, err := s.compact(ctx, f); err != nil {
			s.lg.Error("feed compaction failed", zap.String("feed", f.name), zap.Error(err))
		} else if n > 0 {
			s.lg.Info("feed compacted", zap.String("feed", f.name), zap.Int("removed", n))
		}
	}
}

// now returns the service clock's time.
func (s *Service) now() time.Time { return s.cfg.Now() }

type vacancyServer struct {
	receivingv1.UnimplementedVacancyServiceServer
	s *Service
}

type feedServer struct {
	receivingv1.UnimplementedDemandFeedServiceServer
	s *Service
}

type candidateServer struct {
	receivingv1.UnimplementedCandidateServiceServer
	s *Service
}

type intakeServer struct {
	receivingv1.UnimplementedIntakeServiceServer
	s *Service
}

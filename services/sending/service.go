// Package sending is the sending service: one instance per sending province. It owns the
// province's worker roster, its replica of paired demand, proposals, transport batches and the
// outbox of messages to the receiving services and to the coordination service.
//
// This package is the wiring: Config, New (which composes the subsystems), Register, Run, the
// schema of the data file (schema.go) and the links to the receiving provinces with their
// outbox relays (relay_receiving.go). The subsystems, each with its handlers, rules and storage:
//
//   - roster: workers, their lifecycle and the bulk import (RosterService);
//   - demand: following the receiving provinces' demand, decision and employment feeds, the
//     demand replica, the links' health;
//   - matching: match runs and proposals (MatchingService), with the pure solver in
//     matching/matcher;
//   - transport: transport batches (TransportService), with the planner in transport/batchplan;
//   - returnees: local employers and the placement of workers back home (ReturneeService);
//   - dynamics: employment dynamics as of a date, from the roster and the local employers
//     (DynamicsService);
//   - subsidies: the coordination service's subsidy lists of the province with the names joined
//     from the roster, names never leaving the province (SubsidyService).
//
// Dependencies run one way: transport -> matching -> demand, roster; returnees -> roster;
// dynamics -> returnees, roster; subsidies -> roster; the decision follower
// reaches matching through demand.Config.ApplyDecision, the employment follower the roster
// through demand.Config.ApplyEmployment.
package sending

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/platform/backoff"
	"github.com/eastwest/labourlink/services/platform/identity"
	"github.com/eastwest/labourlink/services/platform/metrics"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending/demand"
	"github.com/eastwest/labourlink/services/sending/dynamics"
	"github.com/eastwest/labourlink/services/sending/matching"
	"github.com/eastwest/labourlink/services/sending/returnees"
	"github.com/eastwest/labourlink/services/sending/roster"
	"github.com/eastwest/labourlink/services/sending/subsidies"
	"github.com/eastwest/labourlink/services/sending/transport"
)

// Config configures a sending service.
type Config struct {
	// Region is the 6-digit code of this sending province, such as 520000.
	Region string
	// Coordination is the address of the coordination service; empty runs without one (tests).
	Coordination string
	// Receiving maps receiving province codes to endpoints, overriding the registry (optional).
	Receiving map[string]string
	// Peers says how to connect to other services.
	Peers peers.Options
	// Now is the clock; nil for time.Now.
	Now func() time.Time

	// Seats are the default seats per vehicle of each transport mode for PlanBatches; zero
	// fields take DefaultSeats (bus 45, train coach 118, charter flight 180).
	Seats Seats
	// MinBackoff and MaxBackoff bound the wait before a feed follower reconnects after an
	// error, doubling from MinBackoff with jitter. Defaults 200ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// RefreshInterval is how often the paired receiving provinces and their endpoints are
	// looked up again in the coordination registry. Default 10s.
	RefreshInterval time.Duration
	// Outbox tunes the relays that deliver messages to the receiving services.
	Outbox outbox.Options
	// Draining, when not nil, is closed when the gRPC server begins its graceful stop
	// (grpcserver.Server.Draining): the background loops then end as when Run's ctx ends, and
	// open ImportWorkers streams end with UNAVAILABLE, keeping the rows they received.
	Draining <-chan struct{}
	// Health, when set, is told the health of each link to a receiving province while Run
	// runs: Health(peers.LinkHealthName(identity.Receiving(code)), serving), as
	// Health("labourlink.link.receiving.440000", false) when Guangdong's link is down (see
	// services/sending/demand/links.go). The daemon sets it to the gRPC server's health service.
	Health func(name string, serving bool)
	// FeedSilence is how long a watch of a receiving service that sends progress notices may
	// be silent before it is taken as dead, closed and reopened. Default DefaultFeedSilence
	// (8 s); keep it several times the receiving services' progress interval (2 s).
	FeedSilence time.Duration
	// LinkGrace is how long a link with a closed watch may be silent before its health turns
	// NOT_SERVING. Default DefaultLinkGrace (5 s).
	LinkGrace time.Duration
	// Metrics, when set, is where the service exports its metrics: roster import rows, the
	// outbox, the feed followers' lag (services/platform/metrics).
	Metrics *metrics.Registry
	// LedgerWatch tunes the checks of what the coordination service's ledger acknowledged
	// (services/coordination/ledgerclient, watch.go): the pinned public key, the interval and
	// the events per check. Region, Health and Now are the service's.
	LedgerWatch ledgerclient.WatchConfig
}

// Seats are the default seats per vehicle of each transport mode (services/sending/transport).
type Seats = transport.Seats

// DefaultSeats are the seats of a vehicle when neither the request nor Config.Seats gives them.
var DefaultSeats = transport.DefaultSeats

// Defaults of the link settings of Config (services/sending/demand/links.go).
const (
	DefaultFeedSilence = demand.DefaultFeedSilence
	DefaultLinkGrace   = demand.DefaultLinkGrace
)

// Service is a sending service.
type Service struct {
	db      *store.DB
	lg      *zap.Logger
	cfg     Config
	regions *regions.Table

	// roster is the worker roster (services/sending/roster).
	roster *roster.Service

	// demand follows the receiving provinces' feeds (services/sending/demand).
	demand *demand.Service
	// relays are the running outbox relays by destination (relay_receiving.go).
	relays outbox.Set
	// matching is the match runs and proposals (services/sending/matching).
	matching *matching.Service
	// transport is the transport batches (services/sending/transport).
	transport *transport.Service
	returnees *returnees.Service
	// dynamics is the employment dynamics (services/sending/dynamics).
	dynamics *dynamics.Service
	// subsidies is the subsidy lists with names (services/sending/subsidies), connected to the
	// coordination service while Run runs.
	subsidies *subsidies.Service
	// ledgerWatch keeps and checks what the ledger acknowledged (ledgerclient.Watch).
	ledgerWatch *ledgerclient.Watch
}

// New returns the sending service for cfg.Region over db.
func New(db *store.DB, lg *zap.Logger, cfg Config) (*Service, error) {
	t := regions.Default()
	if !t.IsProvince(cfg.Region) {
		return nil, fmt.Errorf("sending region %q is not a GB/T 2260 province code", cfg.Region)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if lg == nil {
		lg = zap.NewNop()
	}
	feeds := backoff.Policy{Min: cfg.MinBackoff, Max: cfg.MaxBackoff}.WithDefaults(200*time.Millisecond, 30*time.Second)
	cfg.MinBackoff, cfg.MaxBackoff = feeds.Min, feeds.Max
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = 10 * time.Second
	}
	if cfg.FeedSilence <= 0 {
		cfg.FeedSilence = DefaultFeedSilence
	}
	if cfg.LinkGrace <= 0 {
		cfg.LinkGrace = DefaultLinkGrace
	}
	s := &Service{db: db, lg: lg, cfg: cfg, regions: t}
	s.roster = roster.New(db, lg, roster.Config{Region: cfg.Region, Regions: t, Now: cfg.Now, Draining: cfg.Draining, Relays: &s.relays,
		ManifestTrip: transport.ManifestTrip, Metrics: cfg.Metrics})
	s.demand = demand.New(db, lg, demand.Config{
		Region: cfg.Region, Regions: t, Receiving: cfg.Receiving, Peers: cfg.Peers, Now: cfg.Now,
		Backoff:     feeds,
		FeedSilence: cfg.FeedSilence, LinkGrace: cfg.LinkGrace, Health: cfg.Health, Relays: &s.relays,
		ApplyDecision: func(tx *bbolt.Tx, code string, c *receivingv1.Candidate) error {
			return s.matching.ApplyDecision(tx, code, c)
		},
		ApplyEmployment: func(tx *bbolt.Tx, code string, c *receivingv1.EmploymentChange) (bool, error) {
			return s.roster.ApplyEmployment(tx, code, c)
		},
	})
	var err error
	s.matching, err = matching.New(db, lg, matching.Config{Region: cfg.Region, Regions: t, Receiving: cfg.Receiving, Now: cfg.Now},
		s.roster, s.demand, &s.relays)
	if err != nil {
		return nil, err
	}
	s.transport = transport.New(db, lg, transport.Config{Region: cfg.Region, Regions: t, Now: cfg.Now, Seats: cfg.Seats},
		s.roster, s.matching, &s.relays)
	s.returnees = returnees.New(db, lg, returnees.Config{Region: cfg.Region, Regions: t, Now: cfg.Now, Relays: &s.relays}, s.roster)
	// Employers stored before they were reported to the coordination service: once, now.
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := returnees.ReportExisting(context.Background(), tx, cfg.Now())
		return err
	}); err != nil {
		return nil, fmt.Errorf("report the local employers: %w", err)
	}
	s.dynamics = dynamics.New(db, dynamics.Config{Region: cfg.Region, Regions: t, Now: cfg.Now})
	s.subsidies = subsidies.New(db, subsidies.Config{Region: cfg.Region, Coordinated: cfg.Coordination != "", Deadlines: cfg.Peers.Deadlines, Now: cfg.Now})
	outbox.Observe(cfg.Metrics, db, cfg.Now, &s.relays, ledgerclient.Destination)
	wc := cfg.LedgerWatch
	wc.Region, wc.Health, wc.Now = cfg.Region, cfg.Health, cfg.Now
	s.ledgerWatch = ledgerclient.NewWatch(db, lg, wc)
	s.ledgerWatch.Observe(cfg.Metrics)
	cfg.Metrics.ObserveFollowers(s.demand.FollowerLags)
	return s, nil
}

// ServiceNames are the gRPC services this service registers (for health checks).
func (s *Service) ServiceNames() []string {
	return []string{
		sendingv1.RosterService_ServiceDesc.ServiceName,
		sendingv1.MatchingService_ServiceDesc.ServiceName,
		sendingv1.TransportService_ServiceDesc.ServiceName,
		sendingv1.ReturneeService_ServiceDesc.ServiceName,
		sendingv1.DynamicsService_ServiceDesc.ServiceName,
		sendingv1.SubsidyService_ServiceDesc.ServiceName,
		outbox.ServiceName,
		ledgerclient.WatchServiceName,
	}
}

// Register registers the gRPC services on gs.
func (s *Service) Register(gs *grpc.Server) {
	s.roster.Register(gs)
	s.matching.Register(gs)
	s.transport.Register(gs)
	s.returnees.Register(gs)
	s.dynamics.Register(gs)
	s.subsidies.Register(gs)
	outbox.NewServer(s.db, &s.relays, s.lg, outbox.ServerConfig{IDPrefix: s.cfg.Outbox.IDPrefix, OnDiscard: s.onDiscard, Now: s.cfg.Now}).Register(gs)
	ledgerclient.NewWatchServer(s.ledgerWatch).Register(gs)
}

// Run does the service's background work until ctx is done (or Config.Draining closes): it
// follows the demand and decision feeds of every paired receiving province and delivers the
// outbox to them (relay_receiving.go), publishes the health of those links (services/sending/demand/links.go), and
// delivers the ledger events and the local employers' states of the outbox to the coordination
// service (services/coordination/ledgerclient).
// When Run returns, match runs in progress are stopped.
func (s *Service) Run(ctx context.Context) error {
	defer s.matching.Close()
	ctx, cancel := s.untilDrained(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.superviseReceiving(ctx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.demand.PublishLinkHealth(ctx)
	}()
	if s.cfg.Coordination != "" {
		// Deliver the outbox's ledger events to the coordination service (services/coordination/ledgerclient).
		cc, err := peers.Dial(s.cfg.Coordination, s.cfg.Peers.Expecting(identity.Coordination()))
		if err != nil {
			cancel()
			wg.Wait()
			return err
		}
		defer cc.Close()
		// The subsidy lists ask the coordination service on this connection while Run runs.
		s.subsidies.Connect(coordinationv1.NewEligibilityServiceClient(cc))
		defer s.subsidies.Connect(nil)
		ledgerClient := coordinationv1.NewLedgerServiceClient(cc)
		ledgerOpts := s.outboxOptions()
		if ledgerOpts.BatchSize == 0 {
			ledgerOpts.BatchSize = ledgerclient.RelayBatchSize
		}
		relay := outbox.NewRelay(s.db, ledgerclient.Destination, ledgerclient.DeliverWatched(ledgerClient, s.cfg.Peers.Deadlines, s.ledgerWatch), s.lg, ledgerOpts)
		s.relays.Add(relay)
		defer s.relays.Remove(relay)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := relay.Run(ctx); err != nil {
				s.lg.Error("ledger relay stopped", zap.Error(err))
			}
		}()
		// Check on a schedule that the ledger still holds what it acknowledged.
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.ledgerWatch.Run(ctx, ledgerClient)
		}()
		// Deliver the local employers' states (the national recovery rate).
		employers := outbox.NewRelay(s.db, ledgerclient.LocalEmployersDestination,
			ledgerclient.DeliverLocalEmployers(coordinationv1.NewDynamicsServiceClient(cc), s.cfg.Region, s.cfg.Peers.Deadlines), s.lg, s.outboxOptions())
		s.relays.Add(employers)
		defer s.relays.Remove(employers)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := employers.Run(ctx); err != nil {
				s.lg.Error("local employers relay stopped", zap.Error(err))
			}
		}()
	}
	<-ctx.Done()
	wg.Wait()
	return nil
}

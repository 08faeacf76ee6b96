// Package transport is the TransportService of a sending province: transport batches of
// accepted workers, planned (services/sending/transport/batchplan) or made by hand, their
// departure and cancellation, and the messages these send to the receiving provinces and to
// the coordination ledger. Its storage (store.go) is the batches.
package transport

import (
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending/matching"
	"github.com/eastwest/labourlink/services/sending/roster"
)

// Config configures transport.
type Config struct {
	// Region is the 6-digit code of this sending province.
	Region string
	// Regions is the code table (regions.Default() when nil).
	Regions *regions.Table
	// Now is the clock; nil for time.Now.
	Now func() time.Time
	// Seats are the default seats per vehicle of each transport mode; zero fields take
	// DefaultSeats.
	Seats Seats
}

// Service is transport of one sending province.
type Service struct {
	db       *store.DB
	lg       *zap.Logger
	cfg      Config
	regions  *regions.Table
	roster   *roster.Service
	matching *matching.Service
	// relays are woken when a change commits messages to the outbox.
	relays *outbox.Set
}

// New returns transport over db (whose schema holds Buckets()), the roster rs, matching m
// and the relays.
func New(db *store.DB, lg *zap.Logger, cfg Config, rs *roster.Service, m *matching.Service, relays *outbox.Set) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Regions == nil {
		cfg.Regions = regions.Default()
	}
	if lg == nil {
		lg = zap.NewNop()
	}
	cfg.Seats = cfg.Seats.withDefaults()
	return &Service{db: db, lg: lg, cfg: cfg, regions: cfg.Regions, roster: rs, matching: m, relays: relays}
}

// Register registers the TransportService on gs.
func (s *Service) Register(gs *grpc.Server) {
	sendingv1.RegisterTransportServiceServer(gs, &transportServer{s: s})
}

type transportServer struct {
	sendingv1.UnimplementedTransportServiceServer
	s *Service
}

// BatchKey is the ordering key of the messages about one batch in a receiving province's outbox
// (the candidates' key is matching.CandidatesKey).
func BatchKey(id string) string { return "batch/" + id }

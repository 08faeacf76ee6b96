// Package roster is the worker roster of a sending province (RosterService): the workers, their
// lifecycle and the bulk import of rows. Its storage (store.go) is the workers and their
// indexes, the imports and their rejected rows; the other subsystems of the sending service read
// workers and move their status through the exported functions of this package (Read,
// ForEachAvailable, Masked, Service.ChangeStatus), in their own transactions.
package roster

import (
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/metrics"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/store"
)

// Config configures the roster.
type Config struct {
	// Region is the 6-digit code of this sending province, such as 520000.
	Region string
	// Regions is the code table (regions.Default() when nil).
	Regions *regions.Table
	// Now is the clock; nil for time.Now.
	Now func() time.Time
	// Draining, when not nil, is closed when the gRPC server begins its graceful stop: open
	// ImportWorkers streams then end with UNAVAILABLE, keeping the rows they received.
	Draining <-chan struct{}
	// Relays are woken when a change queues a message (a return home's ledger event); nil for
	// none (the relays then find it on their next look).
	Relays *outbox.Set
	// ManifestTrip returns, inside tx, the trip of a worker on the manifest of a departed batch
	// here who was not recorded boarding it (batch, receiving region, vacancy, the batch's
	// departure time), or nil when the worker is not such a worker of such a batch. The batches
	// belong to transport (the sending service wires transport.ManifestTrip); nil: such workers
	// are skipped by ApplyEmployment (employment.go).
	ManifestTrip func(tx *bbolt.Tx, batchID, workerID string) (*sendingv1.Trip, error)
	// Metrics, when set, counts the rows imports commit (labourlink_import_rows_total).
	Metrics *metrics.Registry
}

// Service is the roster of one sending province.
type Service struct {
	db      *store.DB
	lg      *zap.Logger
	cfg     Config
	regions *regions.Table

	// importHook, when set (tests), is called with importMessage when an import stream has a
	// message in hand (its rows validated) and is about to wait for the next, and with importEnd
	// when the handler returns (its commits done).
	importHook func(importID, event string)
}

// New returns the roster of cfg.Region over db (whose schema holds Buckets()).
func New(db *store.DB, lg *zap.Logger, cfg Config) *Service {
	cfg.Metrics.InitializeImport(metrics.ImportRoster)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Regions == nil {
		cfg.Regions = regions.Default()
	}
	if lg == nil {
		lg = zap.NewNop()
	}
	return &Service{db: db, lg: lg, cfg: cfg, regions: cfg.Regions}
}

// Register registers the RosterService on gs.
func (s *Service) Register(gs *grpc.Server) {
	sendingv1.RegisterRosterServiceServer(gs, &rosterServer{s: s})
}

type rosterServer struct {
	sendingv1.UnimplementedRosterServiceServer
	s *Service
}

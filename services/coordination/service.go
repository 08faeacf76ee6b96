// Package coordination is the coordination service, one for the nation: the region registry and
// pairings, the ledger of events both sides report, reconciliation and assessment.
package coordination

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	coordinationv1 "github.com/eastwest/labourlink/proto/labour/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/store"
)

// Schema is what the coordination service keeps in its bbolt file.
var Schema = store.Schema{
	Name:    "coordination",
	Version: 1,
	Buckets: [][]byte{
		store.BucketRegions, store.BucketPairings, store.BucketLedgerEvents,
		store.BucketLedgerByWorker, store.BucketBaselines, store.BucketDiscrepancies,
		store.BucketDiscrepancyChanges, store.BucketCounters, store.BucketLedgerEventIDs,
		store.BucketLedgerByBatch, store.BucketLedgerByPairing, store.BucketLedgerAssessment,
		store.BucketLedgerBatches, store.BucketLedgerDeadlines,
	},
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
}

// Service is the coordination service.
type Service struct {
	db      *store.DB
	lg      *zap.Logger
	cfg     Config
	regions *regions.Table
	// wake nudges the deadline timer after a report (a new deadline may be sooner).
	wake chan struct{}
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
	s := &Service{db: db, lg: lg, cfg: cfg, regions: regions.Default(), wake: make(chan struct{}, 1)}
	if cfg.LoadDefaultPairings {
		if err := s.loadDefaultPairingsIfEmpty(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// loadDefaultPairingsIfEmpty adds the default pairings when the registry has none.
func (s *Service) loadDefaultPairingsIfEmpty() error {
	added := 0
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if k, _ := tx.Bucket(store.BucketPairings).Cursor().First(); k != nil {
			return nil
		}
		var err error
		added, _, err = s.loadDefaultPairings(tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("load the default pairings: %w", err)
	}
	if added > 0 {
		s.lg.Info("loaded the default pairings", zap.Int("pairings", added))
	}
	return nil
}

// ServiceNames are the gRPC services this service registers (for health checks).
func (s *Service) ServiceNames() []string {
	return []string{
		coordinationv1.RegistryService_ServiceDesc.ServiceName,
		coordinationv1.LedgerService_ServiceDesc.ServiceName,
		coordinationv1.ReconciliationService_ServiceDesc.ServiceName,
		coordinationv1.AssessmentService_ServiceDesc.ServiceName,
	}
}

// Register registers the gRPC services on gs.
func (s *Service) Register(gs *grpc.Server) {
	coordinationv1.RegisterRegistryServiceServer(gs, &registryServer{s: s})
	coordinationv1.RegisterLedgerServiceServer(gs, &ledgerServer{s: s})
	coordinationv1.RegisterReconciliationServiceServer(gs, &reconciliationServer{s: s})
	coordinationv1.RegisterAssessmentServiceServer(gs, &assessmentServer{s: s})
}

// Run does the service's background work until ctx is done: when a batch's grace deadline
// passes, it reconciles the batch again, which opens the discrepancies of its workers still not
// confirmed (UNACCOUNTED). It looks at once at start (deadlines that passed while the service was
// down), then at each next deadline, after each report, and at least every CheckInterval.
func (s *Service) Run(ctx context.Context) error {
	for {
		next, err := s.expireDue()
		wait := s.cfg.CheckInterval
		if err != nil {
			s.lg.Error("reconcile batches past their grace deadline", zap.Error(err))
		} else if !next.IsZero() {
			wait = min(wait, max(next.Sub(s.cfg.Now()), time.Millisecond))
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		case <-s.wake:
			timer.Stop()
		}
	}
}

// wakeTimer nudges Run's timer without blocking.
func (s *Service) wakeTimer() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

type registryServer struct {
	coordinationv1.UnimplementedRegistryServiceServer
	s *Service
}

type ledgerServer struct {
	coordinationv1.UnimplementedLedgerServiceServer
	s *Service
}

type reconciliationServer struct {
	coordinationv1.UnimplementedReconciliationServiceServer
	s *Service
}

type assessmentServer struct {
	coordinationv1.UnimplementedAssessmentServiceServer
	s *Service
}

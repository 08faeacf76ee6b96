// Package demand follows the demand, decision and employment feeds of the paired receiving
// provinces: it
// keeps the demand replica and the feed positions (store.go), knows how current the replica is
// and whether each link answers (links.go), and hands each decided candidate to
// Config.ApplyDecision (the matching subsystem) in the transaction that records the decision
// feed's position, and each employment change to Config.ApplyEmployment (the roster) likewise
// (employment.go).
package demand

import (
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"

	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/backoff"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/platform/store"
)

// Config configures the followers.
type Config struct {
	// Region is the 6-digit code of this sending province.
	Region string
	// Regions is the code table (regions.Default() when nil).
	Regions *regions.Table
	// Receiving maps receiving province codes to endpoints given on the command line (shown by
	// GetFollowStatus).
	Receiving map[string]string
	// Peers says how to call the receiving services (deadlines).
	Peers peers.Options
	// Now is the clock; nil for time.Now.
	Now func() time.Time
	// Backoff bounds the wait before a follower reconnects after an error.
	Backoff backoff.Policy
	// FeedSilence and LinkGrace: see links.go (defaults DefaultFeedSilence, DefaultLinkGrace).
	FeedSilence, LinkGrace time.Duration
	// Health, when set, is told the health of each link (links.go).
	Health func(name string, serving bool)
	// Relays are the service's outbox relays: the ledger relay's status is the health of the
	// link to the coordination service.
	Relays *outbox.Set
	// ApplyDecision applies the decided candidate c of receiving province code inside tx, the
	// transaction that records the decision feed's position.
	ApplyDecision func(tx *bbolt.Tx, code string, c *receivingv1.Candidate) error
	// ApplyEmployment applies change c of the employment feed of receiving province code (of a
	// kind this version knows) inside tx, the transaction that records the feed's position. It
	// reports whether the change was written (false: skipped, nothing to write it on); an error
	// stops the follower (and is retried), so it must mean the store failed.
	ApplyEmployment func(tx *bbolt.Tx, code string, c *receivingv1.EmploymentChange) (bool, error)
}

// Service is the followers of one sending province.
type Service struct {
	db      *store.DB
	lg      *zap.Logger
	cfg     Config
	regions *regions.Table
	// follow is the in-memory state of the feed followers (follow.go).
	follow followState
}

// New returns the followers over db (whose schema holds Buckets()).
func New(db *store.DB, lg *zap.Logger, cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Regions == nil {
		cfg.Regions = regions.Default()
	}
	if lg == nil {
		lg = zap.NewNop()
	}
	cfg.Backoff = cfg.Backoff.WithDefaults(200*time.Millisecond, 30*time.Second)
	if cfg.FeedSilence <= 0 {
		cfg.FeedSilence = DefaultFeedSilence
	}
	if cfg.LinkGrace <= 0 {
		cfg.LinkGrace = DefaultLinkGrace
	}
	if cfg.ApplyEmployment == nil {
		cfg.ApplyEmployment = func(*bbolt.Tx, string, *receivingv1.EmploymentChange) (bool, error) { return false, nil }
	}
	if cfg.Relays == nil {
		cfg.Relays = &outbox.Set{}
	}
	s := &Service{db: db, lg: lg, cfg: cfg, regions: cfg.Regions}
	s.follow.now = cfg.Now
	return s
}

// Track notes that province code is followed at endpoint from now on.
func (s *Service) Track(code, endpoint string) { s.follow.track(code, endpoint) }

// Forget notes that province code is no longer followed.
func (s *Service) Forget(code string) { s.follow.forget(code) }

// SetError records why following province code failed (until its feeds answer again).
func (s *Service) SetError(code string, err error) { s.follow.setError(code, err) }

// Followed returns the provinces followed now.
func (s *Service) Followed() map[string]bool {
	out := map[string]bool{}
	for code := range s.follow.snapshot() {
		out[code] = true
	}
	return out
}

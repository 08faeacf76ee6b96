// Package matching is the MatchingService of a sending province: match runs (matching.go), which
// read the roster's available workers and the demand replica and propose workers to vacancies,
// and the proposals and what became of them (proposals.go). Its storage (store.go) is the runs
// and the proposals; transport and the relays to the receiving provinces read and close
// proposals through the exported functions of this package. The pure solver is
// services/sending/matching/matcher.
package matching

import (
	"unicode/utf8"

	"context"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending/demand"
	"github.com/eastwest/labourlink/services/sending/roster"
)

// Config configures matching.
type Config struct {
	// Region is the 6-digit code of this sending province.
	Region string
	// Regions is the code table (regions.Default() when nil).
	Regions *regions.Table
	// Receiving maps receiving province codes to endpoints given on the command line: their
	// demand is used by runs even while they are not followed.
	Receiving map[string]string
	// Now is the clock; nil for time.Now.
	Now func() time.Time
	// Progress, when set (tests), is called after a match run records a new stage.
	Progress func(stage string)
}

// Service is matching of one sending province.
type Service struct {
	db      *store.DB
	lg      *zap.Logger
	cfg     Config
	regions *regions.Table
	roster  *roster.Service
	demand  *demand.Service
	// relays are woken when a run commits candidates to the outbox.
	relays *outbox.Set

	// match is the match run in progress, if any (matching.go).
	match matchState
	// bg is cancelled by Close; match runs started by RPC work under it.
	bg       context.Context
	bgCancel context.CancelFunc
	bgWork   sync.WaitGroup
}

// New returns matching over db (whose schema holds Buckets()), the roster rs, the followers d
// and the relays. A match run that was working when the process ended can never finish: New
// records it failed.
func New(db *store.DB, lg *zap.Logger, cfg Config, rs *roster.Service, d *demand.Service, relays *outbox.Set) (*Service, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Regions == nil {
		cfg.Regions = regions.Default()
	}
	if lg == nil {
		lg = zap.NewNop()
	}
	s := &Service{db: db, lg: lg, cfg: cfg, regions: cfg.Regions, roster: rs, demand: d, relays: relays}
	s.bg, s.bgCancel = context.WithCancel(context.Background())
	if err := s.failInterruptedRuns(); err != nil {
		return nil, err
	}
	return s, nil
}

// Register registers the MatchingService on gs.
func (s *Service) Register(gs *grpc.Server) {
	sendingv1.RegisterMatchingServiceServer(gs, &matchingServer{s: s})
}

// Close refuses new match runs, stops the one in progress and waits for it to end.
func (s *Service) Close() {
	s.match.mu.Lock()
	s.match.closed = true
	s.match.mu.Unlock()
	s.Stop()
}

// Stop stops the match run in progress, if any, and waits for it to end (new runs are still
// accepted, and work until the next Stop).
func (s *Service) Stop() {
	s.bgCancel()
	s.bgWork.Wait()
}

type matchingServer struct {
	sendingv1.UnimplementedMatchingServiceServer
	s *Service
}

// ReceivingDestination is the outbox destination of receiving province code.
func ReceivingDestination(code string) string { return ReceivingDestPrefix + code }

// ReceivingDestPrefix starts the outbox destination of every receiving province.
const ReceivingDestPrefix = "receiving/"

// CandidatesKey is the ordering key of the candidates' submissions in a receiving province's
// outbox.
const CandidatesKey = "candidates"

// Clip shortens s to at most n bytes at a rune boundary.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// OnProgress sets Config.Progress (tests): fn is called after a match run records a new stage.
// Set it before starting the run it watches.
func (s *Service) OnProgress(fn func(stage string)) { s.cfg.Progress = fn }

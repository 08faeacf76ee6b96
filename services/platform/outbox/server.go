package outbox

import (
	"bytes"
	"context"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	outboxv1 "github.com/eastwest/labourlink/proto/labourlink/outbox/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/identity"
	"github.com/eastwest/labourlink/services/platform/paging"
	"github.com/eastwest/labourlink/services/platform/store"
)

// Set holds the running relays of a process by destination, so that a flow can wake the relay
// of a destination right after committing an entry for it, and operators can see their status.
type Set struct {
	mu sync.Mutex
	m  map[string]*Relay
}

// Add records a running relay (replacing another of its destination).
func (s *Set) Add(rl *Relay) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]*Relay{}
	}
	s.m[rl.destination] = rl
}

// Remove forgets rl, if it is still the relay of its destination.
func (s *Set) Remove(rl *Relay) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[rl.destination] == rl {
		delete(s.m, rl.destination)
	}
}

// Notify wakes the relays of the given destinations (those not running are skipped). A nil Set
// has no relays.
func (s *Set) Notify(dests ...string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range dests {
		if rl := s.m[d]; rl != nil {
			rl.Notify()
		}
	}
}

// Get returns the running relay of destination, or nil.
func (s *Set) Get(destination string) *Relay {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[destination]
}

// Statuses returns the status of every running relay by destination.
func (s *Set) Statuses() map[string]Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Status, len(s.m))
	for d, rl := range s.m {
		out[d] = rl.Status()
	}
	return out
}

// ServerConfig configures a Server.
type ServerConfig struct {
	// IDPrefix is the prefix of entry ids (the relays' Options.IDPrefix). Default: the data
	// file's InstanceID.
	IDPrefix string
	// OnDiscard, when set, runs in the transaction that discards a quarantined entry, so that the
	// service takes back what the message stood for (for example proposals that will never reach
	// the receiving province). An error aborts the discard.
	OnDiscard func(tx *bbolt.Tx, q *outboxv1.QuarantinedEntry) error
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Server is the labourlink.outbox.v1.OutboxService of a service's data file.
type Server struct {
	outboxv1.UnimplementedOutboxServiceServer
	db     *store.DB
	relays *Set
	lg     *zap.Logger
	cfg    ServerConfig
}

// NewServer returns the OutboxService of db; relays are the process's running relays (may be
// nil).
func NewServer(db *store.DB, relays *Set, lg *zap.Logger, cfg ServerConfig) *Server {
	if cfg.IDPrefix == "" {
		cfg.IDPrefix = db.InstanceID()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if relays == nil {
		relays = &Set{}
	}
	return &Server{db: db, relays: relays, lg: lg, cfg: cfg}
}

// Register registers the server on gs.
func (x *Server) Register(gs *grpc.Server) { outboxv1.RegisterOutboxServiceServer(gs, x) }

// ServiceName is the gRPC service name, for health.
const ServiceName = "labourlink.outbox.v1.OutboxService"

// Limits of the operators' requests.
const (
	maxNoteRunes = 500
)

// pageSize is the page size of ListQuarantinedEntries.
var pageSize = paging.Size{Default: 100, Max: 1000}

// ValidateRequest checks OutboxService requests before their handlers run
// (grpcserver.Validator).
func (x *Server) ValidateRequest(_ string, req any) error {
	var v apierror.Violations
	name := func(n string) {
		id, ok := strings.CutPrefix(n, quarantineCollection+"/")
		if _, valid := quarantineKey(id); !ok || !valid {
			v.Addf("name", "must be %s/{entry_id}, as ListQuarantinedEntries returns it", quarantineCollection)
		}
	}
	note := func(s string) {
		switch {
		case strings.TrimSpace(s) == "":
			v.Add("note", "is required: say what was fixed or why the message is given up")
		case !utf8.ValidString(s):
			v.Add("note", "is not UTF-8 text")
		case utf8.RuneCountInString(s) > maxNoteRunes:
			v.Addf("note", "is longer than %d characters", maxNoteRunes)
		case strings.IndexFunc(s, unicode.IsControl) >= 0:
			v.Add("note", "must not contain control characters (line breaks, tabs)")
		}
	}
	requestID := func(s string) { store.CheckRequestID(&v, "request_id", s) }
	switch r := req.(type) {
	case *outboxv1.ListQuarantinedEntriesRequest:
		if _, ok := outboxv1.QuarantineState_name[int32(r.GetState())]; !ok {
			v.Add("state", "must be one of the QUARANTINE_STATE values")
		}
		if _, ok := outboxv1.QuarantinedEntryView_name[int32(r.GetView())]; !ok {
			v.Add("view", "is not a QuarantinedEntryView")
		}
		pageSize.Check(&v, r.GetPageSize())
		quarantinedListing(r).Check(&v, r.GetPageToken())
	case *outboxv1.GetQuarantinedEntryRequest:
		name(r.GetName())
	case *outboxv1.RetryQuarantinedEntryRequest:
		name(r.GetName())
		note(r.GetNote())
		requestID(r.GetRequestId())
	case *outboxv1.DiscardQuarantinedEntryRequest:
		name(r.GetName())
		note(r.GetNote())
		requestID(r.GetRequestId())
	case *outboxv1.ListOutboxesRequest:
		// No fields.
	default:
		return apierror.NotValidated(req)
	}
	return v.Err()
}

// ListOutboxes lists every destination that has a queue or quarantined entries.
func (x *Server) ListOutboxes(context.Context, *outboxv1.ListOutboxesRequest) (*outboxv1.ListOutboxesResponse, error) {
	queues, err := readQueues(x.db)
	if err != nil {
		return nil, err
	}
	byDest := map[string]*outboxv1.Outbox{}
	get := func(d string) *outboxv1.Outbox {
		o := byDest[d]
		if o == nil {
			o = &outboxv1.Outbox{Destination: d}
			byDest[d] = o
		}
		return o
	}
	for d, q := range queues {
		o := get(d)
		o.Pending, o.Quarantined = int64(q.pending), int64(q.quarantined)
		if q.pending > 0 {
			o.OldestCreateTime = timestamppb.New(q.oldest)
		}
	}
	for d, st := range x.relays.Statuses() {
		o := get(d)
		o.RelayRunning = st.Running
		o.LastError = st.LastError
		o.ConsecutiveFailures = int32(st.ConsecutiveFailures)
		if !st.LastDelivery.IsZero() {
			o.LastDeliveryTime = timestamppb.New(st.LastDelivery)
		}
		if !st.LastErrorTime.IsZero() {
			o.LastErrorTime = timestamppb.New(st.LastErrorTime)
		}
	}
	resp := &outboxv1.ListOutboxesResponse{}
	for _, o := range byDest {
		resp.Outboxes = append(resp.Outboxes, o)
	}
	sort.Slice(resp.Outboxes, func(i, j int) bool { return resp.Outboxes[i].GetDestination() < resp.Outboxes[j].GetDestination() })
	return resp, nil
}

// quarantinedListing binds a ListQuarantinedEntries page token to the destination and state
// filters (AIP-158); its keys are quarantine keys (8 bytes).
func quarantinedListing(r *outboxv1.ListQuarantinedEntriesRequest) paging.Listing {
	return paging.For("quarantined entries", r.GetDestination(), r.GetState().String()).
		Keys(func(k []byte) bool { return len(k) == 8 })
}

// ListQuarantinedEntries lists quarantined entries in the order they were committed, in the
// request's view: without payloads unless it is FULL (the entry as GetQuarantinedEntry reads it).
func (x *Server) ListQuarantinedEntries(_ context.Context, req *outboxv1.ListQuarantinedEntriesRequest) (*outboxv1.ListQuarantinedEntriesResponse, error) {
	listing := quarantinedListing(req)
	after, err := listing.Decode(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	size := pageSize.Of(req.GetPageSize())
	resp := &outboxv1.ListQuarantinedEntriesResponse{}
	err = x.db.View(func(tx *bbolt.Tx) error {
		var last []byte
		return eachQuarantined(tx, after, func(k []byte, q *outboxv1.QuarantinedEntry) (bool, error) {
			if (req.GetDestination() != "" && q.GetDestination() != req.GetDestination()) ||
				(req.GetState() != outboxv1.QuarantineState_QUARANTINE_STATE_UNSPECIFIED && q.GetState() != req.GetState()) {
				return true, nil
			}
			if len(resp.Entries) == size {
				resp.NextPageToken = listing.Token(last)
				return false, nil
			}
			if req.GetView() != outboxv1.QuarantinedEntryView_QUARANTINED_ENTRY_VIEW_FULL {
				q.Payload = nil
			}
			resp.Entries = append(resp.Entries, q)
			last = bytes.Clone(k)
			return true, nil
		})
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// GetQuarantinedEntry reads one quarantined entry with its payload.
func (x *Server) GetQuarantinedEntry(_ context.Context, req *outboxv1.GetQuarantinedEntryRequest) (*outboxv1.GetQuarantinedEntryResponse, error) {
	resp := &outboxv1.GetQuarantinedEntryResponse{}
	err := x.db.View(func(tx *bbolt.Tx) error {
		_, q, err := getQuarantined(tx, req.GetName())
		resp.Entry = q
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// decision is the record of an operator's decision by the caller of ctx.
func (x *Server) decision(ctx context.Context, action outboxv1.QuarantineState, note string) *outboxv1.QuarantineDecision {
	who := "operator"
	if id, err := identity.Peer(ctx); err == nil {
		who = id.String()
	}
	return &outboxv1.QuarantineDecision{Action: action, DecidedBy: who, Note: note, DecideTime: timestamppb.New(x.cfg.Now())}
}

// RetryQuarantinedEntry puts a quarantined message back in its outbox under a new id.
func (x *Server) RetryQuarantinedEntry(ctx context.Context, req *outboxv1.RetryQuarantinedEntryRequest) (*outboxv1.RetryQuarantinedEntryResponse, error) {
	resp := &outboxv1.RetryQuarantinedEntryResponse{}
	d := x.decision(ctx, stateRetried, req.GetNote())
	var dest string
	err := x.db.Update(func(tx *bbolt.Tx) error {
		if ok, err := store.Recall(tx, outboxv1.OutboxService_RetryQuarantinedEntry_FullMethodName, req, resp); err != nil || ok {
			return err
		}
		q, _, err := retryQuarantined(tx, req.GetName(), d, x.cfg.IDPrefix)
		if err != nil {
			return err
		}
		dest = q.GetDestination()
		q.Payload = nil
		resp.Entry = q
		return store.Remember(tx, x.cfg.Now(), outboxv1.OutboxService_RetryQuarantinedEntry_FullMethodName, req, resp)
	})
	if err != nil {
		return nil, err
	}
	if dest != "" {
		x.lg.Info("quarantined outbox entry retried", zap.String("id", resp.GetEntry().GetEntryId()),
			zap.String("retried_as", resp.GetEntry().GetRetriedAs()), zap.String("destination", dest), zap.String("decided_by", d.GetDecidedBy()))
		x.relays.Notify(dest)
	}
	return resp, nil
}

// DiscardQuarantinedEntry gives a quarantined message up.
func (x *Server) DiscardQuarantinedEntry(ctx context.Context, req *outboxv1.DiscardQuarantinedEntryRequest) (*outboxv1.DiscardQuarantinedEntryResponse, error) {
	resp := &outboxv1.DiscardQuarantinedEntryResponse{}
	d := x.decision(ctx, stateDiscarded, req.GetNote())
	decided := false
	err := x.db.Update(func(tx *bbolt.Tx) error {
		if ok, err := store.Recall(tx, outboxv1.OutboxService_DiscardQuarantinedEntry_FullMethodName, req, resp); err != nil || ok {
			return err
		}
		q, err := discardQuarantined(tx, req.GetName(), d)
		if err != nil {
			return err
		}
		if x.cfg.OnDiscard != nil {
			if err := x.cfg.OnDiscard(tx, proto.Clone(q).(*outboxv1.QuarantinedEntry)); err != nil {
				return err
			}
		}
		decided = true
		q.Payload = nil
		resp.Entry = q
		return store.Remember(tx, x.cfg.Now(), outboxv1.OutboxService_DiscardQuarantinedEntry_FullMethodName, req, resp)
	})
	if err != nil {
		return nil, err
	}
	if decided {
		x.lg.Info("quarantined outbox entry discarded", zap.String("id", resp.GetEntry().GetEntryId()),
			zap.String("destination", resp.GetEntry().GetDestination()), zap.String("decided_by", d.GetDecidedBy()))
	}
	return resp, nil
}

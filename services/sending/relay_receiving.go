package sending

// Everything between this sending service and the receiving services it is paired with:
// finding them (Config.Receiving, or the coordination registry), one client connection per
// receiving province, and per province three loops that live as long as the pairing does:
//
//   - the demand-feed follower and the decision-feed follower (follow.go);
//   - the outbox relay of destination "receiving/<code>" (this file), which delivers what the
//     matching and transport flows committed to the outbox: SubmitCandidatesRequest,
//     AnnounceBatchRequest, ReportBatchDepartureRequest, CancelIntakeBatchRequest and
//     WithdrawCandidateRequest, each with
//     the outbox entry's ID as request_id, so that a redelivery after a crash or a lost reply
//     returns the first result instead of acting twice.
//
// Entries stay in the outbox until the receiving service answers, so nothing is lost while it
// is down; they are retried with backoff. An entry the receiving service refuses for good
// (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, ALREADY_EXISTS) is logged and dropped so
// that it does not block the entries behind it; refused candidates are taken back (their
// proposals are REJECTED and the workers return to AVAILABLE).

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoregistry"

	receivingv1 "github.com/eastwest/labourlink/proto/labour/receiving/v1"
	"github.com/eastwest/labourlink/services/identity"
	"github.com/eastwest/labourlink/services/outbox"
	"github.com/eastwest/labourlink/services/peers"
	"github.com/eastwest/labourlink/services/registry"
)

// receivingDestPrefix starts the outbox destination of every receiving province.
const receivingDestPrefix = "receiving/"

// receivingDestination is the outbox destination of receiving province code.
func receivingDestination(code string) string { return receivingDestPrefix + code }

// relaySet holds the running relays by destination, so that a flow can wake the relay of a
// destination right after committing an entry for it.
type relaySet struct {
	mu sync.Mutex
	m  map[string]*outbox.Relay
}

func (r *relaySet) set(dest string, rl *outbox.Relay) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]*outbox.Relay{}
	}
	r.m[dest] = rl
}

func (r *relaySet) remove(dest string, rl *outbox.Relay) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m[dest] == rl {
		delete(r.m, dest)
	}
}

// notify wakes the relays of the given destinations (those not running are skipped).
func (r *relaySet) notify(dests ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range dests {
		if rl := r.m[d]; rl != nil {
			rl.Notify()
		}
	}
}

// untilDrained returns ctx, also cancelled when Config.Draining closes.
func (s *Service) untilDrained(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	if s.cfg.Draining != nil {
		go func() {
			select {
			case <-s.cfg.Draining:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	return ctx, cancel
}

// findReceiving returns the paired receiving provinces and their endpoints: Config.Receiving
// when set, else the registry's pairings of this province. An error means the answer may be
// incomplete (the provinces it holds are right).
func (s *Service) findReceiving(ctx context.Context, reg *registry.Client) (map[string]string, error) {
	if len(s.cfg.Receiving) > 0 {
		return maps.Clone(s.cfg.Receiving), nil
	}
	out := map[string]string{}
	if reg == nil {
		return out, nil
	}
	pairings, err := reg.Pairings(ctx, s.cfg.Region)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, p := range pairings {
		if p.Sending != s.cfg.Region {
			continue
		}
		r, err := reg.Region(ctx, p.Receiving)
		switch {
		case err != nil:
			errs = append(errs, err)
		case r.GetEndpoint() == "":
			errs = append(errs, fmt.Errorf("receiving province %s has not registered an endpoint yet", p.Receiving))
		default:
			out[p.Receiving] = r.GetEndpoint()
		}
	}
	return out, errors.Join(errs...)
}

// receivingLink is the running connection to one receiving province.
type receivingLink struct {
	endpoint string
	cancel   context.CancelFunc
	done     chan struct{}
}

func (l *receivingLink) stop() {
	l.cancel()
	<-l.done
}

// superviseReceiving keeps one link per paired receiving province until ctx ends: it looks the
// pairings up again every RefreshInterval (sooner while an answer is incomplete), starts links
// for new provinces, restarts links whose endpoint changed and stops links of provinces no
// longer paired.
func (s *Service) superviseReceiving(ctx context.Context) {
	var reg *registry.Client
	if len(s.cfg.Receiving) == 0 && s.cfg.Coordination != "" {
		cc, err := peers.Dial(s.cfg.Coordination, s.cfg.Peers.Expecting(identity.Coordination()))
		if err != nil {
			s.lg.Error("cannot reach the coordination registry; not following any receiving province", zap.Error(err))
		} else {
			defer cc.Close()
			reg = registry.New(cc).WithDeadlines(s.cfg.Peers.Deadlines)
		}
	}
	if len(s.cfg.Receiving) == 0 && reg == nil {
		s.lg.Warn("no receiving provinces configured and no coordination service: not following any demand")
	}
	links := map[string]*receivingLink{}
	defer func() {
		for _, l := range links {
			l.stop()
		}
	}()
	retry := s.cfg.MinBackoff
	lastErr := ""
	for {
		targets, err := s.findReceiving(ctx, reg)
		if ctx.Err() != nil {
			return
		}
		wait := s.cfg.RefreshInterval
		if err != nil {
			if msg := err.Error(); msg != lastErr {
				lastErr = msg
				s.lg.Warn("looking up the paired receiving provinces failed; will retry", zap.Error(err))
			}
			wait = min(retry, wait)
			retry = min(retry*2, s.cfg.MaxBackoff)
		} else {
			lastErr, retry = "", s.cfg.MinBackoff
		}
		for code, endpoint := range targets {
			if l, ok := links[code]; ok {
				if l.endpoint == endpoint {
					continue
				}
				s.lg.Info("endpoint of receiving province changed", zap.String("receiving_region", code),
					zap.String("from", l.endpoint), zap.String("to", endpoint))
				l.stop()
			}
			links[code] = s.startLink(ctx, code, endpoint)
		}
		if err == nil {
			for code, l := range links {
				if _, ok := targets[code]; !ok {
					s.lg.Info("receiving province no longer paired: stop following it", zap.String("receiving_region", code))
					l.stop()
					delete(links, code)
					s.follow.forget(code)
				}
			}
		}
		if err == nil && len(s.cfg.Receiving) > 0 {
			<-ctx.Done() // static configuration: nothing to look up again
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// startLink connects to the receiving province code at endpoint and runs its followers and its
// outbox relay until the link is stopped or ctx ends.
func (s *Service) startLink(ctx context.Context, code, endpoint string) *receivingLink {
	lctx, cancel := context.WithCancel(ctx)
	l := &receivingLink{endpoint: endpoint, cancel: cancel, done: make(chan struct{})}
	s.follow.track(code, endpoint)
	s.lg.Info("following receiving province", zap.String("receiving_region", code), zap.String("endpoint", endpoint))
	go func() {
		defer close(l.done)
		cc, err := peers.Dial(endpoint, s.cfg.Peers.Expecting(identity.Receiving(code)))
		if err != nil {
			s.follow.setError(code, err)
			s.lg.Error("cannot connect to receiving province", zap.String("receiving_region", code), zap.Error(err))
			<-lctx.Done()
			return
		}
		defer cc.Close()
		dest := receivingDestination(code)
		relay := outbox.NewRelay(s.db, dest, s.deliverReceiving(code, cc), s.lg, s.cfg.Outbox)
		s.relays.set(dest, relay)
		defer s.relays.remove(dest, relay)
		var wg sync.WaitGroup
		wg.Add(3)
		go func() {
			defer wg.Done()
			s.followDemand(lctx, code, receivingv1.NewDemandFeedServiceClient(cc))
		}()
		go func() {
			defer wg.Done()
			s.followDecisions(lctx, code, receivingv1.NewCandidateServiceClient(cc))
		}()
		go func() {
			defer wg.Done()
			if err := relay.Run(lctx); err != nil {
				s.lg.Error("outbox relay stopped", zap.String("destination", dest), zap.Error(err))
			}
		}()
		wg.Wait()
	}()
	return l
}

// deliverReceiving returns the outbox delivery function of receiving province code.
func (s *Service) deliverReceiving(code string, cc grpc.ClientConnInterface) outbox.DeliverFunc {
	cand := receivingv1.NewCandidateServiceClient(cc)
	intake := receivingv1.NewIntakeServiceClient(cc)
	return func(ctx context.Context, entries []outbox.Entry) error {
		for _, e := range entries {
			if err := s.deliverEntry(ctx, code, cand, intake, e); err != nil {
				return fmt.Errorf("deliver outbox entry %s: %w", e.ID, err)
			}
		}
		return nil
	}
}

// deliverEntry delivers one entry; nil means done with it (delivered, or refused for good and
// logged).
func (s *Service) deliverEntry(ctx context.Context, code string, cand receivingv1.CandidateServiceClient, intake receivingv1.IntakeServiceClient, e outbox.Entry) error {
	lg := s.lg.With(zap.String("destination", e.Destination), zap.String("entry", e.ID))
	call := func(what string, fn func(ctx context.Context) error) error {
		callCtx, cancel := peers.WithTimeout(ctx)
		defer cancel()
		err := fn(callCtx)
		if err != nil && refusedForGood(err) {
			lg.Error("receiving service refused a message for good; dropped", zap.String("message", what), zap.Error(err))
			return nil
		}
		return err
	}
	m, err := e.Payload.UnmarshalNew()
	if err != nil {
		if errors.Is(err, protoregistry.NotFound) {
			lg.Error("outbox entry of an unknown type dropped", zap.String("type", e.Payload.GetTypeUrl()))
		} else {
			lg.Error("undecodable outbox entry dropped", zap.Error(err))
		}
		return nil
	}
	switch req := m.(type) {
	case *receivingv1.SubmitCandidatesRequest:
		req.RequestId = e.ID
		return s.submitCandidates(ctx, lg, code, cand, req)
	case *receivingv1.AnnounceBatchRequest:
		req.RequestId = e.ID
		return call("announce batch "+req.GetBatch().GetBatchId(), func(ctx context.Context) error {
			_, err := intake.AnnounceBatch(ctx, req)
			return err
		})
	case *receivingv1.ReportBatchDepartureRequest:
		req.RequestId = e.ID
		return call("report departure of batch "+req.GetBatchId(), func(ctx context.Context) error {
			_, err := intake.ReportBatchDeparture(ctx, req)
			return err
		})
	case *receivingv1.CancelIntakeBatchRequest:
		req.RequestId = e.ID
		return call("cancel batch "+req.GetBatchId(), func(ctx context.Context) error {
			_, err := intake.CancelIntakeBatch(ctx, req)
			return err
		})
	case *receivingv1.WithdrawCandidateRequest:
		req.RequestId = e.ID
		return call("withdraw "+req.GetName(), func(ctx context.Context) error {
			_, err := cand.WithdrawCandidate(ctx, req)
			return err
		})
	}
	lg.Error("outbox entry of an unknown type dropped", zap.String("type", e.Payload.GetTypeUrl()))
	return nil
}

// refusedForGood reports whether err is an answer that a retry cannot change.
func refusedForGood(err error) bool {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.FailedPrecondition, codes.OutOfRange:
		return true
	}
	return false
}

// submitCandidates delivers one SubmitCandidatesRequest. On success the proposals become
// SUBMITTED. When the receiving service refuses some candidates for good (their field
// violations or a "candidates[i]: ..." message name them), those proposals are taken back and
// the rest are sent again under the same request id (a refused request is not remembered);
// when it names none, the whole request is taken back.
func (s *Service) submitCandidates(ctx context.Context, lg *zap.Logger, code string, cand receivingv1.CandidateServiceClient, req *receivingv1.SubmitCandidatesRequest) error {
	for attempt := 0; ; attempt++ {
		callCtx, cancel := peers.WithTimeout(ctx)
		resp, err := cand.SubmitCandidates(callCtx, req)
		cancel()
		if err == nil {
			return s.markSubmitted(code, resp.GetCandidates())
		}
		if !refusedForGood(err) {
			return err
		}
		reason := status.Convert(err).Message()
		bad := refusedIndexes(err, len(req.GetCandidates()))
		if len(bad) == 0 || attempt >= 3 {
			lg.Error("receiving service refused candidates; taking the proposals back",
				zap.Int("candidates", len(req.GetCandidates())), zap.Error(err))
			return s.refuseProposals(code, req.GetCandidates(), reason)
		}
		var refused, rest []*receivingv1.Candidate
		for i, c := range req.GetCandidates() {
			if slices.Contains(bad, i) {
				refused = append(refused, c)
			} else {
				rest = append(rest, c)
			}
		}
		lg.Warn("receiving service refused some candidates; taking them back and sending the others",
			zap.Int("refused", len(refused)), zap.Int("others", len(rest)), zap.Error(err))
		if err := s.refuseProposals(code, refused, reason); err != nil {
			return err
		}
		if len(rest) == 0 {
			return nil
		}
		req.Candidates = rest
	}
}

var candidateIndexRE = regexp.MustCompile(`^candidates\[(\d+)\]`)

// refusedIndexes returns the indexes of the candidates an error names: in BadRequest field
// violations (candidates[3].age) or at the start of the message (candidates[3]: ...).
func refusedIndexes(err error, n int) []int {
	st := status.Convert(err)
	var out []int
	add := func(s string) {
		if m := candidateIndexRE.FindStringSubmatch(s); m != nil {
			if i, err := strconv.Atoi(m[1]); err == nil && i < n && !slices.Contains(out, i) {
				out = append(out, i)
			}
		}
	}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				add(v.GetField())
			}
		}
	}
	add(strings.TrimSpace(st.Message()))
	slices.Sort(out)
	return out
}

// markSubmitted records the receiving service's answer to a submission: proposals still
// PENDING_SUBMISSION become SUBMITTED, and each candidate's name is kept for a later
// withdrawal.
func (s *Service) markSubmitted(code string, cands []*receivingv1.Candidate) error {
	now := s.cfg.Now()
	return s.db.Update(func(tx *bbolt.Tx) error {
		for _, c := range cands {
			id := proposalID(vacancyIDOf(c.GetVacancy()), c.GetWorkerId())
			p, ok, err := getProposal(tx, id)
			if err != nil {
				return err
			}
			if !ok || p.GetReceivingRegion() != code {
				continue
			}
			if err := putCandidateName(tx, id, c.GetName()); err != nil {
				return err
			}
			if p.GetState() == proposalPending {
				p.State = proposalSubmitted
				p.UpdateTime = tsOf(now)
				if err := putProposal(tx, p); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// refuseProposals takes back proposals the receiving service refused: each live one becomes
// REJECTED with the refusal as reason, and its worker goes back from PROPOSED to AVAILABLE.
func (s *Service) refuseProposals(code string, cands []*receivingv1.Candidate, reason string) error {
	reason = "refused by the receiving service: " + clip(reason, 300)
	return s.db.Update(func(tx *bbolt.Tx) error {
		for _, c := range cands {
			id := proposalID(vacancyIDOf(c.GetVacancy()), c.GetWorkerId())
			p, ok, err := getProposal(tx, id)
			if err != nil {
				return err
			}
			if !ok || p.GetReceivingRegion() != code {
				continue
			}
			if err := s.closeProposal(tx, p, reason, stProposed); err != nil {
				return err
			}
		}
		return nil
	})
}

// clip shortens s to at most n bytes at a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

package sending

// Everything between this sending service and the receiving services it is paired with:
// finding them (Config.Receiving, or the coordination registry), one client connection per
// receiving province, and per province four loops that live as long as the pairing does:
//
//   - the demand-feed, decision-feed and employment-feed followers (services/sending/demand;
//     the employment changes are applied to the roster's trips, services/sending/roster/employment.go);
//   - the outbox relay of destination "receiving/<code>" (this file), which delivers what the
//     matching and transport flows committed to the outbox: SubmitCandidatesRequest,
//     AnnounceBatchRequest, ReportBatchDepartureRequest, CancelIntakeBatchRequest and
//     WithdrawCandidateRequest, each with
//     the outbox entry's ID as request_id, so that a redelivery after a crash or a lost reply
//     returns the first result instead of acting twice.
//
// Entries stay in the outbox until the receiving service answers, so nothing is lost while it
// is down; they are retried with backoff. Messages about one batch share the ordering key
// batch/<id> (announcement, departure, cancellation, in that order), candidate submissions and
// withdrawals share "candidates"; messages with different keys do not wait for each other.
//
// The receiving service answers submissions and announcements item by item: a refused candidate
// is taken back (its proposal REJECTED with the reason, the worker AVAILABLE again), a refused
// manifest entry is taken off the batch (transport.Service.RefuseManifestEntries). A message refused as a whole
// for good (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, ALREADY_EXISTS) goes to the
// outbox quarantine with the reason, for an operator (labourlink.outbox.v1.OutboxService, `labourlink
// outbox`); the messages behind it keep flowing. Discarding a quarantined submission takes its
// proposals back (onDiscard).

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	outboxv1 "github.com/eastwest/labourlink/proto/labourlink/outbox/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/coordination/registryclient"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/backoff"
	"github.com/eastwest/labourlink/services/platform/identity"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/sending/matching"
)

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
func (s *Service) findReceiving(ctx context.Context, reg *registryclient.Client) (map[string]string, error) {
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
	var reg *registryclient.Client
	if len(s.cfg.Receiving) == 0 && s.cfg.Coordination != "" {
		cc, err := peers.Dial(s.cfg.Coordination, s.cfg.Peers.Expecting(identity.Coordination()))
		if err != nil {
			s.lg.Error("cannot reach the coordination registry; not following any receiving province", zap.Error(err))
		} else {
			defer cc.Close()
			reg = registryclient.New(cc).WithDeadlines(s.cfg.Peers.Deadlines)
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
	retry := backoff.Policy{Min: s.cfg.MinBackoff, Max: s.cfg.MaxBackoff}
	failures := 0
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
			failures++
			wait = min(retry.Ceiling(failures), wait)
		} else {
			lastErr, failures = "", 0
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
					s.demand.Forget(code)
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
	s.demand.Track(code, endpoint)
	s.lg.Info("following receiving province", zap.String("receiving_region", code), zap.String("endpoint", endpoint))
	go func() {
		defer close(l.done)
		cc, err := peers.Dial(endpoint, s.cfg.Peers.Expecting(identity.Receiving(code)))
		if err != nil {
			s.demand.SetError(code, err)
			s.lg.Error("cannot connect to receiving province", zap.String("receiving_region", code), zap.Error(err))
			<-lctx.Done()
			return
		}
		defer cc.Close()
		dest := matching.ReceivingDestination(code)
		relay := outbox.NewRelay(s.db, dest, s.deliverReceiving(code, cc), s.lg, s.outboxOptions())
		s.relays.Add(relay)
		defer s.relays.Remove(relay)
		var wg sync.WaitGroup
		wg.Add(4)
		go func() {
			defer wg.Done()
			s.demand.FollowDemand(lctx, code, receivingv1.NewDemandFeedServiceClient(cc))
		}()
		go func() {
			defer wg.Done()
			s.demand.FollowEmployment(lctx, code, receivingv1.NewEmploymentFeedServiceClient(cc))
		}()
		go func() {
			defer wg.Done()
			s.demand.FollowDecisions(lctx, code, receivingv1.NewCandidateServiceClient(cc))
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

// outboxOptions are the relays' options: Config.Outbox with this service's descriptions.
func (s *Service) outboxOptions() outbox.Options {
	o := s.cfg.Outbox
	if o.Describe == nil {
		o.Describe = describeEntry
	}
	if o.Now == nil {
		o.Now = s.cfg.Now
	}
	if o.Metrics == nil {
		o.Metrics = s.cfg.Metrics
	}
	return o
}

// describeEntry says what an outbox entry of this service is, for logs and the quarantine
// (worker ids and batch ids only).
func describeEntry(e outbox.Entry) string {
	if e.Destination == ledgerclient.Destination {
		return ledgerclient.Describe(e)
	}
	m, err := e.Payload.UnmarshalNew()
	if err != nil {
		return "undecodable " + e.Payload.GetTypeUrl()
	}
	switch req := m.(type) {
	case *receivingv1.SubmitCandidatesRequest:
		return fmt.Sprintf("submission of %d candidates", len(req.GetCandidates()))
	case *receivingv1.AnnounceBatchRequest:
		return fmt.Sprintf("announcement of batch %s (%d workers)", req.GetBatch().GetBatchId(), len(req.GetBatch().GetEntries()))
	case *receivingv1.ReportBatchDepartureRequest:
		return fmt.Sprintf("departure of batch %s (%d boarded)", req.GetBatchId(), len(req.GetBoardedWorkerIds()))
	case *receivingv1.CancelIntakeBatchRequest:
		return "cancellation of batch " + req.GetBatchId()
	case *receivingv1.WithdrawCandidateRequest:
		return "withdrawal of " + req.GetName()
	}
	return string(m.ProtoReflect().Descriptor().FullName())
}

// deliverReceiving returns the outbox delivery function of receiving province code: entries one
// by one, each a call with the entry's ID as request id.
func (s *Service) deliverReceiving(code string, cc grpc.ClientConnInterface) outbox.DeliverFunc {
	cand := receivingv1.NewCandidateServiceClient(cc)
	intake := receivingv1.NewIntakeServiceClient(cc)
	return func(ctx context.Context, entries []outbox.Entry) (outbox.Result, error) {
		var res outbox.Result
		for i, e := range entries {
			refusal, err := s.deliverEntry(ctx, code, cand, intake, e)
			if err != nil {
				return res, fmt.Errorf("deliver outbox entry %s: %w", e.ID, err)
			}
			if refusal != nil {
				res.Refuse(i, *refusal)
			}
			res.Done++
		}
		return res, nil
	}
}

// deliverEntry delivers one entry. It returns a refusal when the receiving service refused the
// message for good (the entry goes to the quarantine), an error when it should be tried again.
func (s *Service) deliverEntry(ctx context.Context, code string, cand receivingv1.CandidateServiceClient, intake receivingv1.IntakeServiceClient, e outbox.Entry) (*outbox.Refusal, error) {
	// call makes one call with a deadline that fits the link and the message's items.
	items := 1
	call := func(fn func(ctx context.Context) error) (*outbox.Refusal, error) {
		callCtx, cancel := s.cfg.Peers.WithTimeoutFor(ctx, items)
		defer cancel()
		err := fn(callCtx)
		if err != nil && outbox.RefusedForGood(err) {
			r := outbox.RefusalOf(err)
			return &r, nil
		}
		return nil, err
	}
	m, err := e.Payload.UnmarshalNew()
	if err != nil {
		return &outbox.Refusal{Code: codes.Internal, Reason: apierror.Reason(commonv1.ErrorReason_ERROR_REASON_UNDECODABLE), Message: err.Error()}, nil
	}
	switch req := m.(type) {
	case *receivingv1.SubmitCandidatesRequest:
		req.RequestId = e.ID
		items = len(req.GetCandidates())
		var resp *receivingv1.SubmitCandidatesResponse
		refusal, err := call(func(ctx context.Context) (err error) {
			resp, err = cand.SubmitCandidates(ctx, req)
			return err
		})
		if refusal != nil || err != nil {
			return refusal, err
		}
		return nil, s.recordSubmission(code, req, resp)
	case *receivingv1.AnnounceBatchRequest:
		req.RequestId = e.ID
		items = len(req.GetBatch().GetEntries())
		var resp *receivingv1.AnnounceBatchResponse
		refusal, err := call(func(ctx context.Context) (err error) {
			resp, err = intake.AnnounceBatch(ctx, req)
			return err
		})
		if refusal != nil || err != nil {
			return refusal, err
		}
		return nil, s.transport.RefuseManifestEntries(code, req.GetBatch(), resp.GetRefusals())
	case *receivingv1.ReportBatchDepartureRequest:
		req.RequestId = e.ID
		return call(func(ctx context.Context) error {
			_, err := intake.ReportBatchDeparture(ctx, req)
			return err
		})
	case *receivingv1.CancelIntakeBatchRequest:
		req.RequestId = e.ID
		refusal, err := call(func(ctx context.Context) error {
			_, err := intake.CancelIntakeBatch(ctx, req)
			return err
		})
		if refusal != nil && refusal.Code == codes.NotFound {
			// The receiving side never had the batch (its announcement was refused): there is
			// nothing to cancel, which is what was asked.
			return nil, nil
		}
		return refusal, err
	case *receivingv1.WithdrawCandidateRequest:
		req.RequestId = e.ID
		return call(func(ctx context.Context) error {
			_, err := cand.WithdrawCandidate(ctx, req)
			return err
		})
	}
	return &outbox.Refusal{Code: codes.Internal, Reason: apierror.Reason(commonv1.ErrorReason_ERROR_REASON_UNKNOWN_MESSAGE_TYPE), Message: "no delivery for " + e.Payload.GetTypeUrl()}, nil
}

// recordSubmission records the receiving service's answer to a submission: taken candidates
// become SUBMITTED (markSubmitted); refused ones are taken back with the reason.
func (s *Service) recordSubmission(code string, req *receivingv1.SubmitCandidatesRequest, resp *receivingv1.SubmitCandidatesResponse) error {
	if err := s.markSubmitted(code, resp.GetCandidates()); err != nil {
		return err
	}
	if len(resp.GetRefusals()) == 0 {
		return nil
	}
	reasons := map[int]string{}
	var refused []*receivingv1.Candidate
	for _, r := range resp.GetRefusals() {
		i := int(r.GetIndex())
		if i < 0 || i >= len(req.GetCandidates()) {
			continue
		}
		refused = append(refused, req.GetCandidates()[i])
		reasons[len(refused)-1] = outbox.ItemRefusal(r).String()
	}
	s.lg.Warn("receiving service refused some candidates; their proposals are taken back",
		zap.String("receiving_region", code), zap.Int("refused", len(refused)), zap.Int("taken", len(resp.GetCandidates())))
	return s.db.Update(func(tx *bbolt.Tx) error {
		for i, c := range refused {
			if err := s.matching.RefuseProposal(tx, code, c, reasons[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// onDiscard takes back what a discarded quarantined message stood for: the proposals of a
// submission that will never reach the receiving province.
func (s *Service) onDiscard(tx *bbolt.Tx, q *outboxv1.QuarantinedEntry) error {
	if !strings.HasPrefix(q.GetDestination(), matching.ReceivingDestPrefix) {
		return nil
	}
	code := strings.TrimPrefix(q.GetDestination(), matching.ReceivingDestPrefix)
	req := &receivingv1.SubmitCandidatesRequest{}
	if !q.GetPayload().MessageIs(req) {
		return nil
	}
	if err := q.GetPayload().UnmarshalTo(req); err != nil {
		return err
	}
	why := "the submission was refused (" + q.GetReason() + ") and discarded by an operator: " + q.GetDecisions()[len(q.GetDecisions())-1].GetNote()
	for _, c := range req.GetCandidates() {
		id := matching.ProposalID(matching.VacancyIDOf(c.GetVacancy()), c.GetWorkerId())
		p, ok, err := matching.GetProposal(tx, id)
		if err != nil {
			return err
		}
		if !ok || p.GetState() != proposalPending {
			continue // delivered by another message meanwhile, or decided: not this message's
		}
		if err := s.matching.RefuseProposal(tx, code, c, why); err != nil {
			return err
		}
	}
	return nil
}

// markSubmitted records the receiving service's answer to a submission (matching.MarkSubmitted).
func (s *Service) markSubmitted(code string, cands []*receivingv1.Candidate) error {
	now := s.cfg.Now()
	return s.db.Update(func(tx *bbolt.Tx) error { return matching.MarkSubmitted(tx, code, cands, now) })
}

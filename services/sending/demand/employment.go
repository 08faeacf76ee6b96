package demand

// The employment follower: what a receiving province reports of this province's workers
// (labourlink.receiving.v1.EmploymentFeedService: arrived, no-show, onboarded, checkpoint, left
// the job, incident), handed change by change to Config.ApplyEmployment (the roster, which
// writes it on the worker's trip and moves the status: services/sending/roster/employment.go)
// in the transaction that records the feed's position under "employment/<receiving region>".
//
// It follows the feed as the demand and decision feeds are followed (follow.go, links.go): the
// same backoff, watchdog, link health, head revision and caught-up notice, shown in
// GetFollowStatus as FollowPosition.employment_revision and employment_lag; after a restart it
// resumes after the stored position. Changes at or below the position are skipped (a change
// delivered twice changes nothing), so are changes of a kind this version does not know (their
// revision still becomes the position).
//
// A gap: when the feed no longer keeps the changes after our position (REVISION_COMPACTED), the
// changes between our position and `compacted_revision` are lost to this follower. It logs the
// gap, counts the revisions lost ("employment.gap") and follows from `compacted_revision`: the
// trips of the workers concerned then miss those facts (and their statuses may stay behind)
// until an operator reads them (ListEmploymentRecords with worker_id at the receiving service)
// and corrects the status. A receiving service that answers UNIMPLEMENTED (an older version
// without the feed) is asked again every Backoff.Max, without an error (followLoop); meanwhile
// the feed does not count in the link's health or `connected`.
//
// REVISION_AHEAD (the receiving data was replaced: its feed is behind our position): the
// position goes back to 0 and the feed is followed again from its start. The changes delivered
// again are applied again, and applying a fact twice changes nothing (roster/employment.go: every
// fact sets what it sets, an incident is known by its day, kind and detail, a status moved is not
// moved again); only the counters below count them again.
//
// Counters (follow.go): "employment.applied", "employment.repeated", "employment.skipped" (no
// worker or no trip of that batch here), "employment.unknown" (a kind not known),
// "employment.gap".

import (
	"context"
	"errors"
	"strconv"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
)

// knownEmploymentKind reports whether this version knows change kind k.
func knownEmploymentKind(k receivingv1.EmploymentChangeKind) bool {
	_, ok := receivingv1.EmploymentChangeKind_name[int32(k)]
	return ok && k != receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_UNSPECIFIED
}

// FollowEmployment follows the employment feed of receiving province code until ctx ends.
func (s *Service) FollowEmployment(ctx context.Context, code string, client receivingv1.EmploymentFeedServiceClient) {
	s.followLoop(ctx, code, feedEmployment, func(ctx context.Context) error {
		err := s.followEmploymentOnce(ctx, code, client)
		if info := errorInfo(err); info != nil {
			switch apierror.ParseReason(info.GetReason()) {
			case commonv1.ErrorReason_ERROR_REASON_REVISION_COMPACTED:
				n, perr := strconv.ParseInt(info.GetMetadata()["compacted_revision"], 10, 64)
				if perr != nil {
					return errors.Join(err, perr)
				}
				if gerr := s.skipEmploymentGap(code, n); gerr != nil {
					return errors.Join(err, gerr)
				}
			case commonv1.ErrorReason_ERROR_REASON_REVISION_AHEAD:
				s.lg.Warn("our employment position is ahead of the receiving service's feed (its data was replaced?): following it from the start",
					zap.String("receiving_region", code))
				if gerr := s.setEmploymentPosition(code, 0); gerr != nil {
					return errors.Join(err, gerr)
				}
			}
		}
		return err
	})
}

func (s *Service) followEmploymentOnce(ctx context.Context, code string, client receivingv1.EmploymentFeedServiceClient) error {
	pos, _, err := s.readPosition(feedEmployment, code)
	if err != nil {
		return err
	}
	after := pos.GetEmploymentRevision()
	return watchFeed(ctx, s, code, feedEmployment, after,
		func(ctx context.Context) (func() (*receivingv1.WatchEmploymentResponse, error), error) {
			stream, err := client.WatchEmployment(ctx, &receivingv1.WatchEmploymentRequest{SendingRegion: s.cfg.Region, AfterRevision: after})
			return streamRecv(stream, err)
		},
		func(r *receivingv1.WatchEmploymentResponse) (*receivingv1.EmploymentChange, *receivingv1.FeedProgress, int64) {
			return r.GetChange(), r.GetProgress(), r.GetHeadRevision()
		},
		func(changes []*receivingv1.EmploymentChange, b batchInfo) (int64, error) {
			return s.applyEmployment(code, changes, b)
		})
}

// applyEmployment applies employment changes of province code with Config.ApplyEmployment and
// records the new position, with what else the batch says (stampPosition), in one transaction.
// It returns the position.
func (s *Service) applyEmployment(code string, changes []*receivingv1.EmploymentChange, b batchInfo) (int64, error) {
	now := s.cfg.Now()
	var position int64
	err := s.db.Update(func(tx *bbolt.Tx) error {
		pos, _, err := getPosition(tx, feedEmployment, code)
		if err != nil {
			return err
		}
		var applied, skipped, unknown, repeated uint64
		for _, c := range changes {
			rev := c.GetRevision()
			switch {
			case rev <= pos.GetEmploymentRevision():
				repeated++
				continue
			case !knownEmploymentKind(c.GetKind()):
				s.lg.Info("employment change of a kind this version does not know: skipped",
					zap.String("receiving_region", code), zap.Int64("revision", rev), zap.Int32("kind", int32(c.GetKind())))
				unknown++
			default:
				ok, err := s.cfg.ApplyEmployment(tx, code, c)
				if err != nil {
					return err
				}
				if ok {
					applied++
				} else {
					skipped++
				}
			}
			pos.EmploymentRevision = rev
		}
		pos.ReceivingRegion = code
		pos.LastChangeTime = timestamppb.New(now)
		stampPosition(pos, feedEmployment, b)
		if err := putPosition(tx, feedEmployment, code, pos); err != nil {
			return err
		}
		position = pos.GetEmploymentRevision()
		return errors.Join(
			addCounter(tx, counterKey(code, "employment.applied"), applied),
			addCounter(tx, counterKey(code, "employment.skipped"), skipped),
			addCounter(tx, counterKey(code, "employment.unknown"), unknown),
			addCounter(tx, counterKey(code, "employment.repeated"), repeated))
	})
	return position, err
}

// skipEmploymentGap moves the employment position of province code to compacted, the oldest
// revision the feed still serves after, logging and counting the revisions lost (see the file
// comment).
func (s *Service) skipEmploymentGap(code string, compacted int64) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		pos, _, err := getPosition(tx, feedEmployment, code)
		if err != nil {
			return err
		}
		from := pos.GetEmploymentRevision()
		if compacted <= from {
			return nil
		}
		s.lg.Error("the employment feed was compacted past our position: its changes in between are lost to the roster; "+
			"the statuses of the workers concerned may need an operator (ListEmploymentRecords at the receiving service)",
			zap.String("receiving_region", code), zap.Int64("from_revision", from+1), zap.Int64("to_revision", compacted))
		pos.ReceivingRegion = code
		pos.EmploymentRevision = compacted
		if err := putPosition(tx, feedEmployment, code, pos); err != nil {
			return err
		}
		return addCounter(tx, counterKey(code, "employment.gap"), uint64(compacted-from))
	})
}

// setEmploymentPosition sets the employment position of province code to rev.
func (s *Service) setEmploymentPosition(code string, rev int64) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		pos, _, err := getPosition(tx, feedEmployment, code)
		if err != nil {
			return err
		}
		pos.ReceivingRegion = code
		pos.EmploymentRevision = rev
		return putPosition(tx, feedEmployment, code, pos)
	})
}

package intake

import (
	"context"

	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/receiving/internal/check"
	"github.com/eastwest/labourlink/services/receiving/internal/feedlog"
)

// FeedServer is the EmploymentFeedService: the employment feed of each paired sending province
// (Employment), appended by the IntakeService's facts (putFact) and served the way the demand
// and decision feeds are (services/receiving/internal/feedlog). A sending province reads only
// its own feed (the request's sending_region, which the authorisation policy binds to the
// caller's region) and only while paired.
type FeedServer struct {
	receivingv1.UnimplementedEmploymentFeedServiceServer
	cfg Config
}

// NewFeed returns the EmploymentFeedService.
func NewFeed(cfg Config) *FeedServer { return &FeedServer{cfg: cfg} }

// ValidateRequest checks EmploymentFeedService requests before their handlers run.
func (x *FeedServer) ValidateRequest(_ string, req any) error {
	var v apierror.Violations
	switch r := req.(type) {
	case *receivingv1.WatchEmploymentRequest:
		x.cfg.Province.CheckFeedRequest(&v, r)
	case *receivingv1.ListEmploymentChangesRequest:
		x.cfg.Province.CheckFeedRequest(&v, r)
	default:
		return apierror.NotValidated(req)
	}
	return v.Err()
}

// WatchEmployment streams the changes of the sending province's feed after the request's
// revision, then new ones.
func (x *FeedServer) WatchEmployment(req *receivingv1.WatchEmploymentRequest, stream receivingv1.EmploymentFeedService_WatchEmploymentServer) error {
	ctx := stream.Context()
	sending := req.GetSendingRegion()
	if err := x.cfg.Province.RequirePaired(ctx, sending); err != nil {
		return err
	}
	return feedlog.Watch(ctx, x.cfg.DB, x.cfg.Watching, Employment.Of(sending), uint64(req.GetAfterRevision()), nil,
		feedlog.Respond[*receivingv1.EmploymentChange](stream.Send),
		func(ctx context.Context) error { return x.cfg.Province.RequirePaired(ctx, sending) })
}

// ListEmploymentChanges returns a page of the sending province's changes after the request's
// revision.
func (x *FeedServer) ListEmploymentChanges(ctx context.Context, req *receivingv1.ListEmploymentChangesRequest) (*receivingv1.ListEmploymentChangesResponse, error) {
	if err := x.cfg.Province.RequirePaired(ctx, req.GetSendingRegion()); err != nil {
		return nil, err
	}
	changes, head, err := Employment.Of(req.GetSendingRegion()).List(x.cfg.DB, req.GetAfterRevision(), check.FeedSize.Of(req.GetPageSize()), nil)
	if err != nil {
		return nil, err
	}
	return &receivingv1.ListEmploymentChangesResponse{Changes: changes, HeadRevision: head}, nil
}

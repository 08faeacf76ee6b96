// Package feed is the DemandFeedService of the receiving service: the demand feed (every
// change to a vacancy, appended by services/receiving/vacancies in the transaction of the
// change; services/receiving/internal/feedlog says how the feeds work) and ListOpenDemand, the
// snapshot a consumer starts from, for the paired sending provinces.
package feed

import (
	"context"
	"time"

	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/receiving/internal/check"
	"github.com/eastwest/labourlink/services/receiving/internal/feedlog"
	"github.com/eastwest/labourlink/services/receiving/internal/province"
	"github.com/eastwest/labourlink/services/receiving/vacancies"
)

// Config configures the DemandFeedService.
type Config struct {
	DB       *feedlog.DB
	Now      func() time.Time
	Province *province.Province
	Watching feedlog.Watching
}

// Server is the DemandFeedService.
type Server struct {
	receivingv1.UnimplementedDemandFeedServiceServer
	cfg Config
}

// New returns the DemandFeedService.
func New(cfg Config) *Server { return &Server{cfg: cfg} }

// ValidateRequest checks DemandFeedService requests before their handlers run.
func (x *Server) ValidateRequest(_ string, req any) error {
	var v apierror.Violations
	p := x.cfg.Province
	switch r := req.(type) {
	case *receivingv1.WatchDemandRequest:
		p.CheckFeedRequest(&v, r)
	case *receivingv1.ListDemandChangesRequest:
		p.CheckFeedRequest(&v, r)
	case *receivingv1.ListOpenDemandRequest:
		p.CheckSendingRegion(&v, "sending_region", r.GetSendingRegion())
		check.FeedSize.Check(&v, r.GetPageSize())
	default:
		return apierror.NotValidated(req)
	}
	return v.Err()
}

// WatchDemand streams the demand changes after the request's revision, then new ones.
func (x *Server) WatchDemand(req *receivingv1.WatchDemandRequest, stream receivingv1.DemandFeedService_WatchDemandServer) error {
	ctx := stream.Context()
	sending := req.GetSendingRegion()
	if err := x.cfg.Province.RequirePaired(ctx, sending); err != nil {
		return err
	}
	return feedlog.Watch(ctx, x.cfg.DB, x.cfg.Watching, vacancies.Demand, uint64(req.GetAfterRevision()), nil,
		feedlog.Respond[*receivingv1.DemandChange](stream.Send),
		func(ctx context.Context) error { return x.cfg.Province.RequirePaired(ctx, sending) })
}

// ListDemandChanges returns a page of demand changes after the request's revision.
func (x *Server) ListDemandChanges(ctx context.Context, req *receivingv1.ListDemandChangesRequest) (*receivingv1.ListDemandChangesResponse, error) {
	if err := x.cfg.Province.RequirePaired(ctx, req.GetSendingRegion()); err != nil {
		return nil, err
	}
	changes, head, err := vacancies.Demand.List(x.cfg.DB, req.GetAfterRevision(), check.FeedSize.Of(req.GetPageSize()), nil)
	if err != nil {
		return nil, err
	}
	return &receivingv1.ListDemandChangesResponse{Changes: changes, HeadRevision: head}, nil
}

// ListOpenDemand lists the open vacancies with the feed revision they were read at.
func (x *Server) ListOpenDemand(ctx context.Context, req *receivingv1.ListOpenDemandRequest) (*receivingv1.ListOpenDemandResponse, error) {
	if err := x.cfg.Province.RequirePaired(ctx, req.GetSendingRegion()); err != nil {
		return nil, err
	}
	page, err := vacancies.List(x.cfg.DB, vacancies.Filter{Status: vacancies.Open}, req.GetPageToken(), check.FeedSize.Of(req.GetPageSize()), x.cfg.Now())
	if err != nil {
		return nil, err
	}
	return &receivingv1.ListOpenDemandResponse{Vacancies: page.Vacancies, NextPageToken: page.Next, Revision: page.Revision}, nil
}

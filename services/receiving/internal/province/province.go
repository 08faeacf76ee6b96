// Package province is this receiving province as the subsystems of the receiving service see
// it: its code, the region code table, and which sending provinces are paired with it (the
// coordination registry's pairings, or a static allow list without a coordination service).
package province

import (
	"context"
	"fmt"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/coordination/registryclient"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/identity"
	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/receiving/internal/check"
)

// Province is a receiving province.
type Province struct {
	// Code is the 6-digit code of the province, such as 440000.
	Code string
	// Regions is the GB/T 2260 code table.
	Regions *regions.Table
	pairing checker
}

// checker says whether a sending province is paired with this receiving province.
type checker interface {
	paired(ctx context.Context, receiving, sending string) (bool, error)
}

// static is the allow list used without a coordination service.
type static map[string]bool

func (p static) paired(_ context.Context, _, sending string) (bool, error) {
	return p[sending], nil
}

// registry asks the coordination registry (cached by services/coordination/registryclient).
type registry struct{ c *registryclient.Client }

func (p registry) paired(ctx context.Context, receiving, sending string) (bool, error) {
	return p.c.Paired(ctx, receiving, sending)
}

// New returns province code with its source of pairings: the coordination registry at
// coordination when it is set (close releases the connection); otherwise the list paired, or
// the default pairings table of services/codes/regions when paired is nil (close is nil).
func New(code string, t *regions.Table, coordination string, paired []string, po peers.Options) (p *Province, close func() error, err error) {
	p = &Province{Code: code, Regions: t}
	if coordination != "" {
		cc, err := peers.Dial(coordination, po.Expecting(identity.Coordination()))
		if err != nil {
			return nil, nil, err
		}
		p.pairing = registry{c: registryclient.New(cc).WithDeadlines(po.Deadlines)}
		return p, cc.Close, nil
	}
	allow := static{}
	if paired != nil {
		for _, c := range paired {
			if !t.IsProvince(c) {
				return nil, nil, fmt.Errorf("paired sending region %q is not a province code", c)
			}
			allow[c] = true
		}
		p.pairing = allow
		return p, nil, nil
	}
	for _, pr := range regions.DefaultPairings() {
		if pr.Receiving == code {
			allow[pr.Sending] = true
		}
	}
	p.pairing = allow
	return p, nil, nil
}

// Name returns the name of this province.
func (p *Province) Name() string { return p.Regions.Name(p.Code) }

// CheckSendingRegion adds a violation at field if code is not a province code.
func (p *Province) CheckSendingRegion(v *apierror.Violations, field, code string) {
	switch {
	case code == "":
		v.Add(field, "is required: the 6-digit code of the sending province, such as 520000")
	case !p.Regions.IsProvince(code):
		if err := p.Regions.CheckCode(code); err != nil {
			v.Add(field, err.Error())
		} else {
			v.Addf(field, "%s (%s) is not a province: use the province code such as %s0000",
				code, p.Regions.Name(code), code[:2])
		}
	}
}

// FeedRequest is a request for a page or a watch of a sending province's feed
// (ListDemandChanges, WatchDemand, ListDecisions, WatchDecisions, ListEmploymentChanges,
// WatchEmployment).
type FeedRequest interface {
	GetSendingRegion() string
	GetAfterRevision() int64
}

// CheckFeedRequest adds the violations of a feed request r: sending_region a province code,
// after_revision not negative, and, for a page (a request with a page size), the page size
// (check.FeedSize).
func (p *Province) CheckFeedRequest(v *apierror.Violations, r FeedRequest) {
	p.CheckSendingRegion(v, "sending_region", r.GetSendingRegion())
	check.Revision(v, r.GetAfterRevision())
	if page, ok := r.(interface{ GetPageSize() int32 }); ok {
		check.FeedSize.Check(v, page.GetPageSize())
	}
}

// CheckSendingRegionFilter checks an optional sending_region filter of a List: a province, not
// this one.
func (p *Province) CheckSendingRegionFilter(v *apierror.Violations, code string) {
	switch {
	case code == "":
	case code == p.Code:
		v.Addf("sending_region", "%s is this receiving province: give the code of a sending province, such as 520000", code)
	default:
		p.CheckSendingRegion(v, "sending_region", code)
	}
}

// RequirePaired returns PERMISSION_DENIED (reason NOT_PAIRED) unless sending is paired with
// this province, and UNAVAILABLE when the registry cannot be asked.
func (p *Province) RequirePaired(ctx context.Context, sending string) error {
	ok, err := p.pairing.paired(ctx, p.Code, sending)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return apierror.Unavailable("cannot check the pairing of %s with %s in the coordination registry, try again: %v",
			sending, p.Code, err)
	}
	if !ok {
		return apierror.PermissionDenied(commonv1.ErrorReason_ERROR_REASON_NOT_PAIRED, "sending province %s (%s) is not paired with %s (%s)",
			sending, p.Regions.Name(sending), p.Code, p.Name()).
			WithMetadata("sending_region", sending).WithMetadata("receiving_region", p.Code)
	}
	return nil
}

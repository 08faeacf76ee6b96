package receiving

import (
	"context"
	"fmt"

	commonv1 "github.com/eastwest/labourlink/proto/labour/common/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/coordination/registryclient"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/identity"
	"github.com/eastwest/labourlink/services/platform/peers"
)

// pairingChecker says whether a sending province is paired with this receiving province.
type pairingChecker interface {
	paired(ctx context.Context, receiving, sending string) (bool, error)
}

// staticPairing is the allow list used without a coordination service.
type staticPairing map[string]bool

func (p staticPairing) paired(_ context.Context, _, sending string) (bool, error) {
	return p[sending], nil
}

// registryPairing asks the coordination registry (cached by services/coordination/registryclient).
type registryPairing struct{ c *registryclient.Client }

func (p registryPairing) paired(ctx context.Context, receiving, sending string) (bool, error) {
	return p.c.Paired(ctx, receiving, sending)
}

// newPairingChecker chooses the source of pairings: the coordination registry when
// cfg.Coordination is set; otherwise cfg.Paired, or the default pairings table of
// services/codes/regions when cfg.Paired is nil.
func newPairingChecker(cfg Config, t *regions.Table) (pairingChecker, func() error, error) {
	if cfg.Coordination != "" {
		cc, err := peers.Dial(cfg.Coordination, cfg.Peers.Expecting(identity.Coordination()))
		if err != nil {
			return nil, nil, err
		}
		return registryPairing{c: registryclient.New(cc).WithDeadlines(cfg.Peers.Deadlines)}, cc.Close, nil
	}
	allow := staticPairing{}
	if cfg.Paired != nil {
		for _, code := range cfg.Paired {
			if !t.IsProvince(code) {
				return nil, nil, fmt.Errorf("paired sending region %q is not a province code", code)
			}
			allow[code] = true
		}
		return allow, nil, nil
	}
	for _, p := range regions.DefaultPairings() {
		if p.Receiving == cfg.Region {
			allow[p.Sending] = true
		}
	}
	return allow, nil, nil
}

// checkSendingRegion adds a violation at field if code is not a province code.
func (s *Service) checkSendingRegion(v *apierror.Violations, field, code string) {
	switch {
	case code == "":
		v.Add(field, "is required: the 6-digit code of the sending province, such as 520000")
	case !s.regions.IsProvince(code):
		if err := s.regions.CheckCode(code); err != nil {
			v.Add(field, err.Error())
		} else {
			v.Add(field, fmt.Sprintf("%s (%s) is not a province: use the province code such as %s0000",
				code, s.regions.Name(code), code[:2]))
		}
	}
}

// requirePaired returns PERMISSION_DENIED (reason NOT_PAIRED) unless sending is paired with
// this province, and UNAVAILABLE when the registry cannot be asked.
func (s *Service) requirePaired(ctx context.Context, sending string) error {
	ok, err := s.pairing.paired(ctx, s.cfg.Region, sending)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return apierror.Unavailable("cannot check the pairing of %s with %s in the coordination registry, try again: %v",
			sending, s.cfg.Region, err)
	}
	if !ok {
		return apierror.PermissionDenied(commonv1.ErrorReason_ERROR_REASON_NOT_PAIRED, "sending province %s (%s) is not paired with %s (%s)",
			sending, s.regions.Name(sending), s.cfg.Region, s.regions.Name(s.cfg.Region)).
			WithMetadata("sending_region", sending).WithMetadata("receiving_region", s.cfg.Region)
	}
	return nil
}

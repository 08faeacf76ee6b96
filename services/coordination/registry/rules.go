package registry

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/apierror"
)

// The registry's rules: plain functions of messages and pairings, without storage.

const (
	regionNamePrefix  = "regions/"
	pairingNamePrefix = "pairings/"
)

// roleFromPairings returns the role a province plays in pairings, or unspecified: receiving as
// soon as it is the receiving side of one.
func roleFromPairings(pairings []regions.Pairing, code string) commonv1.RegionRole {
	role := commonv1.RegionRole_REGION_ROLE_UNSPECIFIED
	for _, p := range pairings {
		switch code {
		case p.Receiving:
			return commonv1.RegionRole_REGION_ROLE_RECEIVING
		case p.Sending:
			role = commonv1.RegionRole_REGION_ROLE_SENDING
		}
	}
	return role
}

// resolveRole is the role of a province whose registry entry has role registered (unspecified
// when it has none): that role, else its role in the registered pairings, else its role in the
// default pairing table.
func resolveRole(registered commonv1.RegionRole, pairings []regions.Pairing, code string) commonv1.RegionRole {
	if registered != commonv1.RegionRole_REGION_ROLE_UNSPECIFIED {
		return registered
	}
	if r := roleFromPairings(pairings, code); r != commonv1.RegionRole_REGION_ROLE_UNSPECIFIED {
		return r
	}
	return roleFromPairings(regions.DefaultPairings(), code)
}

// checkRoleAgainstPairings refuses a role that contradicts the pairings: the receiving side of a
// pairing cannot register as sending, and the other way round.
func checkRoleAgainstPairings(pairings []regions.Pairing, code string, role commonv1.RegionRole) error {
	if r := roleFromPairings(pairings, code); r != commonv1.RegionRole_REGION_ROLE_UNSPECIFIED && r != role {
		return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_ROLE_CONFLICT, "province %s is %s in the registered pairings and cannot register as %s",
			code, roleWord(r), roleWord(role)).WithMetadata("region", code)
	}
	return nil
}

// checkPairingRoles refuses a pairing whose receiving province is a sending province elsewhere
// (in other pairings or, for a province in none, in the region registry), or the other way
// round. registeredRole returns the role of a registered province (unspecified if none).
func checkPairingRoles(t *regions.Table, pairings []regions.Pairing, registeredRole func(code string) (commonv1.RegionRole, error), p regions.Pairing) error {
	for _, side := range []struct {
		code string
		role commonv1.RegionRole
	}{{p.Receiving, commonv1.RegionRole_REGION_ROLE_RECEIVING}, {p.Sending, commonv1.RegionRole_REGION_ROLE_SENDING}} {
		have := roleFromPairings(pairings, side.code)
		if have == commonv1.RegionRole_REGION_ROLE_UNSPECIFIED {
			var err error
			if have, err = registeredRole(side.code); err != nil {
				return err
			}
		}
		if have != commonv1.RegionRole_REGION_ROLE_UNSPECIFIED && have != side.role {
			return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_ROLE_CONFLICT, "province %s (%s) is %s and cannot be the %s side of a pairing",
				side.code, t.Name(side.code), roleWord(have), roleWord(side.role)).WithMetadata("region", side.code)
		}
	}
	return nil
}

func roleWord(r commonv1.RegionRole) string {
	switch r {
	case commonv1.RegionRole_REGION_ROLE_SENDING:
		return "sending"
	case commonv1.RegionRole_REGION_ROLE_RECEIVING:
		return "receiving"
	default:
		return "without role"
	}
}

// regionOf is the registry entry of a registration at time now.
func regionOf(t *regions.Table, in *coordinationv1.Region, now time.Time) *coordinationv1.Region {
	return &coordinationv1.Region{
		Name:         regionNamePrefix + in.GetCode(),
		Code:         in.GetCode(),
		DisplayName:  t.Name(in.GetCode()),
		Role:         in.GetRole(),
		Endpoint:     in.GetEndpoint(),
		RegisterTime: timestamppb.New(now),
	}
}

// pairingOf is the registry entry of a pairing.
func pairingOf(t *regions.Table, p regions.Pairing) *coordinationv1.Pairing {
	return &coordinationv1.Pairing{
		Name:                 pairingNamePrefix + p.Receiving + "-" + p.Sending,
		ReceivingRegion:      p.Receiving,
		SendingRegion:        p.Sending,
		ReceivingDisplayName: t.Name(p.Receiving),
		SendingDisplayName:   t.Name(p.Sending),
	}
}

// involves reports whether the pairing has region on one side (every pairing when region is "").
func involves(p regions.Pairing, region string) bool {
	return region == "" || p.Receiving == region || p.Sending == region
}

// checkEndpoint accepts host:port with a port from 1 to 65535.
func checkEndpoint(ep string) error {
	if ep == "" {
		return fmt.Errorf("is required: host:port")
	}
	host, port, err := net.SplitHostPort(ep)
	if err != nil {
		return fmt.Errorf("%q is not host:port", ep)
	}
	if host == "" || strings.ContainsAny(host, " \t/") {
		return fmt.Errorf("%q has no valid host", ep)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port must be 1 to 65535", ep)
	}
	return nil
}

func parseRegionName(t *regions.Table, name string) (string, error) {
	code, ok := strings.CutPrefix(name, regionNamePrefix)
	if !ok || !t.IsProvince(code) {
		return "", fmt.Errorf("must be regions/{province code}, such as regions/520000")
	}
	return code, nil
}

func parsePairingName(t *regions.Table, name string) (regions.Pairing, error) {
	rest, ok := strings.CutPrefix(name, pairingNamePrefix)
	recv, send, ok2 := strings.Cut(rest, "-")
	if !ok || !ok2 || !t.IsProvince(recv) || !t.IsProvince(send) {
		return regions.Pairing{}, fmt.Errorf("must be pairings/{receiving code}-{sending code}, such as pairings/440000-520000")
	}
	return regions.Pairing{Receiving: recv, Sending: send}, nil
}

func sortedSet(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

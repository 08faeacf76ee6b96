package registry

import (
	"errors"
	"testing"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/apierror"
)

const (
	unspecified = commonv1.RegionRole_REGION_ROLE_UNSPECIFIED
	sending     = commonv1.RegionRole_REGION_ROLE_SENDING
	receiving   = commonv1.RegionRole_REGION_ROLE_RECEIVING
)

var gdGz = regions.Pairing{Receiving: "440000", Sending: "520000"}

// The role of a province: its registry entry first, then the registered pairings (receiving
// wins), then the default pairing table.
func TestResolveRole(t *testing.T) {
	t.Parallel()
	zjSc := regions.Pairing{Receiving: "330000", Sending: "510000"}
	tests := []struct {
		name       string
		registered commonv1.RegionRole
		pairings   []regions.Pairing
		code       string
		want       commonv1.RegionRole
	}{
		{"registered", sending, []regions.Pairing{{Receiving: "520000", Sending: "510000"}}, "520000", sending},
		{"receiving in a pairing", unspecified, []regions.Pairing{gdGz}, "440000", receiving},
		{"sending in a pairing", unspecified, []regions.Pairing{gdGz}, "520000", sending},
		{"receiving somewhere wins", unspecified, []regions.Pairing{{Receiving: "510000", Sending: "520000"}, {Receiving: "520000", Sending: "450000"}}, "520000", receiving},
		{"from the default pairings", unspecified, []regions.Pairing{zjSc}, "440000", receiving},
		{"in no pairing at all", unspecified, nil, "130000", unspecified},
	}
	for _, tt := range tests {
		if got := resolveRole(tt.registered, tt.pairings, tt.code); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestRoleConflicts(t *testing.T) {
	t.Parallel()
	pairings := []regions.Pairing{gdGz}
	if err := checkRoleAgainstPairings(pairings, "440000", sending); !errors.Is(err, apierror.ErrFailedPrecondition) {
		t.Errorf("receiving province registering as sending: %v", err)
	}
	if err := checkRoleAgainstPairings(pairings, "440000", receiving); err != nil {
		t.Errorf("receiving province registering as receiving: %v", err)
	}
	if err := checkRoleAgainstPairings(pairings, "130000", sending); err != nil {
		t.Errorf("province in no pairing: %v", err)
	}
	table := regions.Default()
	registered := map[string]commonv1.RegionRole{"450000": receiving}
	role := func(code string) (commonv1.RegionRole, error) { return registered[code], nil }
	tests := []struct {
		p  regions.Pairing
		ok bool
	}{
		{regions.Pairing{Receiving: "440000", Sending: "510000"}, true},
		{regions.Pairing{Receiving: "520000", Sending: "510000"}, false}, // 520000 sends to 440000
		{regions.Pairing{Receiving: "330000", Sending: "440000"}, false}, // 440000 receives
		{regions.Pairing{Receiving: "330000", Sending: "450000"}, false}, // 450000 registered receiving
		{regions.Pairing{Receiving: "450000", Sending: "510000"}, true},
	}
	for _, tt := range tests {
		err := checkPairingRoles(table, pairings, role, tt.p)
		if (err == nil) != tt.ok {
			t.Errorf("pairing %v: %v, want ok %v", tt.p, err, tt.ok)
		}
		if err != nil && !errors.Is(err, apierror.ErrFailedPrecondition) {
			t.Errorf("pairing %v: %v, want FAILED_PRECONDITION", tt.p, err)
		}
	}
}

func TestCheckEndpoint(t *testing.T) {
	t.Parallel()
	for ep, ok := range map[string]bool{
		"h:1": true, "127.0.0.1:50051": true, "[::1]:443": true, "coordination.svc:65535": true,
		"": false, "h": false, ":80": false, "h:0": false, "h:65536": false, "h:x": false, "a b:1": false, "a/b:1": false,
	} {
		if err := checkEndpoint(ep); (err == nil) != ok {
			t.Errorf("checkEndpoint(%q) = %v, want ok %v", ep, err, ok)
		}
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	tb := regions.Default()
	if code, err := parseRegionName(tb, "regions/520000"); err != nil || code != "520000" {
		t.Errorf("regions/520000: %q, %v", code, err)
	}
	for _, name := range []string{"520000", "regions/520100", "regions/", "region/520000"} {
		if _, err := parseRegionName(tb, name); err == nil {
			t.Errorf("region name %q accepted", name)
		}
	}
	if p, err := parsePairingName(tb, pairingOf(tb, gdGz).GetName()); err != nil || p != gdGz {
		t.Errorf("the name of a pairing parses to %v, %v", p, err)
	}
	for _, name := range []string{"pairings/440000520000", "pairings/440000-", "440000-520000", "pairings/440100-520000"} {
		if _, err := parsePairingName(tb, name); err == nil {
			t.Errorf("pairing name %q accepted", name)
		}
	}
	if p, ok := parsePairingKey(pairingKey(gdGz)); !ok || p != gdGz || string(pairingKey(gdGz)) != "440000-520000" {
		t.Errorf("pairing key %q parses to %v, %v", pairingKey(gdGz), p, ok)
	}
}

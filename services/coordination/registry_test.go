package coordination

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
)

const (
	sendingRole   = commonv1.RegionRole_REGION_ROLE_SENDING
	receivingRole = commonv1.RegionRole_REGION_ROLE_RECEIVING
)

func TestRegisterRegion(t *testing.T) {
	t.Parallel()
	h := startHarness(t, Config{})
	tests := []struct {
		name   string
		region *coordinationv1.Region
		field  string
	}{
		{"no region", nil, "region"},
		{"county code", &coordinationv1.Region{Code: "520102", Role: sendingRole, Endpoint: "h:1"}, "region.code"},
		{"unknown code", &coordinationv1.Region{Code: "990000", Role: sendingRole, Endpoint: "h:1"}, "region.code"},
		{"no role", &coordinationv1.Region{Code: "520000", Endpoint: "h:1"}, "region.role"},
		{"no port", &coordinationv1.Region{Code: "520000", Role: sendingRole, Endpoint: "host"}, "region.endpoint"},
		{"port out of range", &coordinationv1.Region{Code: "520000", Role: sendingRole, Endpoint: "host:70000"}, "region.endpoint"},
		{"no host", &coordinationv1.Region{Code: "520000", Role: sendingRole, Endpoint: ":50052"}, "region.endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.registry.RegisterRegion(ctxT(t), &coordinationv1.RegisterRegionRequest{Region: tt.region})
			if _, ok := fieldViolations(t, err)[tt.field]; !ok {
				t.Fatalf("error %v, want a violation of %s", err, tt.field)
			}
		})
	}

	resp, err := h.registry.RegisterRegion(ctxT(t), &coordinationv1.RegisterRegionRequest{
		Region: &coordinationv1.Region{Code: "520000", Role: sendingRole, Endpoint: "127.0.0.1:50052", DisplayName: "ignored"},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := resp.GetRegion()
	if r.GetName() != "regions/520000" || r.GetDisplayName() != "贵州省" || !r.GetRegisterTime().AsTime().Equal(t0) {
		t.Fatalf("registered %v", r)
	}
	// Registering again refreshes the endpoint (upsert).
	h.clock.Advance(time.Minute)
	if _, err := h.registry.RegisterRegion(ctxT(t), &coordinationv1.RegisterRegionRequest{
		Region: &coordinationv1.Region{Code: "520000", Role: sendingRole, Endpoint: "10.0.0.5:50052"},
	}); err != nil {
		t.Fatal(err)
	}
	got, err := h.registry.GetRegion(ctxT(t), &coordinationv1.GetRegionRequest{Name: "regions/520000"})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetRegion().GetEndpoint() != "10.0.0.5:50052" || !got.GetRegion().GetRegisterTime().AsTime().Equal(t0.Add(time.Minute)) {
		t.Fatalf("after refresh %v", got.GetRegion())
	}
	_, err = h.registry.GetRegion(ctxT(t), &coordinationv1.GetRegionRequest{Name: "regions/440000"})
	wantCode(t, err, codes.NotFound)
	_, err = h.registry.GetRegion(ctxT(t), &coordinationv1.GetRegionRequest{Name: "520000"})
	wantCode(t, err, codes.InvalidArgument)

	if _, err := h.registry.RegisterRegion(ctxT(t), &coordinationv1.RegisterRegionRequest{
		Region: &coordinationv1.Region{Code: "440000", Role: receivingRole, Endpoint: "127.0.0.1:50053"},
	}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		role commonv1.RegionRole
		want string
	}{
		{0, "[440000 520000]"},
		{sendingRole, "[520000]"},
		{receivingRole, "[440000]"},
	} {
		var codes []string
		tok := ""
		for {
			resp, err := h.registry.ListRegions(ctxT(t), &coordinationv1.ListRegionsRequest{Role: tt.role, PageSize: 1, PageToken: tok})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range resp.GetRegions() {
				codes = append(codes, r.GetCode())
			}
			if tok = resp.GetNextPageToken(); tok == "" {
				break
			}
		}
		if fmt.Sprint(codes) != tt.want {
			t.Errorf("ListRegions(%s) = %v, want %s", tt.role, codes, tt.want)
		}
	}
}

func TestPairings(t *testing.T) {
	t.Parallel()
	h := startHarness(t, Config{})
	create := func(recv, send string) error {
		_, err := h.registry.CreatePairing(ctxT(t), &coordinationv1.CreatePairingRequest{
			Pairing: &coordinationv1.Pairing{ReceivingRegion: recv, SendingRegion: send},
		})
		return err
	}
	for _, tt := range []struct {
		name, recv, send, field string
	}{
		{"same province", "440000", "440000", "pairing.sending_region"},
		{"prefecture", "440100", "520000", "pairing.receiving_region"},
		{"missing sending", "440000", "", "pairing.sending_region"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := fieldViolations(t, create(tt.recv, tt.send))[tt.field]; !ok {
				t.Fatalf("want a violation of %s", tt.field)
			}
		})
	}
	resp, err := h.registry.CreatePairing(ctxT(t), &coordinationv1.CreatePairingRequest{
		Pairing: &coordinationv1.Pairing{ReceivingRegion: "440000", SendingRegion: "520000"}, RequestId: "p1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if p := resp.GetPairing(); p.GetName() != "pairings/440000-520000" || p.GetReceivingDisplayName() != "广东省" || p.GetSendingDisplayName() != "贵州省" {
		t.Fatalf("pairing %v", p)
	}
	// A retry with the request id returns the first response; without, it already exists.
	if _, err := h.registry.CreatePairing(ctxT(t), &coordinationv1.CreatePairingRequest{
		Pairing: &coordinationv1.Pairing{ReceivingRegion: "440000", SendingRegion: "520000"}, RequestId: "p1",
	}); err != nil {
		t.Fatalf("retry: %v", err)
	}
	wantCode(t, create("440000", "520000"), codes.AlreadyExists)
	// A receiving province cannot be a sending side elsewhere.
	err = create("330000", "440000")
	wantCode(t, err, codes.FailedPrecondition)
	if errorInfo(err).GetReason() != "ROLE_CONFLICT" {
		t.Fatalf("reason %v", errorInfo(err))
	}
	// Nor register as sending.
	_, err = h.registry.RegisterRegion(ctxT(t), &coordinationv1.RegisterRegionRequest{
		Region: &coordinationv1.Region{Code: "440000", Role: sendingRole, Endpoint: "h:1"},
	})
	wantCode(t, err, codes.FailedPrecondition)

	for _, p := range [][2]string{{"440000", "450000"}, {"330000", "510000"}} {
		if err := create(p[0], p[1]); err != nil {
			t.Fatal(err)
		}
	}
	list := func(region string) string {
		var out []string
		tok := ""
		for {
			resp, err := h.registry.ListPairings(ctxT(t), &coordinationv1.ListPairingsRequest{Region: region, PageSize: 1, PageToken: tok})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range resp.GetPairings() {
				out = append(out, p.GetReceivingRegion()+"-"+p.GetSendingRegion())
			}
			if tok = resp.GetNextPageToken(); tok == "" {
				return fmt.Sprint(out)
			}
		}
	}
	if got := list(""); got != "[330000-510000 440000-450000 440000-520000]" {
		t.Fatalf("all pairings %s", got)
	}
	if got := list("440000"); got != "[440000-450000 440000-520000]" {
		t.Fatalf("pairings of 440000 %s", got)
	}
	if got := list("510000"); got != "[330000-510000]" {
		t.Fatalf("pairings of 510000 %s", got)
	}

	del, err := h.registry.DeletePairing(ctxT(t), &coordinationv1.DeletePairingRequest{Name: "pairings/440000-450000"})
	if err != nil || del.GetPairing().GetSendingRegion() != "450000" {
		t.Fatalf("delete: %v, %v", del, err)
	}
	_, err = h.registry.DeletePairing(ctxT(t), &coordinationv1.DeletePairingRequest{Name: "pairings/440000-450000"})
	wantCode(t, err, codes.NotFound)
	_, err = h.registry.DeletePairing(ctxT(t), &coordinationv1.DeletePairingRequest{Name: "pairings/440000"})
	wantCode(t, err, codes.InvalidArgument)

	load, err := h.registry.LoadDefaultPairings(ctxT(t), &coordinationv1.LoadDefaultPairingsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	n := len(regions.DefaultPairings())
	// 440000-520000 and 330000-510000 are default pairings too.
	if load.GetAlreadyPresent() != 2 || int(load.GetAdded()) != n-2 {
		t.Fatalf("load defaults: %v (table has %d)", load, n)
	}
}

func TestDefaultPairingsLoadedAtStartWhenNone(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := newHarness(t, dir, zapLogger(t), Config{LoadDefaultPairings: true}, t0)
	resp, err := h.registry.ListPairings(ctxT(t), &coordinationv1.ListPairingsRequest{Region: "520000"})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetPairings()) != 1 || resp.GetPairings()[0].GetName() != "pairings/440000-520000" {
		t.Fatalf("pairings of 520000: %v", resp.GetPairings())
	}
	// An operator's deletion survives a restart: defaults are loaded only into an empty registry.
	if _, err := h.registry.DeletePairing(ctxT(t), &coordinationv1.DeletePairingRequest{Name: "pairings/440000-520000"}); err != nil {
		t.Fatal(err)
	}
	h.close()
	h = newHarness(t, dir, zapLogger(t), Config{LoadDefaultPairings: true}, t0)
	defer h.close()
	resp, err = h.registry.ListPairings(ctxT(t), &coordinationv1.ListPairingsRequest{Region: "520000"})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetPairings()) != 0 {
		t.Fatalf("pairings of 520000 after restart: %v", resp.GetPairings())
	}
}

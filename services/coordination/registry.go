package coordination

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labour/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labour/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/store"
)

// The registry: regions by code (BucketRegions, code -> Region) and pairings by
// "{receiving}-{sending}" (BucketPairings -> Pairing), so that key order is (receiving, sending)
// order.

const (
	regionNamePrefix  = "regions/"
	pairingNamePrefix = "pairings/"
)

// ValidateRequest checks registry requests before the handlers run (grpcserver.Validator).
func (x *registryServer) ValidateRequest(method string, req any) error {
	t := x.s.regions
	var v apierror.Violations
	switch r := req.(type) {
	case *coordinationv1.RegisterRegionRequest:
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
		reg := r.GetRegion()
		if reg == nil {
			v.Add("region", "is required")
			break
		}
		checkProvince(&v, t, "region.code", reg.GetCode(), true)
		switch reg.GetRole() {
		case commonv1.RegionRole_REGION_ROLE_SENDING, commonv1.RegionRole_REGION_ROLE_RECEIVING:
		default:
			v.Add("region.role", "must be REGION_ROLE_SENDING or REGION_ROLE_RECEIVING")
		}
		if err := checkEndpoint(reg.GetEndpoint()); err != nil {
			v.Add("region.endpoint", err.Error())
		}
	case *coordinationv1.GetRegionRequest:
		if _, err := parseRegionName(t, r.GetName()); err != nil {
			v.Add("name", err.Error())
		}
	case *coordinationv1.ListRegionsRequest:
		switch r.GetRole() {
		case commonv1.RegionRole_REGION_ROLE_UNSPECIFIED, commonv1.RegionRole_REGION_ROLE_SENDING, commonv1.RegionRole_REGION_ROLE_RECEIVING:
		default:
			v.Add("role", "unknown role")
		}
		pageSize.CheckBounded(&v, r.GetPageSize())
		regionsListing(r).Check(&v, r.GetPageToken())
	case *coordinationv1.CreatePairingRequest:
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
		p := r.GetPairing()
		if p == nil {
			v.Add("pairing", "is required")
			break
		}
		checkProvince(&v, t, "pairing.receiving_region", p.GetReceivingRegion(), true)
		checkProvince(&v, t, "pairing.sending_region", p.GetSendingRegion(), true)
		if p.GetReceivingRegion() != "" && p.GetReceivingRegion() == p.GetSendingRegion() {
			v.Add("pairing.sending_region", "must differ from the receiving region")
		}
	case *coordinationv1.DeletePairingRequest:
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
		if _, err := parsePairingName(t, r.GetName()); err != nil {
			v.Add("name", err.Error())
		}
	case *coordinationv1.ListPairingsRequest:
		checkProvince(&v, t, "region", r.GetRegion(), false)
		pageSize.CheckBounded(&v, r.GetPageSize())
		pairingsListing(r).Check(&v, r.GetPageToken())
	case *coordinationv1.LoadDefaultPairingsRequest:
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
	default:
		return apierror.NotValidated(req)
	}
	return v.Err()
}

// checkProvince adds a violation unless code is a province code (or empty and optional).
func checkProvince(v *apierror.Violations, t *regions.Table, field, code string, required bool) {
	if code == "" {
		if required {
			v.Add(field, "is required: a 6-digit GB/T 2260 province code such as 520000")
		}
		return
	}
	if t.IsProvince(code) {
		return
	}
	if err := t.CheckCode(code); err != nil {
		v.Add(field, err.Error())
		return
	}
	v.Add(field, fmt.Sprintf("%s (%s) is not a province: use the province code %s0000", code, t.Name(code), code[:2]))
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

func pairingKeyOf(p regions.Pairing) []byte { return []byte(p.Receiving + "-" + p.Sending) }

func (s *Service) pairingMessage(p regions.Pairing) *coordinationv1.Pairing {
	return &coordinationv1.Pairing{
		Name:                 pairingNamePrefix + p.Receiving + "-" + p.Sending,
		ReceivingRegion:      p.Receiving,
		SendingRegion:        p.Sending,
		ReceivingDisplayName: s.regions.Name(p.Receiving),
		SendingDisplayName:   s.regions.Name(p.Sending),
	}
}

// RegisterRegion registers a region's service or refreshes its endpoint (an upsert).
func (x *registryServer) RegisterRegion(ctx context.Context, req *coordinationv1.RegisterRegionRequest) (*coordinationv1.RegisterRegionResponse, error) {
	s := x.s
	in := req.GetRegion()
	resp := &coordinationv1.RegisterRegionResponse{}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if ok, err := store.Recall(tx, coordinationv1.RegistryService_RegisterRegion_FullMethodName, req, resp); err != nil || ok {
			return err
		}
		if err := checkRoleAgainstPairings(tx, in.GetCode(), in.GetRole()); err != nil {
			return err
		}
		reg := &coordinationv1.Region{
			Name:         regionNamePrefix + in.GetCode(),
			Code:         in.GetCode(),
			DisplayName:  s.regions.Name(in.GetCode()),
			Role:         in.GetRole(),
			Endpoint:     in.GetEndpoint(),
			RegisterTime: timestamppb.New(s.cfg.Now()),
		}
		if err := store.PutProto(tx.Bucket(store.BucketRegions), []byte(reg.GetCode()), reg); err != nil {
			return err
		}
		resp.Region = reg
		return store.Remember(tx, s.cfg.Now(), coordinationv1.RegistryService_RegisterRegion_FullMethodName, req, resp)
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// checkRoleAgainstPairings refuses a role that contradicts the pairings: the receiving side of a
// pairing cannot register as sending, and the other way round.
func checkRoleAgainstPairings(tx *bbolt.Tx, code string, role commonv1.RegionRole) error {
	if r := roleFromPairings(tx, code); r != commonv1.RegionRole_REGION_ROLE_UNSPECIFIED && r != role {
		return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_ROLE_CONFLICT, "province %s is %s in the registered pairings and cannot register as %s",
			code, roleWord(r), roleWord(role)).WithMetadata("region", code)
	}
	return nil
}

// roleFromPairings returns the role a province plays in the registered pairings, or unspecified.
func roleFromPairings(tx *bbolt.Tx, code string) commonv1.RegionRole {
	c := tx.Bucket(store.BucketPairings).Cursor()
	role := commonv1.RegionRole_REGION_ROLE_UNSPECIFIED
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		recv, send, _ := bytes.Cut(k, []byte("-"))
		switch code {
		case string(recv):
			return commonv1.RegionRole_REGION_ROLE_RECEIVING
		case string(send):
			role = commonv1.RegionRole_REGION_ROLE_SENDING
		}
	}
	return role
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

// GetRegion reads a region.
func (x *registryServer) GetRegion(ctx context.Context, req *coordinationv1.GetRegionRequest) (*coordinationv1.GetRegionResponse, error) {
	code, _ := parseRegionName(x.s.regions, req.GetName())
	reg := &coordinationv1.Region{}
	var found bool
	err := x.s.db.View(func(tx *bbolt.Tx) error {
		var err error
		found, err = store.GetProto(tx.Bucket(store.BucketRegions), []byte(code), reg)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, apierror.NotFound("region %s (%s) is not registered", code, x.s.regions.Name(code))
	}
	return &coordinationv1.GetRegionResponse{Region: reg}, nil
}

// ListRegions lists regions in code order.
func (x *registryServer) ListRegions(ctx context.Context, req *coordinationv1.ListRegionsRequest) (*coordinationv1.ListRegionsResponse, error) {
	listing := regionsListing(req)
	after, err := listing.Decode(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	n := pageSize.Of(req.GetPageSize())
	resp := &coordinationv1.ListRegionsResponse{}
	err = x.s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(store.BucketRegions).Cursor()
		for k, v := seekAfter(c, nil, after); k != nil; k, v = c.Next() {
			if len(resp.Regions) == n {
				resp.NextPageToken = listing.Token(after)
				return nil
			}
			reg := &coordinationv1.Region{}
			if err := unmarshal(v, reg); err != nil {
				return err
			}
			after = append([]byte(nil), k...)
			if req.GetRole() != commonv1.RegionRole_REGION_ROLE_UNSPECIFIED && reg.GetRole() != req.GetRole() {
				continue
			}
			resp.Regions = append(resp.Regions, reg)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// CreatePairing pairs a receiving province with a sending province.
func (x *registryServer) CreatePairing(ctx context.Context, req *coordinationv1.CreatePairingRequest) (*coordinationv1.CreatePairingResponse, error) {
	s := x.s
	p := regions.Pairing{Receiving: req.GetPairing().GetReceivingRegion(), Sending: req.GetPairing().GetSendingRegion()}
	resp := &coordinationv1.CreatePairingResponse{}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if ok, err := store.Recall(tx, coordinationv1.RegistryService_CreatePairing_FullMethodName, req, resp); err != nil || ok {
			return err
		}
		b := tx.Bucket(store.BucketPairings)
		if b.Get(pairingKeyOf(p)) != nil {
			return apierror.AlreadyExists("pairing %s-%s already exists", p.Receiving, p.Sending)
		}
		if err := s.checkPairingRoles(tx, p); err != nil {
			return err
		}
		msg := s.pairingMessage(p)
		if err := store.PutProto(b, pairingKeyOf(p), msg); err != nil {
			return err
		}
		resp.Pairing = msg
		return store.Remember(tx, s.cfg.Now(), coordinationv1.RegistryService_CreatePairing_FullMethodName, req, resp)
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// checkPairingRoles refuses a pairing whose receiving province is a sending province elsewhere
// (in other pairings or in the region registry), or the other way round.
func (s *Service) checkPairingRoles(tx *bbolt.Tx, p regions.Pairing) error {
	for _, side := range []struct {
		code string
		role commonv1.RegionRole
	}{{p.Receiving, commonv1.RegionRole_REGION_ROLE_RECEIVING}, {p.Sending, commonv1.RegionRole_REGION_ROLE_SENDING}} {
		have := roleFromPairings(tx, side.code)
		if have == commonv1.RegionRole_REGION_ROLE_UNSPECIFIED {
			reg := &coordinationv1.Region{}
			if ok, err := store.GetProto(tx.Bucket(store.BucketRegions), []byte(side.code), reg); err != nil {
				return err
			} else if ok {
				have = reg.GetRole()
			}
		}
		if have != commonv1.RegionRole_REGION_ROLE_UNSPECIFIED && have != side.role {
			return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_ROLE_CONFLICT, "province %s (%s) is %s and cannot be the %s side of a pairing",
				side.code, s.regions.Name(side.code), roleWord(have), roleWord(side.role)).WithMetadata("region", side.code)
		}
	}
	return nil
}

// DeletePairing removes a pairing.
func (x *registryServer) DeletePairing(ctx context.Context, req *coordinationv1.DeletePairingRequest) (*coordinationv1.DeletePairingResponse, error) {
	s := x.s
	p, _ := parsePairingName(s.regions, req.GetName())
	resp := &coordinationv1.DeletePairingResponse{}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if ok, err := store.Recall(tx, coordinationv1.RegistryService_DeletePairing_FullMethodName, req, resp); err != nil || ok {
			return err
		}
		b := tx.Bucket(store.BucketPairings)
		msg := &coordinationv1.Pairing{}
		if ok, err := store.GetProto(b, pairingKeyOf(p), msg); err != nil {
			return err
		} else if !ok {
			return apierror.NotFound("pairing %s-%s does not exist", p.Receiving, p.Sending)
		}
		if err := b.Delete(pairingKeyOf(p)); err != nil {
			return err
		}
		resp.Pairing = msg
		return store.Remember(tx, s.cfg.Now(), coordinationv1.RegistryService_DeletePairing_FullMethodName, req, resp)
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// ListPairings lists pairings in (receiving, sending) order, optionally of one province.
func (x *registryServer) ListPairings(ctx context.Context, req *coordinationv1.ListPairingsRequest) (*coordinationv1.ListPairingsResponse, error) {
	listing := pairingsListing(req)
	after, err := listing.Decode(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	n := pageSize.Of(req.GetPageSize())
	region := req.GetRegion()
	resp := &coordinationv1.ListPairingsResponse{}
	err = x.s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(store.BucketPairings).Cursor()
		for k, v := seekAfter(c, nil, after); k != nil; k, v = c.Next() {
			if len(resp.Pairings) == n {
				resp.NextPageToken = listing.Token(after)
				return nil
			}
			after = append([]byte(nil), k...)
			if region != "" {
				recv, send, _ := bytes.Cut(k, []byte("-"))
				if string(recv) != region && string(send) != region {
					continue
				}
			}
			p := &coordinationv1.Pairing{}
			if err := unmarshal(v, p); err != nil {
				return err
			}
			resp.Pairings = append(resp.Pairings, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// LoadDefaultPairings adds the default east–west pairings that are not yet present.
func (x *registryServer) LoadDefaultPairings(ctx context.Context, req *coordinationv1.LoadDefaultPairingsRequest) (*coordinationv1.LoadDefaultPairingsResponse, error) {
	resp := &coordinationv1.LoadDefaultPairingsResponse{}
	err := x.s.db.Update(func(tx *bbolt.Tx) error {
		if ok, err := store.Recall(tx, coordinationv1.RegistryService_LoadDefaultPairings_FullMethodName, req, resp); err != nil || ok {
			return err
		}
		added, present, err := x.s.loadDefaultPairings(tx)
		if err != nil {
			return err
		}
		resp.Added, resp.AlreadyPresent = int32(added), int32(present)
		return store.Remember(tx, x.s.cfg.Now(), coordinationv1.RegistryService_LoadDefaultPairings_FullMethodName, req, resp)
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// loadDefaultPairings adds the pairings of regions.DefaultPairings that are missing. A default
// pairing that contradicts a role already registered is refused (FAILED_PRECONDITION).
func (s *Service) loadDefaultPairings(tx *bbolt.Tx) (added, present int, err error) {
	b := tx.Bucket(store.BucketPairings)
	for _, p := range regions.DefaultPairings() {
		if b.Get(pairingKeyOf(p)) != nil {
			present++
			continue
		}
		if err := s.checkPairingRoles(tx, p); err != nil {
			return 0, 0, err
		}
		if err := store.PutProto(b, pairingKeyOf(p), s.pairingMessage(p)); err != nil {
			return 0, 0, err
		}
		added++
	}
	return added, present, nil
}

// registeredPairings returns the registry's pairings in (receiving, sending) order.
func registeredPairings(tx *bbolt.Tx) []regions.Pairing {
	var out []regions.Pairing
	c := tx.Bucket(store.BucketPairings).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		recv, send, _ := bytes.Cut(k, []byte("-"))
		out = append(out, regions.Pairing{Receiving: string(recv), Sending: string(send)})
	}
	return out
}

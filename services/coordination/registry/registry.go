// Package registry is the coordination service's region registry: the regions' services and
// their endpoints, and the pairings of receiving and sending provinces (RegistryService).
package registry

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/coordination/check"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/paging"
	"github.com/eastwest/labourlink/services/platform/store"
)

// Server is the RegistryService.
type Server struct {
	coordinationv1.UnimplementedRegistryServiceServer
	db      *store.DB
	lg      *zap.Logger
	regions *regions.Table
	now     func() time.Time
	// OnAgreement, when set, runs in the transaction that changed pairing p's programme
	// agreement at time now (the ledger reconciles the pairing's batches under it).
	OnAgreement func(tx *bbolt.Tx, p regions.Pairing, now time.Time) error

	w                                               store.Writer
	registerRegion, createPairing, deletePairing    *store.Mutation
	loadDefaults, loadDefaultsIfEmpty, setAgreement *store.Mutation
}

// LoadDefaultPairingsIfEmptyMethod names the write that adds the default pairings to an empty
// registry at start: not an RPC, but a write like the others (a replicated coordination service
// applies it from its log).
const LoadDefaultPairingsIfEmptyMethod = "/labourlink.coordination.internal/LoadDefaultPairingsIfEmpty"

// New returns the registry over db, with the region table t and the clock now. Its writes go
// to db in this process until SetWriter.
func New(db *store.DB, lg *zap.Logger, t *regions.Table, now func() time.Time) *Server {
	x := &Server{db: db, lg: lg, regions: t, now: now, w: store.Local{DB: db}}
	x.registerRegion = store.NewMutation(coordinationv1.RegistryService_RegisterRegion_FullMethodName, x.applyRegisterRegion)
	x.createPairing = store.NewMutation(coordinationv1.RegistryService_CreatePairing_FullMethodName, x.applyCreatePairing)
	x.deletePairing = store.NewMutation(coordinationv1.RegistryService_DeletePairing_FullMethodName, x.applyDeletePairing)
	x.loadDefaults = store.NewMutation(coordinationv1.RegistryService_LoadDefaultPairings_FullMethodName, x.applyLoadDefaultPairings)
	// One write whichever node starts first (the others find it done).
	x.loadDefaultsIfEmpty = store.NewMutation(LoadDefaultPairingsIfEmptyMethod, x.applyLoadDefaultPairingsIfEmpty).
		WithID(func(proto.Message) string { return "start" })
	x.setAgreement = store.NewMutation(coordinationv1.RegistryService_SetPairingAgreement_FullMethodName, x.applySetPairingAgreement)
	return x
}

// SetWriter sends the registry's writes to w.
func (x *Server) SetWriter(w store.Writer) { x.w = w }

// Mutations are the registry's writes.
func (x *Server) Mutations() []*store.Mutation {
	return []*store.Mutation{x.registerRegion, x.createPairing, x.deletePairing, x.loadDefaults, x.loadDefaultsIfEmpty, x.setAgreement}
}

// Page tokens are bound to the List and its filters, and hold a key of the List's shape.

func regionsListing(r *coordinationv1.ListRegionsRequest) paging.Listing {
	return paging.For("regions", r.GetRole().String()).Keys(isRegionKey)
}

func pairingsListing(r *coordinationv1.ListPairingsRequest) paging.Listing {
	return paging.For("pairings", r.GetRegion()).Keys(isPairingKey)
}

// isRegionKey: ListRegions, a 6-digit region code.
func isRegionKey(k []byte) bool { return isCode(k) }

// isPairingKey: ListPairings, receiving-sending ("440000-520000").
func isPairingKey(k []byte) bool {
	recv, send, ok := bytes.Cut(k, []byte("-"))
	return ok && isCode(recv) && isCode(send)
}

func isCode(k []byte) bool {
	if len(k) != 6 {
		return false
	}
	for _, c := range k {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ValidateRequest checks registry requests before the handlers run (grpcserver.Validator).
func (x *Server) ValidateRequest(method string, req any) error {
	t := x.regions
	var v apierror.Violations
	switch r := req.(type) {
	case *coordinationv1.RegisterRegionRequest:
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
		reg := r.GetRegion()
		if reg == nil {
			v.Add("region", "is required")
			break
		}
		check.Province(&v, t, "region.code", reg.GetCode(), true)
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
		check.PageSize.Check(&v, r.GetPageSize())
		regionsListing(r).Check(&v, r.GetPageToken())
	case *coordinationv1.CreatePairingRequest:
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
		p := r.GetPairing()
		if p == nil {
			v.Add("pairing", "is required")
			break
		}
		check.Province(&v, t, "pairing.receiving_region", p.GetReceivingRegion(), true)
		check.Province(&v, t, "pairing.sending_region", p.GetSendingRegion(), true)
		if p.GetReceivingRegion() != "" && p.GetReceivingRegion() == p.GetSendingRegion() {
			v.Add("pairing.sending_region", "must differ from the receiving region")
		}
	case *coordinationv1.DeletePairingRequest:
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
		if _, err := parsePairingName(t, r.GetName()); err != nil {
			v.Add("name", err.Error())
		}
	case *coordinationv1.SetPairingAgreementRequest:
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
		if _, err := parsePairingName(t, r.GetName()); err != nil {
			v.Add("name", err.Error())
		}
		checkAgreement(&v, "agreement", r.GetAgreement())
	case *coordinationv1.ListPairingsRequest:
		check.Province(&v, t, "region", r.GetRegion(), false)
		check.PageSize.Check(&v, r.GetPageSize())
		pairingsListing(r).Check(&v, r.GetPageToken())
	case *coordinationv1.LoadDefaultPairingsRequest:
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
	default:
		return apierror.NotValidated(req)
	}
	return v.Err()
}

// RegisterRegion registers a region's service or refreshes its endpoint (an upsert).
func (x *Server) RegisterRegion(ctx context.Context, req *coordinationv1.RegisterRegionRequest) (*coordinationv1.RegisterRegionResponse, error) {
	resp := &coordinationv1.RegisterRegionResponse{}
	if err := x.w.Write(ctx, x.registerRegion, x.now(), req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

func (x *Server) applyRegisterRegion(tx *bbolt.Tx, now time.Time, req *coordinationv1.RegisterRegionRequest, resp *coordinationv1.RegisterRegionResponse) error {
	pairings, err := Pairings(tx)
	if err != nil {
		return err
	}
	if err := checkRoleAgainstPairings(pairings, req.GetRegion().GetCode(), req.GetRegion().GetRole()); err != nil {
		return err
	}
	resp.Region = regionOf(x.regions, req.GetRegion(), now)
	return regionsTable.Put(tx, []byte(resp.Region.GetCode()), resp.Region)
}

// GetRegion reads a region.
func (x *Server) GetRegion(ctx context.Context, req *coordinationv1.GetRegionRequest) (*coordinationv1.GetRegionResponse, error) {
	code, _ := parseRegionName(x.regions, req.GetName())
	var reg *coordinationv1.Region
	var found bool
	err := x.db.View(func(tx *bbolt.Tx) (err error) {
		reg, found, err = registered(tx, code)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, apierror.NotFound("region %s (%s) is not registered", code, x.regions.Name(code))
	}
	return &coordinationv1.GetRegionResponse{Region: reg}, nil
}

// ListRegions lists regions in code order.
func (x *Server) ListRegions(ctx context.Context, req *coordinationv1.ListRegionsRequest) (*coordinationv1.ListRegionsResponse, error) {
	listing := regionsListing(req)
	after, err := listing.Decode(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	keep := func(_ []byte, reg *coordinationv1.Region) bool {
		return req.GetRole() == commonv1.RegionRole_REGION_ROLE_UNSPECIFIED || reg.GetRole() == req.GetRole()
	}
	var page store.Page[*coordinationv1.Region]
	err = x.db.View(func(tx *bbolt.Tx) (err error) {
		page, err = regionsTable.Page(tx, store.Range{After: after}, check.PageSize.Of(req.GetPageSize()), keep)
		return err
	})
	if err != nil {
		return nil, err
	}
	resp := &coordinationv1.ListRegionsResponse{Regions: page.Items}
	if page.Last != nil {
		resp.NextPageToken = listing.Token(page.Last)
	}
	return resp, nil
}

// CreatePairing pairs a receiving province with a sending province.
func (x *Server) CreatePairing(ctx context.Context, req *coordinationv1.CreatePairingRequest) (*coordinationv1.CreatePairingResponse, error) {
	resp := &coordinationv1.CreatePairingResponse{}
	if err := x.w.Write(ctx, x.createPairing, x.now(), req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

func (x *Server) applyCreatePairing(tx *bbolt.Tx, _ time.Time, req *coordinationv1.CreatePairingRequest, resp *coordinationv1.CreatePairingResponse) error {
	p := regions.Pairing{Receiving: req.GetPairing().GetReceivingRegion(), Sending: req.GetPairing().GetSendingRegion()}
	if ok, err := Paired(tx, p); err != nil {
		return err
	} else if ok {
		return apierror.AlreadyExists("pairing %s-%s already exists", p.Receiving, p.Sending)
	}
	var err error
	resp.Pairing, err = x.addPairing(tx, p)
	return err
}

// addPairing stores the pairing p unless its roles conflict with the registry's.
func (x *Server) addPairing(tx *bbolt.Tx, p regions.Pairing) (*coordinationv1.Pairing, error) {
	pairings, err := Pairings(tx)
	if err != nil {
		return nil, err
	}
	registeredRole := func(code string) (commonv1.RegionRole, error) {
		reg, _, err := registered(tx, code)
		return reg.GetRole(), err
	}
	if err := checkPairingRoles(x.regions, pairings, registeredRole, p); err != nil {
		return nil, err
	}
	msg := pairingOf(x.regions, p)
	return msg, pairingsTable.Put(tx, pairingKey(p), msg)
}

// DeletePairing removes a pairing.
func (x *Server) DeletePairing(ctx context.Context, req *coordinationv1.DeletePairingRequest) (*coordinationv1.DeletePairingResponse, error) {
	resp := &coordinationv1.DeletePairingResponse{}
	if err := x.w.Write(ctx, x.deletePairing, x.now(), req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

func (x *Server) applyDeletePairing(tx *bbolt.Tx, _ time.Time, req *coordinationv1.DeletePairingRequest, resp *coordinationv1.DeletePairingResponse) error {
	p, msg, err := x.namedPairing(tx, req.GetName())
	if err != nil {
		return err
	}
	resp.Pairing = msg
	return pairingsTable.Delete(tx, pairingKey(p))
}

// namedPairing returns the pairing of a resource name (pairings/{receiving}-{sending}), NOT_FOUND
// when it is not in the registry.
func (x *Server) namedPairing(tx *bbolt.Tx, name string) (regions.Pairing, *coordinationv1.Pairing, error) {
	p, _ := parsePairingName(x.regions, name)
	msg, ok, err := pairingsTable.Get(tx, pairingKey(p))
	if err == nil && !ok {
		err = apierror.NotFound("pairing %s-%s does not exist", p.Receiving, p.Sending)
	}
	return p, msg, err
}

// ListPairings lists pairings in (receiving, sending) order, optionally of one province.
func (x *Server) ListPairings(ctx context.Context, req *coordinationv1.ListPairingsRequest) (*coordinationv1.ListPairingsResponse, error) {
	listing := pairingsListing(req)
	after, err := listing.Decode(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	keep := func(k []byte, _ *coordinationv1.Pairing) bool {
		p, _ := parsePairingKey(k)
		return involves(p, req.GetRegion())
	}
	var page store.Page[*coordinationv1.Pairing]
	err = x.db.View(func(tx *bbolt.Tx) (err error) {
		page, err = pairingsTable.Page(tx, store.Range{After: after}, check.PageSize.Of(req.GetPageSize()), keep)
		return err
	})
	if err != nil {
		return nil, err
	}
	resp := &coordinationv1.ListPairingsResponse{Pairings: page.Items}
	if page.Last != nil {
		resp.NextPageToken = listing.Token(page.Last)
	}
	return resp, nil
}

// LoadDefaultPairings adds the default east–west pairings that are not yet present.
func (x *Server) LoadDefaultPairings(ctx context.Context, req *coordinationv1.LoadDefaultPairingsRequest) (*coordinationv1.LoadDefaultPairingsResponse, error) {
	resp := &coordinationv1.LoadDefaultPairingsResponse{}
	if err := x.w.Write(ctx, x.loadDefaults, x.now(), req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

func (x *Server) applyLoadDefaultPairings(tx *bbolt.Tx, _ time.Time, _ *coordinationv1.LoadDefaultPairingsRequest, resp *coordinationv1.LoadDefaultPairingsResponse) error {
	added, present, err := x.loadDefaultPairings(tx)
	resp.Added, resp.AlreadyPresent = int32(added), int32(present)
	return err
}

// LoadDefaultPairingsIfEmpty adds the default pairings when the registry has none (at start,
// when configured).
func (x *Server) LoadDefaultPairingsIfEmpty(ctx context.Context) error {
	resp := &coordinationv1.LoadDefaultPairingsResponse{}
	if err := x.w.Write(ctx, x.loadDefaultsIfEmpty, x.now(), &emptypb.Empty{}, resp); err != nil {
		return fmt.Errorf("load the default pairings: %w", err)
	}
	if resp.GetAdded() > 0 {
		x.lg.Info("loaded the default pairings", zap.Int32("pairings", resp.GetAdded()))
	}
	return nil
}

func (x *Server) applyLoadDefaultPairingsIfEmpty(tx *bbolt.Tx, _ time.Time, _ *emptypb.Empty, resp *coordinationv1.LoadDefaultPairingsResponse) error {
	pairings, err := Pairings(tx)
	if err != nil || len(pairings) > 0 {
		resp.AlreadyPresent = int32(len(pairings))
		return err
	}
	added, _, err := x.loadDefaultPairings(tx)
	resp.Added = int32(added)
	return err
}

// loadDefaultPairings adds the pairings of regions.DefaultPairings that are missing. A default
// pairing that contradicts a role already registered is refused (FAILED_PRECONDITION).
func (x *Server) loadDefaultPairings(tx *bbolt.Tx) (added, present int, err error) {
	for _, p := range regions.DefaultPairings() {
		if ok, err := Paired(tx, p); err != nil {
			return 0, 0, err
		} else if ok {
			present++
			continue
		}
		if _, err := x.addPairing(tx, p); err != nil {
			return 0, 0, err
		}
		added++
	}
	return added, present, nil
}

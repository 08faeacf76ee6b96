// Package authz is the authorisation of labourlink, in one place: a policy table keyed by full
// gRPC method name that covers every method the services serve (policy.go), and the unary and
// stream interceptors that read the caller's identity from its verified client certificate
// (services/platform/identity) and decide with the serving instance's own identity (its region and
// kind). A refusal is PERMISSION_DENIED (apierror.PermissionDenied) with the reason; the
// grpcserver log interceptor writes the one log line of the call, without personal data.
//
// The rules, seen from the serving instance:
//
//   - A sending service: its province's system and operators with full rights (of the province
//     or national) import, change and plan; operators with read rights read. The full
//     identity-number view (GetWorker with WORKER_VIEW_FULL) needs the province's system or an
//     operator with full rights. Nobody else: another province's system or service cannot
//     import into, or read, this roster.
//   - A receiving service: its province's system and full operators manage vacancies,
//     decisions and intake; read operators read. The sending service of a paired province
//     (the coordination registry's pairings, or the default pairing table when no coordination
//     service is configured) follows the demand and decision feeds and its own employment
//     feed, reads vacancies and its own workers' employment records, submits and withdraws
//     candidates, announces batches and reports departures, each only for its own region (the
//     request's sending_region must be the caller's region).
//   - The coordination service: any party reads the registry; a province's service registers
//     only its own region in its own role and reports only ledger events about its own region
//     (reporter_region, and its side of the pairing); a province's system and operators read
//     reconciliation and assessment about their province; national operators read everything,
//     and with full rights change pairings and baselines.
//   - Health and reflection: any party with a certificate of the federation.
//
// The coordination service calls no regional service, so its certificate opens only health
// and reflection there (and the registry, like every party's).
package authz

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/identity"
)

// Pairings answers whether a receiving province and a sending province are paired.
// *registry.Client implements it.
type Pairings interface {
	Paired(ctx context.Context, receiving, sending string) (bool, error)
}

// StaticPairings is a fixed pairing table.
type StaticPairings []regions.Pairing

// Paired reports whether (receiving, sending) is in the table.
func (s StaticPairings) Paired(_ context.Context, receiving, sending string) (bool, error) {
	for _, p := range s {
		if p.Receiving == receiving && p.Sending == sending {
			return true, nil
		}
	}
	return false, nil
}

// DefaultPairings is the default east–west pairing table (services/codes/regions).
func DefaultPairings() StaticPairings { return regions.DefaultPairings() }

// Authorizer decides the calls to one serving instance.
type Authorizer struct {
	self     identity.Identity
	pairings Pairings
}

// New returns the authorizer of the service self (a sending, receiving or coordination
// identity). pairings is consulted for receiving services; nil means DefaultPairings.
func New(self identity.Identity, pairings Pairings) (*Authorizer, error) {
	if !self.IsService() {
		return nil, fmt.Errorf("authz: %v is not a service identity", self)
	}
	if err := self.Validate(); err != nil {
		return nil, fmt.Errorf("authz: %w", err)
	}
	if pairings == nil {
		pairings = DefaultPairings()
	}
	return &Authorizer{self: self, pairings: pairings}, nil
}

// refusal is a PERMISSION_DENIED error with an ErrorInfo reason.
func refusal(reason commonv1.ErrorReason, format string, args ...any) error {
	return apierror.PermissionDenied(reason, format, args...)
}

// deny adds who called what to a refusal's message and metadata.
func (a *Authorizer) deny(method string, caller identity.Identity, err error) error {
	var e *apierror.Error
	if !errors.As(err, &e) || !errors.Is(err, apierror.ErrPermissionDenied) {
		return err
	}
	who := "a caller without an identity"
	if caller.Role != "" {
		who = caller.String()
	}
	out := apierror.PermissionDenied(e.ErrorReason(), "%s may not call %s on %s: %s", who, method, a.self, e.Error()).
		WithMetadata("method", method).WithMetadata("service", a.self.String())
	if caller.Role != "" {
		out = out.WithMetadata("caller", caller.String())
	}
	return out
}

// is reports whether caller is of kind p, seen from this instance. A sending service that is
// not paired gets a NOT_PAIRED refusal; a pairing that cannot be looked up is UNAVAILABLE.
func (a *Authorizer) is(ctx context.Context, p party, caller identity.Identity) (bool, error) {
	inScope := caller.Region == "" || caller.Region == a.self.Region
	switch p {
	case anyone:
		return true, nil
	case ownSystem:
		return caller.Role == identity.RoleSystem && a.self.Region != "" && caller.Region == a.self.Region, nil
	case operatorRead:
		return caller.IsOperator() && a.self.Region != "" && inScope, nil
	case operatorFull:
		return caller.Role == identity.RoleOperatorFull && a.self.Region != "" && inScope, nil
	case pairedSending:
		if caller.Role != identity.RoleSending || a.self.Role != identity.RoleReceiving {
			return false, nil
		}
		ok, err := a.pairings.Paired(ctx, a.self.Region, caller.Region)
		if err != nil {
			return false, apierror.Unavailable("cannot check the pairing of %s with %s: %v", caller.Region, a.self.Region, err)
		}
		if !ok {
			return false, refusal(commonv1.ErrorReason_ERROR_REASON_NOT_PAIRED, "sending province %s is not paired with receiving province %s", caller.Region, a.self.Region)
		}
		return true, nil
	case regionalService:
		return caller.Role == identity.RoleSending || caller.Role == identity.RoleReceiving, nil
	case provincial:
		return (caller.Role == identity.RoleSystem || caller.IsOperator()) && caller.Region != "", nil
	case nationalRead:
		return caller.IsNational(), nil
	case nationalFull:
		return caller.Role == identity.RoleOperatorFull && caller.Region == "", nil
	}
	return false, nil
}

// admit decides what can be decided from the caller alone. It returns (nil, nil) when the call
// is allowed whatever the request, the grants that still need the request checked, or a
// refusal.
func (a *Authorizer) admit(ctx context.Context, method string, caller identity.Identity) ([]grant, error) {
	r, ok := policy[method]
	if !ok {
		return nil, refusal(commonv1.ErrorReason_ERROR_REASON_NO_RULE, "the method has no authorisation rule")
	}
	var pending []grant
	var partyErr error
	for _, g := range r {
		ok, err := a.is(ctx, g.who, caller)
		if err != nil {
			if !errors.Is(err, apierror.ErrPermissionDenied) {
				return nil, err
			}
			partyErr = err
			continue
		}
		if !ok {
			continue
		}
		if !g.constrained() {
			return nil, nil
		}
		pending = append(pending, g)
	}
	if len(pending) > 0 {
		return pending, nil
	}
	if partyErr != nil {
		return nil, partyErr
	}
	return nil, refusal(commonv1.ErrorReason_ERROR_REASON_CALLER_NOT_ALLOWED, "allowed are %s", r.allowed())
}

// check decides a request against the grants admit left pending.
func check(pending []grant, caller identity.Identity, req any) error {
	m, _ := req.(proto.Message)
	var first error
	for _, g := range pending {
		err := g.check(caller, m)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return first
}

func (g grant) check(caller identity.Identity, m proto.Message) error {
	if len(g.fields) > 0 {
		ok := false
		for _, f := range g.fields {
			if v, _ := stringField(m, f); v != "" && v == caller.Region {
				ok = true
				break
			}
		}
		if !ok {
			if len(g.fields) == 1 {
				return refusal(commonv1.ErrorReason_ERROR_REASON_REGION_MISMATCH, "%s must be %s: the caller acts only for its own region", g.fields[0], caller.Region)
			}
			return refusal(commonv1.ErrorReason_ERROR_REASON_REGION_MISMATCH, "one of %v must be %s: the caller acts only for its own region", g.fields, caller.Region)
		}
	}
	if g.when != nil {
		return g.when(caller, m)
	}
	return nil
}

// stringField reads the string field at path (dot-separated field names) of m by protobuf
// reflection; unset messages on the way give "". ok is false when the path does not name a
// string field of m's type.
func stringField(m proto.Message, path string) (value string, ok bool) {
	if m == nil {
		return "", false
	}
	msg := m.ProtoReflect()
	names := splitPath(path)
	for i, name := range names {
		fd := msg.Descriptor().Fields().ByName(protoreflect.Name(name))
		if fd == nil || fd.IsList() || fd.IsMap() {
			return "", false
		}
		if i == len(names)-1 {
			if fd.Kind() != protoreflect.StringKind {
				return "", false
			}
			return msg.Get(fd).String(), true
		}
		if fd.Kind() != protoreflect.MessageKind {
			return "", false
		}
		msg = msg.Get(fd).Message()
	}
	return "", false
}

func splitPath(p string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(p); i++ {
		if i == len(p) || p[i] == '.' {
			out = append(out, p[start:i])
			start = i + 1
		}
	}
	return out
}

// caller reads the verified identity of the caller.
func (a *Authorizer) caller(ctx context.Context) (identity.Identity, error) {
	id, err := identity.Peer(ctx)
	if err != nil {
		return identity.Identity{}, refusal(commonv1.ErrorReason_ERROR_REASON_NO_IDENTITY, "%v", err)
	}
	return id, nil
}

// Authorize decides one call of method with request req (nil for a call whose request is not
// known yet) by caller. It is what the interceptors do, for tests and tools.
func (a *Authorizer) Authorize(ctx context.Context, method string, caller identity.Identity, req any) error {
	pending, err := a.admit(ctx, method, caller)
	if err == nil && pending != nil {
		err = check(pending, caller, req)
	}
	if err != nil {
		return a.deny(method, caller, err)
	}
	return nil
}

// UnaryInterceptor authorises unary calls (grpcserver.Config.AuthUnaryInterceptor).
func (a *Authorizer) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		caller, err := a.caller(ctx)
		if err == nil {
			err = a.Authorize(ctx, info.FullMethod, caller, req)
		} else {
			err = a.deny(info.FullMethod, caller, err)
		}
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor authorises streaming calls (grpcserver.Config.AuthStreamInterceptor): the
// caller when the stream opens, and, when the rule looks at the request, every message the
// handler receives.
func (a *Authorizer) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx := ss.Context()
		caller, err := a.caller(ctx)
		if err != nil {
			return a.deny(info.FullMethod, caller, err)
		}
		pending, err := a.admit(ctx, info.FullMethod, caller)
		if err != nil {
			return a.deny(info.FullMethod, caller, err)
		}
		if pending == nil {
			return handler(srv, ss)
		}
		return handler(srv, &checkedStream{ServerStream: ss, check: func(m any) error {
			if err := check(pending, caller, m); err != nil {
				return a.deny(info.FullMethod, caller, err)
			}
			return nil
		}})
	}
}

// checkedStream checks every received message before the handler sees it.
type checkedStream struct {
	grpc.ServerStream
	check func(m any) error
}

func (s *checkedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return s.check(m)
}

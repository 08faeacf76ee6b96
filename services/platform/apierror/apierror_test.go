package apierror_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"

	"golang.org/x/text/language"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
)

func violationsErr(pairs ...string) error {
	var v apierror.Violations
	for i := 0; i+1 < len(pairs); i += 2 {
		v.Add(pairs[i], pairs[i+1])
	}
	return v.Err()
}

func TestStatus(t *testing.T) {
	peerStatus := status.New(codes.NotFound, "vacancy v-9 not found")
	peerStatus, _ = peerStatus.WithDetails(&errdetails.ErrorInfo{Reason: "PEER", Domain: "elsewhere"})

	tests := []struct {
		name       string
		err        error
		wantCode   codes.Code
		wantMsg    string
		wantReason string // "" means no ErrorInfo expected
		wantFields []string
	}{
		{"not found", apierror.NotFound("worker %s not found", "w-1"), codes.NotFound, "worker w-1 not found", "NOT_FOUND", nil},
		{"not found wrapped twice", fmt.Errorf("get batch: %w", fmt.Errorf("load: %w", apierror.NotFound("batch %d", 7))), codes.NotFound, "get batch: load: batch 7", "NOT_FOUND", nil},
		{"bare sentinel wrapped", fmt.Errorf("worker w-2: %w", apierror.ErrNotFound), codes.NotFound, "worker w-2: not found", "NOT_FOUND", nil},
		{"already exists", apierror.AlreadyExists("pairing exists"), codes.AlreadyExists, "pairing exists", "ALREADY_EXISTS", nil},
		{"failed precondition with reason", apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_VACANCY_CLOSED, "vacancy %s is closed", "v-1"), codes.FailedPrecondition, "vacancy v-1 is closed", "VACANCY_CLOSED", nil},
		{"failed precondition wrapped keeps reason", fmt.Errorf("accept: %w", apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_HEADCOUNT_FULL, "full")), codes.FailedPrecondition, "accept: full", "HEADCOUNT_FULL", nil},
		{"aborted", apierror.Aborted(commonv1.ErrorReason_ERROR_REASON_REVISION_AHEAD, "stale revision"), codes.Aborted, "stale revision", "REVISION_AHEAD", nil},
		{"permission denied", apierror.PermissionDenied(commonv1.ErrorReason_ERROR_REASON_NOT_OWNER, "region 440000 cannot change 520000"), codes.PermissionDenied, "region 440000 cannot change 520000", "NOT_OWNER", nil},
		{"unavailable", apierror.Unavailable("peer down"), codes.Unavailable, "peer down", "UNAVAILABLE", nil},
		{"resource exhausted", apierror.ResourceExhausted(commonv1.ErrorReason_ERROR_REASON_TOO_MANY_CALLS, "too many rows"), codes.ResourceExhausted, "too many rows", "TOO_MANY_CALLS", nil},
		{"resource exhausted bare", apierror.ErrResourceExhausted, codes.ResourceExhausted, "resource exhausted", "RESOURCE_EXHAUSTED", nil},
		{"storage full", fmt.Errorf("commit batch: %w", fmt.Errorf("storage full: nothing was written: %w", apierror.ErrStorageFull)), codes.Unavailable,
			"commit batch: storage full: nothing was written: storage full", "STORAGE_FULL", nil},
		{"storage full joined with unavailable keeps its reason", errors.Join(apierror.ErrUnavailable, apierror.ErrStorageFull), codes.Unavailable, "unavailable\nstorage full", "STORAGE_FULL", nil},
		{"deadline exceeded with reason", apierror.DeadlineExceeded(commonv1.ErrorReason_ERROR_REASON_STREAM_IDLE_TIMEOUT, "no message for 30s"), codes.DeadlineExceeded, "no message for 30s", "STREAM_IDLE_TIMEOUT", nil},
		{"invalid argument no fields", apierror.InvalidArgument("page_token is malformed"), codes.InvalidArgument, "page_token is malformed", "INVALID_ARGUMENT", nil},
		{"violations", violationsErr("worker.phone", "must be an 11-digit mobile number", "worker.name", "must not be empty"), codes.InvalidArgument,
			"invalid argument: worker.phone: must be an 11-digit mobile number; worker.name: must not be empty", "INVALID_ARGUMENT", []string{"worker.phone", "worker.name"}},
		{"violations wrapped", fmt.Errorf("create worker: %w", violationsErr("worker.id_number", "bad check character")), codes.InvalidArgument,
			"create worker: invalid argument: worker.id_number: bad check character", "INVALID_ARGUMENT", []string{"worker.id_number"}},
		{"new with custom sentinel and reason", apierror.New(apierror.ErrInvalidArgument, commonv1.ErrorReason_ERROR_REASON_EVENT_ID_REUSED, "row %d", 3), codes.InvalidArgument, "row 3", "EVENT_ID_REUSED", nil},
		{"context canceled", context.Canceled, codes.Canceled, "context canceled", "", nil},
		{"context deadline wrapped", fmt.Errorf("commit: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "commit: context deadline exceeded", "", nil},
		{"grpc status passes through", peerStatus.Err(), codes.NotFound, "vacancy v-9 not found", "PEER", nil},
		{"grpc status unavailable", status.Error(codes.Unavailable, "connection refused"), codes.Unavailable, "connection refused", "", nil},
		{"wrapped grpc status keeps code", fmt.Errorf("fetch feed: %w", status.Error(codes.Unavailable, "down")), codes.Unavailable, "fetch feed: rpc error: code = Unavailable desc = down", "", nil},
		{"unknown", errors.New("bolt: disk full at /var/lib/x"), codes.Internal, "internal error", "", nil},
		{"unknown wrapped", fmt.Errorf("put: %w", io.ErrUnexpectedEOF), codes.Internal, "internal error", "", nil},
		{"joined with sentinel", errors.Join(io.EOF, apierror.ErrNotFound), codes.NotFound, "EOF\nnot found", "NOT_FOUND", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := apierror.Status(tt.err)
			if st.Code() != tt.wantCode {
				t.Fatalf("code = %v, want %v", st.Code(), tt.wantCode)
			}
			if st.Message() != tt.wantMsg {
				t.Errorf("message = %q, want %q", st.Message(), tt.wantMsg)
			}
			if got := apierror.Code(tt.err); got != tt.wantCode {
				t.Errorf("Code = %v, want %v", got, tt.wantCode)
			}
			var info *errdetails.ErrorInfo
			var br *errdetails.BadRequest
			for _, d := range st.Details() {
				switch d := d.(type) {
				case *errdetails.ErrorInfo:
					info = d
				case *errdetails.BadRequest:
					br = d
				case error:
					t.Fatalf("undecodable detail: %v", d)
				}
			}
			if tt.wantReason == "" {
				if info != nil && info.GetDomain() == apierror.Domain {
					t.Errorf("unexpected ErrorInfo %v", info)
				}
			} else {
				if info == nil {
					t.Fatalf("no ErrorInfo in %v", st.Details())
				}
				if info.GetReason() != tt.wantReason {
					t.Errorf("reason = %q, want %q", info.GetReason(), tt.wantReason)
				}
				if tt.name != "grpc status passes through" && info.GetDomain() != apierror.Domain {
					t.Errorf("domain = %q, want %q", info.GetDomain(), apierror.Domain)
				}
			}
			var gotFields []string
			for _, fv := range br.GetFieldViolations() {
				gotFields = append(gotFields, fv.GetField())
				if fv.GetDescription() == "" {
					t.Errorf("field %s has no description", fv.GetField())
				}
			}
			if fmt.Sprint(gotFields) != fmt.Sprint(tt.wantFields) {
				t.Errorf("field violations = %v, want %v", gotFields, tt.wantFields)
			}
			known := tt.wantCode != codes.Internal
			if got := apierror.IsKnown(tt.err); got != known {
				t.Errorf("IsKnown = %v, want %v", got, known)
			}
		})
	}
}

func TestStatusNil(t *testing.T) {
	if st := apierror.Status(nil); st.Code() != codes.OK || st.Err() != nil {
		t.Fatalf("Status(nil) = %v, want OK", st)
	}
	if !apierror.IsKnown(nil) {
		t.Fatal("IsKnown(nil) = false")
	}
}

func TestInternalStatusHidesCause(t *testing.T) {
	err := fmt.Errorf("write worker 52010219900307123X: %w", errors.New("disk full"))
	st := apierror.Status(err)
	if st.Code() != codes.Internal || st.Message() != apierror.InternalMessage || len(st.Details()) != 0 {
		t.Fatalf("got %v %q %v, want bare internal error", st.Code(), st.Message(), st.Details())
	}
}

func TestViolations(t *testing.T) {
	var v apierror.Violations
	if err := v.Err(); err != nil {
		t.Fatalf("empty Violations.Err() = %v, want nil", err)
	}
	v.Add("worker.phone", "must be an 11-digit mobile number")
	v.Add("worker.home_county", "must be a county of 520000")
	err := v.Err()
	if !errors.Is(err, apierror.ErrInvalidArgument) {
		t.Fatalf("errors.Is(%v, ErrInvalidArgument) = false", err)
	}
	if errors.Is(err, apierror.ErrNotFound) {
		t.Fatal("violations error also matches ErrNotFound")
	}
	var ve *apierror.ViolationsError
	if !errors.As(fmt.Errorf("wrap: %w", err), &ve) {
		t.Fatal("errors.As ViolationsError failed through wrapping")
	}
	want := []apierror.FieldViolation{
		{Field: "worker.phone", Description: "must be an 11-digit mobile number"},
		{Field: "worker.home_county", Description: "must be a county of 520000"},
	}
	got := ve.Violations()
	if len(got) != len(want) {
		t.Fatalf("violations = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("violation %d = %v, want %v", i, got[i], want[i])
		}
	}
	// The error is a snapshot: later Adds do not change it.
	v.Add("worker.name", "must not be empty")
	if n := len(ve.Violations()); n != 2 {
		t.Errorf("error changed after Add: %d violations", n)
	}
	if v.Len() != 3 || len(v.List()) != 3 {
		t.Errorf("Len = %d, List = %v, want 3", v.Len(), v.List())
	}
}

func TestHelpersWrapSentinel(t *testing.T) {
	tests := []struct {
		err  error
		want error
	}{
		{apierror.NotFound("x"), apierror.ErrNotFound},
		{apierror.AlreadyExists("x"), apierror.ErrAlreadyExists},
		{apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_VACANCY_CLOSED, "x"), apierror.ErrFailedPrecondition},
		{apierror.InvalidArgument("x"), apierror.ErrInvalidArgument},
		{apierror.Aborted(commonv1.ErrorReason_ERROR_REASON_VACANCY_CLOSED, "x"), apierror.ErrAborted},
		{apierror.PermissionDenied(commonv1.ErrorReason_ERROR_REASON_VACANCY_CLOSED, "x"), apierror.ErrPermissionDenied},
		{apierror.Unavailable("x"), apierror.ErrUnavailable},
		{apierror.ResourceExhausted(commonv1.ErrorReason_ERROR_REASON_VACANCY_CLOSED, "x"), apierror.ErrResourceExhausted},
	}
	all := []error{apierror.ErrNotFound, apierror.ErrAlreadyExists, apierror.ErrFailedPrecondition,
		apierror.ErrInvalidArgument, apierror.ErrAborted, apierror.ErrPermissionDenied,
		apierror.ErrUnavailable, apierror.ErrResourceExhausted}
	for _, tt := range tests {
		for _, s := range all {
			if got := errors.Is(tt.err, s); got != (s == tt.want) {
				t.Errorf("errors.Is(%v [%v], %v) = %v", tt.err, tt.want, s, got)
			}
		}
	}
}

func TestMetadata(t *testing.T) {
	base := apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_VACANCY_CLOSED, "closed")
	err := base.WithMetadata("vacancy", "v-1")
	if base.Metadata() != nil {
		t.Fatalf("WithMetadata changed the original: %v", base.Metadata())
	}
	st := apierror.Status(fmt.Errorf("accept: %w", err))
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			if info.GetMetadata()["vacancy"] != "v-1" || info.GetReason() != "VACANCY_CLOSED" {
				t.Fatalf("ErrorInfo = %v", info)
			}
			return
		}
	}
	t.Fatalf("no ErrorInfo in %v", st.Details())
}

// AddUnder places an item's violations under the item's path, as if they had been added with
// the full paths: the same fields, descriptions and localized descriptions.
func TestAddUnderPlacesAnItemsViolations(t *testing.T) {
	var item apierror.Violations
	item.Add("", "is empty")
	item.Add("worker_id", "is required")
	item.Addf("batch_id", "at most %d characters", 64)
	var direct apierror.Violations
	direct.Add("rows[3]", "is empty")
	direct.Add("rows[3].worker_id", "is required")
	direct.Addf("rows[3].batch_id", "at most %d characters", 64)

	var placed apierror.Violations
	placed.Add("rows", "must not be empty") // what was there before stays first
	placed.AddUnder("rows[3]", &item)
	var nothing apierror.Violations
	placed.AddUnder("rows[4]", &nothing) // an item without violations adds none
	want := append([]apierror.FieldViolation{{Field: "rows", Description: "must not be empty"}}, direct.List()...)
	if got := placed.List(); !slices.Equal(got, want) {
		t.Fatalf("AddUnder: %v, want %v", got, want)
	}
	var placedErr, directErr *apierror.ViolationsError
	if !errors.As(placed.Err(), &placedErr) || !errors.As(direct.Err(), &directErr) {
		t.Fatal("no ViolationsError")
	}
	if got, want := placedErr.LocalizedDescriptions(language.Chinese)[1:], directErr.LocalizedDescriptions(language.Chinese); !slices.Equal(got, want) {
		t.Errorf("localized after AddUnder: %q, want %q", got, want)
	}
	if item.Len() != 3 {
		t.Errorf("AddUnder changed the item: %v", item.List())
	}
}

package subsidies

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending/roster"
)

func TestValidateAndRefusals(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "sending.db"), store.Schema{Name: "subsidies-test", Version: 1, Buckets: roster.Buckets()}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	y26, y27, y28 := &commonv1.Date{Year: 2026, Month: 1, Day: 1}, &commonv1.Date{Year: 2027, Month: 1, Day: 1}, &commonv1.Date{Year: 2028, Month: 1, Day: 1}
	ok := &sendingv1.ListEligibleWorkersRequest{Rule: "transport", PeriodStart: y26, PeriodEnd: y27}
	x := &server{s: New(db, Config{Region: "520000", Now: func() time.Time { return now }})}
	for _, tc := range []struct {
		name  string
		req   *sendingv1.ListEligibleWorkersRequest
		field string
	}{
		{"no rule", &sendingv1.ListEligibleWorkersRequest{PeriodStart: y26, PeriodEnd: y27}, "rule"},
		{"no period", &sendingv1.ListEligibleWorkersRequest{Rule: "transport"}, "period_start"},
		{"end before start", &sendingv1.ListEligibleWorkersRequest{Rule: "transport", PeriodStart: y27, PeriodEnd: y26}, "period_end"},
		{"too long", &sendingv1.ListEligibleWorkersRequest{Rule: "transport", PeriodStart: y26, PeriodEnd: y28}, "period_end"},
		{"future as_of", &sendingv1.ListEligibleWorkersRequest{Rule: "transport", PeriodStart: y26, PeriodEnd: y27, AsOf: timestamppb.New(now.Add(time.Hour))}, "as_of"},
		{"page size", &sendingv1.ListEligibleWorkersRequest{Rule: "transport", PeriodStart: y26, PeriodEnd: y27, PageSize: 1001}, "page_size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := x.ValidateRequest("", tc.req)
			if apierror.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("ValidateRequest: %v, want INVALID_ARGUMENT on %s", err, tc.field)
			}
		})
	}
	if err := x.ValidateRequest("", ok); err != nil {
		t.Fatalf("a good request: %v", err)
	}
	// Without a coordination service: FAILED_PRECONDITION; configured but not connected: UNAVAILABLE.
	if _, err := x.ListEligibleWorkers(t.Context(), ok); apierror.Code(err) != codes.FailedPrecondition {
		t.Errorf("without a coordination service: %v, want FAILED_PRECONDITION", err)
	}
	x.s.cfg.Coordinated = true
	if _, err := x.ListEligibleWorkers(t.Context(), ok); apierror.Code(err) != codes.Unavailable {
		t.Errorf("not connected: %v, want UNAVAILABLE", err)
	}
}

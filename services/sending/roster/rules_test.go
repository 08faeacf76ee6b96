package roster

import (
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/apierror"
)

// The rule of UpdateWorker, without the store: what changes, what is refused.
func TestUpdateRule(t *testing.T) {
	t.Parallel()
	c := checker{regions: regions.Default(), province: rosterRegion}
	now := fixedClock()
	earlier := timestamppb.New(now.Add(-time.Hour))
	worker := func() *sendingv1.Worker {
		return &sendingv1.Worker{Name: "workers/520000-AAAAAAAAAAAAAAAA", WorkerId: "520000-AAAAAAAAAAAAAAAA",
			Phone: "13900000001", HomeCounty: "520102", Status: stAvailable, UpdateTime: earlier}
	}
	tests := []struct {
		name    string
		w       func() *sendingv1.Worker
		src     *sendingv1.Worker
		paths   []string
		changed bool
		refused string // the reason or field violation, "" when accepted
		check   func(*sendingv1.Worker) bool
	}{
		{"a new phone", worker, &sendingv1.Worker{Phone: "+86 139-0000-0002"}, []string{"phone"}, true, "",
			func(w *sendingv1.Worker) bool {
				return w.GetPhone() == "13900000002" && w.GetUpdateTime().AsTime().Equal(now)
			}},
		{"the same phone", worker, &sendingv1.Worker{Phone: "13900000001"}, []string{"phone"}, false, "",
			func(w *sendingv1.Worker) bool { return proto.Equal(w.GetUpdateTime(), earlier) }},
		{"a county of another province", worker, &sendingv1.Worker{HomeCounty: "110101"}, []string{"home_county"}, false, "worker.home_county: ", nil},
		{"a health check date without a passed check", worker, &sendingv1.Worker{HealthCheckDate: &commonv1.Date{Year: 2026, Month: 1, Day: 5}}, []string{"health_check_date"}, false, "worker.health_check_date: ", nil},
		{"a health check in the future", worker, &sendingv1.Worker{HealthCheckPassed: true, HealthCheckDate: &commonv1.Date{Year: 2027, Month: 1, Day: 5}}, []string{"health_check_passed", "health_check_date"}, false, "worker.health_check_date: ", nil},
		{"an erased worker", func() *sendingv1.Worker { w := worker(); w.Erased = true; return w }, &sendingv1.Worker{Phone: "13900000002"}, []string{"phone"}, false, "was erased", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.w()
			changed, err := c.update(w, tt.src, tt.paths, now)
			if tt.refused == "" {
				if err != nil || changed != tt.changed || (tt.check != nil && !tt.check(w)) {
					t.Fatalf("update = %v, %v; worker %v", changed, err, w)
				}
				return
			}
			if changed || err == nil || !strings.Contains(err.Error(), tt.refused) {
				t.Fatalf("update = %v, %v; want refused on %s", changed, err, tt.refused)
			}
			if want := apierror.ErrInvalidArgument; tt.refused == "was erased" {
				if !errors.Is(err, apierror.ErrFailedPrecondition) {
					t.Errorf("refusal %v is not FAILED_PRECONDITION", err)
				}
			} else if !errors.Is(err, want) {
				t.Errorf("refusal %v is not INVALID_ARGUMENT", err)
			}
		})
	}
}

// A tombstone keeps the id, status and create time, and no personal data.
func TestTombstone(t *testing.T) {
	t.Parallel()
	created, now := timestamppb.New(fixedClock().Add(-48*time.Hour)), timestamppb.New(fixedClock())
	w := &sendingv1.Worker{Name: "workers/520000-AAAAAAAAAAAAAAAA", WorkerId: "520000-AAAAAAAAAAAAAAAA", IdNumber: otherID,
		FullName: "王芳", Phone: "13900000001", HomeCounty: "520102", Status: stEmployed, CreateTime: created, UpdateTime: created}
	want := &sendingv1.Worker{Name: w.Name, WorkerId: w.WorkerId, Status: stEmployed, Erased: true, CreateTime: created, UpdateTime: now}
	if got := tombstone(w, now); !proto.Equal(got, want) {
		t.Errorf("tombstone = %v, want %v", got, want)
	}
}

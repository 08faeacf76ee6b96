package grpcserver_test

import (
	"context"
	"sync"
	"testing"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/eastwest/labourlink/services/platform/grpcserver"
)

// fakeStorage is a data file whose fullness the test sets.
type fakeStorage struct {
	mu       sync.Mutex
	full     bool
	watchers []func(bool)
}

func (s *fakeStorage) Full() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.full
}

func (s *fakeStorage) NotifyFull(fn func(bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watchers = append(s.watchers, fn)
}

func (s *fakeStorage) set(full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.full = full
	for _, fn := range s.watchers {
		fn(full)
	}
}

// The storage health name follows the data file; the services' names stay SERVING (reads
// still work, writes are refused with a retryable code); Stop turns it NOT_SERVING too.
func TestStorageHealth(t *testing.T) {
	const serving, notServing = healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_NOT_SERVING
	for _, fullAtStart := range []bool{false, true} {
		storage := &fakeStorage{full: fullAtStart}
		f := start(t, grpcserver.Config{ServiceName: "test", Storage: storage})
		hc := healthpb.NewHealthClient(f.conn)
		check := func(step string, want map[string]healthpb.HealthCheckResponse_ServingStatus) {
			t.Helper()
			for name, w := range want {
				resp, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{Service: name})
				if err != nil || resp.GetStatus() != w {
					t.Errorf("full at start %v, %s: health of %q = %v, %v; want %v", fullAtStart, step, name, resp.GetStatus(), err, w)
				}
			}
		}
		first := serving
		if fullAtStart {
			first = notServing
		}
		check("start", map[string]healthpb.HealthCheckResponse_ServingStatus{grpcserver.StorageHealthService: first, "": serving, serviceName: serving})
		storage.set(true)
		check("full", map[string]healthpb.HealthCheckResponse_ServingStatus{grpcserver.StorageHealthService: notServing, "": serving, serviceName: serving})
		storage.set(false)
		check("space freed", map[string]healthpb.HealthCheckResponse_ServingStatus{grpcserver.StorageHealthService: serving})
		f.srv.Stop(context.Background())
		storage.set(false) // no effect once stopped
		resp, err := f.srv.Health().Check(t.Context(), &healthpb.HealthCheckRequest{Service: grpcserver.StorageHealthService})
		if err != nil || resp.GetStatus() != notServing {
			t.Errorf("storage health after Stop = %v, %v; want NOT_SERVING", resp.GetStatus(), err)
		}
	}
}

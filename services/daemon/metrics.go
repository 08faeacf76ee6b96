package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/eastwest/labourlink/services/platform/metrics"
)

// MetricsPath is where the metrics listener serves the Prometheus text format.
const MetricsPath = "/metrics"

// metricsShutdownTimeout bounds the graceful stop of the metrics listener (a scrape in flight
// finishes; Prometheus scrapes again at the next interval).
const metricsShutdownTimeout = 5 * time.Second

// newMetrics returns the metrics registry of the process described by cfg: one per process,
// so that tests may run several services in one.
func newMetrics(cfg Config) *metrics.Registry {
	return metrics.New(string(cfg.Kind), cfg.Region)
}

// serveMetrics serves reg on cfg.MetricsAddr (plaintext HTTP, MetricsPath; the metrics carry
// no personal data). It returns the address it listens on and a function that stops it
// gracefully; without MetricsAddr it does nothing and returns "".
func serveMetrics(cfg Config, reg *metrics.Registry, lg *zap.Logger) (addr string, stop func(), err error) {
	if cfg.MetricsAddr == "" {
		return "", func() {}, nil
	}
	lis, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return "", nil, fmt.Errorf("listen on %s (-metrics-addr): %w", cfg.MetricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle(MetricsPath, reg.Handler())
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() {
		if err := hs.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			lg.Error("metrics listener stopped", zap.Error(err))
		}
	}()
	addr = lis.Addr().String()
	lg.Info("serving metrics", zap.String("metrics_addr", addr), zap.String("path", MetricsPath))
	return addr, func() {
		ctx, cancel := context.WithTimeout(context.Background(), metricsShutdownTimeout)
		defer cancel()
		if err := hs.Shutdown(ctx); err != nil {
			_ = hs.Close()
		}
	}, nil
}

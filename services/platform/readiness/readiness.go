// Package readiness is how a supervisor (`labourlink dev`, services/devtools/proctest) knows that the
// service process it started is the one serving.
//
// `labourlink dev` once reported the federation up while another federation held its ports: its
// health checks were answered by the other one, and its own services had exited with "address
// already in use". A health answer on an address says only that something serves there. So a
// service started with -ready-file writes, once it holds its listener and serves, who it is
// (Write): its PID, the address its listener holds and the instance id of its data file; and
// every unary answer carries that instance id in the response header Header (Interceptor).
// Wait accepts a service only when the ready file names the process the supervisor started and
// a health check at that address answers SERVING with the same instance id; a child that exits
// first is reported at once.
package readiness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/platform/version"
)

// Header is the response header in which every unary answer of a service carries the
// instance id of its data file (store.DB.InstanceID): `grpcurl -v` shows which service answered.
const Header = "labourlink-instance"

// Ready is what a service writes to its ready file (JSON) once it serves.
type Ready struct {
	// PID is the service's process id.
	PID int `json:"pid"`
	// Kind is the service: coordination, sending or receiving.
	Kind string `json:"kind"`
	// Listen is the address the service's listener holds (with the port the kernel chose when
	// -listen had port 0).
	Listen string `json:"listen"`
	// Instance is the instance id of the data file, also sent in Header.
	Instance string `json:"instance"`
	// DataFile is the path of the data file.
	DataFile string `json:"data_file"`
	// Metrics is the address of the metrics listener (-metrics-addr, with the port the kernel
	// chose), "" when it is off.
	Metrics string `json:"metrics,omitempty"`
	// HTTP is the address of the HTTP/JSON listener (-http-addr, with the port the kernel
	// chose), "" when it is off.
	HTTP string `json:"http,omitempty"`
}

// ErrExited is wrapped by Wait's error when the process ended before it was ready.
var ErrExited = errors.New("the service exited before it was ready")

// Write writes r to path atomically (a reader never sees half a file).
func Write(path string, r Ready) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write ready file: %w", err)
	}
	_, werr := tmp.Write(append(b, '\n'))
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write ready file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write ready file: %w", err)
	}
	return nil
}

// Read reads a ready file.
func Read(path string) (Ready, error) {
	var r Ready
	b, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("ready file %s: %w", path, err)
	}
	return r, nil
}

// Interceptor sends, with every unary answer, who answered: instance (the data file's instance
// id) in Header, and the build of the binary (version.String) in version.Header, so an operator
// sees both with `grpcurl -v`.
func Interceptor(instance string) grpc.UnaryServerInterceptor {
	md := metadata.Pairs(Header, instance, version.Header, version.String())
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		_ = grpc.SetHeader(ctx, md)
		return handler(ctx, req)
	}
}

// Wait waits until the service process pid, started with -ready-file path, is ready: the
// file names pid, and a health check at the address it names answers SERVING with the instance
// id it names. It fails at once, wrapping ErrExited, when exited is closed first (the caller
// closes it when the process ends), and when a health answer comes from another instance. With
// TLS, o must be able to call the service's health (any party of the federation can). The
// caller bounds the wait with ctx; the error then says what was last seen.
func Wait(ctx context.Context, path string, pid int, exited <-chan struct{}, o peers.Options) (Ready, error) {
	var (
		cc     *grpc.ClientConn
		dialed string
		last   error = errors.New("no ready file yet")
	)
	defer func() {
		if cc != nil {
			cc.Close()
		}
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-exited:
			return Ready{}, ErrExited
		default:
		}
		r, err := Read(path)
		switch {
		case err != nil:
			if !errors.Is(err, os.ErrNotExist) {
				last = err
			}
		case r.PID != pid:
			last = fmt.Errorf("ready file %s names process %d, not %d (left by an earlier run)", path, r.PID, pid)
		default:
			if cc == nil || dialed != r.Listen {
				if cc != nil {
					cc.Close()
				}
				if cc, err = peers.Dial(r.Listen, o); err != nil {
					return r, err
				}
				dialed = r.Listen
			}
			var hdr metadata.MD
			callCtx, cancel := context.WithTimeout(ctx, time.Second)
			resp, err := grpc_health_v1.NewHealthClient(cc).Check(callCtx, &grpc_health_v1.HealthCheckRequest{}, grpc.Header(&hdr))
			cancel()
			got := hdr.Get(Header)
			switch {
			case err != nil:
				last = fmt.Errorf("health check on %s: %w", r.Listen, err)
			case len(got) != 1 || got[0] != r.Instance:
				return r, fmt.Errorf("health check on %s was answered by another service (instance %q), not by process %d (instance %s)",
					r.Listen, got, pid, r.Instance)
			case resp.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING:
				last = fmt.Errorf("health on %s is %s", r.Listen, resp.GetStatus())
			default:
				return r, nil
			}
		}
		select {
		case <-ctx.Done():
			return Ready{}, fmt.Errorf("%w (%v)", ctx.Err(), last)
		case <-exited:
			return Ready{}, ErrExited
		case <-tick.C:
		}
	}
}

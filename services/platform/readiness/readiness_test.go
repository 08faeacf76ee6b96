package readiness_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/platform/readiness"
)

// serveHealth serves health (SERVING) on a free port; with instance set, every answer carries
// it in readiness.Header.
func serveHealth(t *testing.T, instance string) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var opts []grpc.ServerOption
	if instance != "" {
		opts = append(opts, grpc.UnaryInterceptor(readiness.Interceptor(instance)))
	}
	s := grpc.NewServer(opts...)
	hs := health.NewServer()
	hs.SetServingStatus("", grpc_health_v1.HealthCheckResponse_SERVING)
	grpc_health_v1.RegisterHealthServer(s, hs)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

func TestWait(t *testing.T) {
	const pid = 4242
	tests := []struct {
		name    string
		serve   string // instance the server at the address sends ("" none)
		file    *readiness.Ready
		exited  bool
		timeout time.Duration
		wantErr string
	}{
		{name: "ready", serve: "aaaa", file: &readiness.Ready{PID: pid, Instance: "aaaa"}},
		{name: "answered by another instance", serve: "bbbb", file: &readiness.Ready{PID: pid, Instance: "aaaa"},
			wantErr: `answered by another service (instance ["bbbb"]), not by process 4242`},
		{name: "answered by something without the header", serve: "", file: &readiness.Ready{PID: pid, Instance: "aaaa"},
			wantErr: "answered by another service"},
		{name: "file of another process", serve: "aaaa", file: &readiness.Ready{PID: pid + 1, Instance: "aaaa"},
			timeout: 300 * time.Millisecond, wantErr: "names process 4243, not 4242"},
		{name: "no file yet", timeout: 300 * time.Millisecond, wantErr: "no ready file yet"},
		{name: "exited", exited: true, wantErr: readiness.ErrExited.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "svc.ready")
			if tt.file != nil {
				r := *tt.file
				r.Listen = serveHealth(t, tt.serve)
				if err := readiness.Write(path, r); err != nil {
					t.Fatal(err)
				}
				if got, err := readiness.Read(path); err != nil || got != r {
					t.Fatalf("Read = %+v, %v; want %+v", got, err, r)
				}
			}
			exited := make(chan struct{})
			if tt.exited {
				close(exited)
			}
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 30 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			r, err := readiness.Wait(ctx, path, pid, exited, peers.Options{})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Wait: %v", err)
			case tt.wantErr == "":
				if r.Instance != tt.file.Instance {
					t.Fatalf("Wait = %+v", r)
				}
			case err == nil || !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("Wait error %v, want %q", err, tt.wantErr)
			}
			if tt.exited && !errors.Is(err, readiness.ErrExited) {
				t.Fatalf("Wait error %v does not wrap ErrExited", err)
			}
		})
	}
}

// Write replaces a file atomically and leaves no temporary file behind.
func TestWriteReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "svc.ready")
	for pid := range 3 {
		if err := readiness.Write(path, readiness.Ready{PID: pid}); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := readiness.Read(path); err != nil || r.PID != 2 {
		t.Fatalf("Read = %+v, %v", r, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("folder holds %v (%v), want the ready file alone", entries, err)
	}
}

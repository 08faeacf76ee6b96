// Package federation starts the local federation a newcomer tries labourlink with: the
// coordination service, a sending service for Guizhou (520000) and a receiving service for
// Guangdong (440000), paired, each a real process on a fixed loopback port, with data under one
// folder that is reused on restart.
package federation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/eastwest/labourlink/services/daemon"
	"github.com/eastwest/labourlink/services/identity"
	"github.com/eastwest/labourlink/services/peers"
)

// The provinces of the local federation: Guangdong receives workers from Guizhou, one of the
// east–west pairs.
const (
	SendingRegion   = "520000"
	ReceivingRegion = "440000"
)

// Config describes the federation to start.
type Config struct {
	// Binary is the executable that runs `serve KIND` (the labourlink binary itself).
	Binary string
	// DataDir holds one folder per service and the services' log files.
	DataDir string
	// CoordinationAddr, SendingAddr and ReceivingAddr are the listen addresses.
	CoordinationAddr, SendingAddr, ReceivingAddr string
	// TLS, when set, gives each service its certificate (see the certs command).
	TLS func(k daemon.Kind) daemon.TLSConfig
	// LogLevel of the services.
	LogLevel string
	// GracePeriod is the coordination service's time before a departed worker not confirmed
	// arrived is unaccounted.
	GracePeriod time.Duration
	// ReadyTimeout bounds the wait for every service to answer SERVING.
	ReadyTimeout time.Duration
	// StopTimeout bounds the graceful stop of each service before it is killed.
	StopTimeout time.Duration
}

// Defaults returns the configuration of the local federation.
func Defaults(binary string) Config {
	return Config{
		Binary:           binary,
		DataDir:          "data",
		CoordinationAddr: daemon.DefaultCoordinationAddr,
		SendingAddr:      daemon.DefaultSendingAddr,
		ReceivingAddr:    daemon.DefaultReceivingAddr,
		LogLevel:         "info",
		GracePeriod:      72 * time.Hour,
		ReadyTimeout:     60 * time.Second,
		StopTimeout:      15 * time.Second,
	}
}

// Services returns the configuration of each service, in start order.
func (c Config) Services() []daemon.Config {
	svc := []daemon.Config{
		{Kind: daemon.Coordination, Listen: c.CoordinationAddr, DataDir: filepath.Join(c.DataDir, "coordination"),
			GracePeriod: c.GracePeriod, LoadDefaultPairings: true},
		{Kind: daemon.Sending, Listen: c.SendingAddr, DataDir: filepath.Join(c.DataDir, "sending-"+SendingRegion),
			Region: SendingRegion, Coordination: c.CoordinationAddr},
		{Kind: daemon.Receiving, Listen: c.ReceivingAddr, DataDir: filepath.Join(c.DataDir, "receiving-"+ReceivingRegion),
			Region: ReceivingRegion, Coordination: c.CoordinationAddr},
	}
	for i := range svc {
		svc[i].LogLevel = c.LogLevel
		if c.TLS != nil {
			svc[i].TLS = c.TLS(svc[i].Kind)
		}
	}
	return svc
}

// WithTLS returns c running with mTLS from the certificate folder dir: it makes the local
// federation's CA and certificates there unless they exist (see `labourlink certs init`), and
// gives each service its own certificate.
func WithTLS(c Config, dir string) (Config, error) {
	if _, err := identity.Init(dir, identity.LocalFederation()); err != nil {
		return c, fmt.Errorf("certificates in %s: %w", dir, err)
	}
	c.TLS = CertsIn(dir)
	return c, nil
}

// CertsIn gives each service of the local federation its certificate in folder dir.
func CertsIn(dir string) func(k daemon.Kind) daemon.TLSConfig {
	return func(k daemon.Kind) daemon.TLSConfig {
		id := identity.Coordination()
		switch k {
		case daemon.Sending:
			id = identity.Sending(SendingRegion)
		case daemon.Receiving:
			id = identity.Receiving(ReceivingRegion)
		}
		cert, key := identity.Paths(dir, id)
		return daemon.TLSConfig{CAFile: filepath.Join(dir, identity.CAFile), CertFile: cert, KeyFile: key}
	}
}

// process is one running service.
type process struct {
	cfg  daemon.Config
	cmd  *exec.Cmd
	log  string
	done chan error
}

// Run starts the three services, waits until each answers SERVING, calls ready, and then waits
// until ctx ends or a service exits; it then stops the services (SIGTERM, the receiving and
// sending services first, then coordination) and returns. A service that exits on its own is an
// error naming its log file.
func Run(ctx context.Context, c Config, ready func(c Config), out io.Writer) error {
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return err
	}
	var procs []*process
	defer func() { stopAll(procs, c.StopTimeout, out) }()
	for _, sc := range c.Services() {
		p, err := start(c, sc)
		if err != nil {
			return err
		}
		procs = append(procs, p)
		if err := waitServing(ctx, p, c.ReadyTimeout); err != nil {
			return err
		}
	}
	if ready != nil {
		ready(c)
	}
	exited := make(chan *process, len(procs))
	for _, p := range procs {
		go func(p *process) {
			err := <-p.done
			p.done <- err // keep it for stopAll
			exited <- p
		}(p)
	}
	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "stopping the federation...")
		return nil
	case p := <-exited:
		return fmt.Errorf("the %s service exited unexpectedly; see %s", p.cfg.Kind, p.log)
	}
}

func start(c Config, sc daemon.Config) (*process, error) {
	logPath := filepath.Join(c.DataDir, string(sc.Kind)+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	args := append([]string{"serve", string(sc.Kind)}, sc.Args()...)
	cmd := exec.Command(c.Binary, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start the %s service: %w", sc.Kind, err)
	}
	p := &process{cfg: sc, cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() {
		err := cmd.Wait()
		logFile.Close()
		p.done <- err
	}()
	return p, nil
}

// waitServing polls the service's health until it answers SERVING. With TLS it asks with the
// service's own certificate (health is open to every party of the federation).
func waitServing(ctx context.Context, p *process, timeout time.Duration) error {
	var o peers.Options
	if t := p.cfg.TLS; t.Enabled() {
		cfg, err := identity.ClientTLS(t.CAFile, t.CertFile, t.KeyFile)
		if err != nil {
			return fmt.Errorf("the %s service's certificate: %w", p.cfg.Kind, err)
		}
		o.Creds = credentials.NewTLS(cfg)
	}
	cc, err := peers.Dial(p.cfg.Listen, o)
	if err != nil {
		return err
	}
	defer cc.Close()
	health := grpc_health_v1.NewHealthClient(cc)
	deadline := time.Now().Add(timeout)
	for {
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("the %s service did not start (%v); see %s", p.cfg.Kind, err, p.log)
		default:
		}
		callCtx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := health.Check(callCtx, &grpc_health_v1.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == grpc_health_v1.HealthCheckResponse_SERVING {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the %s service did not answer SERVING on %s within %s; see %s", p.cfg.Kind, p.cfg.Listen, timeout, p.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stopAll stops the services in reverse start order: SIGTERM, then SIGKILL after timeout.
func stopAll(procs []*process, timeout time.Duration, out io.Writer) {
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		select {
		case err := <-p.done:
			p.done <- err
			continue // already exited
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-p.done:
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				fmt.Fprintf(out, "%s: %v\n", p.cfg.Kind, err)
			}
			fmt.Fprintf(out, "stopped %s\n", p.cfg.Kind)
		case <-time.After(timeout):
			_ = p.cmd.Process.Kill()
			<-p.done
			fmt.Fprintf(out, "killed %s after %s (see %s)\n", p.cfg.Kind, timeout, p.log)
		}
	}
}

// Package faultproxy is a TCP proxy for tests that puts faults on the link between two
// services: Blackhole (nothing gets through but the connections stay open, as when a network
// path drops every packet), Restore, and Reset (every open connection is cut).
//
// A blackhole holds the bytes it has read instead of dropping them: TCP retransmits what a
// real blackhole drops, so when the path comes back within the peers' TCP timeouts the bytes
// arrive late but whole. Holding them models exactly that; new connections are accepted and
// held the same way.
//
//	p := faultproxy.Start(t, backendAddr)
//	client := dial(p.Addr())
//	p.Blackhole()
//	...
//	p.Restore()
package faultproxy

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy forwards the connections made to Addr to a backend address.
type Proxy struct {
	lis     net.Listener
	backend string

	mu    sync.Mutex
	open  chan struct{} // closed while traffic passes; replaced by Blackhole
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// Start listens on a loopback port and forwards to backend until the test ends.
func Start(t testing.TB, backend string) *Proxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{lis: lis, backend: backend, open: make(chan struct{}), conns: map[net.Conn]bool{}}
	close(p.open)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr is the address to dial instead of the backend's.
func (p *Proxy) Addr() string { return p.lis.Addr().String() }

// Blackhole stops all traffic, in both directions, on open and new connections.
func (p *Proxy) Blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.open:
		p.open = make(chan struct{})
	default: // already blackholed
	}
}

// Restore lets traffic pass again, the bytes held during the blackhole first.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.open:
	default:
		close(p.open)
	}
}

// Reset closes every open connection (the peers see them cut); new ones are accepted.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() {
	_ = p.lis.Close()
	p.Reset()
	p.Restore() // wake pumps waiting for the path to open
	p.wg.Wait()
}

// gate returns the channel that is closed while traffic passes.
func (p *Proxy) gate() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.open
}

func (p *Proxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.lis.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(in)
		}()
	}
}

// serve forwards one connection until either side ends it.
func (p *Proxy) serve(in net.Conn) {
	p.track(in, true)
	defer p.track(in, false)
	defer in.Close()
	out, err := net.Dial("tcp", p.backend)
	if err != nil {
		return
	}
	p.track(out, true)
	defer p.track(out, false)
	defer out.Close()
	done := make(chan struct{}, 2)
	go func() { p.pump(out, in); done <- struct{}{} }()
	go func() { p.pump(in, out); done <- struct{}{} }()
	<-done
	// One direction ended: end the other.
	_ = in.Close()
	_ = out.Close()
	<-done
}

// pump copies src to dst, holding what it has read while the path is blackholed.
func (p *Proxy) pump(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			<-p.gate()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or a cut connection: serve ends the other direction
		}
	}
}

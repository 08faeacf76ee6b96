package grpcserver

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// connLimitListener bounds the connections open at once (Config.MaxConnections): a connection
// accepted over the bound is closed at once, before any byte is read or written, and Accept goes
// on with the next one.
//
// Why not golang.org/x/net/netutil.LimitListener: it stops calling Accept at the bound, so
// further clients wait in the kernel's backlog, silently, until a slot frees or their connect
// times out (grpc-go's is 20s), and a probe on the port cannot tell a full server from a hung
// one. Closed at once, a client sees UNAVAILABLE within a round trip and retries with backoff
// (or tries another address), and the operator sees a log line. Both wrap the accepted
// connection (a slot is freed when grpc-go closes it), which hides *net.TCPConn from grpc-go:
// it would set TCP_USER_TIMEOUT to the keepalive timeout on it, so this listener does that
// itself (setUserTimeout).
type connLimitListener struct {
	net.Listener
	max         int64
	open        atomic.Int64
	refused     atomic.Int64
	userTimeout time.Duration
	lg          *zap.Logger
	closed      func() // test hook: a slot was freed
}

func (l *connLimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			// Logged at 1, 2, 4, 8, ... refusals: visible at once, never a flood. Logged before the
			// close, so that a client that sees its connection closed finds the line written.
			if n := l.refused.Add(1); n&(n-1) == 0 {
				l.lg.Warn("connection refused: the server is at its connection limit",
					zap.Int64("max_connections", l.max), zap.Int64("refused_so_far", n),
					zap.String("peer", c.RemoteAddr().String()))
			}
			_ = c.Close()
			continue
		}
		if l.userTimeout > 0 {
			if err := setUserTimeout(c, l.userTimeout); err != nil {
				l.lg.Debug("set tcp user timeout", zap.Error(err))
			}
		}
		return &limitedConn{Conn: c, l: l}, nil
	}
}

func (l *connLimitListener) release() {
	l.open.Add(-1)
	if l.closed != nil {
		l.closed()
	}
}

// limitedConn frees its slot when it is first closed.
type limitedConn struct {
	net.Conn
	l    *connLimitListener
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.l.release)
	return err
}

// LimitConnections bounds the connections open at once on lis, another listener of the server
// than its gRPC port (the HTTP/JSON listener), at max (DefaultMaxConnections when not
// positive): a connection over it is closed as soon as it is accepted, as on the gRPC port
// (connLimitListener), and logged to lg. The bound is the listener's own, not shared with the
// gRPC port; the calls made over it count against MaxStreams and MaxUnaryCalls like any.
func LimitConnections(lis net.Listener, max int, lg *zap.Logger) net.Listener {
	if max <= 0 {
		max = DefaultMaxConnections
	}
	return &connLimitListener{Listener: lis, max: int64(max), lg: lg}
}

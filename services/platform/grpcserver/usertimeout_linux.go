package grpcserver

import (
	"net"
	"syscall"
	"time"
)

// tcpUserTimeout is TCP_USER_TIMEOUT (linux/tcp.h), the same number on every architecture;
// package syscall lacks it on some (amd64 among them), and golang.org/x/sys/unix is not a
// direct dependency of the module for one constant.
const tcpUserTimeout = 18

// setUserTimeout sets TCP_USER_TIMEOUT on a TCP connection, as grpc-go does on the connections
// it accepts when server keepalive is on (internal/syscall.SetTCPUserTimeout): unacknowledged
// data then fails the connection after timeout instead of the kernel's many minutes.
func setUserTimeout(c net.Conn, timeout time.Duration) error {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpUserTimeout, int(timeout/time.Millisecond))
	}); err != nil {
		return err
	}
	return serr
}

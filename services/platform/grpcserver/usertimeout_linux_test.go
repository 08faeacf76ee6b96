package grpcserver

import (
	"net"
	"syscall"
	"testing"
	"time"
)

// The connection limit hides *net.TCPConn from grpc-go, so the listener sets
// TCP_USER_TIMEOUT itself, as grpc-go would.
func TestSetUserTimeout(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	c, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := setUserTimeout(c, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var gerr error
	if err := raw.Control(func(fd uintptr) { got, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpUserTimeout) }); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	if got != 20000 {
		t.Errorf("TCP_USER_TIMEOUT = %d ms, want 20000", got)
	}
}

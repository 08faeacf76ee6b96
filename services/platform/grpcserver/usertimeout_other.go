//go:build !linux

package grpcserver

import (
	"net"
	"time"
)

// setUserTimeout does nothing where TCP_USER_TIMEOUT does not exist (grpc-go does the same).
func setUserTimeout(net.Conn, time.Duration) error { return nil }

//go:build unix

package failpoint

import (
	"syscall"
	"time"
)

// killSelf ends the process with SIGKILL, as an outside kill -9 would.
func killSelf() {
	_ = syscall.Kill(syscall.Getpid(), syscall.SIGKILL)
	for { // the kernel ends the process before the call returns; never go on regardless
		time.Sleep(time.Hour)
	}
}

package proctest

import "syscall"

// childAttr asks the kernel to kill a service process if the test process dies first (a test
// binary killed by its timeout runs no cleanups), so that no test leaves servers behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

package federation

import "syscall"

// childAttr puts a service in its own process group, so that a Ctrl-C in the terminal reaches
// only the federation, which then stops the services in order; and asks the kernel to send the
// service SIGTERM if the federation process dies without stopping it (kill -9), so that no
// service is left running on its own.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

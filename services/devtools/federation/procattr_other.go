//go:build !linux

package federation

import "syscall"

// childAttr puts a service in its own process group, so that a Ctrl-C in the terminal reaches
// only the federation, which then stops the services in order.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

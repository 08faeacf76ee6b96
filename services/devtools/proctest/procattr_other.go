//go:build !linux

package proctest

import "syscall"

// childAttr: without a parent-death signal, the tests' cleanups stop the processes.
func childAttr() *syscall.SysProcAttr { return nil }

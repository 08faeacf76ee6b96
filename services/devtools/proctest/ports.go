package proctest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// portsDir holds one file per port a test process of this machine picked (named by the port,
// holding the picker's process id), so that the test processes `go test ./...` runs side by side
// do not pick the same port, or one that another's derived ports (a gRPC port + 2000, ...) will
// use: a port is held until the test that picked it ends, or its process is gone.
var portsDir = filepath.Join(os.TempDir(), "labourlink-test-ports")

// reservePort claims port for this process unless another test holds it, and returns the
// function that gives it back.
func reservePort(port int) (release func(), ok bool) {
	if err := os.MkdirAll(portsDir, 0o777); err != nil {
		return nil, false
	}
	path := filepath.Join(portsDir, strconv.Itoa(port))
	for range 2 {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			_, werr := f.WriteString(strconv.Itoa(os.Getpid()))
			if cerr := f.Close(); werr != nil || cerr != nil {
				os.Remove(path)
				return nil, false
			}
			return func() { os.Remove(path) }, true
		}
		if !errors.Is(err, fs.ErrExist) || !stalePort(path) {
			return nil, false
		}
		os.Remove(path) // its process is gone: take it
	}
	return nil, false
}

// stalePort reports whether the reservation at path belongs to a process that no longer runs
// (a test binary killed before its cleanups). A file without a process id yet is being written,
// unless it is old.
func stalePort(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return errors.Is(err, fs.ErrNotExist)
	}
	pid, err := strconv.Atoi(string(b))
	if err != nil {
		fi, err := os.Stat(path)
		return err == nil && time.Since(fi.ModTime()) > time.Minute
	}
	if pid == os.Getpid() {
		return false // another test of this process holds it
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return true
	}
	err = p.Signal(syscall.Signal(0))
	return err != nil && !errors.Is(err, syscall.EPERM) // EPERM: alive, another user's
}

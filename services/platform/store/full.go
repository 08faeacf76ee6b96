package store

import (
	"errors"
	"strings"
	"sync"
	"syscall"

	"go.uber.org/zap"

	"github.com/eastwest/labourlink/services/platform/apierror"
)

// ErrStorageFull is wrapped by the error of a write that failed because the file system of the
// data file, or the user's disk quota, has no space left (ENOSPC, EDQUOT). Nothing of the failed
// transaction was written and everything committed before is intact; the same write succeeds
// once an operator frees space. It is apierror.ErrStorageFull (apierror cannot import this
// package), which the gRPC edge maps to UNAVAILABLE with reason STORAGE_FULL.
var ErrStorageFull = apierror.ErrStorageFull

// StorageFullMessage is what a caller is told when a write was refused for want of space.
const StorageFullMessage = "storage full: the service's disk has no space left and nothing was written; retry later (an operator must free disk space)"

// storageFullError is a write refused for want of space. Its message is the same for every
// write and names no file; the cause (with the path) is in the chain for errors.Is and is
// logged once, when the store turns full.
type storageFullError struct{ cause error }

func (e *storageFullError) Error() string   { return StorageFullMessage }
func (e *storageFullError) Unwrap() []error { return []error{ErrStorageFull, e.cause} }

// noSpace reports whether err says the disk or the quota is full. bbolt formats the errors of
// growing the file with %s ("file resize error: ..."), which cuts the chain, so the text of the
// two errnos is recognised too.
func noSpace(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, syscall.ENOSPC.Error()) || strings.Contains(msg, syscall.EDQUOT.Error())
}

// fullState follows whether the data file takes writes: it turns full when a write fails for
// want of space and back when a write succeeds. Each change is logged once and passed to the
// watchers, in order (under mu, so that two changes in quick succession cannot reach a
// watcher the wrong way round).
type fullState struct {
	mu       sync.Mutex
	full     bool
	watchers []func(full bool)
}

// checkWrite classifies the result of a write transaction: a failure for want of space becomes
// a storageFullError (and turns the state full); a success turns it back.
func (db *DB) checkWrite(err error) error {
	switch {
	case err == nil:
		if db.Full() {
			db.setFull(false, nil)
		}
		return nil
	case noSpace(err):
		db.setFull(true, err)
		return &storageFullError{cause: err}
	default:
		return err
	}
}

func (db *DB) setFull(full bool, cause error) {
	s := &db.fullState
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.full == full {
		return
	}
	s.full = full
	db.fullFlag.Store(full)
	if full {
		db.lg.Error("storage full: writes are refused until disk space is freed; reads go on",
			zap.Error(cause))
	} else {
		db.lg.Info("storage writable again: a write succeeded after the disk was full")
	}
	for _, fn := range s.watchers {
		fn(full)
	}
}

// Full reports whether the last write failed because the disk or the quota was full, with no
// write succeeding since.
func (db *DB) Full() bool { return db.fullFlag.Load() }

// NotifyFull calls fn with every later change of Full, in order (the gRPC server reports it as
// the health of grpcserver.StorageHealthService). fn must be quick and must not write to db.
func (db *DB) NotifyFull(fn func(full bool)) {
	db.fullState.mu.Lock()
	db.fullState.watchers = append(db.fullState.watchers, fn)
	db.fullState.mu.Unlock()
}

package grpcserver

import (
	"sync/atomic"
	"time"
)

// FakeTimers stands in for the timers of stream timeouts: every wait for a message creates a
// FakeTimer, sent on Created, that fires only when the test says so.
type FakeTimers struct {
	Created chan *FakeTimer
}

// FakeTimer is the timer of one wait for a message.
type FakeTimer struct {
	// D is the timeout the server asked for.
	D       time.Duration
	c       chan time.Time
	stopped atomic.Bool
}

// Fire makes the timer expire (a no-op for the server if the wait already ended).
func (t *FakeTimer) Fire() { t.c <- time.Time{} }

// Stopped reports whether the server stopped the timer (its wait ended first).
func (t *FakeTimer) Stopped() bool { return t.stopped.Load() }

// WithFakeTimers returns cfg with fake stream timers.
func WithFakeTimers(cfg Config) (Config, *FakeTimers) {
	ft := &FakeTimers{Created: make(chan *FakeTimer, 100)}
	cfg.timer = func(d time.Duration) (<-chan time.Time, func() bool) {
		t := &FakeTimer{D: d, c: make(chan time.Time, 1)}
		ft.Created <- t
		return t.c, func() bool { return !t.stopped.Swap(true) }
	}
	return cfg, ft
}

// WithConnClosed returns cfg with fn called each time a connection's slot is freed.
func WithConnClosed(cfg Config, fn func()) Config {
	cfg.connClosed = fn
	return cfg
}

// Package wait is how tests wait for something another goroutine or process does: they name
// the condition and poll it, instead of sleeping for a time they guess. A condition that does
// not come within the limit fails the test with its name.
package wait

import (
	"testing"
	"time"
)

// Limit is how long For waits: long, since the machines that run the tests are shared and may
// be slow; a test that passes never waits for it.
const Limit = time.Minute

// For checks cond until it holds, and fails t (naming what) if it does not within Limit.
func For(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !Until(Limit, cond) {
		t.Fatalf("gave up waiting for %s after %v", what, Limit)
	}
}

// Until checks cond until it holds or limit has passed, and reports whether it held. It checks
// at once, then after 5 ms, the pause doubling up to 100 ms, so that a quick condition is seen
// quickly and a costly one (a listing over gRPC) is not asked in a tight loop.
func Until(limit time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	pause := 5 * time.Millisecond
	for !cond() {
		next := time.NewTimer(pause)
		select {
		case <-deadline.C:
			next.Stop()
			return cond()
		case <-next.C:
		}
		pause = min(2*pause, 100*time.Millisecond)
	}
	return true
}

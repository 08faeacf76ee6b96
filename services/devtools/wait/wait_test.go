package wait_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/eastwest/labourlink/services/devtools/wait"
)

func TestUntilSeesAConditionThatComes(t *testing.T) {
	var n atomic.Int32
	go func() {
		for range 3 {
			n.Add(1)
		}
	}()
	if !wait.Until(wait.Limit, func() bool { return n.Load() == 3 }) {
		t.Fatal("Until gave up on a condition that held")
	}
}

func TestUntilGivesUp(t *testing.T) {
	calls := 0
	if wait.Until(20*time.Millisecond, func() bool { calls++; return false }) {
		t.Fatal("Until reported a condition that never held")
	}
	if calls < 2 {
		t.Fatalf("cond checked %d times, want it polled", calls)
	}
}

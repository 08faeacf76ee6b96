package backoff_test

import (
	"context"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/eastwest/labourlink/services/platform/backoff"
)

// TestDelayBounds: every wait lies in [Ceiling/2, Ceiling], the ceiling doubles from Min and
// never passes Max.
func TestDelayBounds(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		p := backoff.Policy{
			Min: time.Duration(rapid.Int64Range(1, int64(time.Second)).Draw(rt, "min")),
			Max: time.Duration(rapid.Int64Range(1, int64(time.Minute)).Draw(rt, "max")),
		}.WithDefaults(time.Millisecond, time.Second)
		n := rapid.IntRange(1, 80).Draw(rt, "n")
		c := p.Ceiling(n)
		if c < p.Min || c > p.Max {
			rt.Fatalf("Ceiling(%d) = %v outside [%v, %v]", n, c, p.Min, p.Max)
		}
		if next := p.Ceiling(n + 1); next != min(2*c, p.Max) && c < p.Max {
			rt.Fatalf("Ceiling(%d) = %v after %v: want doubling up to Max %v", n+1, next, c, p.Max)
		}
		if d := p.Delay(n); d < c/2 || d > c {
			rt.Fatalf("Delay(%d) = %v outside [%v, %v]", n, d, c/2, c)
		}
	})
}

func TestWithDefaults(t *testing.T) {
	p := backoff.Policy{Max: time.Millisecond}.WithDefaults(200*time.Millisecond, 30*time.Second)
	if p.Min != 200*time.Millisecond || p.Max != 200*time.Millisecond {
		t.Fatalf("WithDefaults = %+v, want Min 200ms and Max raised to it", p)
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if backoff.Sleep(ctx, time.Hour) {
		t.Fatal("Sleep reported a full wait on a cancelled context")
	}
	if !backoff.Sleep(context.Background(), time.Microsecond) {
		t.Fatal("Sleep reported cancellation without one")
	}
}

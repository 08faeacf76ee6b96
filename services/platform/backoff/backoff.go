// Package backoff is the one retry schedule of the suite: exponential from Min, capped at Max,
// with "equal jitter" (the wait is drawn from [d/2, d]) so that many clients that failed
// together do not retry together. The outbox relays and the feed followers use it.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is an exponential backoff between Min and Max.
type Policy struct {
	Min, Max time.Duration
}

// WithDefaults returns p with Min defaulted to min and Max to max when zero or negative, and
// Max raised to Min.
func (p Policy) WithDefaults(minD, maxD time.Duration) Policy {
	if p.Min <= 0 {
		p.Min = minD
	}
	if p.Max <= 0 {
		p.Max = maxD
	}
	p.Max = max(p.Max, p.Min)
	return p
}

// Ceiling returns the longest wait after the n-th consecutive failure (n from 1): Min doubled
// n-1 times, capped at Max.
func (p Policy) Ceiling(n int) time.Duration {
	d := p.Min
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
}

// Delay returns the wait after the n-th consecutive failure: drawn from [Ceiling(n)/2,
// Ceiling(n)].
func (p Policy) Delay(n int) time.Duration {
	d := p.Ceiling(n)
	half := d / 2
	return half + rand.N(d-half+1)
}

// Sleep waits d or until ctx ends; it reports false if ctx ended first.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

package policy

import (
	"fmt"
	"time"

	"loom"
	"loom/internal/registry"
)

// BreakerOption configures a Breaker.
type BreakerOption func(*Breaker) error

// NewBreaker returns a closed breaker named name for the monitor. Defaults:
// a count window of the last 100 calls, at least 20 calls before judging,
// opening at a 50% failure rate, no slow-call threshold, open for 30s, 5
// probes when half-open. Bad options give a breaker that refuses every call
// with an error wrapping loom.ErrInvalidArgument.
func NewBreaker(name string, opts ...BreakerOption) *Breaker {
	b := &Breaker{name: name, countWindow: 100, failRate: 50, minCalls: 20, openFor: 30 * time.Second, probes: 5}
	for _, o := range opts {
		if o == nil {
			b.err = fmt.Errorf("policy.NewBreaker: %w: nil option", loom.ErrInvalidArgument)
			break
		}
		if err := o(b); err != nil {
			b.err = fmt.Errorf("policy.NewBreaker: %w", err)
			break
		}
	}
	if b.countWindow > 0 {
		b.ring = make([]uint8, b.countWindow)
	} else {
		b.buckets = make([]bucket, b.timeBuckets)
	}
	if b.err == nil {
		registry.Track(b, registry.KindBreaker, name, (*Breaker).report)
	}
	return b
}

// CountWindow judges the last n calls (at least 1).
func CountWindow(n int) BreakerOption {
	return func(b *Breaker) error {
		if n < 1 {
			return fmt.Errorf("%w: count window %d; need at least 1", loom.ErrInvalidArgument, n)
		}
		b.countWindow, b.timeWindow = n, 0
		return nil
	}
}

// TimeWindow judges the calls of the last d, kept in buckets of d/buckets
// (buckets at least 1; 10 is typical).
func TimeWindow(d time.Duration, buckets int) BreakerOption {
	return func(b *Breaker) error {
		if d <= 0 || buckets < 1 || d/time.Duration(buckets) <= 0 {
			return fmt.Errorf("%w: time window %v in %d buckets", loom.ErrInvalidArgument, d, buckets)
		}
		b.timeWindow, b.timeBuckets, b.countWindow = d, buckets, 0
		return nil
	}
}

// FailureRate opens the breaker when at least pct percent (0 < pct ≤ 100)
// of the calls in the window failed.
func FailureRate(pct float64) BreakerOption {
	return func(b *Breaker) error {
		if !(pct > 0 && pct <= 100) { // NaN too
			return fmt.Errorf("%w: failure rate %v%%; need 0 < pct ≤ 100", loom.ErrInvalidArgument, pct)
		}
		b.failRate = pct
		return nil
	}
}

// SlowCalls counts a call that took at least after as slow, and opens the
// breaker when at least pct percent of the calls in the window were slow,
// successful or not: a backend that answers, but too slowly, is shed too.
func SlowCalls(after time.Duration, pct float64) BreakerOption {
	return func(b *Breaker) error {
		if after <= 0 || !(pct > 0 && pct <= 100) {
			return fmt.Errorf("%w: slow calls after %v at %v%%", loom.ErrInvalidArgument, after, pct)
		}
		b.slowAfter, b.slowRate = after, pct
		return nil
	}
}

// MinCalls sets how many calls the window must hold before the rates are
// judged (at least 1).
func MinCalls(n int) BreakerOption {
	return func(b *Breaker) error {
		if n < 1 {
			return fmt.Errorf("%w: min calls %d; need at least 1", loom.ErrInvalidArgument, n)
		}
		b.minCalls = n
		return nil
	}
}

// OpenFor sets how long the breaker stays open before it lets probes
// through.
func OpenFor(d time.Duration) BreakerOption {
	return func(b *Breaker) error {
		if d <= 0 {
			return fmt.Errorf("%w: open for %v; need more than 0", loom.ErrInvalidArgument, d)
		}
		b.openFor = d
		return nil
	}
}

// HalfOpenProbes sets how many calls the half-open breaker lets through to
// decide (at least 1).
func HalfOpenProbes(n int) BreakerOption {
	return func(b *Breaker) error {
		if n < 1 {
			return fmt.Errorf("%w: %d probes; need at least 1", loom.ErrInvalidArgument, n)
		}
		b.probes = n
		return nil
	}
}

// FailureIf decides which errors count as failures; by default every error
// does, except the caller's context ending and errors marked Permanent.
func FailureIf(pred func(err error) bool) BreakerOption {
	return func(b *Breaker) error {
		if pred == nil {
			return fmt.Errorf("%w: nil FailureIf predicate", loom.ErrInvalidArgument)
		}
		b.isFailure = pred
		return nil
	}
}

// OnStateChange calls f after each change of state, outside the breaker's
// lock, from the goroutine whose call caused it.
func OnStateChange(f func(from, to BreakerState)) BreakerOption {
	return func(b *Breaker) error {
		if f == nil {
			return fmt.Errorf("%w: nil OnStateChange", loom.ErrInvalidArgument)
		}
		b.onChange = f
		return nil
	}
}

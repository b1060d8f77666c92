package policy

import (
	"fmt"
	"math/rand/v2"
	"time"

	"loom"
)

// Backoff is how a wait grows from one attempt to the next: Base after
// the first failure, doubling after each one up to Max, spread by Jitter.
// It is the one backoff every part of loom takes: a Retry
// (WithBackoff), a service supervisor's restarts (service.WithBackoff) and
// a distributed queue's redeliveries (dist.RetryBackoff).
type Backoff struct {
	// Base is the wait after the first failure (at least 0; 0 makes every
	// wait 0).
	Base time.Duration
	// Max is the most any wait grows to (at least Base).
	Max time.Duration
	// Jitter spreads the waits; the zero value is FullJitter.
	Jitter Jitter
}

// Jitter is how a Backoff spreads its waits, so that many clients that
// failed at once do not come back at once.
type Jitter uint8

// The kinds of jitter.
const (
	// FullJitter draws each wait uniformly between 0 and the exponential
	// wait: the default, and what spreads a crowd of retrying clients
	// best.
	FullJitter Jitter = iota
	// DecorrelatedJitter draws each wait between Base and three times the
	// previous one, capped at Max (AWS's "decorrelated jitter").
	DecorrelatedJitter
	// NoJitter uses the exponential waits as they are: for tests, for
	// restarts, and for callers that jitter elsewhere.
	NoJitter
)

// Validate reports whether b can be used: 0 ≤ Base ≤ Max and a known
// Jitter, with an error wrapping loom.ErrInvalidArgument if not.
func (b Backoff) Validate() error {
	if b.Base < 0 || b.Max < b.Base || b.Jitter > NoJitter {
		return fmt.Errorf("%w: backoff base %v, max %v, jitter %d; need 0 ≤ base ≤ max and a known jitter", loom.ErrInvalidArgument, b.Base, b.Max, b.Jitter)
	}
	return nil
}

// nominal returns the exponential wait after failure n (from 1), capped;
// always 0 for a Base of 0.
func (b Backoff) nominal(n int) time.Duration {
	if b.Base == 0 {
		return 0
	}
	if n < 1 {
		n = 1
	}
	if n-1 < 62 {
		if e := b.Base << (n - 1); e > 0 && e < b.Max {
			return e
		}
	}
	return b.Max
}

// Delay returns the wait after failure n (from 1; less is taken as 1),
// jittered. Decorrelated jitter draws from the nominal wait of the
// failure before; a caller that keeps the previous wait can use Next
// instead.
func (b Backoff) Delay(n int) time.Duration {
	prev := b.Base
	if n > 1 {
		prev = b.nominal(n - 1)
	}
	return b.Next(n, prev)
}

// Next returns the wait after failure n, given the wait before it (prev,
// used by DecorrelatedJitter only).
func (b Backoff) Next(n int, prev time.Duration) time.Duration {
	if b.Jitter == DecorrelatedJitter {
		hi := min(3*prev, b.Max)
		d := b.Base
		if hi > b.Base {
			d += rand.N(hi - b.Base + 1)
		}
		return d
	}
	d := b.nominal(n)
	if b.Jitter == FullJitter && d > 0 {
		d = rand.N(d + 1)
	}
	return d
}

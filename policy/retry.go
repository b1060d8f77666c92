package policy

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"loom"
	"loom/internal/registry"
)

// ErrExhausted is wrapped by the error a Retry returns when it gives up
// while the function still fails: attempts, time or retry budget ran out.
var ErrExhausted = errors.New("policy: retries exhausted")

// ExhaustedError is what a Retry returns when it gives up. It wraps both
// ErrExhausted and the last attempt's error.
type ExhaustedError struct {
	Retry    string
	Attempts int
	Reason   string // "attempts", "elapsed time" or "budget"
	Err      error  // the last attempt's error
}

// Error says which retry gave up, after how many attempts and why.
func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("policy: retry %q gave up after %d attempts (%s): %v", e.Retry, e.Attempts, e.Reason, e.Err)
}

// Unwrap returns ErrExhausted and the last attempt's error.
func (e *ExhaustedError) Unwrap() []error { return []error{ErrExhausted, e.Err} }

// errAttemptEnded cancels an attempt's own context once it has returned.
var errAttemptEnded = errors.New("policy: attempt ended")

// Retry calls what it wraps again when it fails, waiting an exponentially
// growing, jittered delay between attempts. Each attempt gets a context of
// its own, cancelled when the attempt returns, so that whatever an attempt
// started does not outlive it. It stops at once on success, on an error
// marked Permanent, on an error its RetryIf rejects, and when the caller's
// context ends; otherwise it gives up with an *ExhaustedError when the
// attempts, the elapsed time or the retry budget run out. An error that
// carries a Retry-After (see RetryAfter) makes it wait at least that long.
//
// Create one with NewRetry and share it: it is safe for concurrent use and
// registers its counts with the monitor.
type Retry struct {
	name        string
	maxAttempts int
	maxElapsed  time.Duration
	backoff     Backoff
	retryIf     func(error) bool
	budget      *Budget
	err         error

	calls, attempts, retries, exhausted, denied atomic.Uint64
}

// RetryOption configures a Retry.
type RetryOption func(*Retry) error

// NewRetry returns a retry policy named name for the monitor. By default it
// makes at most 3 attempts, waits 100ms before the second, doubling up to
// 10s, with full jitter (Backoff{Base: 100ms, Max: 10s}). Bad options give a policy whose every call fails
// with an error wrapping loom.ErrInvalidArgument.
func NewRetry(name string, opts ...RetryOption) *Retry {
	r := &Retry{name: name, maxAttempts: 3, backoff: Backoff{Base: 100 * time.Millisecond, Max: 10 * time.Second}}
	for _, o := range opts {
		if o == nil {
			r.err = fmt.Errorf("policy.NewRetry: %w: nil option", loom.ErrInvalidArgument)
			return r
		}
		if err := o(r); err != nil {
			r.err = fmt.Errorf("policy.NewRetry: %w", err)
			return r
		}
	}
	registry.Track(r, registry.KindRetry, name, (*Retry).report)
	return r
}

// Attempts sets the most attempts, the first included (at least 1).
func Attempts(n int) RetryOption {
	return func(r *Retry) error {
		if n < 1 {
			return fmt.Errorf("%w: %d attempts; need at least 1", loom.ErrInvalidArgument, n)
		}
		r.maxAttempts = n
		return nil
	}
}

// MaxElapsed makes the retry give up rather than start a wait that would
// end more than d after the first attempt began.
func MaxElapsed(d time.Duration) RetryOption {
	return func(r *Retry) error {
		if d <= 0 {
			return fmt.Errorf("%w: max elapsed %v; need more than 0", loom.ErrInvalidArgument, d)
		}
		r.maxElapsed = d
		return nil
	}
}

// WithBackoff sets the waits between attempts (the default is
// Backoff{Base: 100ms, Max: 10s}, full jitter); Backoff{} retries at once.
func WithBackoff(b Backoff) RetryOption {
	return func(r *Retry) error {
		if err := b.Validate(); err != nil {
			return err
		}
		r.backoff = b
		return nil
	}
}

// RetryIf retries only errors for which pred returns true (Permanent errors
// and the caller's cancellation are never retried).
func RetryIf(pred func(err error) bool) RetryOption {
	return func(r *Retry) error {
		if pred == nil {
			return fmt.Errorf("%w: nil RetryIf predicate", loom.ErrInvalidArgument)
		}
		r.retryIf = pred
		return nil
	}
}

// WithBudget makes retries draw on b, shared with other Retry policies, so
// that retries stay a bounded share of the calls.
func WithBudget(b *Budget) RetryOption {
	return func(r *Retry) error {
		if b == nil {
			return fmt.Errorf("%w: nil budget", loom.ErrInvalidArgument)
		}
		r.budget = b
		return nil
	}
}

func (r *Retry) run(ctx context.Context, c chain, i int) error {
	if r.err != nil {
		return r.err
	}
	r.calls.Add(1)
	if r.budget != nil {
		r.budget.recordCall()
	}
	start := time.Now()
	prev := r.backoff.Base
	for n := 1; ; n++ {
		r.attempts.Add(1)
		actx, cancel := context.WithCancelCause(ctx)
		err := c.next(actx, i)
		cancel(errAttemptEnded)
		if err == nil || IsPermanent(err) || isCancellation(ctx, err) || (r.retryIf != nil && !r.retryIf(err)) {
			return err
		}
		if n >= r.maxAttempts {
			return r.giveUp(n, "attempts", err)
		}
		delay := r.delay(n, &prev)
		if ra, ok := retryAfterOf(err); ok && ra > delay {
			delay = ra
		}
		if r.maxElapsed > 0 && time.Since(start)+delay > r.maxElapsed {
			return r.giveUp(n, "elapsed time", err)
		}
		if r.budget != nil && !r.budget.withdraw() {
			r.denied.Add(1)
			return r.giveUp(n, "budget", err)
		}
		r.retries.Add(1)
		if err := sleep(ctx, delay); err != nil {
			return err
		}
	}
}

func (r *Retry) giveUp(n int, reason string, err error) error {
	r.exhausted.Add(1)
	return &ExhaustedError{Retry: r.name, Attempts: n, Reason: reason, Err: err}
}

// Delay returns the wait after attempt n (from 1) has failed, as its
// Backoff's Delay: for callers that schedule the next attempt themselves.
func (r *Retry) Delay(n int) time.Duration { return r.backoff.Delay(n) }

// Backoff returns the Retry's backoff.
func (r *Retry) Backoff() Backoff { return r.backoff }

// MaxAttempts returns how many attempts the Retry makes at most, 0 for no
// limit of its own.
func (r *Retry) MaxAttempts() int { return r.maxAttempts }

// delay returns the wait after attempt n failed, prev the one before.
func (r *Retry) delay(n int, prev *time.Duration) time.Duration {
	d := r.backoff.Next(n, *prev)
	*prev = d
	return d
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return context.Cause(ctx)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (r *Retry) report(f *registry.Figures) {
	f.Counter("calls", float64(r.calls.Load()))
	f.Counter("attempts", float64(r.attempts.Load()))
	f.Counter("retries", float64(r.retries.Load()))
	f.Counter("exhausted", float64(r.exhausted.Load()))
	f.Counter("budget_denied", float64(r.denied.Load()))
}

// RetryStats are a Retry's counters.
type RetryStats struct {
	Calls, Attempts, Retries, Exhausted, BudgetDenied uint64
}

// Stats returns the retry's counters.
func (r *Retry) Stats() RetryStats {
	return RetryStats{r.calls.Load(), r.attempts.Load(), r.retries.Load(), r.exhausted.Load(), r.denied.Load()}
}

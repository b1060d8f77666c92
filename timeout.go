package loom

import (
	"context"
	"time"
)

// Timeout runs fn in the calling goroutine with a context that ends after d,
// like asyncio.wait_for. If the time runs out and fn returns an error, that
// error comes back as a *TimeoutError (matching ErrTimeout and
// context.DeadlineExceeded) that wraps it; if fn still succeeds, its result
// is returned. Timeout returns only when fn does: a function that ignores
// its context is waited for, not abandoned. A d of zero or less gives fn an
// already expired context.
func Timeout[T any](ctx context.Context, d time.Duration, fn func(ctx context.Context) (T, error)) (T, error) {
	var zero T
	if err := checkStart("loom.Timeout", ctx, fn); err != nil {
		return zero, err
	}
	cause := &TimeoutError{After: d}
	tctx, cancel := context.WithTimeoutCause(ctx, d, cause)
	defer cancel()
	v, err := fn(tctx)
	if err != nil && context.Cause(tctx) == cause && ctx.Err() == nil {
		return v, &TimeoutError{After: d, Err: err}
	}
	return v, err
}

// ShieldOption configures Shield.
type ShieldOption func(*shieldConfig)

type shieldConfig struct{ dropDeadline bool }

// DropDeadline lets shielded work run past the caller's deadline: it then
// runs until it returns.
func DropDeadline() ShieldOption {
	return func(c *shieldConfig) { c.dropDeadline = true }
}

// Shield runs fn as a task named name that the caller's cancellation does not
// reach, like asyncio.shield: if ctx is cancelled, Shield returns
// context.Cause(ctx) at once and the task goes on to the end. The task keeps
// ctx's deadline, if any, unless DropDeadline is given, and keeps ctx's
// values. It stays in the registry while it runs; in debug mode, a failure
// that nobody waited for is reported.
func Shield[T any](ctx context.Context, name string, fn func(ctx context.Context) (T, error), opts ...ShieldOption) (T, error) {
	var zero T
	if err := checkStart("loom.Shield", ctx, fn); err != nil {
		return zero, err
	}
	var c shieldConfig
	for _, o := range opts {
		if o == nil {
			return zero, invalid("loom.Shield", "nil option")
		}
		o(&c)
	}
	sctx := context.WithoutCancel(ctx)
	release := func() {}
	if dl, ok := ctx.Deadline(); ok && !c.dropDeadline {
		sctx, release = context.WithDeadline(sctx, dl)
	}
	t := Go(sctx, name, fn)
	t.whenDone(release)
	return t.Wait(ctx)
}

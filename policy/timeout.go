package policy

import (
	"context"
	"time"

	"loom"
)

type timeout struct{ d time.Duration }

// Timeout bounds what it wraps to d: the context passed on ends after d,
// with a *loom.TimeoutError as its cause, and an error returned after that
// comes back as a *loom.TimeoutError wrapping it (it matches
// loom.ErrTimeout and context.DeadlineExceeded). Like loom.Timeout, it
// waits for the function to return; a function that ignores its context is
// not abandoned. Inside a Retry it bounds each attempt. A d of zero or less
// gives an already expired context.
func Timeout(d time.Duration) Policy { return timeout{d} }

func (t timeout) run(ctx context.Context, c chain, i int) error {
	cause := &loom.TimeoutError{After: t.d}
	tctx, cancel := context.WithTimeoutCause(ctx, t.d, cause)
	defer cancel()
	err := c.next(tctx, i)
	if err != nil && context.Cause(tctx) == cause && ctx.Err() == nil {
		return &loom.TimeoutError{After: t.d, Err: err}
	}
	return err
}

package policy

import (
	"context"
	"fmt"
)

type fallback[T any] struct {
	fn   func(ctx context.Context, err error) (T, error)
	when func(err error) bool
}

// Fallback returns fn's result instead of a failure: when what it wraps
// fails (and when, if given, says the error qualifies), fn is called with
// the error and its result and error become the call's. The caller's
// context ending is never replaced. T must be the result type of the call
// it is used with; a mismatch is reported as an error at the call. A nil fn
// gives a fallback that does nothing.
func Fallback[T any](fn func(ctx context.Context, err error) (T, error), when ...func(err error) bool) Policy {
	f := &fallback[T]{fn: fn}
	for _, w := range when {
		if w != nil {
			f.when = w
		}
	}
	return f
}

func (f *fallback[T]) run(ctx context.Context, c chain, i int) error {
	err := c.next(ctx, i)
	if err == nil || f.fn == nil || isCancellation(ctx, err) || (f.when != nil && !f.when(err)) {
		return err
	}
	a, ok := c.(*attempt[T])
	if !ok {
		var zero T
		return fmt.Errorf("policy: a Fallback of %T used on a call of another type: %w", zero, err)
	}
	v, ferr := f.fn(ctx, err)
	a.val = v
	return ferr
}

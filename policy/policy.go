package policy

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"

	"loom"
)

// Policy is one resilience policy: Timeout, Retry, Breaker, Bulkhead,
// RateLimit, Hedge or Fallback. A policy instance holds its own state (a
// breaker's window, a limiter's tokens) and may be shared by any number of
// calls, of any result type, from any goroutine.
//
// Policies compose in the order given to Do or New: the first is the
// outermost, the last wraps the function directly. The recommended order,
// outermost first, is
//
//	Fallback, Retry or Hedge, Breaker, RateLimit, Bulkhead, Timeout
//
// so that a fallback sees the final outcome, each retry goes through the
// breaker (and counts there) and waits its turn at the limiter and the
// bulkhead, and the timeout bounds each attempt rather than all of them.
type Policy interface {
	// run executes the rest of the chain, from position i, through c.
	run(ctx context.Context, c chain, i int) error
}

// chain is one execution of a function through a list of policies. It is
// not generic, so that policies are not either; the generic attempt behind
// it holds the function and the result.
type chain interface {
	// next runs the policy at position i, or the function past the end.
	next(ctx context.Context, i int) error
	// fork returns a fresh chain over the same function and policies, for
	// a hedge's concurrent attempts.
	fork() chain
	// adopt takes the result of a forked chain that won.
	adopt(from chain)
}

// attempt is the generic chain.
type attempt[T any] struct {
	fn   func(context.Context) (T, error)
	pols []Policy
	val  T
}

func (a *attempt[T]) next(ctx context.Context, i int) error {
	if i == len(a.pols) {
		v, err := call(ctx, a.fn)
		a.val = v
		return err
	}
	return a.pols[i].run(ctx, a, i+1)
}

func (a *attempt[T]) fork() chain { return &attempt[T]{fn: a.fn, pols: a.pols} }

func (a *attempt[T]) adopt(from chain) { a.val = from.(*attempt[T]).val }

// call runs fn, turning a panic into a *loom.PanicError so that a policy
// (a retry, a breaker) sees it as a failure rather than unwinding through
// it.
func call[T any](ctx context.Context, fn func(context.Context) (T, error)) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &loom.PanicError{Task: "policy.Do", Value: r, Stack: debug.Stack()}
		}
	}()
	return fn(ctx)
}

// Do calls fn through policies, the first outermost, and returns its
// result or the error the policies settle on. A nil ctx, fn or policy is an
// error wrapping loom.ErrInvalidArgument. For a hot path, build an Executor
// once with New: it reuses its per-call state.
func Do[T any](ctx context.Context, fn func(ctx context.Context) (T, error), policies ...Policy) (T, error) {
	var zero T
	if err := check("policy.Do", ctx, fn, policies); err != nil {
		return zero, err
	}
	a := &attempt[T]{fn: fn, pols: policies}
	err := a.next(ctx, 0)
	return a.val, err
}

// Executor runs calls through a fixed list of policies. Build it once with
// New and share it: it keeps a pool of per-call state, so that a call that
// succeeds through policies that allocate nothing allocates nothing.
type Executor[T any] struct {
	pols []Policy
	err  error
	pool sync.Pool
}

// New returns an Executor over policies, the first outermost. A nil policy
// gives an executor whose Do returns an error wrapping
// loom.ErrInvalidArgument.
func New[T any](policies ...Policy) *Executor[T] {
	e := &Executor[T]{pols: append([]Policy(nil), policies...)}
	for i, p := range policies {
		if p == nil {
			e.err = fmt.Errorf("policy.New: %w: policy %d is nil", loom.ErrInvalidArgument, i)
		}
	}
	return e
}

// Do calls fn through the executor's policies.
func (e *Executor[T]) Do(ctx context.Context, fn func(ctx context.Context) (T, error)) (T, error) {
	var zero T
	if e.err != nil {
		return zero, e.err
	}
	if err := check("policy.Executor.Do", ctx, fn, nil); err != nil {
		return zero, err
	}
	a, _ := e.pool.Get().(*attempt[T])
	if a == nil {
		a = &attempt[T]{pols: e.pols}
	}
	a.fn = fn
	err := a.next(ctx, 0)
	v := a.val
	a.val, a.fn = zero, nil
	e.pool.Put(a)
	return v, err
}

func check[T any](where string, ctx context.Context, fn func(context.Context) (T, error), pols []Policy) error {
	switch {
	case ctx == nil:
		return fmt.Errorf("%s: %w: nil context", where, loom.ErrInvalidArgument)
	case fn == nil:
		return fmt.Errorf("%s: %w: nil function", where, loom.ErrInvalidArgument)
	}
	for i, p := range pols {
		if p == nil {
			return fmt.Errorf("%s: %w: policy %d is nil", where, loom.ErrInvalidArgument, i)
		}
	}
	return nil
}

// permanent marks an error that no policy should retry.
type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }

// Permanent wraps err so that Retry and Hedge give up at once instead of
// trying again: for errors that another attempt cannot fix (a 400, a bad
// argument). errors.Is and errors.As still see err. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanent{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p *permanent
	return errors.As(err, &p)
}

// isCancellation reports whether err is the caller's own context ending:
// not a failure of what was called, so breakers do not count it and
// retries stop.
func isCancellation(ctx context.Context, err error) bool {
	if ctx.Err() == nil {
		return false
	}
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, context.Cause(ctx))
}

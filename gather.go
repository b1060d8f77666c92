package loom

import (
	"context"
	"errors"
)

// Result is the outcome of one function run by GatherAll.
type Result[T any] struct {
	Value T
	Err   error
}

func checkFuncs[F any](where string, ctx context.Context, fns []F) error {
	if ctx == nil {
		return invalid(where, "nil context")
	}
	for i, fn := range fns {
		if any(fn) == nil || checkStart(where, ctx, fn) != nil {
			return invalid(where, "function %d is nil", i)
		}
	}
	return nil
}

// Gather runs each function in a task of its own and returns their results
// in the order of fns, like asyncio.gather. The first failure cancels the
// others; Gather then waits for them all to return and gives back no
// results and the failures (joined, as Group.Wait does). It returns only
// when every function has returned. Every function is called, even one
// started after another has already failed: it gets a cancelled context,
// so that whether a function runs never depends on timing.
func Gather[T any](ctx context.Context, fns ...func(ctx context.Context) (T, error)) ([]T, error) {
	if err := checkFuncs("loom.Gather", ctx, fns); err != nil {
		return nil, err
	}
	out := make([]T, len(fns))
	g := newGroup(ctx, options{name: "gather"}, nil)
	var refused error
	for i, fn := range fns {
		if refused = g.goEvery(func(ctx context.Context) error {
			v, err := fn(ctx)
			out[i] = v
			return err
		}, funcPC(fn)); refused != nil {
			break
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if refused != nil {
		// The group was cancelled before every function could start.
		return nil, refused
	}
	return out, nil
}

// GatherAll runs each function in a task of its own, lets every one of them
// finish whatever the others do, and returns each one's value and error in
// the order of fns: asyncio.gather(..., return_exceptions=True). Every
// function is called, with a cancelled context if ctx has ended.
func GatherAll[T any](ctx context.Context, fns ...func(ctx context.Context) (T, error)) []Result[T] {
	out := make([]Result[T], len(fns))
	if err := checkFuncs("loom.GatherAll", ctx, fns); err != nil {
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	g := newGroup(ctx, options{name: "gather-all", supervise: true}, nil)
	for i, fn := range fns {
		if err := g.goEvery(func(ctx context.Context) error {
			out[i].Value, out[i].Err = fn(ctx)
			return out[i].Err
		}, funcPC(fn)); err != nil {
			out[i].Err = err
		}
	}
	_ = g.Wait() // each error is in out already
	return out
}

// Errors returns the errors among results, joined with errors.Join, or nil.
func Errors[T any](results []Result[T]) error {
	var errs []error
	for _, r := range results {
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	return errors.Join(errs...)
}

package loom

import (
	"context"
	"errors"
	"iter"
	"sync"
)

// errLostRace is the cause with which Race cancels the functions that did
// not win.
var errLostRace = errors.New("loom: another function won the race")

// Race runs each function in a task of its own and returns the value of the
// first to succeed; the others are cancelled (their context's cause says
// they lost) and Race waits for them to return before it does. If every
// function fails, Race returns their failures joined. It is the
// first-success race of happy eyeballs and hedged requests. Every function
// is called, as with Gather, even one started after the race was won (its
// context is then already cancelled). To learn which of several tasks ends
// first, whatever its outcome, use WaitAny.
func Race[T any](ctx context.Context, fns ...func(ctx context.Context) (T, error)) (T, error) {
	var zero T
	if err := checkFuncs("loom.Race", ctx, fns); err != nil {
		return zero, err
	}
	if len(fns) == 0 {
		return zero, invalid("loom.Race", "no functions")
	}
	// One struct rather than three captured variables: one allocation.
	var st struct {
		mu     sync.Mutex
		won    bool
		winner T
	}
	g := newGroup(ctx, options{name: "race", supervise: true}, nil)
	for _, fn := range fns {
		if err := g.goEvery(func(ctx context.Context) error {
			v, err := fn(ctx)
			if err != nil {
				return err
			}
			st.mu.Lock()
			defer st.mu.Unlock()
			if !st.won {
				st.won, st.winner = true, v
				g.Cancel(errLostRace)
			}
			return nil
		}, funcPC(fn)); err != nil {
			break
		}
	}
	err := g.Wait()
	if st.won {
		return st.winner, nil
	}
	if err == nil {
		err = context.Cause(ctx)
	}
	return zero, err
}

// WaitAny waits until one of tasks has ended, whatever its outcome, and
// returns it; or returns context.Cause(ctx) if ctx ends first. It does not
// cancel the others. Like asyncio.wait(..., return_when=FIRST_COMPLETED).
func WaitAny[T any](ctx context.Context, tasks ...*Task[T]) (*Task[T], error) {
	if ctx == nil {
		return nil, invalid("loom.WaitAny", "nil context")
	}
	if len(tasks) == 0 {
		return nil, invalid("loom.WaitAny", "no tasks")
	}
	for i, t := range tasks {
		if t == nil {
			return nil, invalid("loom.WaitAny", "task %d is nil", i)
		}
		if t.settled.Load() {
			return t, nil
		}
	}
	for t, err := range AsCompleted(ctx, tasks...) {
		return t, err
	}
	panic("unreachable")
}

// AsCompleted yields each of tasks as it ends, in the order they end, like
// asyncio.as_completed; the error is nil for each task. Tasks that have
// already ended when the loop starts come first, in the order given. The
// order respects causality: a task that waited for another one comes after
// it. If ctx ends before
// every task has, it yields (nil, context.Cause(ctx)) and stops. Breaking
// out of the loop early leaves the remaining tasks running: they belong to
// whoever started them.
func AsCompleted[T any](ctx context.Context, tasks ...*Task[T]) iter.Seq2[*Task[T], error] {
	return func(yield func(*Task[T], error) bool) {
		if ctx == nil {
			yield(nil, invalid("loom.AsCompleted", "nil context"))
			return
		}
		for i, t := range tasks {
			if t == nil {
				yield(nil, invalid("loom.AsCompleted", "task %d is nil", i))
				return
			}
		}
		ended := make(chan *Task[T], len(tasks))
		for _, t := range tasks {
			t.whenDone(func() { ended <- t })
		}
		for range tasks {
			select {
			case t := <-ended:
				if !yield(t, nil) {
					return
				}
			case <-ctx.Done():
				yield(nil, context.Cause(ctx))
				return
			}
		}
	}
}

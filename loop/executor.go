package loop

import (
	"context"
	"fmt"

	"loom"
	"loom/pool"
)

// RunInExecutor runs fn on p, off the loop, and then calls done with its
// result on the loop's goroutine, like asyncio's run_in_executor: blocking
// or CPU-heavy work leaves the loop free. The work's context ends when the
// loop stops; if the loop has stopped when the work ends, done is not
// called and the returned task still holds the result. On a loop that has
// stopped it returns ErrLoopClosed at once; other errors are those of
// pool.Submit.
func RunInExecutor[T any](l *Loop, p *pool.Pool, name string, fn func(ctx context.Context) (T, error), done func(T, error)) (*loom.Task[T], error) {
	if l == nil || fn == nil || done == nil {
		return nil, fmt.Errorf("loop.RunInExecutor: %w: nil loop, function or callback", loom.ErrInvalidArgument)
	}
	if l.state.Load() >= stateStopping {
		// done could never run: say so now, not through a task that
		// fails later.
		return nil, fmt.Errorf("loop.RunInExecutor: %w", ErrLoopClosed)
	}
	task, err := pool.Submit(l.ctx, p, name, fn)
	if err != nil {
		return nil, err
	}
	go func() {
		v, err := task.Wait(context.Background())
		_ = l.Post(func() { done(v, err) })
	}()
	return task, nil
}

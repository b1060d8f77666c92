package loom

import (
	"context"
	"runtime"

	"loom/internal/registry"
)

// Prepared is a task that has been created but not started: the handle an
// executor (a goroutine pool, an event loop) keeps in its queue while the
// task waits for a worker. Exactly one of Run or Abort must be called, once.
type Prepared interface {
	// Run runs the task's function in the calling goroutine and records its
	// outcome: result, error, panic, state, end time. It returns when the
	// function does, with the task's error.
	Run() error
	// Abort ends the task with err without running its function, for work
	// that an executor drops: its deadline passed in the queue, or the
	// executor was closed. The task ends Cancelled if its context has ended
	// and err is that cancellation, Failed otherwise.
	Abort(err error)
	// Cancel cancels the task's context with cause, as Task.Cancel does:
	// how an executor stops a task it has started.
	Cancel(cause error)
	// Name returns the task's name.
	Name() string
	// Context returns the context the task's function runs with: an
	// executor can watch it (context.AfterFunc) to learn that a task it
	// holds was cancelled before it ran.
	Context() context.Context
}

// Prepare creates the task for fn without starting it, and returns the task
// (for the submitter) and its Prepared handle (for the executor). The task
// is registered at once, as pending, with its parent taken from ctx as Go
// does; it runs on whatever goroutine calls Run.
//
// With a nil ctx or fn, Prepare returns a task that has already failed with
// an error wrapping ErrInvalidArgument, and a handle whose Run and Abort do
// nothing.
func Prepare[T any](ctx context.Context, name string, fn func(ctx context.Context) (T, error)) (*Task[T], Prepared) {
	if err := checkStart("loom.Prepare", ctx, fn); err != nil {
		t := failedTask[T](name, err)
		return t, (*prepared[T])(t)
	}
	return prepare(&Task[T]{}, ctx, name, fn)
}

// prepare sets up t, zero, as a prepared task.
func prepare[T any](t *Task[T], ctx context.Context, name string, fn func(ctx context.Context) (T, error)) (*Task[T], Prepared) {
	initTask(t, ctx, name, parentOf(ctx), fn)
	t.fn = fn
	registry.Publish(t.node())
	if registry.Debug() {
		runtime.AddCleanup(t, reportUnretrieved, t.node())
	}
	return t, (*prepared[T])(t)
}

// PrepareWith is Prepare for an executor that keeps a record of its own
// for each task (a queue entry, say): it also returns a zero X, allocated
// with the task in one allocation, that lives as long as the task does.
// An executor that handles many tasks saves an allocation per task, and
// the collector a little work; the record should let go of what it
// refers to once the task has ended, since whoever holds the task holds
// the record too.
//
// With a nil ctx or fn, PrepareWith returns what Prepare does, and a
// record of its own.
func PrepareWith[T, X any](ctx context.Context, name string, fn func(ctx context.Context) (T, error)) (*Task[T], Prepared, *X) {
	if err := checkStart("loom.PrepareWith", ctx, fn); err != nil {
		t := failedTask[T](name, err)
		return t, (*prepared[T])(t), new(X)
	}
	both := &struct {
		t Task[T] // first: the allocation's address is the task's
		x X
	}{}
	t, p := prepare(&both.t, ctx, name, fn)
	return t, p, &both.x
}

// prepared is a Task seen through its executor's handle: a conversion, not
// an allocation.
type prepared[T any] Task[T]

// Run is Task.run for the root owner, written out rather than called: an
// executor's worker holds this frame while its task blocks, and the
// collector scans every worker's stack, so a frame fewer (and the two
// words of the owner and the labels it would pass) is memory saved per
// worker.
func (p *prepared[T]) Run() (err error) {
	t := (*Task[T])(p)
	fn := t.fn
	if fn == nil || t.ended.Load() {
		return t.err // a failed Prepare, or run twice
	}
	t.fn = nil
	registry.MarkRunning(t.node())
	t.err = errGoexit // stays if fn calls runtime.Goexit
	defer func() {
		t.settle(recover(), rootOwner{})
		err = t.err
	}()
	t.val, t.err = fn(&t.nctx)
	return t.err
}

func (p *prepared[T]) Cancel(cause error) { (*Task[T])(p).Cancel(cause) }
func (p *prepared[T]) Name() string       { return (*Task[T])(p).Name() }

func (p *prepared[T]) Context() context.Context { return &(*Task[T])(p).nctx }

func (p *prepared[T]) Abort(err error) {
	t := (*Task[T])(p)
	if t.fn == nil || t.ended.Load() {
		return
	}
	t.fn = nil
	if err == nil {
		err = context.Canceled
	}
	t.err = err
	t.finish(rootOwner{})
}

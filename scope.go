package loom

import (
	"context"
	"errors"
	"fmt"

	"loom/internal/registry"
)

// ErrShutdown is the cause with which Scope.Shutdown cancels the scope's
// tasks; they see it through context.Cause.
var ErrShutdown = errors.New("loom: scope shut down")

// Scope owns background tasks: fire-and-forget work that is still tracked.
// Its tasks run independently (one's failure does not cancel the others)
// until Shutdown cancels them and waits, with a deadline, reporting any
// that did not stop. Use a Scope for work that lives as long as a server or
// a connection; use a Group for work whose results you wait for.
//
// A Scope must be created with NewScope and must not be copied; its methods
// may be called from any goroutine.
type Scope struct {
	s       nursery
	onError func(TaskInfo, error)
	invalid error
}

// NewScope returns a scope whose tasks run under a context derived from ctx.
// With bad arguments (a nil ctx, an option meant for a Group) it returns a
// scope that refuses every task, and whose Shutdown returns, an error
// wrapping ErrInvalidArgument.
func NewScope(ctx context.Context, opts ...Option) *Scope {
	o, err := build("loom.NewScope", ctx, opts)
	if err == nil && (o.limit > 0 || o.supervise) {
		err = invalid("loom.NewScope", "WithLimit and Supervise apply to a Group, not a Scope")
	}
	if ctx == nil {
		ctx = context.Background()
	}
	sc := &Scope{onError: o.onError, invalid: err}
	sc.s.keep = 1024
	sc.s.owner = sc
	if o.onError != nil {
		sc.s.keep = 0
	}
	sc.s.init(ctx, registry.KindScope, o.name, 0)
	if err != nil {
		sc.s.close(err)
	}
	return sc
}

// Context returns the context the scope's tasks run under. Shutdown cancels
// it with ErrShutdown.
func (sc *Scope) Context() context.Context { return sc.s.ctx }

// Name returns the scope's name.
func (sc *Scope) Name() string { return sc.s.node.Name() }

// Len returns how many of the scope's tasks are running.
func (sc *Scope) Len() int { return sc.s.count() }

// Go starts fn in a new goroutine as a background task of the scope, named
// name, and returns at once. It returns an error wrapping ErrClosed, without
// running fn, once Shutdown has begun or the scope's context is cancelled,
// and one wrapping ErrInvalidArgument if fn is nil.
//
// fn's failure does not stop the scope: it goes to the OnError handler, or
// is kept for Shutdown to return.
func (sc *Scope) Go(name string, fn func(ctx context.Context) error) error {
	if fn == nil {
		return invalid("Scope.Go", "nil function")
	}
	m, err := sc.s.start(name, fn, funcPC(fn), 1, false)
	if err != nil {
		return err
	}
	go m.run()
	return nil
}

// running implements owner.
func (sc *Scope) running(n *registry.Node) { sc.s.markRunning(n) }

// exit implements owner. OnError runs before the task leaves the
// scope, so that Shutdown, which waits for the tasks to leave, returns
// after every handler has.
func (sc *Scope) exit(n *registry.Node, m *member, st State, err error) {
	if st == Failed && sc.onError != nil {
		sc.onError(TaskInfo(n.Info()), err)
	}
	sc.s.leave(n, m, st, err)
}

// Shutdown closes the scope to new tasks, cancels its context with
// ErrShutdown and waits for its tasks to return, or for ctx to end. It
// returns the failures of the tasks (joined) that OnError did not take, and,
// if some tasks did not stop in time, a *LeakError naming them (they go on
// running and stay registered; in debug mode each is reported). Shutdown may
// be called again to wait longer.
func (sc *Scope) Shutdown(ctx context.Context) error {
	if ctx == nil {
		return invalid("Scope.Shutdown", "nil context")
	}
	sc.s.closeFor("is shut down")
	sc.s.cancel(ErrShutdown)
	if sc.invalid != nil {
		sc.s.finish(sc.invalid)
		return sc.invalid
	}
	if err := sc.s.waitIdle(ctx, ""); err != nil {
		leak := &LeakError{Scope: sc.s.node.Name(), Tasks: sc.s.live()}
		if registry.Debug() {
			for _, t := range leak.Tasks {
				registry.Report(registry.Event{
					Check:   CheckLeakedTask,
					Message: fmt.Sprintf("task %q (id %d) did not stop when scope %q shut down: %v", t.Name, t.ID, sc.s.node.Name(), err),
					Node:    registry.Info(t),
				})
			}
		}
		return errors.Join(sc.s.failure(), leak)
	}
	sc.s.recycle()
	res := sc.s.failure()
	sc.s.finish(res)
	return res
}

package loom

import (
	"context"
	"sync"

	"loom/internal/registry"
)

// Group runs tasks that end together: structured concurrency, like Trio's
// nursery or asyncio.TaskGroup. Wait returns only when every task has
// returned, so nothing started in a group outlives it.
//
// The first task to fail cancels the group's context, and so its other
// tasks (unless the group was made with Supervise). A panic in a task is
// recovered into a *PanicError and counts as a failure.
//
// Once Wait has returned, or the group's context is cancelled (by a
// failure, Cancel or the parent), the group accepts no more tasks: Go
// returns an error wrapping ErrClosed without calling fn, and Spawn a task
// that has already failed with it, without calling fn either. The rule is
// the same in every path, including a limited group's Go that was waiting
// for a slot; it is asyncio.TaskGroup's, which refuses new tasks once it is
// shutting down, and differs from errgroup's, whose Go still calls fn.
// Gather, GatherAll and Race, which fill a group of their own in one call,
// call every function they are given, with a cancelled context if need be.
//
// A Group must be created with NewGroup and must not be copied. Go, Spawn,
// Cancel and Wait may be called from any goroutine, including from the
// group's own tasks.
type Group struct {
	s         nursery
	parent    context.Context
	slots     *slots // nil without a limit
	supervise bool
	invalid   error // set when NewGroup got bad arguments

	once   sync.Once
	result error // set by conclude
}

// NewGroup returns a group whose tasks run under a context derived from ctx.
// With bad arguments (a nil ctx, a limit below 1, an option meant for a
// Scope) it returns a group that refuses every task and whose Wait returns
// an error wrapping ErrInvalidArgument that says what was wrong.
func NewGroup(ctx context.Context, opts ...Option) *Group {
	o, err := build("loom.NewGroup", ctx, opts)
	if err == nil && o.onError != nil {
		err = invalid("loom.NewGroup", "OnError applies to a Scope, not a Group")
	}
	return newGroup(ctx, o, err)
}

// newGroup is NewGroup once the options are known: loom's own groups
// (Gather, Race) come here directly, which saves building them.
func newGroup(ctx context.Context, o options, err error) *Group {
	if ctx == nil {
		ctx = context.Background()
	}
	g := &Group{parent: ctx, supervise: o.supervise, invalid: err}
	g.s.keep = -1
	g.s.owner = g
	g.s.init(ctx, registry.KindGroup, o.name, 0)
	if o.limit > 0 {
		g.slots = newSlots(g.s.ctx, o.limit)
	}
	if err != nil {
		g.s.close(err)
	}
	return g
}

// Context returns the context the group's tasks run under. It is cancelled
// by the first failure, by Cancel, by the parent context, and when Wait
// returns.
func (g *Group) Context() context.Context { return g.s.ctx }

// Name returns the group's name.
func (g *Group) Name() string { return g.s.node.Name() }

// ID returns the group's registry identifier (0 with the registry off).
func (g *Group) ID() uint64 { return g.s.node.ID() }

// Len returns how many of the group's tasks are running.
func (g *Group) Len() int { return g.s.count() }

// Go starts fn in a new goroutine as a task of the group named name (which
// may be empty). With a limit, Go first waits for a free slot. It returns an
// error wrapping ErrClosed, without running fn, if the group no longer
// accepts tasks, and one wrapping ErrInvalidArgument if fn is nil.
//
// fn's error, unless it is the group's own cancellation, is a failure:
// it cancels the other tasks (unless Supervise) and is returned by Wait.
func (g *Group) Go(name string, fn func(ctx context.Context) error) error {
	if fn == nil {
		return invalid("Group.Go", "nil function")
	}
	return g.goAt(name, fn, 0)
}

// goAt is Go for a fn that wraps the caller's function, whose entry pc is
// what the registry shows as "where created" (0: fn's own, found only if
// the task is listed).
func (g *Group) goAt(name string, fn func(ctx context.Context) error, pc uintptr) error {
	return g.goFrom(name, fn, pc, false)
}

// goEvery starts fn for loom's own calls that fill a group with every
// function they were given (Gather, GatherAll, Race): fn runs even if the
// group's context has been cancelled meanwhile, by an earlier function's
// failure or the parent, and sees that context over. Whether a function
// is called must not depend on how fast another one failed; asyncio.gather,
// errgroup and conc call every function too. Only a closed group refuses,
// and these groups are their caller's own, closed by its Wait.
func (g *Group) goEvery(fn func(ctx context.Context) error, pc uintptr) error {
	return g.goFrom("", fn, pc, true)
}

func (g *Group) goFrom(name string, fn func(ctx context.Context) error, pc uintptr, whileCancelled bool) error {
	if err := g.acquire(); err != nil {
		return err
	}
	if name == "" && !registry.Enabled() {
		// Nothing will list the task, and it has no name to carry: no
		// member, only the goroutine, whose closure holds two words.
		if err := g.s.admit(whileCancelled); err != nil {
			g.release()
			return err
		}
		go g.runUnlisted(fn)
		return nil
	}
	if pc == 0 {
		pc = funcPC(fn)
	}
	m, err := g.s.start(name, fn, pc, 3, whileCancelled)
	if err != nil {
		g.release()
		return err
	}
	go m.run()
	return nil
}

// runUnlisted is the body of an unnamed task started while the registry
// is off: member.run without the member, which only the registry and a
// name need.
func (g *Group) runUnlisted(fn func(ctx context.Context) error) {
	ctx := g.s.ctx
	err := errGoexit // stays if fn calls runtime.Goexit
	defer func() {
		if r := recover(); r != nil {
			err = newPanicError("", r)
		}
		g.exit(nil, nil, outcome(ctx, err), err)
	}()
	err = fn(ctx)
}

// Spawn starts fn as a task of g named name and returns its handle, for a
// result of type T. It behaves as g.Go, but where Go would return an error,
// Spawn returns a task that has already failed with that error. The task's
// failure is the group's too: Wait returns it, so it is never reported as
// unretrieved. Each spawned task has a context of its own, so Cancel on it
// cancels that task alone; like Go's, it is cancelled once the function has
// returned.
func Spawn[T any](g *Group, name string, fn func(ctx context.Context) (T, error)) *Task[T] {
	if g == nil {
		return failedTask[T](name, invalid("loom.Spawn", "nil group"))
	}
	if fn == nil {
		return failedTask[T](name, invalid("loom.Spawn", "nil function"))
	}
	if err := g.acquire(); err != nil {
		return failedTask[T](name, err)
	}
	t := newTask(g.s.ctx, name, g.s.node.ID(), fn)
	lctx, err := g.s.enter(t.node())
	if err != nil {
		g.release()
		return failedTask[T](name, err)
	}
	t.node().MarkRetrieved()
	go t.run(fn, lctx, g)
	return t
}

// acquire takes a slot when the group has a limit.
func (g *Group) acquire() error {
	if g.slots != nil && !g.slots.acquire() {
		return g.s.checkOpen()
	}
	return nil
}

func (g *Group) release() {
	if g.slots != nil {
		g.slots.release()
	}
}

// slots limits how many tasks of a group run at once. A Go that waits for
// a slot parks on a sync.Cond: one lock and no allocation, where a select
// on a slot channel and the group's done channel locks both channels and
// queues on both. The end of the group's context wakes the waiters through
// context.AfterFunc.
type slots struct {
	mu    sync.Mutex
	freed sync.Cond
	used  int
	limit int
	ended bool // the group's context has ended
}

func newSlots(ctx context.Context, limit int) *slots {
	s := &slots{limit: limit}
	s.freed.L = &s.mu
	context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.ended = true
		s.mu.Unlock()
		s.freed.Broadcast()
	})
	return s
}

// acquire takes a slot, waiting for one if need be; false means the
// group's context ended while it waited. A free slot is taken even then:
// the caller learns from the nursery that the group is closed.
func (s *slots) acquire() bool {
	s.mu.Lock()
	for s.used == s.limit {
		if s.ended {
			s.mu.Unlock()
			return false
		}
		s.freed.Wait()
	}
	s.used++
	s.mu.Unlock()
	return true
}

func (s *slots) release() {
	s.mu.Lock()
	s.used--
	s.mu.Unlock()
	s.freed.Signal()
}

// running implements owner.
func (g *Group) running(n *registry.Node) { g.s.markRunning(n) }

// exit implements owner: it frees the task's slot, records its end and, on
// the group's first failure, cancels the others.
func (g *Group) exit(n *registry.Node, m *member, st State, err error) {
	g.release()
	if g.s.leave(n, m, st, err) && !g.supervise {
		g.s.cancel(err)
	}
}

// Cancel cancels the group's context with cause (context.Canceled if nil):
// its tasks are asked to stop and no new task may start. It is an early exit
// that is not itself an error: Wait returns only real failures of the tasks.
// Cancel does not wait; call Wait for that.
func (g *Group) Cancel(cause error) {
	if cause == nil {
		cause = context.Canceled
	}
	g.s.cancel(cause)
}

// Wait blocks until every task of the group has returned, then closes the
// group to new tasks and returns:
//   - the failures of the tasks, joined with errors.Join (a single failure
//     is returned as it is);
//   - otherwise, if tasks ended cancelled because the parent context was
//     cancelled, that context's cause;
//   - otherwise nil.
//
// Later calls return the same. Wait takes no context on purpose: returning
// before the tasks end would let them outlive the group. To stop waiting
// sooner, cancel the group or its parent context.
func (g *Group) Wait() error {
	_ = g.s.waitIdle(context.Background(), "has been waited")
	g.once.Do(g.conclude)
	return g.result
}

// conclude computes Wait's result once every task has returned.
func (g *Group) conclude() {
	res := g.invalid
	if res == nil {
		res = g.s.failure()
	}
	if res == nil && g.s.cancelledCount() > 0 && g.parent.Err() != nil {
		// The tasks were cancelled by the parent, unless the group had
		// been cancelled first for its own reason.
		if cause := context.Cause(g.parent); context.Cause(g.s.ctx) == cause {
			res = cause
		}
	}
	g.result = res
	g.s.cancel(context.Canceled)
	g.s.recycle()
	g.s.finish(res)
}

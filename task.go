package loom

import (
	"context"
	"errors"
	"reflect"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"loom/internal/registry"
)

// State is the life-cycle state of a task, group or scope: Pending,
// Running, then one of Done, Failed or Cancelled, never back.
type State uint32

// The states of a task.
const (
	// Pending: created, its function has not started yet.
	Pending = State(registry.Pending)
	// Running: its function is running.
	Running = State(registry.Running)
	// Done: it finished without error.
	Done = State(registry.Done)
	// Failed: it finished with an error that was not its cancellation, or
	// panicked.
	Failed = State(registry.Failed)
	// Cancelled: its context was cancelled and it returned the
	// cancellation.
	Cancelled = State(registry.Cancelled)
)

// String returns the state's lower-case name: "pending", "running",
// "done", "failed" or "cancelled", as the monitor shows it.
func (s State) String() string { return registry.State(s).String() }

// TaskInfo is a copy of a task's (or group's, or scope's) figures at one
// moment, as the registry and the monitor see them. Times are zero when
// the registry is off.
type TaskInfo struct {
	// ID identifies the task in this process (0 with the registry off);
	// Parent is the ID of the task, group or scope it belongs to, 0 for
	// the process root.
	ID     uint64 `json:"id"`
	Parent uint64 `json:"parent"`
	// Kind is "task", "group" or "scope".
	Kind string `json:"kind"`
	Name string `json:"name"`
	// State is a State's String.
	State string `json:"state"`
	// Created and Ended are when it was made and when it ended (zero while
	// it runs).
	Created time.Time `json:"created"`
	Ended   time.Time `json:"ended,omitzero"`
	// Location is where it was created: the function and file:line of the
	// code that started it.
	Location string `json:"location,omitempty"`
	// Err is the error it ended with, as text.
	Err string `json:"error,omitempty"`
	// Stack is its creation stack, recorded in debug mode only (SetDebug).
	Stack string `json:"creation_stack,omitempty"`
	// Cancellable is true when it has a context of its own that the
	// monitor can cancel (a group's member has not: its group does).
	Cancellable bool `json:"cancellable"`
}

// Task is a function running in its own goroutine, with a name, a result, a
// parent and a registry entry. Start one with Go (owned by the context's
// task or the process root) or Spawn (owned by a Group).
//
// All methods may be called from any goroutine. A Task must not be copied.
type Task[T any] struct {
	mu sync.Mutex
	// done is made on first use (Done, Wait) and closed once the task has
	// settled; most tasks of a pool are never waited on through it.
	done   chan struct{}
	onDone *[]func() // end callbacks, rare: a pointer keeps the task small
	val    T
	err    error
	// fn is the function of a prepared task until it runs or is aborted.
	fn func(context.Context) (T, error)
	// ended is set, after val and err, before the onDone callbacks run;
	// settled is set after they have run, and only then is done closed:
	// whoever sees done closed (and anything that happens because of it)
	// comes after the callbacks, so AsCompleted yields tasks in an order
	// that respects causality.
	ended, settled atomic.Bool

	// The node and the context live inside the task, saving two
	// allocations per task; nctx is the task's context.
	nodeStore registry.Node
	nctx      nodeCtx
}

// node returns the task's registry node: &nodeStore, except in debug
// mode; its Cancel cancels the task's context. The context holds the
// pointer, so the task does not hold it twice.
func (t *Task[T]) node() *registry.Node { return t.nctx.n }

// nodeCtx is the task's context: its cancellable context, plus its node
// under nodeKey so that tasks started under it know their parent.
type nodeCtx struct {
	context.Context
	n *registry.Node
}

func (c *nodeCtx) Value(key any) any {
	if key == (nodeKey{}) {
		return c.n
	}
	return c.Context.Value(key)
}

// nodeKey is the context key under which a task's or group's node is stored,
// so that tasks started under it know their parent.
type nodeKey struct{}

// parentOf returns the ID of the task, group or scope that ctx belongs to.
func parentOf(ctx context.Context) uint64 {
	if n, ok := ctx.Value(nodeKey{}).(*registry.Node); ok {
		return n.ID()
	}
	return 0
}

// TaskID returns the registry ID of the task, group or scope that ctx
// belongs to (the one whose function was given ctx, or one derived from
// it), or 0 if none does or the registry is off. The monitor uses it to
// know its own task; logs can use it to name the task that wrote a line.
func TaskID(ctx context.Context) uint64 {
	if ctx == nil {
		return 0
	}
	return parentOf(ctx)
}

// TaskName returns the name of the task, group or scope that ctx belongs
// to (as TaskID finds it), or "" if none does or the registry is off.
func TaskName(ctx context.Context) string {
	if ctx == nil {
		return ""
	}
	if n, ok := ctx.Value(nodeKey{}).(*registry.Node); ok {
		return n.Name()
	}
	return ""
}

// funcPC returns the entry of fn's code, which the registry turns into
// "where created" for free: the closure passed to Go is almost always
// written where the task is started.
func funcPC(fn any) uintptr {
	return reflect.ValueOf(fn).Pointer()
}

// Go starts fn in a new goroutine as a task named name, and returns at once.
// The task's context is derived from ctx: cancelling ctx, or calling Cancel,
// cancels it. Once fn has returned, the context is cancelled too, as by a
// deferred cancel, so that whatever fn left running under it is told to
// stop. Its parent is the task or group that ctx belongs to, or the process
// root.
//
// The caller owns the task and should call Wait or Result: in debug mode a
// task whose error is never retrieved is reported. With a nil ctx or fn, Go
// returns a task that has already failed with an error wrapping
// ErrInvalidArgument.
func Go[T any](ctx context.Context, name string, fn func(ctx context.Context) (T, error)) *Task[T] {
	if err := checkStart("loom.Go", ctx, fn); err != nil {
		return failedTask[T](name, err)
	}
	t := newTask(ctx, name, parentOf(ctx), fn)
	registry.Publish(t.node())
	if registry.Debug() {
		runtime.AddCleanup(t, reportUnretrieved, t.node())
	}
	t.fn = fn
	go t.runGo()
	return t
}

// runGo is the body of loom.Go's goroutine. The function waits in t.fn,
// so that the go statement captures the task alone: a closure of 16
// bytes, not 48.
func (t *Task[T]) runGo() {
	fn := t.fn
	t.fn = nil
	var lctx context.Context
	if name := t.node().Name(); name != "" && t.node().ID() != 0 {
		// The task's context passes a label lookup on to its parent's.
		lctx, _ = labelsFor(&t.nctx, labelKey{kind: registry.KindTask, name: name})
	}
	t.run(fn, lctx, rootOwner{})
}

func checkStart(where string, ctx context.Context, fn any) error {
	if ctx == nil {
		return invalid(where, "nil context")
	}
	if reflect.ValueOf(fn).IsNil() {
		return invalid(where, "nil function")
	}
	return nil
}

func newTask[T any](ctx context.Context, name string, parent uint64, fn func(context.Context) (T, error)) *Task[T] {
	return initTask(&Task[T]{}, ctx, name, parent, fn)
}

// initTask sets up t, zero and not yet shared, as a new task.
func initTask[T any](t *Task[T], ctx context.Context, name string, parent uint64, fn func(context.Context) (T, error)) *Task[T] {
	n := &t.nodeStore
	if registry.Debug() {
		// The debug check for unretrieved errors runs when the task is
		// collected, so its node must not be part of it.
		n = &registry.Node{}
	}
	n.Init(registry.KindTask, name, parent, funcPC(fn), 2)
	tctx, cancel := context.WithCancelCause(ctx)
	t.nctx = nodeCtx{Context: tctx, n: n}
	n.SetCancel(cancel)
	return t
}

// failedTask returns a task that ended with err without running.
func failedTask[T any](name string, err error) *Task[T] {
	t := &Task[T]{}
	t.nctx = nodeCtx{Context: context.Background(), n: &t.nodeStore}
	t.node().Init(registry.KindTask, name, 0, 0, 2)
	t.err = err
	t.node().Finish(registry.Failed, err)
	t.ended.Store(true)
	t.settled.Store(true)
	return t
}

// owner is what a task reports its start and end to: the process root, a
// group or a scope. exit is given the task's member, for a task started
// by Group.Go or Scope.Go (nil otherwise), to keep for reuse.
type owner interface {
	running(n *registry.Node)
	exit(n *registry.Node, m *member, st State, err error)
}

type rootOwner struct{}

func (rootOwner) running(n *registry.Node)                           { registry.MarkRunning(n) }
func (rootOwner) exit(n *registry.Node, _ *member, _ State, _ error) { registry.Unpublish(n) }

// run executes fn and records its outcome. lctx, when not nil, carries the
// pprof labels for the goroutine.
func (t *Task[T]) run(fn func(context.Context) (T, error), lctx context.Context, o owner) {
	if lctx != nil {
		pprof.SetGoroutineLabels(lctx)
	}
	o.running(t.node())
	t.err = errGoexit // stays if fn calls runtime.Goexit
	// One deferred function turns a panic into a *PanicError and records
	// the end. fn is called from this frame, with no wrapper between, and
	// its results go straight into the task (nobody reads val and err
	// before finish sets ended). An executor's worker runs its tasks
	// through prepared.Run, which does the same in its own frame.
	defer func() { t.settle(recover(), o) }()
	t.val, t.err = fn(&t.nctx)
}

// settle ends t once its function has returned, or panicked with r (nil
// if it did not): a panic becomes a *PanicError. recover must be called
// by the deferred function itself, so its caller passes recover() in.
func (t *Task[T]) settle(r any, o owner) {
	if r != nil {
		t.val, t.err = *new(T), newPanicError(t.node().Name(), r)
	}
	t.finish(o)
}

// finish records the task's outcome (val and err, set by the caller),
// runs the end callbacks, tells the registry and the owner, and only then
// settles the task and closes done: once Wait returns, the registry's
// counts and lists (and a group's count) already show the task ended.
func (t *Task[T]) finish(o owner) {
	err := t.err
	st := outcome(&t.nctx, err)
	t.mu.Lock()
	t.node().Finish(registry.State(st), err)
	t.ended.Store(true)
	var cbs []func()
	if t.onDone != nil {
		cbs, t.onDone = *t.onDone, nil
	}
	t.mu.Unlock()
	for _, f := range cbs {
		f()
	}
	t.node().Cancel(errTaskEnded)
	o.exit(t.node(), nil, st, err)
	t.mu.Lock()
	t.settled.Store(true)
	done := t.done
	t.mu.Unlock()
	if done != nil {
		close(done)
	}
}

// outcome classifies how a task ended: an error counts as a cancellation
// only when the task's context was cancelled and the error is that
// cancellation (or wraps it).
func outcome(ctx context.Context, err error) State {
	switch {
	case err == nil:
		return Done
	case ctx.Err() != nil && isCancellation(ctx, err):
		return Cancelled
	}
	return Failed
}

func isCancellation(ctx context.Context, err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	cause := context.Cause(ctx)
	return cause != nil && errors.Is(err, cause)
}

// Wait blocks until the task ends and returns its result and error, or until
// ctx is done and returns context.Cause(ctx); the task goes on running in
// that case.
func (t *Task[T]) Wait(ctx context.Context) (T, error) {
	if t.settled.Load() {
		return t.Result()
	}
	if !receive(t.Done(), ctx.Done()) {
		var zero T
		return zero, context.Cause(ctx)
	}
	return t.Result()
}

// Result returns the task's result and error without waiting. While the task
// is still running it returns ErrNotDone.
func (t *Task[T]) Result() (T, error) {
	if !t.ended.Load() {
		var zero T
		return zero, ErrNotDone
	}
	t.node().MarkRetrieved()
	return t.val, t.err
}

// Done returns a channel that is closed when the task ends.
func (t *Task[T]) Done() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done == nil {
		t.done = make(chan struct{})
		if t.settled.Load() {
			close(t.done)
		}
	}
	return t.done
}

// Cancel cancels the task's context with cause (context.Canceled if nil). It
// does not wait: the task ends when its function returns. Cancelling a task
// that has ended does nothing.
func (t *Task[T]) Cancel(cause error) {
	if cause == nil {
		cause = context.Canceled
	}
	t.node().Cancel(cause)
}

// State returns the task's current state.
func (t *Task[T]) State() State { return State(t.node().State()) }

// Name returns the task's name.
func (t *Task[T]) Name() string { return t.node().Name() }

// ID returns the task's registry identifier, or 0 if it was started while
// the registry was off.
func (t *Task[T]) ID() uint64 { return t.node().ID() }

// Info returns a copy of the task's figures: parent, state, start and end
// time, where it was created, its error.
func (t *Task[T]) Info() TaskInfo { return TaskInfo(t.node().Info()) }

// whenDone calls f once the task has ended: at once if it has already.
func (t *Task[T]) whenDone(f func()) {
	t.mu.Lock()
	if t.ended.Load() {
		t.mu.Unlock()
		f()
		return
	}
	if t.onDone == nil {
		t.onDone = new([]func())
	}
	*t.onDone = append(*t.onDone, f)
	t.mu.Unlock()
}

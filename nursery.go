package loom

import (
	"context"
	"errors"
	"fmt"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"

	"loom/internal/registry"
)

// nursery is what Group and Scope share: a context for their tasks, the
// lists of live tasks (which are also their registry entry's children), a
// count and a way to wait until it reaches zero.
//
// The count and the "closed" bit share one atomic word, so that starting and
// ending a task costs a compare-and-swap and an add, not a lock that the
// spawning goroutine and the ending tasks would fight over on different
// cores. The live tasks are linked into one of a few lists, each with its own
// lock, chosen by task ID, for the same reason. mu guards the rest: the
// reason for closing, failures, the waiters' channel.
type nursery struct {
	node   registry.Node
	ext    registry.Ext
	ctx    context.Context // the tasks' context, carries node: &vctx
	vctx   nodeCtx         // ctx, inside the nursery: an allocation fewer
	cancel context.CancelCauseFunc
	cctx   context.Context // the cancellable context under ctx, whose Err says it ended
	labels context.Context // pprof labels of the tasks' goroutines; nil when the registry is off
	// sharedLabels says that labels depends only on the nursery's kind
	// and name, so its named tasks' labels can be shared too.
	sharedLabels bool
	kind         registry.Kind // group or scope
	owner        owner         // the Group or Scope, told of each task's end

	state   atomic.Uint64 // running tasks << 1 | closed bit
	waiters atomic.Int32  // goroutines in waitIdle
	lists   [taskShards]taskShard

	mu        sync.Mutex
	closed    error      // why no task may start any more; set before the closed bit
	ended     endedError // the reason once waited or shut down; closed points at it
	idle      chan struct{}
	named     map[string]context.Context // pprof label contexts per task name
	failures  []error
	keep      int // how many failures to keep; -1 for all
	failed    int // tasks that failed, kept or not
	cancelled int // tasks that ended cancelled
}

const maxLabelNames = 64

const (
	closedBit  = 1
	oneTask    = 2
	taskShards = 4
)

type taskShard struct {
	mu    sync.Mutex
	list  registry.List
	spare *member                // ended members, for the shard's next tasks
	nfree int                    // how many
	_     [64 - 8 - 24 - 16]byte // one cache line each
}

// maxSpare is how many ended members a shard keeps for reuse; more go to
// the collector. A nursery keeps its shards' spares until it ends, then
// passes them on (recycle): a long-lived scope whose tasks once ran by
// the thousand holds at most taskShards*maxSpare of them (40 KiB).
const maxSpare = 64

// take returns a spare member, or a new one. The caller holds the lock.
func (l *taskShard) take() *member {
	if l.spare == nil {
		// A chain of spares left by a nursery that ended (recycle).
		if m, _ := spares.Get().(*member); m != nil {
			l.spare, l.nfree = m, m.chain
		}
	}
	m := l.spare
	if m == nil {
		return new(member)
	}
	l.spare, l.nfree = m.nextSpare, l.nfree-1
	m.nextSpare, m.chain = nil, 0
	return m
}

// put keeps m, whose task has ended and which nothing refers to any more,
// for reuse. The caller holds the lock.
func (l *taskShard) put(m *member) {
	*m = member{}
	if l.nfree == maxSpare {
		return
	}
	m.nextSpare = l.spare
	l.spare, l.nfree = m, l.nfree+1
}

// spares holds chains of spare members, each linked through nextSpare
// with its length in the head's chain, passed on by the nurseries that
// ended: a group per request hands its members to the next one, and the
// collector takes what nobody needs.
var spares sync.Pool

// recycle passes the shards' spare members on to the nurseries made
// after s. Call it once no task of s will start or end any more, after
// waitIdle saw the count at zero: every task's leave then happened
// before, through the count's atomic updates, so the shards need no lock.
func (s *nursery) recycle() {
	for i := range s.lists {
		l := &s.lists[i]
		m, n := l.spare, l.nfree
		l.spare, l.nfree = nil, 0
		if m != nil {
			m.chain = n
			spares.Put(m)
		}
	}
}

func (s *nursery) init(parent context.Context, kind registry.Kind, name string, pc uintptr) {
	s.kind = kind
	s.node.UseExt(&s.ext)
	s.node.Init(kind, name, parentOf(parent), pc, 3)
	ctx, cancel := context.WithCancelCause(parent)
	s.vctx = nodeCtx{Context: ctx, n: &s.node}
	s.ctx = &s.vctx
	s.cancel = cancel
	s.cctx = ctx
	s.node.SetCancel(cancel)
	s.node.SetChildren(s)
	s.node.SetState(registry.Running)
	if s.node.ID() != 0 {
		s.labels, s.sharedLabels = labelsFor(parent, labelKey{kind: kind, name: name})
	}
	registry.Publish(&s.node)
}

// Walk implements registry.Container.
func (s *nursery) Walk(f func(*registry.Node)) {
	for i := range s.lists {
		l := &s.lists[i]
		l.mu.Lock()
		l.list.Each(f)
		l.mu.Unlock()
	}
}

// Find implements registry.Container: a task's list is picked by its ID.
func (s *nursery) Find(id uint64, f func(*registry.Node)) bool {
	l := &s.lists[id%taskShards]
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.list.Find(id)
	if n != nil {
		f(n)
	}
	return n != nil
}

// Counts implements registry.Container.
func (s *nursery) Counts() (live, running int) {
	for i := range s.lists {
		l := &s.lists[i]
		l.mu.Lock()
		n, r := l.list.Counts()
		l.mu.Unlock()
		live, running = live+n, running+r
	}
	return live, running
}

// markRunning moves the task n, which entered s, to Running.
func (s *nursery) markRunning(n *registry.Node) {
	s.lists[n.ID()%taskShards].list.MarkRunning(n)
}

// enter admits the task n, a spawned task's node, and lists it, or says
// why not. It returns the pprof label context for the task's goroutine
// (nil when the registry is off). (A member is admitted and listed by
// start.)
func (s *nursery) enter(n *registry.Node) (context.Context, error) {
	if err := s.admit(false); err != nil {
		return nil, err
	}
	if n.ID() == 0 {
		return nil, nil
	}
	l := &s.lists[n.ID()%taskShards]
	l.mu.Lock()
	l.list.Add(n)
	l.mu.Unlock()
	return s.labelsFor(n.Name()), nil
}

// admit counts a new task in, or says why the nursery takes none. With
// whileCancelled, a cancelled context does not refuse the task (it runs,
// and sees its context over); only a closed nursery does.
func (s *nursery) admit(whileCancelled bool) error {
	for {
		st := s.state.Load()
		if st&closedBit != 0 {
			return s.checkOpen()
		}
		if !whileCancelled && s.cctx.Err() != nil {
			return s.checkOpen()
		}
		if s.state.CompareAndSwap(st, st+oneTask) {
			return nil
		}
	}
}

// labelsFor returns the pprof label context for a listed task named name.
func (s *nursery) labelsFor(name string) context.Context {
	if name == "" {
		return s.labels
	}
	if s.sharedLabels {
		if c, ok := sharedLabels(labelKey{kind: s.kind, name: s.node.Name(), task: name}); ok {
			return c
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	lctx, ok := s.named[name]
	if !ok {
		lctx = s.labels
		if len(s.named) < maxLabelNames {
			lctx = pprof.WithLabels(s.labels, pprof.Labels("loom.task", name))
			if s.named == nil {
				s.named = make(map[string]context.Context)
			}
			s.named[name] = lctx
		}
	}
	return lctx
}

// checkOpen says why no task may start, or returns nil. A cancelled
// context closes the nursery.
func (s *nursery) checkOpen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed == nil && s.cctx.Err() != nil {
		s.closeLocked(fmt.Errorf("%w: %s %q was cancelled: %w", ErrClosed, s.kind, s.node.Name(), context.Cause(s.ctx)))
	}
	return s.closed
}

// close refuses new tasks from now on, with the reason err, unless the
// nursery was closed already.
func (s *nursery) close(err error) {
	s.mu.Lock()
	s.closeLocked(err)
	s.mu.Unlock()
}

func (s *nursery) closeLocked(err error) {
	if s.closed != nil {
		return
	}
	s.closed = err
	s.state.Or(closedBit)
}

// failure returns the failures kept, joined, and says how many were not
// kept; nil if none failed.
func (s *nursery) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	errs := s.failures
	if n := s.failed - len(s.failures); n > 0 && s.keep > 0 {
		errs = append(errs[:len(errs):len(errs)], fmt.Errorf("loom: %s %q: %d more failure(s) not kept", s.kind, s.node.Name(), n))
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errors.Join(errs...)
}

// cancelledCount returns how many tasks ended cancelled.
func (s *nursery) cancelledCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cancelled
}

// count returns the number of tasks running.
func (s *nursery) count() int { return int(s.state.Load() >> 1) }

// leave records the end of task n (nil for a task nobody lists), and
// keeps its member m, if it has one, for reuse: nothing may refer to m
// once leave has been called. It reports whether this was the first
// failure.
func (s *nursery) leave(n *registry.Node, m *member, st State, err error) (first bool) {
	if st != Done {
		s.mu.Lock()
		switch st {
		case Failed:
			first = s.failed == 0
			s.failed++
			if s.keep < 0 || len(s.failures) < s.keep {
				s.failures = append(s.failures, err)
			}
		case Cancelled:
			s.cancelled++
		}
		s.mu.Unlock()
	}
	var id uint64
	if n != nil {
		id = n.ID()
	}
	if id != 0 || m != nil {
		// The history's copy is taken while n is still listed: m may be
		// reused once the lock is released.
		registry.Retire(n)
		l := &s.lists[id%taskShards]
		l.mu.Lock()
		if id != 0 {
			l.list.Remove(n)
		}
		if m != nil {
			l.put(m)
		}
		l.mu.Unlock()
	}
	// A waiter registers before it reads the count, so either it sees this
	// decrement or this sees it.
	if s.state.Add(^uint64(oneTask-1))>>1 == 0 && s.waiters.Load() > 0 {
		s.mu.Lock()
		if s.idle != nil {
			close(s.idle)
			s.idle = nil
		}
		s.mu.Unlock()
	}
	return first
}

// endedError is why a group that has been waited, or a scope that has
// been shut down, takes no more tasks. It lives in the nursery and is
// formatted only when read: a group's Wait allocates nothing for it.
type endedError struct {
	s   *nursery
	why string
}

func (e *endedError) Error() string {
	return ErrClosed.Error() + ": " + e.s.kind.String() + " " + strconv.Quote(e.s.node.Name()) + " " + e.why
}

func (e *endedError) Unwrap() error { return ErrClosed }

// closeFor refuses new tasks from now on, for the nursery's own reason
// why, unless it was closed already.
func (s *nursery) closeFor(why string) {
	s.mu.Lock()
	if s.closed == nil {
		s.closeLocked(s.end(why))
	}
	s.mu.Unlock()
}

// end returns the nursery's own reason for closing, saying why. The caller
// holds the lock, and nothing has been closed yet: nobody reads s.ended.
func (s *nursery) end(why string) error {
	s.ended = endedError{s: s, why: why}
	return &s.ended
}

// waitIdle blocks until no task is running, or ctx is done. With why set,
// it also closes the nursery to new tasks, for that reason, at the moment
// the count is zero, so that no task can slip in after.
func (s *nursery) waitIdle(ctx context.Context, why string) error {
	s.waiters.Add(1)
	defer s.waiters.Add(-1)
	for {
		s.mu.Lock()
		st := s.state.Load()
		if st>>1 == 0 {
			if why != "" && s.closed == nil {
				s.closed = s.end(why)
				if !s.state.CompareAndSwap(st, st|closedBit) {
					s.closed = nil // a task started meanwhile: wait for it
					s.mu.Unlock()
					continue
				}
			}
			s.mu.Unlock()
			return nil
		}
		if s.idle == nil {
			s.idle = make(chan struct{})
		}
		idle := s.idle
		s.mu.Unlock()
		if !receive(idle, ctx.Done()) {
			return context.Cause(ctx)
		}
	}
}

// live returns the figures of the tasks still running.
func (s *nursery) live() []TaskInfo {
	var out []TaskInfo
	s.Walk(func(n *registry.Node) { out = append(out, TaskInfo(n.Info())) })
	return out
}

// finish records the end of the group or scope itself.
func (s *nursery) finish(err error) {
	st := Done
	if err != nil {
		st = Failed
	}
	if s.node.State().Terminal() {
		return
	}
	s.node.Finish(registry.State(st), err)
	registry.Unpublish(&s.node)
}

// member is a task started with Group.Go or Scope.Go: only a registry node
// and the function, since nobody holds a handle to it.
//
// Everything the goroutine needs is in the member, so that the go statement
// captures one pointer. Since nobody holds a handle, a member is reused once
// its task has ended: the registry keeps copies of ended nodes, never the
// nodes, so a group's tasks allocate nothing but their goroutine's closure
// once warm, and cost the collector nothing. An ended member waits in the
// list its task was in (taskShard.spare), and is taken and put under the
// list's lock, which linking and unlinking the task take anyway; a
// sync.Pool per task cost two more atomic sequences on lines the other
// core had written.
type member struct {
	node registry.Node
	fn   func(context.Context) error
	s    *nursery
	lctx context.Context // pprof labels for the goroutine; nil for none

	nextSpare *member // the next spare, while m is one
	chain     int     // the length of a chain of spares headed by m, in spares
}

// start admits a new member of s running fn, or says why not. pc is the
// entry of the function the registry shows as "where created"; skip is how
// many of start's callers are loom's, for the debug creation stack;
// whileCancelled is as for admit.
func (s *nursery) start(name string, fn func(context.Context) error, pc uintptr, skip int, whileCancelled bool) (*member, error) {
	if err := s.admit(whileCancelled); err != nil {
		return nil, err
	}
	// The task's list is picked by its ID, and the member comes from
	// that list's spares, so one lock both takes and links it.
	id := registry.NewID()
	l := &s.lists[id%taskShards]
	l.mu.Lock()
	m := l.take()
	m.fn, m.s = fn, s
	m.node.InitID(id, registry.KindTask, name, s.node.ID(), pc, skip+1)
	if id != 0 {
		l.list.Add(&m.node)
	}
	l.mu.Unlock()
	if id != 0 {
		m.lctx = s.labelsFor(name)
	}
	return m, nil
}

// run is the body of a member's goroutine. One deferred function both
// turns a panic into a *PanicError and records the end: a second defer
// frame costs every task of a group a few nanoseconds.
func (m *member) run() {
	if m.lctx != nil {
		pprof.SetGoroutineLabels(m.lctx)
	}
	if m.node.ID() != 0 {
		// An anonymous node (the registry is off) is in no list, and
		// nobody reads its state while it runs.
		m.s.markRunning(&m.node)
	}
	ctx := m.s.ctx
	err := errGoexit // stays if fn calls runtime.Goexit
	defer func() {
		if r := recover(); r != nil {
			err = newPanicError(m.node.Name(), r)
		}
		st := outcome(ctx, err)
		// Even an anonymous node records its end: a scope's OnError
		// is given its figures.
		m.node.Finish(registry.State(st), err)
		// The owner's exit ends with the nursery's leave, which keeps m
		// for reuse: nothing here may touch m after.
		m.s.owner.exit(&m.node, m, st, err)
	}()
	err = m.fn(ctx)
}

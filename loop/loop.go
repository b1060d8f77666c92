package loop

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"loom"
	"loom/internal/registry"
)

var (
	// ErrUnsupported is returned by New on platforms without a poller:
	// loom has epoll (Linux) and kqueue (macOS, FreeBSD, OpenBSD, NetBSD,
	// DragonFly), not Windows' IOCP.
	ErrUnsupported = errors.New("loop: no poller on this platform (epoll on Linux, kqueue on macOS and the BSDs)")

	// ErrLoopClosed is returned for work given to a loop that has stopped,
	// and is the error connections are closed with when their loop stops.
	ErrLoopClosed = errors.New("loop: closed")

	// ErrConnClosed is returned by Conn.Write after Close.
	ErrConnClosed = errors.New("loop: connection closed")

	// ErrIdle is the error a connection is closed with when its idle
	// timeout passes.
	ErrIdle = errors.New("loop: connection idle too long")

	// ErrReadDeadline is the error a connection is closed with when the
	// read deadline set with Conn.SetReadDeadline passes.
	ErrReadDeadline = errors.New("loop: read deadline passed")
)

const (
	stateNew int32 = iota
	stateRunning
	stateStopping
	stateStopped
)

// Loop is an event loop: one goroutine that waits on epoll (or kqueue) and
// runs callbacks, timers and network I/O, like asyncio's loop or libuv's.
// Everything that touches a loop's state runs on that goroutine; other
// goroutines hand work to it with Post.
//
// On Linux the loop waits for its epoll descriptor through Go's own
// netpoller, so a loop with nothing to do parks like any goroutine rather
// than holding an OS thread asleep in epoll_wait; Go's scheduler then
// wakes it without an OS context switch when the loop's peers are in the
// same process, and lets other goroutines use the thread meanwhile. With
// WithLockedThread the loop instead owns an OS thread for as long as it
// runs, for thread-affine C libraries or to keep it off the scheduler.
//
// Methods marked "loop only" must be called from the loop's own callbacks,
// or before Run starts; in debug mode a call from elsewhere is reported.
type Loop struct {
	name    string
	p       *poller
	state   atomic.Int32
	started atomic.Bool
	ctx     context.Context // ends when the loop stops
	cancel  context.CancelCauseFunc
	done    chan struct{}
	owner   atomic.Int64 // the running loop goroutine's ID, for debug mode
	locked  bool         // WithLockedThread
	debug   bool
	slow    time.Duration
	readBuf []byte

	mu        sync.Mutex // guards posted and newTimers
	posted    []func()
	spare     []func()
	newTimers []*Timer // made since the last turn, for the heap
	sleeping  atomic.Bool
	woken     atomic.Bool

	ready           []func()
	timers          timerHeap
	timerSeq        uint64
	timersCancelled atomic.Int64
	fds             fdTable
	dirty           []*Conn
	dirtySpare      []*Conn
	wokeAt          time.Time // when this turn's wait ended
	arena           []byte    // this turn's writes; see Conn.Write
	arenaGen        uint64    // bumped when the arena is reset or replaced
	iov             [][]byte  // scratch for writev

	m metrics
}

// handle is what the loop knows about one watched descriptor.
type handle struct {
	onRead, onWrite func()
	conn            *Conn
	ln              *Listener
	read, write     bool
}

// Option configures a Loop.
type Option func(*Loop) error

// unnamed numbers the loops made without WithName, which are named loop-1,
// loop-2, ...
var unnamed atomic.Int64

// WithName names the loop for the monitor, its metrics and debug reports
// (default "loop-N", N counting the unnamed loops of the process).
func WithName(name string) Option { return func(l *Loop) error { l.name = name; return nil } }

// WithLockedThread runs the loop on an OS thread of its own
// (runtime.LockOSThread) that blocks in epoll_wait or kevent when the loop
// is idle: one loop per OS thread in the strict sense. Use it when the
// loop's callbacks call C libraries that keep per-thread state. Without
// it the loop is an ordinary goroutine that parks in Go's netpoller,
// which costs fewer OS context switches.
func WithLockedThread() Option { return func(l *Loop) error { l.locked = true; return nil } }

// WithDebug turns on the loop's debug checks (also on with LOOM_DEBUG=1):
// callbacks that take longer than slow (0: 100ms, asyncio's default) and
// loop-only calls made from another goroutine are reported as debug events.
func WithDebug(slow time.Duration) Option {
	return func(l *Loop) error {
		if slow < 0 {
			return fmt.Errorf("%w: slow-callback threshold %v", loom.ErrInvalidArgument, slow)
		}
		l.debug = true
		if slow > 0 {
			l.slow = slow
		}
		return nil
	}
}

// New returns a loop that is not running yet: set it up (Listen, Dial,
// CallSoon) and call Run. It fails with ErrUnsupported where there is no
// poller, and with an error wrapping loom.ErrInvalidArgument for bad
// options.
func New(opts ...Option) (*Loop, error) {
	l := &Loop{done: make(chan struct{}), slow: 100 * time.Millisecond,
		readBuf: make([]byte, 64<<10), debug: registry.Debug()}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("loop.New: %w: nil option", loom.ErrInvalidArgument)
		}
		if err := o(l); err != nil {
			return nil, fmt.Errorf("loop.New: %w", err)
		}
	}
	if l.name == "" {
		l.name = fmt.Sprintf("loop-%d", unnamed.Add(1))
	}
	p, err := newPoller(!l.locked)
	if err != nil {
		return nil, fmt.Errorf("loop.New: %w", err)
	}
	l.p = p
	l.ctx, l.cancel = context.WithCancelCause(context.Background())
	registry.Track(l, registry.KindLoop, l.name, (*Loop).report)
	return l, nil
}

// Run runs the loop until ctx ends or Stop is called, then closes its
// listeners and connections (their OnClose sees ErrLoopClosed), runs the
// callbacks already queued, and returns. It returns nil after Stop and
// context.Cause(ctx) when ctx ended. A loop runs once.
func (l *Loop) Run(ctx context.Context) error {
	if ctx == nil {
		return fmt.Errorf("loop.Run: %w: nil context", loom.ErrInvalidArgument)
	}
	if !l.started.CompareAndSwap(false, true) {
		return fmt.Errorf("loop.Run: %w: the loop has already run", ErrLoopClosed)
	}
	// A loop stopped before it ran skips to its shutdown.
	l.state.CompareAndSwap(stateNew, stateRunning)
	if l.locked {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	l.owner.Store(goroutineID())
	stop := context.AfterFunc(ctx, l.Stop)
	defer stop()
	var err error
	for l.state.Load() == stateRunning {
		if err = l.iterate(); err != nil {
			break
		}
	}
	l.shutdown()
	if err != nil {
		return fmt.Errorf("loop %q: %w", l.name, err)
	}
	return context.Cause(ctx)
}

// Stop makes Run return after the current iteration. It may be called from
// any goroutine, more than once.
func (l *Loop) Stop() {
	if l.state.CompareAndSwap(stateRunning, stateStopping) || l.state.CompareAndSwap(stateNew, stateStopping) {
		l.p.wake()
	}
}

// shutdownUnstarted releases a loop that never ran.
func (l *Loop) shutdownUnstarted() {
	if l.state.CompareAndSwap(stateStopping, stateStopped) || l.state.CompareAndSwap(stateNew, stateStopped) {
		l.fds.each(func(fd int, _ *handle) { closeFD(fd) })
		l.cancel(ErrLoopClosed)
		l.p.close()
		close(l.done)
	}
}

// Done returns a channel closed once the loop has stopped and shut down.
func (l *Loop) Done() <-chan struct{} { return l.done }

// Context returns a context that ends when the loop stops: give it to work
// the loop starts.
func (l *Loop) Context() context.Context { return l.ctx }

// Name returns the loop's name.
func (l *Loop) Name() string { return l.name }

// iterate is one turn of the loop: wait for I/O (or a timer, or a post),
// then run what is due.
func (l *Loop) iterate() error {
	l.adoptTimers()
	start := time.Now()
	timeout := -1
	if len(l.ready) > 0 || len(l.dirty) > 0 {
		timeout = 0
	} else if len(l.timers) > 0 {
		d := l.timers[0].when.Sub(start)
		timeout = max(int((d+time.Millisecond-1)/time.Millisecond), 0)
	}
	l.sleeping.Store(true)
	if timeout != 0 && l.hasPosted() {
		timeout = 0
	}
	l.m.enterPhase(start, true)
	l.wokeAt = time.Time{}
	err := l.p.wait(timeout, l.woke, l.onEvent)
	if l.wokeAt.IsZero() {
		l.woke() // interrupted, or failed: nothing was dispatched
	}
	woke := l.wokeAt
	waited := woke.Sub(start)
	l.m.spend(woke, waited, true)
	if err != nil {
		return err
	}
	l.runTimers()
	l.takePosted()
	l.runReady()
	l.flushWrites()
	end := time.Now()
	l.m.spend(end, end.Sub(woke), false)
	l.m.iteration(end, end.Sub(start), waited, len(l.ready))
	return nil
}

// woke ends the turn's wait, before the ready descriptors are dispatched:
// their handlers are the loop's work, not I/O wait.
func (l *Loop) woke() {
	l.sleeping.Store(false)
	l.woken.Store(false)
	l.wokeAt = time.Now()
	l.m.enterPhase(l.wokeAt, false)
}

// now returns the time the loop woke for this turn, read once for all
// the turn's events (idle timeouts need no finer time), or the clock's
// between turns.
func (l *Loop) now() time.Time {
	if !l.wokeAt.IsZero() {
		return l.wokeAt
	}
	return time.Now()
}

// onEvent dispatches one ready descriptor.
func (l *Loop) onEvent(fd int, readable, writable, hangup bool) {
	h := l.fds.get(fd)
	if h == nil {
		return
	}
	switch {
	case h.conn != nil:
		h.conn.onEvent(readable, writable, hangup)
	case h.ln != nil:
		h.ln.accept()
	default:
		if (readable || hangup) && h.onRead != nil {
			l.call(h.onRead)
		}
		if (writable || hangup) && h.onWrite != nil && l.fds.get(fd) == h {
			l.call(h.onWrite)
		}
	}
}

// call runs one callback, timing it in debug mode.
func (l *Loop) call(f func()) {
	l.m.callbacks++
	if !l.debug {
		f()
		return
	}
	start := time.Now()
	f()
	l.checkSlow(start, "a callback")
}

// checkSlow reports, in debug mode, a callback or connection handler that
// began at start and ran for longer than the slow-callback threshold.
func (l *Loop) checkSlow(start time.Time, what string) {
	if d := time.Since(start); d >= l.slow {
		l.m.slowCallbacks.Add(1)
		registry.Report(registry.Event{Check: loom.CheckSlowCallback,
			Message: fmt.Sprintf("loop %q: %s ran for %v (threshold %v); blocking work belongs in RunInExecutor", l.name, what, d, l.slow)})
	}
}

func (l *Loop) runTimers() {
	if n := l.timersCancelled.Load(); n > 64 && n > int64(len(l.timers))/2 {
		l.timersCancelled.Add(-int64(l.timers.purge()))
	}
	now := time.Now()
	for len(l.timers) > 0 && !l.timers[0].when.After(now) {
		t := l.timers.pop()
		if !t.state.CompareAndSwap(timerPending, timerFired) {
			l.timersCancelled.Add(-1)
			continue
		}
		l.m.timers++
		l.call(t.fn)
	}
}

// runReady runs the callbacks queued before this turn; those they queue run
// on the next one, so a callback that re-queues itself cannot starve I/O.
func (l *Loop) runReady() {
	n := len(l.ready)
	for i := 0; i < n; i++ {
		f := l.ready[i]
		l.ready[i] = nil
		l.call(f)
	}
	rest := copy(l.ready, l.ready[n:])
	clear(l.ready[rest:])
	l.ready = l.ready[:rest]
}

// AddReader calls f on the loop whenever fd is readable, until
// RemoveReader (loop only). fd stays owned by the caller, who must remove
// it before closing it.
func (l *Loop) AddReader(fd int, f func()) error {
	return l.watch("AddReader", fd, f, true)
}

// AddWriter calls f on the loop whenever fd is writable, until RemoveWriter
// (loop only).
func (l *Loop) AddWriter(fd int, f func()) error {
	return l.watch("AddWriter", fd, f, false)
}

func (l *Loop) watch(where string, fd int, f func(), read bool) error {
	l.checkThread(where)
	if fd < 0 || f == nil {
		return fmt.Errorf("loop.%s: %w: fd %d, nil callback %v", where, loom.ErrInvalidArgument, fd, f == nil)
	}
	h := l.fds.get(fd)
	if h == nil {
		h = &handle{}
	} else if h.conn != nil || h.ln != nil {
		return fmt.Errorf("loop.%s: %w: fd %d belongs to a connection or listener", where, loom.ErrInvalidArgument, fd)
	}
	r, w := h.read || read, h.write || !read
	var err error
	if l.fds.get(fd) == nil {
		err = l.p.add(fd, r, w)
	} else {
		err = l.p.modify(fd, r, w)
	}
	if err != nil {
		return fmt.Errorf("loop.%s: %w", where, err)
	}
	if read {
		h.onRead = f
	} else {
		h.onWrite = f
	}
	h.read, h.write = r, w
	l.fds.set(fd, h)
	return nil
}

// RemoveReader stops watching fd for reading and reports whether it was.
func (l *Loop) RemoveReader(fd int) bool { return l.unwatch("RemoveReader", fd, true) }

// RemoveWriter stops watching fd for writing and reports whether it was.
func (l *Loop) RemoveWriter(fd int) bool { return l.unwatch("RemoveWriter", fd, false) }

func (l *Loop) unwatch(where string, fd int, read bool) bool {
	l.checkThread(where)
	h := l.fds.get(fd)
	if h == nil || h.conn != nil || h.ln != nil || (read && !h.read) || (!read && !h.write) {
		return false
	}
	if read {
		h.read, h.onRead = false, nil
	} else {
		h.write, h.onWrite = false, nil
	}
	if !h.read && !h.write {
		_ = l.p.remove(fd)
		l.fds.del(fd)
	} else {
		_ = l.p.modify(fd, h.read, h.write)
	}
	return true
}

// checkThread reports, in debug mode, a loop-only call made from another
// thread while the loop runs, and says whether it was one.
func (l *Loop) checkThread(where string) bool {
	if l.debug && l.state.Load() == stateRunning && goroutineID() != l.owner.Load() {
		l.m.wrongThread.Add(1)
		registry.Report(registry.Event{Check: loom.CheckWrongThread,
			Message: fmt.Sprintf("loop %q: %s called from another goroutine than the loop's; use Post", l.name, where)})
		return true
	}
	return false
}

// shutdown closes what the loop holds and runs what is queued.
func (l *Loop) shutdown() {
	l.state.Store(stateStopping)
	l.fds.each(func(fd int, h *handle) {
		switch {
		case h.conn != nil:
			h.conn.finish(ErrLoopClosed)
		case h.ln != nil:
			h.ln.close()
		default:
			_ = l.p.remove(fd)
			l.fds.del(fd)
		}
	})
	l.cancel(ErrLoopClosed)
	// Run what was queued, then refuse more: nothing posted before Stop is
	// lost.
	for range 3 {
		l.takePosted()
		l.runReady()
		if len(l.ready) == 0 && !l.hasPosted() {
			break
		}
	}
	l.mu.Lock()
	l.state.Store(stateStopped)
	left := l.posted
	l.posted = nil
	l.mu.Unlock()
	for _, f := range left {
		l.call(f)
	}
	for _, f := range l.ready {
		l.call(f)
	}
	l.ready = nil
	l.p.close()
	close(l.done)
}

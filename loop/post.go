package loop

import (
	"context"
	"fmt"
	"time"

	"loom"
)

// Handing work to a loop. Post, CallSoon, CallLater and CallAt may be
// called from any goroutine: they append to a queue under the loop's
// mutex and wake the loop if it waits, and the loop moves what was queued
// into its own ready list and timer heap at the start of each turn. An
// uncontended mutex costs the loop's own callbacks a few nanoseconds per
// call, where a call from the wrong goroutine to an unguarded list would
// race and, with the loop idle, never run: asyncio's call_soon translated
// word for word (go l.Run(ctx); l.CallSoon(f)) must simply work.
//
// No wake-up is lost: the loop marks itself sleeping and then looks at the
// queues once more before it waits; a poster appends and then reads the
// mark. Go's atomics are sequentially consistent, so at least one of the
// two sees the other.

// Post queues f to run on the loop, from any goroutine, and wakes the loop
// if it is waiting. It returns ErrLoopClosed once the loop has stopped: f
// will not run. Callbacks posted before the loop stops still run, during
// its shutdown.
func (l *Loop) Post(f func()) error {
	if f == nil {
		return fmt.Errorf("loop.Post: %w: nil function", loom.ErrInvalidArgument)
	}
	l.mu.Lock()
	if l.state.Load() == stateStopped {
		l.mu.Unlock()
		return ErrLoopClosed
	}
	l.posted = append(l.posted, f)
	l.mu.Unlock()
	l.wakeIfSleeping()
	return nil
}

// CallSoon queues f to run on the loop's next turn, like asyncio's
// call_soon. It may be called from any goroutine; it is Post without the
// error: on a loop that has stopped, f does not run (use Post to learn
// that). A nil f is ignored.
func (l *Loop) CallSoon(f func()) {
	if f != nil {
		_ = l.Post(f)
	}
}

// wakeIfSleeping wakes the loop if it waits in the poller, once per wait.
func (l *Loop) wakeIfSleeping() {
	if l.sleeping.Load() && l.woken.CompareAndSwap(false, true) {
		l.p.wake()
	}
}

// postedLen counts the callbacks posted and not yet taken.
func (l *Loop) postedLen() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.posted)
}

func (l *Loop) hasPosted() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.posted) > 0 || len(l.newTimers) > 0
}

// takePosted moves what was posted into the ready list.
func (l *Loop) takePosted() {
	l.mu.Lock()
	posted := l.posted
	l.posted = l.spare[:0]
	l.mu.Unlock()
	l.ready = append(l.ready, posted...)
	clear(posted)
	l.spare = posted
}

// CallLater runs f after d on the loop and returns its timer. It may be
// called from any goroutine.
func (l *Loop) CallLater(d time.Duration, f func()) *Timer {
	return l.CallAt(time.Now().Add(d), f)
}

// CallAt runs f at t on the loop and returns its timer. It may be called
// from any goroutine. Timers due at the same time run in the order they
// were made. A nil f gives a timer that never runs. On a loop that has
// stopped, the timer never runs either.
func (l *Loop) CallAt(t time.Time, f func()) *Timer {
	tm := &Timer{when: t, fn: f, loop: l}
	if f == nil {
		tm.state.Store(timerFired)
		return tm
	}
	l.mu.Lock()
	l.newTimers = append(l.newTimers, tm)
	l.mu.Unlock()
	// A timer due before the wait would end must shorten it.
	l.wakeIfSleeping()
	return tm
}

// adoptTimers moves the timers made since the last turn into the heap, in
// the order they were made.
func (l *Loop) adoptTimers() {
	l.mu.Lock()
	for i, tm := range l.newTimers {
		l.timerSeq++
		tm.seq = l.timerSeq
		l.timers.push(tm)
		l.newTimers[i] = nil
	}
	l.newTimers = l.newTimers[:0]
	l.mu.Unlock()
}

// Submit runs fn on the loop, from any goroutine, and returns its task:
// asyncio's run_coroutine_threadsafe. fn runs as one callback, so it must
// not block; its context is derived from ctx (and the task is its child in
// the monitor). It returns ErrLoopClosed, and a task that has failed with
// it, once the loop has stopped.
func Submit[T any](ctx context.Context, l *Loop, name string, fn func(ctx context.Context) (T, error)) (*loom.Task[T], error) {
	t, p := loom.Prepare(ctx, name, fn)
	if ctx == nil || fn == nil {
		_, err := t.Wait(context.Background()) // failed at once, saying what was wrong
		return t, err
	}
	err := fmt.Errorf("loop.Submit: %w: nil loop", loom.ErrInvalidArgument)
	if l != nil {
		err = l.Post(func() { _ = p.Run() })
	}
	if err != nil {
		p.Abort(err)
		_, _ = t.Wait(context.Background()) // the caller has the error: not unretrieved
		return t, err
	}
	return t, nil
}

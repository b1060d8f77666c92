package loom

import (
	"context"
	"sync"

	"loom/internal/registry"
)

// Cond is a condition variable whose Wait takes a context, like
// asyncio.Condition: goroutines wait, holding nothing, until another one
// signals that the condition they care about may have changed.
//
// Unlike sync.Cond, a waiter can stop waiting when its context ends, and no
// signal is lost on the way: a waiter is queued before it releases the
// lock, so a Signal sent right after the unlock finds it, and a waiter
// whose context ends at the moment it is signalled reports the signal
// rather than the cancellation.
//
// Create one with NewCond. It must not be copied after first use.
type Cond struct {
	l       sync.Locker
	mu      sync.Mutex
	waiters waitList[struct{}]
}

// NewCond returns a Cond on l, registered with the monitor under name. A nil
// l gives a Cond whose Wait returns an error wrapping ErrInvalidArgument.
func NewCond(name string, l sync.Locker) *Cond {
	c := &Cond{l: l}
	if l != nil {
		registry.Track(c, registry.KindCond, name, (*Cond).report)
	}
	return c
}

// Wait unlocks the Cond's lock, waits for Signal or Broadcast or for ctx to
// end, then locks it again before returning: the caller must hold the lock
// when calling Wait and holds it when Wait returns, whatever it returns. It
// returns nil when signalled and context.Cause(ctx) when ctx ended first;
// if ctx has already ended, Wait returns at once without unlocking.
//
// As with sync.Cond, a woken waiter cannot assume the condition holds:
// call Wait in a loop that checks it.
func (c *Cond) Wait(ctx context.Context) error {
	if ctx == nil {
		return invalid("loom.Cond.Wait", "nil context")
	}
	if c.l == nil {
		return invalid("loom.Cond.Wait", "Cond has no lock; create it with NewCond")
	}
	if err := context.Cause(ctx); err != nil {
		return err
	}
	w := plainWaiters.get(ctx)
	c.mu.Lock()
	c.waiters.push(w)
	c.mu.Unlock()
	c.l.Unlock()

	var err error
	if !await(&c.mu, &c.waiters, w, ctx.Done()) {
		err = context.Cause(ctx)
	}
	c.l.Lock()
	return err
}

// Signal wakes the goroutine that has waited longest, if any. The caller
// may, but need not, hold the lock.
func (c *Cond) Signal() {
	c.mu.Lock()
	if w := c.waiters.head; w != nil {
		c.waiters.serve(w)
	}
	c.mu.Unlock()
}

// Broadcast wakes every waiting goroutine.
func (c *Cond) Broadcast() {
	c.mu.Lock()
	for w := c.waiters.head; w != nil; w = c.waiters.head {
		c.waiters.serve(w)
	}
	c.mu.Unlock()
}

// Waiting returns how many Wait calls are blocked.
func (c *Cond) Waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waiters.n
}

func (c *Cond) report(f *registry.Figures) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f.Stat("waiting", float64(c.waiters.n))
	c.waiters.report(f)
}

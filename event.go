package loom

import (
	"context"
	"sync"

	"loom/internal/registry"
)

// Event is a flag that goroutines can wait for, like asyncio.Event: Set
// wakes every waiter, and Wait returns at once while the flag is set. Unlike
// closing a channel, an Event can be cleared and set again.
//
// The zero value is a clear, unregistered Event; NewEvent gives one the
// monitor can see. It must not be copied after first use.
type Event struct {
	mu      sync.Mutex
	set     bool
	waiters waitList[struct{}]
}

// NewEvent returns a clear Event registered with the monitor under name.
func NewEvent(name string) *Event {
	e := &Event{}
	registry.Track(e, registry.KindEvent, name, (*Event).report)
	return e
}

// Set sets the flag and wakes every goroutine waiting for it.
func (e *Event) Set() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.set = true
	for w := e.waiters.head; w != nil; w = e.waiters.head {
		e.waiters.serve(w)
	}
}

// Clear clears the flag: Wait blocks again until the next Set.
func (e *Event) Clear() {
	e.mu.Lock()
	e.set = false
	e.mu.Unlock()
}

// IsSet reports whether the flag is set.
func (e *Event) IsSet() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.set
}

// Wait returns nil once the flag is set, at once if it is set now, or
// context.Cause(ctx) if ctx ends first. A Set that happens while Wait is
// returning for ctx may still be reported as nil.
func (e *Event) Wait(ctx context.Context) error {
	if ctx == nil {
		return invalid("loom.Event.Wait", "nil context")
	}
	e.mu.Lock()
	if e.set {
		e.mu.Unlock()
		return nil
	}
	if err := context.Cause(ctx); err != nil {
		e.mu.Unlock()
		return err
	}
	w := plainWaiters.get(ctx)
	e.waiters.push(w)
	e.mu.Unlock()

	if await(&e.mu, &e.waiters, w, ctx.Done()) {
		return nil
	}
	return context.Cause(ctx)
}

// Waiting returns how many Wait calls are blocked.
func (e *Event) Waiting() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.waiters.n
}

func (e *Event) report(f *registry.Figures) {
	e.mu.Lock()
	defer e.mu.Unlock()
	set := 0.0
	if e.set {
		set = 1
	}
	f.Stat("set", set)
	f.Stat("waiting", float64(e.waiters.n))
	e.waiters.report(f)
}

package loom

import (
	"context"
	"fmt"
	"sync"

	"loom/internal/registry"
)

// Barrier makes a fixed number of parties wait for each other, like
// asyncio.Barrier and threading.Barrier: each calls Wait, and all are
// released together when the last one arrives; the barrier then resets
// itself for the next round.
//
// A barrier breaks when Abort is called, when Reset is called while parties
// are waiting, or when a waiting party's context ends: every party waiting
// then gets an error wrapping ErrBrokenBarrier, and so does every later
// Wait until Reset.
//
// Create one with NewBarrier; all methods may be called from any goroutine.
type Barrier struct {
	mu      sync.Mutex
	parties int
	broken  error // why the barrier is broken; nil while it works
	waiters waitList[struct{}]
	err     error // set when the constructor's arguments were bad
}

// NewBarrier returns a barrier for the given number of parties, registered
// with the monitor under name. Fewer than one party gives a barrier whose
// every Wait returns an error wrapping ErrInvalidArgument.
func NewBarrier(name string, parties int) *Barrier {
	b := &Barrier{parties: parties}
	if parties < 1 {
		b.err = invalid("loom.NewBarrier", "%d parties; need at least 1", parties)
		return b
	}
	registry.Track(b, registry.KindBarrier, name, (*Barrier).report)
	return b
}

// Wait blocks until all parties have called it, then returns the caller's
// arrival index in this round: 0 for the first to arrive, parties-1 for the
// last, whose arrival releases the others. If the barrier is or becomes
// broken, Wait returns -1 and an error wrapping ErrBrokenBarrier. If ctx
// ends first, Wait breaks the barrier for the others and returns -1 and
// context.Cause(ctx).
func (b *Barrier) Wait(ctx context.Context) (int, error) {
	if ctx == nil {
		return -1, invalid("loom.Barrier.Wait", "nil context")
	}
	b.mu.Lock()
	if b.err != nil {
		b.mu.Unlock()
		return -1, b.err
	}
	if b.broken != nil {
		err := b.broken
		b.mu.Unlock()
		return -1, err
	}
	if err := context.Cause(ctx); err != nil {
		b.breakLocked(fmt.Errorf("%w: a party's context ended: %w", ErrBrokenBarrier, err))
		b.mu.Unlock()
		return -1, err
	}
	index := b.waiters.n
	if index == b.parties-1 {
		for w := b.waiters.head; w != nil; w = b.waiters.head {
			b.waiters.serve(w)
		}
		b.mu.Unlock()
		return index, nil
	}
	w := plainWaiters.get(ctx)
	b.waiters.push(w)
	b.mu.Unlock()

	if !w.wait(ctx.Done()) {
		b.mu.Lock()
		if w.linked {
			b.waiters.remove(w)
			err := context.Cause(ctx)
			b.breakLocked(fmt.Errorf("%w: a party's context ended: %w", ErrBrokenBarrier, err))
			b.mu.Unlock()
			plainWaiters.put(w)
			return -1, err
		}
		b.mu.Unlock()
	}
	err := w.err
	plainWaiters.put(w)
	if err != nil {
		return -1, err
	}
	return index, nil
}

// breakLocked breaks the barrier with err and fails every waiter with it.
func (b *Barrier) breakLocked(err error) {
	b.broken = err
	b.failWaiters(err)
}

func (b *Barrier) failWaiters(err error) {
	for w := b.waiters.head; w != nil; w = b.waiters.head {
		w.err = err
		b.waiters.serve(w)
	}
}

// Abort breaks the barrier: waiting parties, and later Wait calls until
// Reset, get an error wrapping ErrBrokenBarrier.
func (b *Barrier) Abort() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil && b.broken == nil {
		b.breakLocked(fmt.Errorf("%w: aborted", ErrBrokenBarrier))
	}
}

// Reset returns the barrier to its initial, empty state. Parties waiting in
// the current round get an error wrapping ErrBrokenBarrier.
func (b *Barrier) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failWaiters(fmt.Errorf("%w: reset while waiting", ErrBrokenBarrier))
	b.broken = nil
}

// Parties returns the number of parties the barrier waits for.
func (b *Barrier) Parties() int { return b.parties }

// Waiting returns how many parties are waiting in the current round.
func (b *Barrier) Waiting() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.waiters.n
}

// Broken reports whether the barrier is broken.
func (b *Barrier) Broken() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.broken != nil
}

func (b *Barrier) report(f *registry.Figures) {
	b.mu.Lock()
	defer b.mu.Unlock()
	broken := 0.0
	if b.broken != nil {
		broken = 1
	}
	f.Stat("parties", float64(b.parties))
	f.Stat("waiting", float64(b.waiters.n))
	f.Stat("broken", broken)
	b.waiters.report(f)
}

package loom

import (
	"context"
	"sync"

	"loom/internal/registry"
)

// Lock is a mutual-exclusion lock whose Lock takes a context, like
// asyncio.Lock: a goroutine waiting for it can give up when its context
// ends. Waiters are served in FIFO order and the lock passes straight to the
// next one on Unlock, so nobody barges in.
//
// The zero value is an unlocked, unregistered Lock; NewLock gives one the
// monitor can see. A Lock is not tied to a goroutine: one goroutine may lock
// it and another unlock it. It must not be copied after first use.
//
// Prefer sync.Mutex for short critical sections that never wait on I/O:
// it is several times cheaper. Use Lock where the holder may block and the
// waiters must be able to stop waiting.
type Lock struct {
	mu      sync.Mutex
	locked  bool
	waiters waitList[struct{}]
}

// NewLock returns an unlocked Lock registered with the monitor under name.
func NewLock(name string) *Lock {
	l := &Lock{}
	registry.Track(l, registry.KindLock, name, (*Lock).report)
	return l
}

// Lock locks l, waiting until it is free or ctx ends; then it returns
// context.Cause(ctx) without the lock. If the lock is handed over just as
// ctx ends, Lock may return nil: the caller then holds it.
func (l *Lock) Lock(ctx context.Context) error {
	if ctx == nil {
		return invalid("loom.Lock.Lock", "nil context")
	}
	done := ctx.Done()
	l.mu.Lock()
	if done != nil {
		select {
		case <-done:
			l.mu.Unlock()
			return context.Cause(ctx)
		default:
		}
	}
	if !l.locked {
		l.locked = true
		l.mu.Unlock()
		return nil
	}
	w := plainWaiters.get(ctx)
	l.waiters.push(w)
	l.mu.Unlock()

	if await(&l.mu, &l.waiters, w, done) {
		return nil // the lock was handed over
	}
	return context.Cause(ctx)
}

// TryLock locks l if it is free and nobody is waiting, and reports whether
// it did.
func (l *Lock) TryLock() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.locked {
		return false
	}
	l.locked = true
	return true
}

// Unlock unlocks l, handing it to the longest waiter if there is one. Like
// sync.Mutex, unlocking a Lock that is not locked is a programming error:
// Unlock panics.
func (l *Lock) Unlock() {
	l.mu.Lock()
	if !l.locked {
		l.mu.Unlock()
		panic("loom: Unlock of unlocked Lock")
	}
	var next chan struct{}
	if w := l.waiters.head; w != nil {
		next = l.waiters.take(w) // l stays locked: w owns it now
	} else {
		l.locked = false
	}
	l.mu.Unlock()
	wake(next)
}

// Locked reports whether l is locked.
func (l *Lock) Locked() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.locked
}

// Waiting returns how many Lock calls are blocked.
func (l *Lock) Waiting() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waiters.n
}

func (l *Lock) report(f *registry.Figures) {
	l.mu.Lock()
	defer l.mu.Unlock()
	locked := 0.0
	if l.locked {
		locked = 1
	}
	f.Stat("locked", locked)
	f.Stat("waiting", float64(l.waiters.n))
	l.waiters.report(f)
}

package loom

import (
	"context"
	"fmt"
	"sync"

	"loom/internal/registry"
)

// Semaphore is a weighted, FIFO-fair counting semaphore whose Acquire takes
// a context, like golang.org/x/sync/semaphore.Weighted, with what that type
// lacks: Release of more than is held returns an error wrapping
// ErrOverRelease instead of panicking (Python's BoundedSemaphore), the size
// can change while it is in use (Resize, for adaptive limits), and the
// monitor sees the held and waiting counts and which tasks wait.
//
// It is written by hand rather than wrapped around x/sync/semaphore because
// a Weighted cannot be resized and does not expose its counts: keeping them
// beside it would take a second lock on every call. The algorithm is the
// same: one mutex, a FIFO of waiters, and a waiter at the head that asks
// for more than is free blocks the ones behind it, so large requests are
// not starved.
//
// Create one with NewSemaphore; all methods may be called from any
// goroutine.
type Semaphore struct {
	mu      sync.Mutex
	size    int64
	cur     int64
	waiters waitList[struct{}]
	err     error // set when the constructor's arguments were bad
	res     *registry.Resource
}

// NewSemaphore returns a semaphore of the given size, registered with the
// monitor under name. A negative size gives a semaphore whose every method
// returns an error wrapping ErrInvalidArgument.
func NewSemaphore(name string, size int64) *Semaphore {
	s := &Semaphore{size: size}
	if size < 0 {
		s.size = 0
		s.err = invalid("loom.NewSemaphore", "negative size %d", size)
		return s
	}
	s.res = registry.Track(s, registry.KindSemaphore, name, (*Semaphore).report)
	return s
}

// Acquire takes n from the semaphore, blocking until that much is free and
// every earlier waiter has been served, or until ctx ends, when it returns
// context.Cause(ctx) having taken nothing. If the weight is granted just as
// ctx ends, Acquire gives it back and returns context.Cause(ctx) too, as
// x/sync's Weighted does since go.dev/issue/63615: nil means the caller
// holds n. A negative n,
// or an n larger than the semaphore's size, is an error wrapping
// ErrInvalidArgument; so is an n that a later Resize makes larger than the
// size, for a waiter already queued.
func (s *Semaphore) Acquire(ctx context.Context, n int64) error {
	if ctx == nil {
		return invalid("loom.Semaphore.Acquire", "nil context")
	}
	if n < 0 {
		return invalid("loom.Semaphore.Acquire", "negative weight %d", n)
	}
	done := ctx.Done()
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return s.err
	}
	if done != nil {
		select {
		case <-done:
			s.mu.Unlock()
			return context.Cause(ctx)
		default:
		}
	}
	if s.size-s.cur >= n && s.waiters.n == 0 {
		s.cur += n
		s.mu.Unlock()
		return nil
	}
	if n > s.size {
		size := s.size
		s.mu.Unlock()
		return invalid("loom.Semaphore.Acquire", "weight %d exceeds the size %d", n, size)
	}
	w := plainWaiters.get(ctx)
	w.n = n
	s.waiters.push(w)
	s.mu.Unlock()

	served := w.wait(done)
	if !served {
		s.mu.Lock()
		if served = !w.linked; !served {
			front := s.waiters.head == w
			s.waiters.remove(w)
			if front {
				// w may have been what held back smaller waiters
				// behind it.
				s.notify()
			}
		}
		s.mu.Unlock()
	}
	err := w.err
	plainWaiters.put(w)
	if !served || err != nil {
		// Not served, or served with an error (a Resize below n):
		// nothing is held.
		if err == nil {
			err = context.Cause(ctx)
		}
		return err
	}
	if done != nil {
		select {
		case <-done:
			// Granted after ctx ended (the case of go.dev/issue/63615):
			// give the weight back rather than return success to a
			// caller whose context is over.
			s.mu.Lock()
			s.cur -= n
			s.notify()
			s.mu.Unlock()
			return context.Cause(ctx)
		default:
		}
	}
	return nil
}

// TryAcquire takes n without blocking and reports whether it did. It
// reports false when waiters are queued, even if n is free, so that it
// never overtakes them, and for a negative n.
func (s *Semaphore) TryAcquire(n int64) bool {
	if n < 0 {
		return false
	}
	s.mu.Lock()
	ok := s.err == nil && s.size-s.cur >= n && s.waiters.n == 0
	if ok {
		s.cur += n
	}
	s.mu.Unlock()
	return ok
}

// Release gives back n and wakes the waiters it lets through. Releasing
// more than is held changes nothing and returns an error wrapping
// ErrOverRelease; a negative n is an error wrapping ErrInvalidArgument.
func (s *Semaphore) Release(n int64) error {
	if n < 0 {
		return invalid("loom.Semaphore.Release", "negative weight %d", n)
	}
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return s.err
	}
	if n > s.cur {
		held := s.cur
		s.mu.Unlock()
		return fmt.Errorf("loom.Semaphore.Release(%d) with %d held: %w", n, held, ErrOverRelease)
	}
	s.cur -= n
	s.notify()
	s.mu.Unlock()
	return nil
}

// Resize changes the semaphore's size. Growing it wakes the waiters that now
// fit. Shrinking it takes nothing back from holders: new acquisitions wait
// until the held count is below the new size. A queued waiter whose weight
// exceeds the new size fails with an error wrapping ErrInvalidArgument. A
// negative size is an error wrapping ErrInvalidArgument.
func (s *Semaphore) Resize(size int64) error {
	if size < 0 {
		return invalid("loom.Semaphore.Resize", "negative size %d", size)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.size = size
	for w := s.waiters.head; w != nil; {
		next := w.next
		if w.n > size {
			w.err = invalid("loom.Semaphore.Acquire", "weight %d exceeds the new size %d", w.n, size)
			s.waiters.serve(w)
		}
		w = next
	}
	s.notify()
	return nil
}

// notify serves waiters in order while the head one fits. s.mu is held.
func (s *Semaphore) notify() {
	for w := s.waiters.head; w != nil && s.size-s.cur >= w.n; w = s.waiters.head {
		s.cur += w.n
		s.waiters.serve(w)
	}
}

// Size returns the semaphore's current size.
func (s *Semaphore) Size() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}

// Held returns how much is held. After a shrinking Resize it may exceed Size
// for a while.
func (s *Semaphore) Held() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// Waiting returns how many Acquire calls are blocked.
func (s *Semaphore) Waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiters.n
}

func (s *Semaphore) report(f *registry.Figures) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.Stat("size", float64(s.size))
	f.Stat("held", float64(s.cur))
	f.Stat("waiting", float64(s.waiters.n))
	s.waiters.report(f)
}

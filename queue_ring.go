package loom

import "context"

// The FIFO queue's paths (NewQueue, bounded or not). Items always pass
// through the ring (a chain of rings when unbounded, see chain.go), so a
// put on an unbounded queue never waits; the lock guards only the wait
// lists. A put or get that succeeds on the ring
// looks, without the lock, at whether anyone waits on the other side
// (nGetters, nPutters) and, if so, serves them under the lock.
//
// No wake-up is lost: a goroutine about to wait first joins its wait list
// and publishes the count, then tries the ring once more; a put (or get)
// first changes the ring, then reads the count. Go's atomics are
// sequentially consistent, so at least one of the two sees the other.

// ringPut is Put on the ring.
func (q *Queue[T]) ringPut(ctx context.Context, v T) error {
	switch q.ring.push(v) {
	case ringOK:
		q.serveGetters()
		return nil
	case ringShut:
		return q.shutErr()
	}
	if err := context.Cause(ctx); err != nil {
		return err
	}
	q.mu.Lock()
	w := q.pool.get(ctx)
	w.val = v
	q.putters.push(w)
	q.mirror()
	if r := q.ring.push(v); r != ringFull {
		q.putters.remove(w)
		q.mirror()
		q.mu.Unlock()
		q.pool.put(w)
		if r == ringShut {
			return ErrQueueShutdown
		}
		q.serveGetters()
		return nil
	}
	q.mu.Unlock()
	return q.awaitPut(ctx, w)
}

// shutErr is what a put that found the ring closed returns, once the
// Shutdown that closed it has finished (it holds the lock throughout).
// Without the wait, a Get begun after such a Put had returned could still
// take an item that Shutdown(true) was about to drain: Shutdown would not
// be one step.
func (q *Queue[T]) shutErr() error {
	q.mu.Lock()
	//lint:ignore SA2001 an empty critical section: waiting for Shutdown is the point
	q.mu.Unlock()
	return ErrQueueShutdown
}

// ringGet is Get on the ring.
func (q *Queue[T]) ringGet(ctx context.Context) (T, error) {
	if v, err := q.ringTake(); err != ErrQueueEmpty {
		return v, err
	}
	if err := context.Cause(ctx); err != nil {
		var zero T
		return zero, err
	}
	q.mu.Lock()
	w := q.pool.get(ctx)
	q.getters.push(w)
	q.mirror()
	if v, ok := q.ring.pop(); ok || q.ring.closed() {
		q.getters.remove(w)
		q.mirror()
		q.mu.Unlock()
		q.pool.put(w)
		if ok {
			q.servePutters()
			return v, nil
		}
		return q.ringTake()
	}
	q.mu.Unlock()
	return q.awaitGet(ctx, w)
}

// ringTake takes an item without waiting: ErrQueueEmpty if there is none,
// ErrQueueShutdown if there is none and the queue is shut down.
func (q *Queue[T]) ringTake() (T, error) {
	v, ok := q.ring.pop()
	if !ok && q.ring.closed() {
		// Closed: no put can begin any more, so this look is final.
		v, ok = q.ring.pop()
		if !ok {
			return v, ErrQueueShutdown
		}
	}
	if !ok {
		return v, ErrQueueEmpty
	}
	q.servePutters()
	return v, nil
}

// serveGetters hands items to waiting Get calls, after a put.
func (q *Queue[T]) serveGetters() {
	if q.nGetters.Load() == 0 {
		return
	}
	q.mu.Lock()
	q.serveLocked()
	q.mu.Unlock()
}

// servePutters lets waiting Put calls in, after a get.
func (q *Queue[T]) servePutters() {
	if q.nPutters.Load() == 0 {
		return
	}
	q.mu.Lock()
	q.serveLocked()
	q.mu.Unlock()
}

// serveLocked serves both wait lists until neither can move: an item
// handed to a getter frees a slot that a waiting putter may need, and an
// item let in from a putter may be for a waiting getter. Serving only one
// side lost wake-ups: a getter served under the lock freed the slot of a
// bounded ring, and a putter that had found the ring full just before
// waited for ever, with the queue empty and consumers waiting too.
func (q *Queue[T]) serveLocked() {
	var zero T
	for moved := true; moved; {
		moved = false
		for w := q.getters.head; w != nil; w = q.getters.head {
			v, ok := q.ring.pop()
			if !ok {
				break
			}
			w.val = v
			q.getters.serve(w)
			moved = true
		}
		for w := q.putters.head; w != nil; w = q.putters.head {
			if q.ring.push(w.val) != ringOK {
				break
			}
			w.val = zero
			q.putters.serve(w)
			moved = true
		}
	}
	q.mirror()
}

// mirror publishes the wait lists' lengths for the lock-free paths. The
// caller holds the lock.
func (q *Queue[T]) mirror() {
	if q.ring == nil {
		return
	}
	if n := int32(q.getters.n); q.nGetters.Load() != n {
		q.nGetters.Store(n)
	}
	if n := int32(q.putters.n); q.nPutters.Load() != n {
		q.nPutters.Store(n)
	}
}

package loom

import (
	"context"
	"sync"
	"time"

	"loom/internal/registry"
)

// waiter is a goroutine blocked on a primitive. It is linked into the
// primitive's waitList while it waits; whoever serves it unlinks it, fills
// in val or err, and sends on ready, all under the primitive's lock. The
// waiter therefore knows, once it holds that lock again, whether it was
// served: linked is false.
type waiter[T any] struct {
	prev, next *waiter[T]
	linked     bool
	ready      chan struct{} // capacity 1: one send per service
	who        uint64        // node ID of the waiting task or group; 0 if none
	since      time.Time     // when it started waiting, for the monitor
	n          int64         // semaphore weight
	val        T             // an item handed over by a queue
	err        error         // set when served with an error instead
}

// wait blocks until w is served, returning true, or until done is closed,
// returning false; w may then still be served before its goroutine takes
// the primitive's lock, which the caller checks with linked.
func (w *waiter[T]) wait(done <-chan struct{}) bool { return receive(w.ready, done) }

// receive blocks until ch yields, returning true, or until done is closed,
// returning false. A nil done, as context.Background has, never fires,
// and the plain receive is cheaper than a select.
func receive(ch, done <-chan struct{}) bool {
	if done == nil {
		<-ch
		return true
	}
	select {
	case <-ch:
		return true
	case <-done:
		return false
	}
}

// await blocks a plain waiter, already pushed on l, until it is served or
// done closes, and reports whether it was served; either way w goes back to
// the pool. mu is the primitive's lock, not held on entry.
func await(mu *sync.Mutex, l *waitList[struct{}], w *waiter[struct{}], done <-chan struct{}) bool {
	served := w.wait(done)
	if !served {
		mu.Lock()
		if served = !w.linked; !served { // not served meanwhile: give up the place
			l.remove(w)
		}
		mu.Unlock()
	}
	plainWaiters.put(w)
	return served
}

// waitList is a FIFO of waiters. The zero value is empty.
type waitList[T any] struct {
	head, tail *waiter[T]
	n          int
}

func (l *waitList[T]) push(w *waiter[T]) {
	w.prev, w.next, w.linked = l.tail, nil, true
	w.since = time.Now()
	if l.tail != nil {
		l.tail.next = w
	} else {
		l.head = w
	}
	l.tail = w
	l.n++
}

// remove unlinks w, which must be linked into l.
func (l *waitList[T]) remove(w *waiter[T]) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		l.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		l.tail = w.prev
	}
	w.prev, w.next, w.linked = nil, nil, false
	l.n--
}

// serve unlinks w and wakes it. The caller holds the primitive's lock.
func (l *waitList[T]) serve(w *waiter[T]) {
	l.remove(w)
	w.ready <- struct{}{}
}

// take unlinks w and returns its ready channel, for the caller to send on
// once it has released the primitive's lock: waking a goroutine is the most
// expensive step of a hand-over, and doing it outside the lock keeps the
// critical section short. w itself must not be touched after the unlock: it
// may already be back in the pool, with a new channel.
func (l *waitList[T]) take(w *waiter[T]) chan struct{} {
	l.remove(w)
	return w.ready
}

// wake sends the token that take deferred; nil means nobody to wake.
func wake(ready chan struct{}) {
	if ready != nil {
		ready <- struct{}{}
	}
}

// report lists the waiters for the monitor.
func (l *waitList[T]) report(f *registry.Figures) {
	for w := l.head; w != nil; w = w.next {
		f.Waiter(w.who, w.since)
	}
}

// waiterPool recycles waiter structs, which saves an allocation every time
// a goroutine blocks.
//
// The ready channel is not recycled: a channel made inside a testing/synctest
// bubble must never be used outside it (the runtime panics), and one made
// outside is not durably blocking inside, so a pooled channel would break
// the tests of anyone who uses loom under synctest. Each wait makes its own.
//
// A waiter may go back to the pool only once nobody else can touch it: it
// is unlinked (servers unlink before they send, under the primitive's
// lock, and never touch it after). The waiting goroutine, which alone
// decides, calls put on its way out.
type waiterPool[T any] struct{ p sync.Pool }

// get returns a clean, unlinked waiter for the goroutine that ctx belongs
// to.
func (wp *waiterPool[T]) get(ctx context.Context) *waiter[T] {
	w, _ := wp.p.Get().(*waiter[T])
	if w == nil {
		w = &waiter[T]{}
	}
	w.ready = make(chan struct{}, 1)
	w.who = waiterID(ctx)
	return w
}

// put recycles w.
func (wp *waiterPool[T]) put(w *waiter[T]) {
	var zero T
	w.val, w.err, w.n, w.who, w.ready, w.since = zero, nil, 0, 0, nil, time.Time{}
	wp.p.Put(w)
}

// plainWaiters serves the primitives whose waiters carry no item.
var plainWaiters waiterPool[struct{}]

// waiterID names the task or group that ctx belongs to, for the monitor's
// "who waits on what". It is only called on the slow path, when a goroutine
// is about to block.
func waiterID(ctx context.Context) uint64 {
	if !registry.Enabled() {
		return 0
	}
	return parentOf(ctx)
}

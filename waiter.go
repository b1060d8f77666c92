package loom

import (
	"context"

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
	n          int64         // semaphore weight
	val        T             // an item handed over by a queue
	err        error         // set when served with an error instead
}

// waitList is a FIFO of waiters. The zero value is empty.
type waitList[T any] struct {
	head, tail *waiter[T]
	n          int
}

func (l *waitList[T]) push(w *waiter[T]) {
	w.prev, w.next, w.linked = l.tail, nil, true
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

// report lists the waiters for the monitor.
func (l *waitList[T]) report(f *registry.Figures) {
	for w := l.head; w != nil; w = w.next {
		f.Waiter(w.who)
	}
}

// newWaiter returns a waiter for the calling goroutine. Waiters are not
// pooled: once served, a waiter may still be read by its goroutine after the
// primitive's lock is released, and a fresh one costs less than proving it
// is no longer shared.
func newWaiter[T any](ctx context.Context) *waiter[T] {
	return &waiter[T]{ready: make(chan struct{}, 1), who: waiterID(ctx)}
}

// waiterID names the task or group that ctx belongs to, for the monitor's
// "who waits on what". It is only called on the slow path, when a goroutine
// is about to block.
func waiterID(ctx context.Context) uint64 {
	if !registry.Enabled() {
		return 0
	}
	return parentOf(ctx)
}

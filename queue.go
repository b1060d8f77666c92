package loom

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"loom/internal/registry"
)

// Queue is a queue of items between goroutines, like asyncio.Queue: first
// in first out (NewQueue), last in first out (NewLIFOQueue) or lowest first
// (NewPriorityQueue); bounded or unbounded.
//
// Besides Put and Get it counts unfinished work: every item put is
// unfinished until a consumer calls TaskDone for it, and Join waits until
// nothing is unfinished. Shutdown stops the queue, like Python 3.13's
// Queue.shutdown: Put fails at once; Get goes on returning the items left,
// then fails; Shutdown(true) instead takes the items out and returns them,
// so that nothing is lost.
//
// Compared with a channel, a Queue has an order other than FIFO, can be
// unbounded, tracks unfinished work, reports its waiters to the monitor,
// and can be shut down without a panic on the senders' side. Where a plain
// bounded FIFO channel does the job, use the channel.
//
// A FIFO queue made by NewQueue takes no lock while it is neither empty
// nor, if bounded, full (see ring.go and chain.go), so many producers and
// consumers can share one; the other kinds, and the zero value, take a
// mutex for every call. Waiting Put and Get calls are served
// in the order they began waiting; on a bounded FIFO queue a new call may
// still overtake one that is being woken.
//
// The zero value is an empty, unbounded FIFO queue, not registered with the
// monitor. A Queue must not be copied after first use.
type Queue[T any] struct {
	// ring holds the items of a FIFO queue made by NewQueue, nil for the
	// others. The fields below that say "lock mode" serve only the others,
	// whose items are in the store; a ring keeps its own counts.
	ring       *chain[T]
	mu         sync.Mutex
	items      store[T] // lock mode
	capacity   int      // 0: unbounded
	getters    waitList[T]
	putters    waitList[T] // each holds the item it is waiting to put
	pool       waiterPool[T]
	unfinished int           // lock mode
	joined     chan struct{} // closed when nothing is unfinished; nil if nobody waits
	shutdown   bool          // lock mode
	puts, gets uint64        // lock mode
	err        error         // set when the constructor's arguments were bad

	// For the ring: how many Get and Put calls wait, mirrored from the
	// wait lists so that a put or get on the fast path can see, without
	// the lock, whether it has someone to serve; how many items were
	// marked done; how many Join calls wait.
	nGetters, nPutters atomic.Int32
	done               atomic.Uint64
	joiners            atomic.Int32
}

// NewQueue returns a first-in first-out queue holding at most capacity
// items, registered with the monitor under name. A capacity of 0 means
// unbounded; a negative one gives a queue whose Put and Get return an error
// wrapping ErrInvalidArgument.
func NewQueue[T any](name string, capacity int) *Queue[T] {
	return newQueue[T]("loom.NewQueue", name, capacity, fifo, nil)
}

// NewLIFOQueue returns a last-in first-out queue (a stack), like
// asyncio.LifoQueue; capacity is as for NewQueue.
func NewLIFOQueue[T any](name string, capacity int) *Queue[T] {
	return newQueue[T]("loom.NewLIFOQueue", name, capacity, lifo, nil)
}

// NewPriorityQueue returns a queue that gives out its smallest item first,
// by less, like asyncio.PriorityQueue; capacity is as for NewQueue. The
// order among items that are equal under less is unspecified. A nil less is
// an error as for a negative capacity.
func NewPriorityQueue[T any](name string, capacity int, less func(a, b T) bool) *Queue[T] {
	return newQueue("loom.NewPriorityQueue", name, capacity, priority, less)
}

func newQueue[T any](fn, name string, capacity int, order queueOrder, less func(a, b T) bool) *Queue[T] {
	q := &Queue[T]{capacity: capacity, items: store[T]{order: order, less: less}}
	switch {
	case capacity < 0:
		q.capacity = 0
		q.err = invalid(fn, "negative capacity %d", capacity)
	case order == priority && less == nil:
		q.err = invalid(fn, "nil less function")
	default:
		if order == fifo {
			q.ring = newChain[T](capacity)
		}
		registry.Track(q, registry.KindQueue, name, (*Queue[T]).report)
	}
	return q
}

// Put adds v to the queue, waiting while a bounded queue is full. It returns
// context.Cause(ctx) if ctx ends first, and ErrQueueShutdown if the queue is
// or becomes shut down before v goes in; v is then not in the queue. If v is
// taken just as ctx ends, Put may return nil.
func (q *Queue[T]) Put(ctx context.Context, v T) error {
	if ctx == nil {
		return invalid("loom.Queue.Put", "nil context")
	}
	if q.ring != nil {
		return q.ringPut(ctx, v)
	}
	q.mu.Lock()
	next, err := q.putLocked(v)
	if err != ErrQueueFull {
		q.mu.Unlock()
		wake(next)
		return err
	}
	if err := context.Cause(ctx); err != nil {
		q.mu.Unlock()
		return err
	}
	w := q.pool.get(ctx)
	w.val = v
	q.putters.push(w)
	q.mu.Unlock()
	return q.awaitPut(ctx, w)
}

// awaitPut waits for the putter w, already in the wait list, to be served
// or for ctx to end.
func (q *Queue[T]) awaitPut(ctx context.Context, w *waiter[T]) error {
	_, err := q.await(ctx, &q.putters, w)
	return err
}

// TryPut adds v without waiting. It returns ErrQueueFull if a bounded queue
// is full and ErrQueueShutdown after Shutdown.
func (q *Queue[T]) TryPut(v T) error {
	if q.ring != nil {
		switch q.ring.push(v) {
		case ringFull:
			return ErrQueueFull
		case ringShut:
			return q.shutErr()
		}
		q.serveGetters()
		return nil
	}
	q.mu.Lock()
	next, err := q.putLocked(v)
	q.mu.Unlock()
	wake(next)
	return err
}

// putLocked adds v if it can: to a waiting getter, whose channel it returns
// for the caller to wake once it has unlocked, or to the store.
func (q *Queue[T]) putLocked(v T) (chan struct{}, error) {
	switch {
	case q.err != nil:
		return nil, q.err
	case q.shutdown:
		return nil, ErrQueueShutdown
	case q.getters.head != nil:
		// The store is empty when getters wait: hand v over directly.
		w := q.getters.head
		w.val = v
		q.unfinished++
		q.puts++
		q.gets++
		return q.getters.take(w), nil
	case q.capacity > 0 && q.items.len() >= q.capacity:
		return nil, ErrQueueFull
	}
	q.items.push(v)
	q.unfinished++
	q.puts++
	return nil, nil
}

// Get removes and returns the next item, waiting while the queue is empty.
// It returns context.Cause(ctx) if ctx ends first, and ErrQueueShutdown once
// the queue is shut down and empty. If an item is handed over just as ctx
// ends, Get returns it with a nil error rather than lose it.
func (q *Queue[T]) Get(ctx context.Context) (T, error) {
	var zero T
	if ctx == nil {
		return zero, invalid("loom.Queue.Get", "nil context")
	}
	if q.ring != nil {
		return q.ringGet(ctx)
	}
	q.mu.Lock()
	v, next, err := q.getLocked()
	if err != ErrQueueEmpty {
		q.mu.Unlock()
		wake(next)
		return v, err
	}
	if err := context.Cause(ctx); err != nil {
		q.mu.Unlock()
		return zero, err
	}
	w := q.pool.get(ctx)
	q.getters.push(w)
	q.mu.Unlock()
	return q.awaitGet(ctx, w)
}

// awaitGet waits for the getter w, already in the wait list, to be served
// or for ctx to end.
func (q *Queue[T]) awaitGet(ctx context.Context, w *waiter[T]) (T, error) {
	return q.await(ctx, &q.getters, w)
}

// await waits for w, already in the wait list l, to be served or for ctx
// to end, and returns what the server left in w: the item handed to a
// getter (never dropped once handed over) and the error, if any. A waiter
// that gives up takes its place out of l.
func (q *Queue[T]) await(ctx context.Context, l *waitList[T], w *waiter[T]) (T, error) {
	served := w.wait(ctx.Done())
	if !served {
		q.mu.Lock()
		if served = !w.linked; !served {
			l.remove(w)
			q.mirror()
		}
		q.mu.Unlock()
	}
	v, err := w.val, w.err
	q.pool.put(w)
	if served {
		return v, err
	}
	var zero T
	return zero, context.Cause(ctx)
}

// TryGet removes and returns the next item without waiting. It returns
// ErrQueueEmpty if there is none, or ErrQueueShutdown if the queue is shut
// down and empty.
func (q *Queue[T]) TryGet() (T, error) {
	if q.ring != nil {
		return q.ringTake()
	}
	q.mu.Lock()
	v, next, err := q.getLocked()
	q.mu.Unlock()
	wake(next)
	return v, err
}

// getLocked takes the next item if there is one. If that lets a waiting
// putter in, it returns the putter's channel for the caller to wake once it
// has unlocked.
func (q *Queue[T]) getLocked() (T, chan struct{}, error) {
	var zero T
	switch {
	case q.err != nil:
		return zero, nil, q.err
	case q.items.len() == 0:
		if q.shutdown {
			return zero, nil, ErrQueueShutdown
		}
		return zero, nil, ErrQueueEmpty
	}
	v := q.items.pop()
	q.gets++
	// A slot is free: let the longest-waiting putter in.
	var next chan struct{}
	if w := q.putters.head; w != nil {
		q.items.push(w.val)
		q.unfinished++
		q.puts++
		var none T
		w.val = none
		next = q.putters.take(w)
	}
	return v, next, nil
}

// TaskDone records that an item taken from the queue has been dealt with.
// Calling it more times than items were put is an error wrapping
// ErrInvalidArgument.
func (q *Queue[T]) TaskDone() error {
	if q.ring != nil {
		for {
			d := q.done.Load()
			if d >= q.ring.puts() {
				return invalid("loom.Queue.TaskDone", "called more times than items were put")
			}
			if q.done.CompareAndSwap(d, d+1) {
				break
			}
		}
		if q.joiners.Load() > 0 {
			q.mu.Lock()
			q.releaseJoiners()
			q.mu.Unlock()
		}
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.unfinished == 0 {
		return invalid("loom.Queue.TaskDone", "called more times than items were put")
	}
	q.unfinished--
	q.releaseJoiners()
	return nil
}

// releaseJoiners wakes the Join calls if nothing is unfinished. The caller
// holds the lock.
func (q *Queue[T]) releaseJoiners() {
	if q.joined != nil && q.unfinishedNow() == 0 {
		close(q.joined)
		q.joined = nil
	}
}

// unfinishedNow counts the unfinished items; in lock mode the caller holds
// the lock.
func (q *Queue[T]) unfinishedNow() int {
	if q.ring != nil {
		return int(q.ring.puts() - q.done.Load())
	}
	return q.unfinished
}

// Join waits until every item put has been marked done with TaskDone, or
// until ctx ends, when it returns context.Cause(ctx).
func (q *Queue[T]) Join(ctx context.Context) error {
	if ctx == nil {
		return invalid("loom.Queue.Join", "nil context")
	}
	q.mu.Lock()
	// Counted before the check: TaskDone on the ring's path counts done
	// items first and then looks for joiners, so one of the two sees the
	// other.
	q.joiners.Add(1)
	defer q.joiners.Add(-1)
	if q.unfinishedNow() == 0 {
		q.mu.Unlock()
		return nil
	}
	if q.joined == nil {
		q.joined = make(chan struct{})
	}
	ch := q.joined
	q.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Shutdown shuts the queue down: Put and TryPut fail with ErrQueueShutdown
// from now on, and so do the Put calls waiting for room, whose items stay
// with their callers. Without immediate, Get goes on returning the items
// left and fails with ErrQueueShutdown once the queue is empty. With
// immediate, Shutdown takes every item out in one step, counts each as done
// for Join, and returns them in the order Get would have given them out:
// oldest first from a FIFO queue, newest first from a LIFO one, smallest
// first from a priority queue. A Get racing with it either took its item
// before (and the list has no gap) or fails; Get fails at once afterwards.
// A Put that fails because of the shutdown returns only once Shutdown has
// returned. Waiting Get calls fail in both modes. Calling Shutdown again
// does no harm: it can still drain with immediate.
func (q *Queue[T]) Shutdown(immediate bool) []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	var left []T
	if q.ring != nil {
		q.ring.close()
		if immediate {
			// One step: a get racing with it either took its item
			// before (and the list has no gap) or finds the queue
			// drained.
			left = q.ring.takeAll()
			q.done.Add(uint64(len(left)))
		}
	} else {
		q.shutdown = true
		if immediate {
			left = q.items.drain()
			q.unfinished -= len(left)
		}
	}
	q.releaseJoiners()
	for w := q.putters.head; w != nil; w = q.putters.head {
		w.err = ErrQueueShutdown
		q.putters.serve(w)
	}
	for w := q.getters.head; w != nil; w = q.getters.head {
		// A put that began before the ring closed may have landed
		// since this getter started waiting: give it that item.
		if v, ok := q.takeLocked(); ok {
			w.val = v
		} else {
			w.err = ErrQueueShutdown
		}
		q.getters.serve(w)
	}
	q.mirror()
	return left
}

// takeLocked pops an item from the ring, for a getter served under the lock.
func (q *Queue[T]) takeLocked() (T, bool) {
	if q.ring == nil {
		var zero T
		return zero, false
	}
	return q.ring.pop()
}

// Len returns the number of items in the queue.
func (q *Queue[T]) Len() int {
	if q.ring != nil {
		return q.ring.len()
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.items.len()
}

// Cap returns the queue's capacity, 0 for an unbounded queue.
func (q *Queue[T]) Cap() int { return q.capacity }

// Unfinished returns how many items were put and not yet marked done.
func (q *Queue[T]) Unfinished() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.unfinishedNow()
}

// Waiting returns how many Get and Put calls are blocked.
func (q *Queue[T]) Waiting() (getters, putters int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.getters.n, q.putters.n
}

// String describes the queue for logs, as "queue fifo len=3 cap=10".
func (q *Queue[T]) String() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return fmt.Sprintf("queue %s len=%d cap=%d", q.items.order, q.lenLocked(), q.capacity)
}

// lenLocked, shutDown and counts read the figures of either mode; in lock
// mode the caller holds the lock.
func (q *Queue[T]) lenLocked() int {
	if q.ring != nil {
		return q.ring.len()
	}
	return q.items.len()
}

func (q *Queue[T]) shutDown() bool {
	if q.ring != nil {
		return q.ring.closed()
	}
	return q.shutdown
}

func (q *Queue[T]) counts() (puts, gets uint64) {
	if q.ring != nil {
		return q.ring.puts(), q.ring.gets()
	}
	return q.puts, q.gets
}

func (q *Queue[T]) report(f *registry.Figures) {
	q.mu.Lock()
	defer q.mu.Unlock()
	shut := 0.0
	if q.shutDown() {
		shut = 1
	}
	puts, gets := q.counts()
	f.Stat("len", float64(q.lenLocked()))
	f.Stat("cap", float64(q.capacity))
	f.Stat("unfinished", float64(q.unfinishedNow()))
	f.Stat("getters", float64(q.getters.n))
	f.Stat("putters", float64(q.putters.n))
	f.Stat("joiners", float64(q.joiners.Load()))
	f.Counter("puts", float64(puts))
	f.Counter("gets", float64(gets))
	f.Stat("shutdown", shut)
	q.getters.report(f)
	q.putters.report(f)
}

package loom

import (
	"context"
	"fmt"
	"sync"

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
// The zero value is an empty, unbounded FIFO queue, not registered with the
// monitor. A Queue must not be copied after first use.
type Queue[T any] struct {
	mu         sync.Mutex
	items      store[T]
	capacity   int // 0: unbounded
	getters    waitList[T]
	putters    waitList[T] // each holds the item it is waiting to put
	unfinished int
	joined     chan struct{} // closed when unfinished drops to 0; nil if nobody waits
	joiners    int
	shutdown   bool
	puts, gets uint64
	err        error // set when the constructor's arguments were bad
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
	q.mu.Lock()
	if err := q.putLocked(v); err != ErrQueueFull {
		q.mu.Unlock()
		return err
	}
	if err := context.Cause(ctx); err != nil {
		q.mu.Unlock()
		return err
	}
	w := newWaiter[T](ctx)
	w.val = v
	q.putters.push(w)
	q.mu.Unlock()

	select {
	case <-w.ready:
		return w.err
	case <-ctx.Done():
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if !w.linked {
		return w.err
	}
	q.putters.remove(w)
	return context.Cause(ctx)
}

// TryPut adds v without waiting. It returns ErrQueueFull if a bounded queue
// is full and ErrQueueShutdown after Shutdown.
func (q *Queue[T]) TryPut(v T) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.putLocked(v)
}

// putLocked adds v if it can: to a waiting getter, or to the store.
func (q *Queue[T]) putLocked(v T) error {
	switch {
	case q.err != nil:
		return q.err
	case q.shutdown:
		return ErrQueueShutdown
	case q.getters.head != nil:
		// The store is empty when getters wait: hand v over directly.
		w := q.getters.head
		w.val = v
		q.unfinished++
		q.puts++
		q.gets++
		q.getters.serve(w)
		return nil
	case q.capacity > 0 && q.items.len() >= q.capacity:
		return ErrQueueFull
	}
	q.items.push(v)
	q.unfinished++
	q.puts++
	return nil
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
	q.mu.Lock()
	if v, err := q.getLocked(); err != ErrQueueEmpty {
		q.mu.Unlock()
		return v, err
	}
	if err := context.Cause(ctx); err != nil {
		q.mu.Unlock()
		return zero, err
	}
	w := newWaiter[T](ctx)
	q.getters.push(w)
	q.mu.Unlock()

	select {
	case <-w.ready:
		return w.val, w.err
	case <-ctx.Done():
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if !w.linked {
		return w.val, w.err
	}
	q.getters.remove(w)
	return zero, context.Cause(ctx)
}

// TryGet removes and returns the next item without waiting. It returns
// ErrQueueEmpty if there is none, or ErrQueueShutdown if the queue is shut
// down and empty.
func (q *Queue[T]) TryGet() (T, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.getLocked()
}

func (q *Queue[T]) getLocked() (T, error) {
	var zero T
	switch {
	case q.err != nil:
		return zero, q.err
	case q.items.len() == 0:
		if q.shutdown {
			return zero, ErrQueueShutdown
		}
		return zero, ErrQueueEmpty
	}
	v := q.items.pop()
	q.gets++
	// A slot is free: let the longest-waiting putter in.
	if w := q.putters.head; w != nil {
		q.items.push(w.val)
		q.unfinished++
		q.puts++
		var none T
		w.val = none
		q.putters.serve(w)
	}
	return v, nil
}

// TaskDone records that an item taken from the queue has been dealt with.
// Calling it more times than items were put is an error wrapping
// ErrInvalidArgument.
func (q *Queue[T]) TaskDone() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.unfinished == 0 {
		return invalid("loom.Queue.TaskDone", "called more times than items were put")
	}
	q.unfinished--
	q.releaseJoiners()
	return nil
}

func (q *Queue[T]) releaseJoiners() {
	if q.unfinished == 0 && q.joined != nil {
		close(q.joined)
		q.joined = nil
	}
}

// Join waits until every item put has been marked done with TaskDone, or
// until ctx ends, when it returns context.Cause(ctx).
func (q *Queue[T]) Join(ctx context.Context) error {
	if ctx == nil {
		return invalid("loom.Queue.Join", "nil context")
	}
	q.mu.Lock()
	if q.unfinished == 0 {
		q.mu.Unlock()
		return nil
	}
	if q.joined == nil {
		q.joined = make(chan struct{})
	}
	ch := q.joined
	q.joiners++
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		q.joiners--
		q.mu.Unlock()
	}()
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
// immediate, Shutdown takes every item out, counts each as done for Join,
// and returns them, oldest or smallest first; Get then fails at once.
// Waiting Get calls fail in both modes. Calling Shutdown again does no
// harm: it can still drain with immediate.
func (q *Queue[T]) Shutdown(immediate bool) []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.shutdown = true
	var left []T
	if immediate {
		left = q.items.drain()
		q.unfinished -= len(left)
		q.releaseJoiners()
	}
	for w := q.putters.head; w != nil; w = q.putters.head {
		w.err = ErrQueueShutdown
		q.putters.serve(w)
	}
	for w := q.getters.head; w != nil; w = q.getters.head {
		w.err = ErrQueueShutdown
		q.getters.serve(w)
	}
	return left
}

// Len returns the number of items in the queue.
func (q *Queue[T]) Len() int {
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
	return q.unfinished
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
	return fmt.Sprintf("queue %s len=%d cap=%d", q.items.order, q.items.len(), q.capacity)
}

func (q *Queue[T]) report(f *registry.Figures) {
	q.mu.Lock()
	defer q.mu.Unlock()
	shut := 0.0
	if q.shutdown {
		shut = 1
	}
	f.Stat("len", float64(q.items.len()))
	f.Stat("cap", float64(q.capacity))
	f.Stat("unfinished", float64(q.unfinished))
	f.Stat("getters", float64(q.getters.n))
	f.Stat("putters", float64(q.putters.n))
	f.Stat("joiners", float64(q.joiners))
	f.Stat("puts", float64(q.puts))
	f.Stat("gets", float64(q.gets))
	f.Stat("shutdown", shut)
	q.getters.report(f)
	q.putters.report(f)
}

package loom

import (
	"math/bits"
	"runtime"
	"sync/atomic"

	"golang.org/x/sys/cpu"
)

// ring is a bounded multi-producer, multi-consumer FIFO that takes no lock:
// the fast path of a FIFO Queue (a bounded one is one ring; an unbounded
// one, a chain of them: see chain.go). A sync.Mutex around a ring buffer
// collapses when many goroutines share it (every collision parks one), and
// no well-kept library offers a generic bounded MPMC queue whose blocking
// side can be a Queue's own waiters, so it is written here.
//
// The algorithm is Dmitry Vyukov's bounded MPMC queue, with the slot
// stamps that crossbeam's ArrayQueue uses so that any capacity works
// without a division. A position is a stamp, lap+index, where lap is a
// multiple of the smallest power of two above the capacity. Each slot's own
// stamp says what it is waiting for: a slot whose stamp equals the tail is
// free for the put at that position; one whose stamp is head+1 holds the
// item for the get at that position. A put or get claims its position with
// one compare-and-swap and then publishes the slot with one store, so the
// only shared writes are those two.
//
// Bit 63 of the tail marks the ring closed: once it is set no put can
// claim a position, which is what Queue.Shutdown needs to be sure nothing
// goes in after it has drained the ring. Bit 63 of the head marks it
// drained: takeAll claims every item in one compare-and-swap and sets it,
// so that no get takes an item once Shutdown(true) has taken them all.
type ring[T any] struct {
	_     cpu.CacheLinePad
	tail  atomic.Uint64 // the next put's position; ringClosed once closed
	_     cpu.CacheLinePad
	head  atomic.Uint64 // the next get's position
	_     cpu.CacheLinePad
	size  uint64 // capacity
	lap   uint64 // one lap: the smallest power of two above size
	shift uint   // log2(lap)
	slots []ringSlot[T]
}

type ringSlot[T any] struct {
	stamp atomic.Uint64
	val   T
}

const ringClosed = 1 << 63

// ringResult is the outcome of a push.
type ringResult uint8

const (
	ringOK ringResult = iota
	ringFull
	ringShut
)

// init makes r an empty ring of the given capacity.
func (r *ring[T]) init(capacity int) {
	shift := uint(bits.Len64(uint64(capacity)))
	r.size, r.lap, r.shift, r.slots = uint64(capacity), 1<<shift, shift, make([]ringSlot[T], capacity)
	for i := range r.slots {
		r.slots[i].stamp.Store(uint64(i))
	}
}

// next returns the position after p.
func (r *ring[T]) next(p uint64) uint64 {
	if p&(r.lap-1)+1 < r.size {
		return p + 1
	}
	return p&^(r.lap-1) + r.lap
}

// push puts v at the tail: ringOK, or ringFull, or ringShut once closed.
func (r *ring[T]) push(v T) ringResult {
	t := r.tail.Load()
	for spin := 0; ; spin++ {
		if t&ringClosed != 0 {
			return ringShut
		}
		s := &r.slots[t&(r.lap-1)]
		switch st := s.stamp.Load(); {
		case st == t:
			if r.tail.CompareAndSwap(t, r.next(t)) {
				s.val = v
				s.stamp.Store(t + 1)
				return ringOK
			}
		case st+r.lap == t+1 && r.head.Load()+r.lap == t:
			// The slot still holds the item put a lap ago, and no get
			// has claimed it: full.
			return ringFull
		default:
			// Another put took t, or a get has claimed the slot and not
			// yet emptied it: wait for it to finish.
			backoff(spin)
		}
		t = r.tail.Load()
	}
}

// pop takes the item at the head; false means the ring is empty. An item
// whose put has claimed its slot but not yet filled it is waited for: a
// put that has begun has, for its callers, happened.
func (r *ring[T]) pop() (T, bool) {
	var zero T
	h := r.head.Load()
	for spin := 0; ; spin++ {
		if h&ringClosed != 0 {
			return zero, false
		}
		s := &r.slots[h&(r.lap-1)]
		switch st := s.stamp.Load(); {
		case st == h+1:
			if r.head.CompareAndSwap(h, r.next(h)) {
				v := s.val
				s.val = zero // let the item be collected
				s.stamp.Store(h + r.lap)
				return v, true
			}
		case st == h && r.tail.Load()&^ringClosed == h:
			return zero, false
		default:
			backoff(spin)
		}
		h = r.head.Load()
	}
}

// backoff waits a little for another goroutine to finish its step: a few
// spins, then a yield, in case that goroutine was preempted mid-step.
func backoff(spin int) {
	if spin >= 4 {
		runtime.Gosched()
	}
}

// takeAll takes every item in one step and marks the ring drained, after
// which pop finds it empty for good; it appends the items to out, oldest
// first. The ring must be closed, so that no put can claim a position any
// more; items whose puts have claimed a position are waited for, as pop
// does.
func (r *ring[T]) takeAll(out []T) []T {
	t := r.tail.Load() &^ ringClosed
	h := r.head.Load()
	for ; h&ringClosed == 0; h = r.head.Load() {
		if r.head.CompareAndSwap(h, t|ringClosed) {
			break
		}
	}
	if h&ringClosed != 0 {
		return out // drained before
	}
	var zero T
	for p := h; p != t; p = r.next(p) {
		s := &r.slots[p&(r.lap-1)]
		for spin := 0; s.stamp.Load() != p+1; spin++ {
			backoff(spin)
		}
		out = append(out, s.val)
		s.val = zero
		s.stamp.Store(p + r.lap)
	}
	return out
}

// drained reports whether takeAll has run.
func (r *ring[T]) drained() bool { return r.head.Load()&ringClosed != 0 }

// close stops further puts.
func (r *ring[T]) close() { r.tail.Or(ringClosed) }

func (r *ring[T]) closed() bool { return r.tail.Load()&ringClosed != 0 }

// count turns a position into how many items have passed it.
func (r *ring[T]) count(p uint64) uint64 {
	// Either mark may be set: the tail's closed bit, the head's drained one.
	p &^= ringClosed
	return p>>r.shift*r.size + p&(r.lap-1)
}

package loom

import (
	"sync/atomic"

	"golang.org/x/sys/cpu"
)

// chain is the lock-free store of a FIFO Queue: one ring when the queue is
// bounded, and for an unbounded queue a chain of rings, each twice the size
// of the one before, up to chainMaxSegment. While the queue's length stays
// within the newest ring, that ring is all there is and items go round it
// with no allocation. When it fills, the putter that finds it full seals it
// (sets its closed bit, so that no put lands in it any more) and links a
// new one. Getters empty a sealed ring before they move on to the next, so
// the order is FIFO across rings.
//
// Closing closes every ring and caps the last one, so that no new ring can
// be linked; only then does closed report true. A getter that finds the
// chain empty and closed therefore knows that no put can begin any more.
type chain[T any] struct {
	_       cpu.CacheLinePad
	tail    atomic.Pointer[segment[T]] // where puts go; may lag behind the newest ring
	_       cpu.CacheLinePad
	head    atomic.Pointer[segment[T]] // where gets come from
	_       cpu.CacheLinePad
	end     *segment[T] // the next link of the last ring once closing has begun
	bounded bool
	final   atomic.Bool // closing has ended: every ring is closed
}

// segment is one ring of a chain, with how many items went into the rings
// before it.
type segment[T any] struct {
	ring[T]
	base uint64
	next atomic.Pointer[segment[T]]
}

const (
	chainFirstSegment = 32
	chainMaxSegment   = 1024
)

// newChain returns a chain holding at most capacity items, or any number
// if capacity is 0.
func newChain[T any](capacity int) *chain[T] {
	c := &chain[T]{bounded: capacity > 0, end: &segment[T]{}}
	if capacity == 0 {
		capacity = chainFirstSegment
	}
	s := &segment[T]{}
	s.init(capacity)
	c.tail.Store(s)
	c.head.Store(s)
	return c
}

// push puts v at the tail: ringOK, ringFull (bounded chains only), or
// ringShut once closing has begun.
func (c *chain[T]) push(v T) ringResult {
	for {
		s := c.tail.Load()
		r := s.push(v)
		if r == ringOK || r == ringFull && c.bounded {
			return r
		}
		if c.bounded {
			return ringShut
		}
		// s is full or sealed: move on to the ring after it, linking one
		// if there is none yet.
		if r == ringFull {
			s.close()
		}
		next := s.next.Load()
		if next == nil {
			n := &segment[T]{base: s.base + s.count(s.tail.Load())}
			n.init(int(min(2*s.size, chainMaxSegment)))
			if s.next.CompareAndSwap(nil, n) {
				next = n
			} else {
				next = s.next.Load()
			}
		}
		if next == c.end {
			return ringShut
		}
		c.tail.CompareAndSwap(s, next)
	}
}

// pop takes the item at the head; false means the chain is empty.
func (c *chain[T]) pop() (T, bool) {
	for {
		s := c.head.Load()
		if v, ok := s.pop(); ok || !s.closed() || s.drained() {
			// A drained ring ends the chain: takeAll empties the rings
			// in order, so those after it are being emptied too.
			return v, ok
		}
		// s is sealed and empty, so it stays empty: the next ring, if
		// there is one, is the head now.
		next := s.next.Load()
		if next == nil || next == c.end {
			var zero T
			return zero, false
		}
		c.head.CompareAndSwap(s, next)
	}
}

// close stops further puts: it closes every ring and caps the last. Once
// it has returned, no put can begin.
func (c *chain[T]) close() {
	s := c.tail.Load()
	for {
		s.close()
		if s.next.CompareAndSwap(nil, c.end) {
			break
		}
		next := s.next.Load()
		if next == c.end {
			break
		}
		s = next
	}
	c.final.Store(true)
}

// takeAll takes every item, oldest first, in one step per ring, after
// close has returned: a get that finds a drained ring stops there, so no
// get takes an item from a later ring once takeAll has begun, and none
// takes one from a ring it has emptied.
func (c *chain[T]) takeAll() []T {
	var out []T
	last := c.head.Load()
	for s := last; s != nil && s != c.end; s = s.next.Load() {
		out = s.takeAll(out)
		last = s
	}
	// Every ring is drained and stays empty: the head moves to the last,
	// so that gets (and so len) count the items taken from all of them.
	c.head.Store(last)
	return out
}

// closed reports whether close has returned.
func (c *chain[T]) closed() bool { return c.final.Load() }

// last returns the newest ring, which the tail may lag behind.
func (c *chain[T]) last() *segment[T] {
	s := c.tail.Load()
	for {
		next := s.next.Load()
		if next == nil || next == c.end {
			return s
		}
		s = next
	}
}

// puts and gets count the items put and taken so far (puts includes any
// that are being put right now).
func (c *chain[T]) puts() uint64 {
	s := c.last()
	return s.base + s.count(s.tail.Load())
}

func (c *chain[T]) gets() uint64 {
	s := c.head.Load()
	return s.base + s.count(s.head.Load())
}

// len returns how many items are in the chain.
func (c *chain[T]) len() int {
	g := c.gets() // first: an item is taken only after it was put
	return int(c.puts() - g)
}

package loom

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
)

// The FIFO queue's lock-free store: one ring when bounded, a chain of
// rings when not (ring.go, chain.go).

// The FIFO ring wraps around and grows without reordering.
func TestQueueFIFORingWrapsAndGrows(t *testing.T) {
	q := NewQueue[int]("q", 0)
	next, want := 0, 0
	for round := range 50 {
		for range round % 7 * 3 {
			_ = q.TryPut(next)
			next++
		}
		for range round % 5 * 2 {
			v, err := q.TryGet()
			if err != nil {
				break
			}
			if v != want {
				t.Fatalf("got %d, want %d", v, want)
			}
			want++
		}
	}
	for _, v := range drainTry(q) {
		if v != want {
			t.Fatalf("got %d, want %d", v, want)
		}
		want++
	}
	if want != next {
		t.Fatalf("lost items: got up to %d of %d", want, next)
	}
}

// The ring goes round many laps at every capacity without losing or
// reordering an item, and counts what it holds.
func TestQueueRingLaps(t *testing.T) {
	for _, capacity := range []int{1, 2, 3, 7, 64} {
		q := NewQueue[int]("q", capacity)
		next, want := 0, 0
		for round := range 200 {
			for range round % (capacity + 2) {
				if q.TryPut(next) == nil {
					next++
				}
			}
			if q.Len() != next-want || q.Len() > capacity {
				t.Fatalf("cap %d: len %d, want %d", capacity, q.Len(), next-want)
			}
			for range round % 3 {
				v, err := q.TryGet()
				if err != nil {
					break
				}
				if v != want {
					t.Fatalf("cap %d: got %d, want %d", capacity, v, want)
				}
				want++
			}
		}
		for _, v := range drainTry(q) {
			if v != want {
				t.Fatalf("cap %d: got %d, want %d", capacity, v, want)
			}
			want++
		}
		if want != next || next < 100 {
			t.Fatalf("cap %d: got up to %d of %d", capacity, want, next)
		}
		if q.Unfinished() != next {
			t.Fatalf("cap %d: unfinished %d, want %d", capacity, q.Unfinished(), next)
		}
	}
}

// A FIFO queue (the lock-free ring, or chain of rings) behaves like a slice
// of at most capacity items under any sequence of calls: the first byte is
// the capacity (0: unbounded), each further byte one call.
func FuzzFIFOQueue(f *testing.F) {
	f.Add([]byte{3, 0, 0, 0, 0, 1, 1, 0, 1, 1, 1, 2, 0, 3, 1})
	f.Add([]byte{1, 0, 0, 1, 1, 0, 4, 1, 0})
	f.Add([]byte{64})
	// Unbounded: 100 puts grow the chain past its first two rings, then
	// gets and puts interleave across the rings.
	f.Add(append(append([]byte{0}, bytes.Repeat([]byte{0}, 100)...), bytes.Repeat([]byte{1, 0, 1, 2}, 40)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		capacity := int(in[0] % 65)
		q := NewQueue[int]("fuzz", capacity)
		var model []int
		next, unfinished, shut := 0, 0, false
		for _, op := range in[1:] {
			switch op % 5 {
			case 0: // TryPut
				err := q.TryPut(next)
				switch {
				case shut:
					if !errors.Is(err, ErrQueueShutdown) {
						t.Fatalf("TryPut after shutdown: %v", err)
					}
				case len(model) == capacity && capacity > 0:
					if !errors.Is(err, ErrQueueFull) {
						t.Fatalf("TryPut on a full queue: %v", err)
					}
				case err != nil:
					t.Fatalf("TryPut: %v", err)
				default:
					model = append(model, next)
					unfinished++
				}
				next++
			case 1: // TryGet
				v, err := q.TryGet()
				switch {
				case len(model) > 0:
					if err != nil || v != model[0] {
						t.Fatalf("TryGet: %d %v, want %d", v, err, model[0])
					}
					model = model[1:]
				case shut:
					if !errors.Is(err, ErrQueueShutdown) {
						t.Fatalf("TryGet on a shut-down empty queue: %v", err)
					}
				default:
					if !errors.Is(err, ErrQueueEmpty) {
						t.Fatalf("TryGet on an empty queue: %v", err)
					}
				}
			case 2: // TaskDone: valid while fewer were done than put
				err := q.TaskDone()
				if unfinished > 0 {
					if err != nil {
						t.Fatal(err)
					}
					unfinished--
				} else if !errors.Is(err, ErrInvalidArgument) {
					t.Fatalf("TaskDone with nothing unfinished: %v", err)
				}
			case 3: // Shutdown, draining every other time
				immediate := op%2 == 1
				left := q.Shutdown(immediate)
				shut = true
				if immediate {
					if !slices.Equal(left, model) && len(left)+len(model) > 0 {
						t.Fatalf("Shutdown(true) returned %v, want %v", left, model)
					}
					unfinished -= len(left) // drained items count as done
					model = nil
				} else if left != nil {
					t.Fatalf("Shutdown(false) returned %v", left)
				}
			case 4: // Put with a cancelled context never waits
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				err := q.Put(ctx, next)
				switch {
				case shut:
					if !errors.Is(err, ErrQueueShutdown) {
						t.Fatalf("Put after shutdown: %v", err)
					}
				case len(model) == capacity && capacity > 0:
					if !errors.Is(err, context.Canceled) {
						t.Fatalf("Put on a full queue, cancelled: %v", err)
					}
				case err != nil:
					t.Fatalf("Put: %v", err)
				default:
					model = append(model, next)
					unfinished++
				}
				next++
			}
			if q.Len() != len(model) || q.Unfinished() != unfinished {
				t.Fatalf("len %d unfinished %d, want %d and %d", q.Len(), q.Unfinished(), len(model), unfinished)
			}
		}
	})
}

// Shutdown on an unbounded queue that spans several rings returns, or
// leaves for Get, every item in order, and refuses puts after it.
func TestQueueUnboundedShutdownAcrossRings(t *testing.T) {
	ctx := context.Background()
	for _, immediate := range []bool{false, true} {
		q := NewQueue[int]("q", 0)
		for i := range 300 { // rings of 32, 64, 128 and 256 slots
			if err := q.Put(ctx, i); err != nil {
				t.Fatal(err)
			}
		}
		for want := range 50 {
			if v, err := q.Get(ctx); err != nil || v != want {
				t.Fatalf("got %d %v, want %d", v, err, want)
			}
		}
		left := q.Shutdown(immediate)
		if err := q.Put(ctx, 1000); !errors.Is(err, ErrQueueShutdown) {
			t.Fatalf("put after shutdown: %v", err)
		}
		if !immediate {
			if len(left) != 0 || q.Len() != 250 {
				t.Fatalf("left %d, len %d", len(left), q.Len())
			}
			for want := 50; want < 300; want++ {
				if v, err := q.Get(ctx); err != nil || v != want {
					t.Fatalf("got %d %v, want %d", v, err, want)
				}
			}
		} else {
			var want []int
			for i := 50; i < 300; i++ {
				want = append(want, i)
			}
			if !slices.Equal(left, want) {
				t.Fatalf("immediate shutdown returned %v", left)
			}
		}
		if _, err := q.Get(ctx); !errors.Is(err, ErrQueueShutdown) {
			t.Fatalf("get after draining: %v", err)
		}
	}
}

// Closing a chain whose tail has fallen behind its newest ring (a putter
// linked a ring and has not moved the tail yet) closes every ring, so no
// put can land after close returns.
func TestChainCloseWalksPastALaggingTail(t *testing.T) {
	c := newChain[int](0)
	first := c.tail.Load()
	for i := range chainFirstSegment {
		if c.push(i) != ringOK {
			t.Fatal("first ring refused a put")
		}
	}
	// What a putter does on finding the ring full, stopped before it
	// moves the tail.
	first.close()
	second := &segment[int]{base: chainFirstSegment}
	second.init(2 * chainFirstSegment)
	first.next.Store(second)
	c.close()
	if !second.closed() || second.next.Load() != c.end || !c.closed() {
		t.Fatal("close did not reach the newest ring")
	}
	if r := c.push(99); r != ringShut {
		t.Fatalf("push after close = %v", r)
	}
	for want := range chainFirstSegment {
		if v, ok := c.pop(); !ok || v != want {
			t.Fatalf("pop = %d %v, want %d", v, ok, want)
		}
	}
	if _, ok := c.pop(); ok || c.len() != 0 {
		t.Fatal("items after the last")
	}
}

// Shutdown(true) on an unbounded queue that spans several rings takes every
// item and leaves the queue empty by every count (a Len that counted only
// the first ring's items failed TestQueueNothingLostUnderContention once).
func TestQueueUnboundedShutdownNowEmptiesEveryRing(t *testing.T) {
	q := NewQueue[int]("q", 0)
	for i := range 100 { // past the first ring of 32
		if err := q.TryPut(i); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := q.TryGet(); err != nil {
		t.Fatal(err)
	}
	left := q.Shutdown(true)
	if len(left) != 99 || left[0] != 1 || left[98] != 99 {
		t.Fatalf("Shutdown(true) returned %d items (%v...)", len(left), left[:min(3, len(left))])
	}
	if q.Len() != 0 || q.Unfinished() != 1 {
		t.Fatalf("len %d, unfinished %d after Shutdown(true); want 0 and the 1 item taken and not done", q.Len(), q.Unfinished())
	}
}

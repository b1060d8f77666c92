package loom

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"loom/internal/registry"
)

func drainTry[T any](q *Queue[T]) []T {
	var out []T
	for {
		v, err := q.TryGet()
		if err != nil {
			return out
		}
		out = append(out, v)
	}
}

func TestQueueOrders(t *testing.T) {
	in := []int{5, 1, 4, 2, 3}
	for _, tc := range []struct {
		name string
		q    *Queue[int]
		want []int
	}{
		{"fifo", NewQueue[int]("q", 0), []int{5, 1, 4, 2, 3}},
		{"lifo", NewLIFOQueue[int]("q", 0), []int{3, 2, 4, 1, 5}},
		{"priority", NewPriorityQueue("q", 0, cmp.Less[int]), []int{1, 2, 3, 4, 5}},
		{"zero value", &Queue[int]{}, []int{5, 1, 4, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range in {
				if err := tc.q.Put(context.Background(), v); err != nil {
					t.Fatal(err)
				}
			}
			if tc.q.Len() != len(in) || tc.q.Unfinished() != len(in) {
				t.Fatalf("len %d unfinished %d", tc.q.Len(), tc.q.Unfinished())
			}
			if got := drainTry(tc.q); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

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

func TestQueueBoundedPutWaitsForRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		q := NewQueue[string]("q", 1)
		if err := q.TryPut("a"); err != nil {
			t.Fatal(err)
		}
		if err := q.TryPut("b"); !errors.Is(err, ErrQueueFull) {
			t.Fatalf("TryPut on a full queue: %v", err)
		}
		put := make(chan error, 1)
		go func() { put <- q.Put(ctx, "b") }()
		synctest.Wait()
		if _, putters := q.Waiting(); putters != 1 {
			t.Fatal("Put did not wait")
		}
		if v, _ := q.Get(ctx); v != "a" {
			t.Fatalf("got %q", v)
		}
		if err := <-put; err != nil {
			t.Fatal(err)
		}
		if v, _ := q.Get(ctx); v != "b" || q.Unfinished() != 2 {
			t.Fatalf("got %q, unfinished %d", v, q.Unfinished())
		}
	})
}

func TestQueueGetWaitsAndTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := NewQueue[int]("q", 0)
		if _, err := q.TryGet(); !errors.Is(err, ErrQueueEmpty) {
			t.Fatal(err)
		}
		got := make(chan int, 1)
		go func() { v, _ := q.Get(context.Background()); got <- v }()
		synctest.Wait()
		_ = q.Put(context.Background(), 7) // handed straight to the waiter
		if v := <-got; v != 7 || q.Len() != 0 {
			t.Fatalf("got %d, len %d", v, q.Len())
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := q.Get(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
		if getters, _ := q.Waiting(); getters != 0 {
			t.Fatal("timed-out getter still queued")
		}
	})
}

func TestQueueCancelledPutLeavesNothingBehind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := NewQueue[int]("q", 1)
		_ = q.TryPut(1)
		ctx, cancel := context.WithCancelCause(context.Background())
		put := make(chan error, 1)
		go func() { put <- q.Put(ctx, 2) }()
		synctest.Wait()
		cause := errors.New("client left")
		cancel(cause)
		if err := <-put; !errors.Is(err, cause) {
			t.Fatal(err)
		}
		if got := drainTry(q); !slices.Equal(got, []int{1}) || q.Unfinished() != 1 {
			t.Fatalf("items %v unfinished %d", got, q.Unfinished())
		}
	})
}

func TestQueueTaskDoneAndJoin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		q := NewQueue[int]("jobs", 0)
		for i := range 3 {
			_ = q.Put(ctx, i)
		}
		joined := make(chan error, 1)
		go func() { joined <- q.Join(ctx) }()
		for range 3 {
			_, _ = q.Get(ctx)
			synctest.Wait()
			select {
			case <-joined:
				t.Fatal("Join returned with work unfinished")
			default:
			}
			if err := q.TaskDone(); err != nil {
				t.Fatal(err)
			}
		}
		if err := <-joined; err != nil {
			t.Fatal(err)
		}
		if err := q.TaskDone(); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("extra TaskDone: %v", err)
		}
		if err := q.Join(ctx); err != nil {
			t.Fatal("Join with nothing unfinished:", err)
		}
		_ = q.Put(ctx, 9)
		tctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := q.Join(tctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
	})
}

func TestQueueShutdownDrainsThenFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		q := NewQueue[int]("q", 2)
		_ = q.Put(ctx, 1)
		_ = q.Put(ctx, 2)
		put := make(chan error, 1)
		go func() { put <- q.Put(ctx, 3) }()
		synctest.Wait()
		if left := q.Shutdown(false); left != nil {
			t.Fatalf("non-immediate shutdown returned %v", left)
		}
		if err := <-put; !errors.Is(err, ErrQueueShutdown) {
			t.Fatalf("waiting Put: %v", err)
		}
		if err := q.TryPut(4); !errors.Is(err, ErrQueueShutdown) {
			t.Fatalf("TryPut: %v", err)
		}
		for _, want := range []int{1, 2} {
			if v, err := q.Get(ctx); v != want || err != nil {
				t.Fatalf("Get after shutdown: %d %v, want %d", v, err, want)
			}
		}
		if _, err := q.Get(ctx); !errors.Is(err, ErrQueueShutdown) {
			t.Fatalf("Get on a shut-down empty queue: %v", err)
		}
	})
}

func TestQueueShutdownImmediateReturnsItemsAndReleasesJoin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		q := NewPriorityQueue("q", 0, cmp.Less[int])
		for _, v := range []int{3, 1, 2} {
			_ = q.Put(ctx, v)
		}
		v, _ := q.Get(ctx) // one item taken and being worked on
		joined := make(chan error, 1)
		go func() { joined <- q.Join(ctx) }()
		synctest.Wait()
		left := q.Shutdown(true)
		if v != 1 || !slices.Equal(left, []int{2, 3}) {
			t.Fatalf("taken %d, returned %v", v, left)
		}
		if q.Unfinished() != 1 {
			t.Fatalf("unfinished %d, want the one item in hand", q.Unfinished())
		}
		_ = q.TaskDone()
		if err := <-joined; err != nil {
			t.Fatal(err)
		}
		if _, err := q.Get(ctx); !errors.Is(err, ErrQueueShutdown) {
			t.Fatal(err)
		}
	})
}

func TestQueueShutdownWakesGetters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := NewLIFOQueue[int]("q", 0)
		got := make(chan error, 2)
		for range 2 {
			go func() { _, err := q.Get(context.Background()); got <- err }()
		}
		synctest.Wait()
		q.Shutdown(false)
		for range 2 {
			if err := <-got; !errors.Is(err, ErrQueueShutdown) {
				t.Fatal(err)
			}
		}
	})
}

func TestQueueBadInput(t *testing.T) {
	ctx := context.Background()
	for name, err := range map[string]error{
		"negative capacity": NewQueue[int]("q", -1).Put(ctx, 1),
		"nil less":          NewPriorityQueue[int]("q", 0, nil).TryPut(1),
		"nil ctx put":       NewQueue[int]("q", 0).Put(noCtx, 1),
		"nil ctx join":      NewQueue[int]("q", 0).Join(noCtx),
	} {
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := NewLIFOQueue[int]("q", -1).Get(ctx); !errors.Is(err, ErrInvalidArgument) {
		t.Error(err)
	}
	if _, err := NewQueue[int]("q", 0).Get(noCtx); !errors.Is(err, ErrInvalidArgument) {
		t.Error(err)
	}
}

// contendedKinds makes one queue of each order with the given capacity,
// and an unbounded FIFO one: the FIFO ones run on the lock-free ring (the
// unbounded one on a chain of rings that grows past 32 items), the others
// under the mutex.
func contendedKinds(capacity int) map[string]*Queue[int] {
	return map[string]*Queue[int]{
		"fifo":           NewQueue[int]("q", capacity),
		"fifo-unbounded": NewQueue[int]("q", 0),
		"lifo":           NewLIFOQueue[int]("q", capacity),
		"priority":       NewPriorityQueue("q", capacity, cmp.Less[int]),
	}
}

// Producers and consumers, some giving up, over a small bounded queue,
// shut down at the end with or without immediate: every item that a Put
// accepted is received exactly once, by a Get or from Shutdown.
func TestQueueNothingLostUnderContention(t *testing.T) {
	for _, immediate := range []bool{false, true} {
		for kind, q := range contendedKinds(4) {
			t.Run(fmt.Sprintf("%s/immediate=%v", kind, immediate), func(t *testing.T) {
				nothingLost(t, q, immediate)
			})
		}
	}
}

func nothingLost(t *testing.T, q *Queue[int], immediate bool) {
	const producers, each = 4, 500
	var accepted sync.Map
	var nAccepted atomic.Int64
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				v := p*each + i
				ctx, cancel := context.WithCancel(context.Background())
				if i%7 == 0 {
					cancel()
				}
				var err error
				if i%5 == 0 {
					err = q.TryPut(v)
				} else {
					err = q.Put(ctx, v)
				}
				if err == nil {
					accepted.Store(v, true)
					nAccepted.Add(1)
				}
				cancel()
			}
		}()
	}
	received := make(chan int, producers*each)
	var cwg sync.WaitGroup
	for c := range 3 {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for i := 0; ; i++ {
				ctx, cancel := context.WithCancel(context.Background())
				if (i+c)%11 == 0 {
					cancel()
				}
				var v int
				var err error
				if i%3 == 0 {
					v, err = q.TryGet()
				} else {
					v, err = q.Get(ctx)
				}
				cancel()
				switch {
				case errors.Is(err, ErrQueueShutdown):
					return
				case err == nil:
					received <- v
					if err := q.TaskDone(); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	if immediate {
		// Shut down while the producers still run: what the queue
		// holds comes back from Shutdown, and later puts fail.
		for nAccepted.Load() < producers*each/3 {
			runtime.Gosched()
		}
	} else {
		wg.Wait()
	}
	for _, v := range q.Shutdown(immediate) {
		received <- v
	}
	wg.Wait()
	cwg.Wait()
	close(received)
	seen := map[int]bool{}
	for v := range received {
		if seen[v] {
			t.Fatalf("%d received twice", v)
		}
		seen[v] = true
		if _, ok := accepted.Load(v); !ok {
			t.Fatalf("%d received but its Put failed", v)
		}
	}
	n := 0
	accepted.Range(func(k, _ any) bool {
		n++
		if !seen[k.(int)] {
			t.Errorf("%d accepted but never received", k)
		}
		return true
	})
	if n == 0 {
		t.Fatal("nothing accepted")
	}
	if q.Unfinished() != 0 || q.Len() != 0 {
		t.Fatalf("unfinished %d, len %d after everything was taken and done", q.Unfinished(), q.Len())
	}
	if err := q.Join(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A bounded FIFO queue is first in, first out even when many goroutines
// share it: each consumer sees each producer's items in the order they
// were put, however the two interleave.
func TestQueueFIFOOrderUnderContention(t *testing.T) {
	for _, capacity := range []int{8, 0} {
		t.Run(fmt.Sprintf("capacity=%d", capacity), func(t *testing.T) {
			fifoOrder(t, NewQueue[[2]int]("q", capacity))
		})
	}
}

func fifoOrder(t *testing.T, q *Queue[[2]int]) {
	const producers, consumers, each = 4, 4, 2000
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := q.Put(context.Background(), [2]int{p, i}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var total atomic.Int64
	var cwg sync.WaitGroup
	for range consumers {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			last := [producers]int{-1, -1, -1, -1}
			for {
				v, err := q.Get(context.Background())
				if err != nil {
					return
				}
				if v[1] <= last[v[0]] {
					t.Errorf("producer %d: got item %d after %d", v[0], v[1], last[v[0]])
				}
				last[v[0]] = v[1]
				total.Add(1)
			}
		}()
	}
	wg.Wait()
	q.Shutdown(false)
	cwg.Wait()
	if total.Load() != producers*each {
		t.Fatalf("received %d of %d", total.Load(), producers*each)
	}
}

// Join waits for every item put to be marked done while producers and
// consumers run, whatever the kind of queue.
func TestQueueJoinUnderContention(t *testing.T) {
	for kind, q := range contendedKinds(3) {
		t.Run(kind, func(t *testing.T) {
			const n = 3000
			var done atomic.Int64
			var cwg sync.WaitGroup
			for range 3 {
				cwg.Add(1)
				go func() {
					defer cwg.Done()
					for {
						if _, err := q.Get(context.Background()); err != nil {
							return
						}
						done.Add(1)
						if err := q.TaskDone(); err != nil {
							t.Error(err)
						}
					}
				}()
			}
			for i := range n {
				if err := q.Put(context.Background(), i); err != nil {
					t.Fatal(err)
				}
			}
			if err := q.Join(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := done.Load(); got != n {
				t.Fatalf("Join returned with %d of %d items done", got, n)
			}
			q.Shutdown(false)
			cwg.Wait()
		})
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

// The priority store gives items back sorted, whatever goes in.
func FuzzPriorityQueue(f *testing.F) {
	f.Add([]byte{5, 1, 4, 1, 0, 9, 2, 6})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		q := NewPriorityQueue("fuzz", 0, cmp.Less[byte])
		var want []byte
		// Interleave puts and gets, driven by the input.
		for i, b := range in {
			_ = q.TryPut(b)
			want = append(want, b)
			if i%3 == 2 {
				slices.Sort(want)
				v, err := q.TryGet()
				if err != nil || v != want[0] {
					t.Fatalf("get %d %v, want %d", v, err, want[0])
				}
				want = want[1:]
			}
		}
		slices.Sort(want)
		if got := drainTry(q); !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})
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

// The monitor sees a bounded FIFO queue's figures and who waits on it, as
// for the other kinds.
func TestQueueReportsFiguresAndWaiters(t *testing.T) {
	name := fmt.Sprintf("inbox-%d", time.Now().UnixNano()) // unique: earlier runs' queues may not be collected yet
	q := NewQueue[int](name, 2)
	_ = q.TryPut(1)
	_ = q.TryPut(2)
	putter := Go(context.Background(), "producer", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, q.Put(ctx, 3)
	})
	for _, putters := q.Waiting(); putters == 0; _, putters = q.Waiting() {
		runtime.Gosched()
	}
	var found bool
	for _, res := range registry.Resources() {
		if res.Kind != "queue" || res.Name != name {
			continue
		}
		found = true
		stats := map[string]float64{}
		for _, s := range res.Stats {
			stats[s.Name] = s.Value
		}
		if stats["len"] != 2 || stats["cap"] != 2 || stats["putters"] != 1 || stats["puts"] != 2 || stats["unfinished"] != 2 {
			t.Fatalf("stats %v", stats)
		}
		if len(res.Waiters) != 1 || res.Waiters[0].ID != putter.ID() {
			t.Fatalf("waiters %+v, want task %d", res.Waiters, putter.ID())
		}
	}
	if !found {
		t.Fatal("queue not registered")
	}
	if v, _ := q.TryGet(); v != 1 {
		t.Fatalf("got %d", v)
	}
	if _, err := putter.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := drainTry(q); !slices.Equal(got, []int{2, 3}) {
		t.Fatalf("left %v", got)
	}
}

// An unbounded FIFO queue grows through many rings while producers race to
// seal full ones and link new ones, then is drained while producers go on:
// every item comes out once, and each producer's items in order.
func TestQueueUnboundedGrowsUnderContention(t *testing.T) {
	const producers, each = 4, 3000
	q := NewQueue[[2]int]("q", 0)
	put := func(from, to int) {
		var wg sync.WaitGroup
		for p := range producers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := from; i < to; i++ {
					if err := q.Put(context.Background(), [2]int{p, i}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	put(0, each/2) // no consumer yet: the chain grows to 6,000 items
	if q.Len() != producers*each/2 {
		t.Fatalf("len %d after the first half", q.Len())
	}
	got := make(chan [producers]int, producers)
	var cwg sync.WaitGroup
	for range producers {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			var n [producers]int
			last := [producers]int{-1, -1, -1, -1}
			for {
				v, err := q.Get(context.Background())
				if err != nil {
					got <- n
					return
				}
				if v[1] <= last[v[0]] {
					t.Errorf("producer %d: got item %d after %d", v[0], v[1], last[v[0]])
				}
				last[v[0]] = v[1]
				n[v[0]]++
			}
		}()
	}
	put(each/2, each)
	q.Shutdown(false)
	cwg.Wait()
	close(got)
	var total [producers]int
	for n := range got {
		for p := range n {
			total[p] += n[p]
		}
	}
	for p, n := range total {
		if n != each {
			t.Errorf("producer %d: %d of its %d items came out", p, n, each)
		}
	}
	if q.Len() != 0 {
		t.Fatalf("len %d after draining", q.Len())
	}
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

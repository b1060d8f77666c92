package loom

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// Many producers and consumers at once, on every kind of queue.

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

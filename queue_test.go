package loom

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
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

// Shutdown(true) hands the items back in the order Get would have given
// them out, whatever the kind: newest first from a LIFO queue (issue 13
// item 3: the doc said oldest first while the code gave newest first).
func TestQueueShutdownReturnsItemsInGetOrder(t *testing.T) {
	in := []int{5, 1, 4, 2, 3}
	for _, tc := range []struct {
		name string
		q    *Queue[int]
		want []int
	}{
		{"fifo", NewQueue[int]("q", 8), []int{5, 1, 4, 2, 3}},
		{"fifo-unbounded", NewQueue[int]("q", 0), []int{5, 1, 4, 2, 3}},
		{"lifo", NewLIFOQueue[int]("q", 0), []int{3, 2, 4, 1, 5}},
		{"priority", NewPriorityQueue("q", 0, cmp.Less[int]), []int{1, 2, 3, 4, 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range in {
				if err := tc.q.TryPut(v); err != nil {
					t.Fatal(err)
				}
			}
			if got := tc.q.Shutdown(true); !slices.Equal(got, tc.want) {
				t.Fatalf("Shutdown(true) returned %v, want %v (the order of Get)", got, tc.want)
			}
		})
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

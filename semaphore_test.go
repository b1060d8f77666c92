package loom

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"loom/internal/registry"
)

// acquireAsync starts Acquire in a goroutine and returns a channel that
// receives its result.
func acquireAsync(ctx context.Context, s *Semaphore, n int64) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- s.Acquire(ctx, n) }()
	return ch
}

func pending(ch <-chan error) bool {
	select {
	case <-ch:
		return false
	default:
		return true
	}
}

func TestSemaphoreAcquireRelease(t *testing.T) {
	ctx := context.Background()
	s := NewSemaphore("s", 3)
	if err := s.Acquire(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if !s.TryAcquire(1) || s.TryAcquire(1) {
		t.Fatal("TryAcquire: want one success then a failure at the size")
	}
	if s.Held() != 3 || s.Size() != 3 {
		t.Fatalf("held %d size %d", s.Held(), s.Size())
	}
	if err := s.Release(3); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(1); !errors.Is(err, ErrOverRelease) {
		t.Fatalf("over-release: %v", err)
	}
	if s.Held() != 0 {
		t.Fatalf("over-release changed the count: %d", s.Held())
	}
	if err := s.Acquire(ctx, 0); err != nil {
		t.Fatal("zero weight:", err)
	}
}

func TestSemaphoreBadArguments(t *testing.T) {
	ctx := context.Background()
	s := NewSemaphore("s", 2)
	for name, err := range map[string]error{
		"nil ctx":         s.Acquire(noCtx, 1),
		"negative":        s.Acquire(ctx, -1),
		"too heavy":       s.Acquire(ctx, 3),
		"negative rel":    s.Release(-1),
		"negative resize": s.Resize(-1),
		"negative size":   NewSemaphore("bad", -1).Acquire(ctx, 1),
	} {
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: got %v, want ErrInvalidArgument", name, err)
		}
	}
	if s.TryAcquire(-1) || NewSemaphore("bad", -1).TryAcquire(0) {
		t.Error("TryAcquire with bad input succeeded")
	}
}

func TestSemaphoreFIFOHeadBlocksSmallerWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := NewSemaphore("s", 4)
		_ = s.Acquire(ctx, 3)
		big := acquireAsync(ctx, s, 3)
		synctest.Wait()
		small := acquireAsync(ctx, s, 1)
		synctest.Wait()
		// One is free, but the big waiter is first in line.
		if !pending(small) || s.Waiting() != 2 || s.TryAcquire(1) {
			t.Fatal("a small waiter overtook the head of the queue")
		}
		_ = s.Release(2) // 3 free: the big one fits, then nothing is left
		synctest.Wait()
		if err := <-big; err != nil {
			t.Fatal(err)
		}
		if !pending(small) {
			t.Fatal("small waiter served with nothing free")
		}
		_ = s.Release(3)
		synctest.Wait()
		if err := <-small; err != nil {
			t.Fatal(err)
		}
	})
}

func TestSemaphoreCancelledHeadLetsOthersThrough(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := NewSemaphore("s", 4)
		_ = s.Acquire(ctx, 3)
		cause := errors.New("gave up")
		cctx, cancel := context.WithCancelCause(ctx)
		big := acquireAsync(cctx, s, 4)
		synctest.Wait()
		small := acquireAsync(ctx, s, 1)
		synctest.Wait()
		cancel(cause)
		synctest.Wait()
		if err := <-big; !errors.Is(err, cause) {
			t.Fatalf("cancelled waiter: %v, want its cause", err)
		}
		if err := <-small; err != nil {
			t.Fatal("waiter behind the cancelled head:", err)
		}
		if s.Held() != 4 || s.Waiting() != 0 {
			t.Fatalf("held %d waiting %d", s.Held(), s.Waiting())
		}
	})
}

// A waiter whose context ends before the weight is released to it does not
// keep the weight: Acquire gives it back and returns the cause, and the
// next waiter gets it (issue 13 item 4, the case of go.dev/issue/63615).
// Cancel and Release happen back to back while the waiter sleeps, so it
// wakes to find both its context over and its weight granted.
func TestSemaphoreGrantAfterCancelIsGivenBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSemaphore("s", 1)
		_ = s.Acquire(context.Background(), 1)
		cause := errors.New("caller left")
		ctx, cancel := context.WithCancelCause(context.Background())
		first := acquireAsync(ctx, s, 1)
		synctest.Wait()
		second := acquireAsync(context.Background(), s, 1)
		synctest.Wait()
		cancel(cause)
		if err := s.Release(1); err != nil {
			t.Fatal(err)
		}
		if err := <-first; !errors.Is(err, cause) {
			t.Fatalf("Acquire whose context ended before the grant: %v, want its cause", err)
		}
		if err := <-second; err != nil {
			t.Fatal("the next waiter:", err)
		}
		if s.Held() != 1 || s.Waiting() != 0 {
			t.Fatalf("held %d waiting %d, want the next waiter alone to hold 1", s.Held(), s.Waiting())
		}
	})
}

func TestSemaphoreAcquireTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSemaphore("s", 1)
		_ = s.Acquire(context.Background(), 1)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		if err := s.Acquire(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
		if time.Since(start) != time.Second {
			t.Fatalf("waited %v", time.Since(start))
		}
	})
}

func TestSemaphoreResize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := NewSemaphore("s", 2)
		_ = s.Acquire(ctx, 2)
		a := acquireAsync(ctx, s, 1)
		b := acquireAsync(ctx, s, 1)
		synctest.Wait()
		if err := s.Resize(4); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if <-a != nil || <-b != nil {
			t.Fatal("growing did not wake the waiters")
		}
		// Shrink below what is held: nothing is taken back, newcomers wait.
		_ = s.Resize(2)
		c := acquireAsync(ctx, s, 1)
		heavy := acquireAsync(ctx, s, 2)
		synctest.Wait()
		if !pending(c) || s.Held() != 4 {
			t.Fatal("a waiter got in above the new size")
		}
		_ = s.Resize(1) // the queued weight-2 request can never fit now
		synctest.Wait()
		if err := <-heavy; !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("oversized waiter after shrink: %v", err)
		}
		_ = s.Release(4)
		synctest.Wait()
		if err := <-c; err != nil || s.Held() != 1 {
			t.Fatalf("after release: %v, held %d", err, s.Held())
		}
	})
}

// Under contention with random weights and cancellations, the held count
// never exceeds the size and ends at zero.
func TestSemaphoreStress(t *testing.T) {
	s := NewSemaphore("stress", 5)
	var inside atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 300 {
				n := r.Int64N(3) + 1
				ctx, cancel := context.WithCancel(context.Background())
				if r.IntN(4) == 0 {
					cancel()
				}
				if err := s.Acquire(ctx, n); err == nil {
					if v := inside.Add(n); v > 5 {
						t.Errorf("held %d > size 5", v)
					}
					runtime.Gosched()
					inside.Add(-n)
					if err := s.Release(n); err != nil {
						t.Error(err)
					}
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	if s.Held() != 0 || s.Waiting() != 0 {
		t.Fatalf("held %d waiting %d at the end", s.Held(), s.Waiting())
	}
}

func findResource(t *testing.T, id uint64) registry.ResourceInfo {
	t.Helper()
	for _, r := range registry.Resources() {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("resource %d not registered", id)
	return registry.ResourceInfo{}
}

func stat(r registry.ResourceInfo, name string) float64 {
	for _, s := range r.Stats {
		if s.Name == name {
			return s.Value
		}
	}
	return -1
}

// The monitor sees the semaphore's counts and which task waits on it.
func TestSemaphoreReportsWaitingTask(t *testing.T) {
	s := NewSemaphore("db-conns", 1)
	ctx := context.Background()
	_ = s.Acquire(ctx, 1)
	task := Go(ctx, "query", func(ctx context.Context) (int, error) {
		return 0, s.Acquire(ctx, 1)
	})
	for s.Waiting() == 0 {
		runtime.Gosched()
	}
	r := findResource(t, s.res.ID())
	if r.Kind != "semaphore" || r.Name != "db-conns" || stat(r, "held") != 1 || stat(r, "waiting") != 1 || stat(r, "size") != 1 {
		t.Fatalf("resource: %+v", r)
	}
	if len(r.Waiters) != 1 || r.Waiters[0].ID != task.ID() || time.Since(r.Waiters[0].Since) > time.Minute {
		t.Fatalf("waiters %v, want [%d]", r.Waiters, task.ID())
	}
	_ = s.Release(1)
	if _, err := task.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// A primitive nobody references leaves the registry: tracking never keeps
// it alive.
func TestResourceLeavesRegistryWhenCollected(t *testing.T) {
	id := NewSemaphore("temporary", 1).res.ID()
	for range 100 {
		runtime.GC()
		gone := true
		for _, r := range registry.Resources() {
			if r.ID == id {
				gone = false
			}
		}
		if gone {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("collected semaphore still registered")
}

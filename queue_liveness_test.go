package loom

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Liveness: plain producer/consumer code on a bounded queue never stops.
// These pin issue 13 item 1, a lost wake-up: a Get served under the lock
// freed a slot of the ring but never let a waiting Put in, so two
// producers and two consumers on a queue of capacity 1 hung within a few
// thousand rounds.

// watchdog fails the test if progress has not moved for stall, and stops
// when stop is closed. It reads the queue's waiters when it fires, so the
// failure says who was stuck.
func watchdog(t *testing.T, progress *atomic.Int64, stall time.Duration, describe func() string, stop <-chan struct{}) <-chan struct{} {
	t.Helper()
	stuck := make(chan struct{})
	go func() {
		last, since := progress.Load(), time.Now()
		tick := time.NewTicker(stall / 20)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if n := progress.Load(); n != last {
				last, since = n, time.Now()
				continue
			}
			if time.Since(since) >= stall {
				t.Errorf("no progress for %v at %d items: %s", stall, last, describe())
				close(stuck)
				return
			}
		}
	}()
	return stuck
}

// TestQueueBoundedNoLostWakeup runs every mix of 1-4 producers and 1-4
// consumers over queues of capacity 1, 2 and 7, all with a background
// context, on every kind of queue. The hang showed at the end of a run,
// when the last producer had finished, so the test runs many short rounds,
// each on a fresh queue, rather than one long one.
func TestQueueBoundedNoLostWakeup(t *testing.T) {
	rounds := 1000 // enough to fail every time before the fix, even under -race
	if testing.Short() {
		rounds = 200
	}
	for _, capacity := range []int{1, 2, 7} {
		for producers := 1; producers <= 4; producers++ {
			for consumers := 1; consumers <= 4; consumers++ {
				for _, kind := range []string{"fifo", "fifo-unbounded", "lifo", "priority"} {
					name := fmt.Sprintf("%s/cap=%d/p=%d/c=%d", kind, capacity, producers, consumers)
					n := rounds
					if kind == "lifo" || kind == "priority" {
						// Under the mutex: a plain hand-over, far
						// fewer interleavings to cover.
						n /= 5
					}
					t.Run(name, func(t *testing.T) {
						newQueue := func() *Queue[int] { return contendedKinds(capacity)[kind] }
						flowThrough(t, newQueue, n, producers, consumers, 8)
					})
				}
			}
		}
	}
}

// flowThrough sends each producer's items to the consumers through a fresh
// queue, rounds times, and fails if the flow stops for five seconds or an
// item is lost.
func flowThrough(t *testing.T, newQueue func() *Queue[int], rounds, producers, consumers, each int) {
	var progress atomic.Int64
	var q atomic.Pointer[Queue[int]]
	stop := make(chan struct{})
	stuck := watchdog(t, &progress, 5*time.Second, func() string {
		q := q.Load()
		g, p := q.Waiting()
		return fmt.Sprintf("len %d, %d getters and %d putters waiting", q.Len(), g, p)
	}, stop)
	defer close(stop)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// When stuck, end the waits so that the test can report
		// instead of hanging; the background context alone would not.
		select {
		case <-stuck:
			cancel()
		case <-stop:
		}
	}()
	for round := 0; round < rounds && !t.Failed(); round++ {
		q.Store(newQueue())
		oneRound(t, ctx, q.Load(), producers, consumers, each, &progress)
	}
}

// oneRound sends every producer's items 1..each through q and checks that
// the consumers received them all.
func oneRound(t *testing.T, ctx context.Context, q *Queue[int], producers, consumers, each int, progress *atomic.Int64) {
	done := ctx
	if ctx.Done() != nil {
		// Run on the background context, as the plain code that hung
		// did; the watchdog's cancel still ends the waits through the
		// queue's shutdown below.
		ctx = context.Background()
	}
	stopAll := context.AfterFunc(done, func() { q.Shutdown(false) })
	defer stopAll()
	total := producers * each
	var sum, got atomic.Int64
	var wg sync.WaitGroup
	for range producers {
		wg.Go(func() {
			for i := 1; i <= each; i++ {
				if q.Put(ctx, i) != nil {
					return
				}
				progress.Add(1)
			}
		})
	}
	for range consumers {
		wg.Go(func() {
			for got.Add(1) <= int64(total) {
				v, err := q.Get(ctx)
				if err != nil {
					return
				}
				sum.Add(int64(v))
				progress.Add(1)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if want := int64(producers * each * (each + 1) / 2); sum.Load() != want {
		t.Fatalf("consumers received items summing to %d, want %d", sum.Load(), want)
	}
	if q.Len() != 0 {
		t.Fatalf("len %d after every item was taken", q.Len())
	}
}

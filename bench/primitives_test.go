package bench

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"golang.org/x/sync/semaphore"

	"loom"
)

// contention is the goroutine counts the primitive benchmarks run at: one
// (uncontended), two, and eight (more than the cores, so waiters queue).
var contention = []int{1, 2, 8}

// spread runs op b.N times in total, split across g goroutines.
func spread(b *testing.B, g int, op func()) {
	b.ReportAllocs()
	var wg sync.WaitGroup
	per := b.N / g
	b.ResetTimer()
	for i := range g {
		n := per
		if i == 0 {
			n += b.N % g
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				op()
			}
		}()
	}
	wg.Wait()
}

// semSize is the size of the benchmarked semaphores: one goroutine never
// waits, two fit exactly, eight queue.
const semSize = 2

// BenchmarkSemaphore is one Acquire(1) and Release(1) per operation.
func BenchmarkSemaphore(b *testing.B) {
	ctx := context.Background()
	for _, g := range contention {
		b.Run(fmt.Sprintf("g=%d/impl=xsync", g), func(b *testing.B) {
			s := semaphore.NewWeighted(semSize)
			spread(b, g, func() {
				if err := s.Acquire(ctx, 1); err != nil {
					b.Error(err)
				}
				s.Release(1)
			})
		})
		b.Run(fmt.Sprintf("g=%d/impl=chan", g), func(b *testing.B) {
			s := make(chan struct{}, semSize)
			spread(b, g, func() {
				select {
				case s <- struct{}{}:
				case <-ctx.Done():
					b.Error(ctx.Err())
				}
				<-s
			})
		})
		b.Run(fmt.Sprintf("g=%d/impl=loom", g), func(b *testing.B) {
			s := loom.NewSemaphore("bench", semSize)
			spread(b, g, func() {
				if err := s.Acquire(ctx, 1); err != nil {
					b.Error(err)
				}
				if err := s.Release(1); err != nil {
					b.Error(err)
				}
			})
		})
	}
}

// BenchmarkLock is one lock and unlock around a one-increment critical
// section.
func BenchmarkLock(b *testing.B) {
	ctx := context.Background()
	for _, g := range contention {
		b.Run(fmt.Sprintf("g=%d/impl=mutex", g), func(b *testing.B) {
			var mu sync.Mutex
			n := 0
			spread(b, g, func() { mu.Lock(); n++; mu.Unlock() })
		})
		b.Run(fmt.Sprintf("g=%d/impl=chan", g), func(b *testing.B) {
			l := make(chan struct{}, 1)
			n := 0
			spread(b, g, func() {
				select {
				case l <- struct{}{}:
				case <-ctx.Done():
				}
				n++
				<-l
			})
		})
		b.Run(fmt.Sprintf("g=%d/impl=loom", g), func(b *testing.B) {
			l := loom.NewLock("bench")
			n := 0
			spread(b, g, func() {
				if err := l.Lock(ctx); err != nil {
					b.Error(err)
				}
				n++
				l.Unlock()
			})
		})
	}
}

// queueCap is the capacity of the benchmarked queues and channels.
const queueCap = 64

// BenchmarkQueue moves b.N items from g producers to g consumers through a
// bounded queue: a channel of the same capacity against loom's FIFO Queue
// (lock-free while neither empty nor full) and, for reference, loom's
// unbounded FIFO Queue (a chain of lock-free rings) and its LIFO Queue (a
// mutex around a slice, as the priority queue is).
func BenchmarkQueue(b *testing.B) {
	ctx := context.Background()
	for _, g := range contention {
		b.Run(fmt.Sprintf("g=%d/impl=chan", g), func(b *testing.B) {
			ch := make(chan int, queueCap)
			pipe(b, g, func(v int) {
				select {
				case ch <- v:
				case <-ctx.Done():
				}
			}, func() {
				select {
				case <-ch:
				case <-ctx.Done():
				}
			})
		})
		for _, kind := range []struct {
			name string
			q    *loom.Queue[int]
		}{
			{"loom", loom.NewQueue[int]("bench", queueCap)},
			{"loom-unbounded", loom.NewQueue[int]("bench", 0)},
			{"loom-lifo", loom.NewLIFOQueue[int]("bench", queueCap)},
		} {
			b.Run(fmt.Sprintf("g=%d/impl=%s", g, kind.name), func(b *testing.B) {
				q := kind.q
				pipe(b, g, func(v int) {
					if err := q.Put(ctx, v); err != nil {
						b.Error(err)
					}
				}, func() {
					if _, err := q.Get(ctx); err != nil {
						b.Error(err)
					}
				})
			})
		}
	}
}

// pipe runs g producers calling put and g consumers calling get, b.N items
// in all.
func pipe(b *testing.B, g int, put func(int), get func()) {
	b.ReportAllocs()
	var wg sync.WaitGroup
	per := b.N / g
	b.ResetTimer()
	for i := range g {
		n := per
		if i == 0 {
			n += b.N % g
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := range n {
				put(j)
			}
		}()
		go func() {
			defer wg.Done()
			for range n {
				get()
			}
		}()
	}
	wg.Wait()
}

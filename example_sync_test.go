package loom_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"loom"
)

// A Lock whose waiters can give up: the second caller stops waiting when its
// deadline passes.
func ExampleLock() {
	l := loom.NewLock("config")
	_ = l.Lock(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	fmt.Println(l.Lock(ctx))
	l.Unlock()
	fmt.Println(l.TryLock())
	// Output:
	// context deadline exceeded
	// true
}

// Workers wait for an Event before they start.
func ExampleEvent() {
	ctx := context.Background()
	start := loom.NewEvent("start")
	g := loom.NewGroup(ctx)
	var mu sync.Mutex
	started := 0
	for i := range 3 {
		g.Go(fmt.Sprint("worker-", i), func(ctx context.Context) error {
			if err := start.Wait(ctx); err != nil {
				return err
			}
			mu.Lock()
			started++
			mu.Unlock()
			return nil
		})
	}
	start.Set()
	fmt.Println(g.Wait(), started)
	// Output: <nil> 3
}

// A consumer waits on a Cond until the producer has put what it needs.
func ExampleCond() {
	var mu sync.Mutex
	c := loom.NewCond("stock", &mu)
	stock := 0
	go func() {
		for range 3 {
			mu.Lock()
			stock++
			c.Signal()
			mu.Unlock()
		}
	}()
	mu.Lock()
	for stock < 3 {
		if err := c.Wait(context.Background()); err != nil {
			fmt.Println(err)
			break
		}
	}
	fmt.Println("stock:", stock)
	mu.Unlock()
	// Output: stock: 3
}

// Three stages that must each be finished by every worker before any
// worker starts the next.
func ExampleBarrier() {
	ctx := context.Background()
	b := loom.NewBarrier("phase", 3)
	var mu sync.Mutex
	var log []string
	g := loom.NewGroup(ctx)
	for w := range 3 {
		g.Go(fmt.Sprint("worker-", w), func(ctx context.Context) error {
			for phase := range 2 {
				mu.Lock()
				log = append(log, fmt.Sprint("phase ", phase))
				mu.Unlock()
				if _, err := b.Wait(ctx); err != nil {
					return err
				}
			}
			return nil
		})
	}
	fmt.Println(g.Wait())
	fmt.Println(log)
	// Output:
	// <nil>
	// [phase 0 phase 0 phase 0 phase 1 phase 1 phase 1]
}

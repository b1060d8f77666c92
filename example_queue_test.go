package loom_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"loom"
)

// Workers take jobs from a queue; Join waits until every job is done, then
// Shutdown stops the workers, as in asyncio's queue example.
func ExampleQueue() {
	ctx := context.Background()
	jobs := loom.NewQueue[int]("jobs", 10)
	var total atomic.Int64
	g := loom.NewGroup(ctx, loom.WithName("workers"))
	for w := range 3 {
		g.Go(fmt.Sprintf("worker-%d", w), func(ctx context.Context) error {
			for {
				n, err := jobs.Get(ctx)
				if errors.Is(err, loom.ErrQueueShutdown) {
					return nil
				}
				if err != nil {
					return err
				}
				total.Add(int64(n * n))
				if err := jobs.TaskDone(); err != nil {
					return err
				}
			}
		})
	}
	for n := 1; n <= 20; n++ {
		if err := jobs.Put(ctx, n); err != nil {
			fmt.Println(err)
		}
	}
	fmt.Println("join:", jobs.Join(ctx))
	jobs.Shutdown(false)
	fmt.Println("workers:", g.Wait(), "sum of squares:", total.Load())
	// Output:
	// join: <nil>
	// workers: <nil> sum of squares: 2870
}

// A priority queue gives out the smallest item first.
func ExampleNewPriorityQueue() {
	type job struct {
		prio int
		name string
	}
	q := loom.NewPriorityQueue("jobs", 0, func(a, b job) bool { return cmp.Less(a.prio, b.prio) })
	for _, j := range []job{{3, "reindex"}, {1, "page on-call"}, {2, "send report"}} {
		_ = q.TryPut(j)
	}
	for q.Len() > 0 {
		j, _ := q.TryGet()
		fmt.Println(j.prio, j.name)
	}
	// Output:
	// 1 page on-call
	// 2 send report
	// 3 reindex
}

// Shutdown(true) hands back what was still queued, so nothing is lost.
func ExampleQueue_Shutdown() {
	q := loom.NewQueue[string]("outbox", 0)
	for _, m := range []string{"a", "b", "c"} {
		_ = q.TryPut(m)
	}
	first, _ := q.TryGet()
	left := q.Shutdown(true)
	_, err := q.TryGet()
	fmt.Println(first, left, err)
	fmt.Println(q.TryPut("d"))
	// Output:
	// a [b c] loom: queue shut down
	// loom: queue shut down
}

// Command producer-consumer feeds a bounded queue from two producers to
// three workers, waits for the work with Join and stops the workers with
// Shutdown: asyncio.Queue's pattern.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"loom"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(w io.Writer) error {
	ctx := context.Background()
	jobs := loom.NewQueue[int]("jobs", 8)
	var sum, handled atomic.Int64
	workers := loom.NewGroup(ctx, loom.WithName("workers"))
	for i := range 3 {
		workers.Go(fmt.Sprint("worker-", i), func(ctx context.Context) error {
			for {
				n, err := jobs.Get(ctx)
				if errors.Is(err, loom.ErrQueueShutdown) {
					return nil
				}
				if err != nil {
					return err
				}
				sum.Add(int64(n))
				handled.Add(1)
				if err := jobs.TaskDone(); err != nil {
					return err
				}
			}
		})
	}
	producers := loom.NewGroup(ctx, loom.WithName("producers"))
	for p := range 2 {
		producers.Go(fmt.Sprint("producer-", p), func(ctx context.Context) error {
			for i := range 50 {
				if err := jobs.Put(ctx, p*1000+i); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := producers.Wait(); err != nil {
		return err
	}
	if err := jobs.Join(ctx); err != nil {
		return err
	}
	jobs.Shutdown(false)
	if err := workers.Wait(); err != nil {
		return err
	}
	fmt.Fprintf(w, "handled %d jobs, sum %d\n", handled.Load(), sum.Load())
	return nil
}

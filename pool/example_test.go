package pool_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"loom/pool"
)

// CPU-bound work on a pool of GOMAXPROCS workers, with results as tasks.
func ExamplePool() {
	ctx := context.Background()
	p := pool.New("hash")
	defer p.Close(ctx)

	var tasks []interface {
		Wait(context.Context) (string, error)
	}
	for _, doc := range []string{"alpha", "beta", "gamma"} {
		t, err := pool.Submit(ctx, p, "hash "+doc, func(ctx context.Context) (string, error) {
			sum := sha256.Sum256([]byte(doc))
			return fmt.Sprintf("%s %x", doc, sum[:4]), nil
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		tasks = append(tasks, t)
	}
	for _, t := range tasks {
		fmt.Println(t.Wait(ctx))
	}
	// Output:
	// alpha 8ed3f6ad <nil>
	// beta f44e64e7 <nil>
	// gamma be9d587d <nil>
}

// A deadline given at submission counts the time spent queued: the task
// behind a busy worker never runs.
func ExampleTimeout() {
	ctx := context.Background()
	p := pool.New("test", pool.WithSize(1))
	defer p.Close(ctx)
	release := make(chan struct{})
	busy, _ := pool.Submit(ctx, p, "busy", func(ctx context.Context) (int, error) { <-release; return 1, nil })
	late, _ := pool.Submit(ctx, p, "late", func(ctx context.Context) (int, error) { return 2, nil },
		pool.Timeout(20*time.Millisecond))
	_, err := late.Wait(ctx)
	fmt.Println("late:", err, late.State())
	close(release)
	fmt.Println(busy.Wait(ctx))
	// Output:
	// late: context deadline exceeded cancelled
	// 1 <nil>
}

// Higher priorities run first among queued tasks.
func ExamplePriority() {
	ctx := context.Background()
	p := pool.New("test", pool.WithSize(1))
	release := make(chan struct{})
	_, _ = pool.Submit(ctx, p, "gate", func(context.Context) (int, error) { <-release; return 0, nil })
	var order []string
	for _, job := range []struct {
		name string
		prio int
	}{{"report", 0}, {"page", 10}, {"cleanup", -5}} {
		_, _ = pool.Submit(ctx, p, job.name, func(context.Context) (int, error) {
			order = append(order, job.name) // one worker: no race
			return 0, nil
		}, pool.Priority(job.prio))
	}
	close(release)
	_ = p.Close(ctx) // drains the queue
	fmt.Println(strings.Join(order, ", "))
	// Output: page, report, cleanup
}

// wordCount runs in a child process. Registered at package level, so the
// child, which runs this same binary, knows it too.
var wordCount = pool.Register("example.wordcount", func(_ context.Context, text string) (int, error) {
	if text == "" {
		return 0, errors.New("empty text")
	}
	return len(strings.Fields(text)), nil
})

// Work in child processes that can be killed: a runaway call is stopped by
// its deadline. The program's main must call pool.ServeChild first.
func ExampleProcessPool() {
	ctx := context.Background()
	pp := pool.NewProcessPool("test", pool.WithSize(2), pool.WithMaxTasksPerChild(100))
	defer pp.Close(ctx)
	for _, text := range []string{"the quick brown fox", ""} {
		t, err := pool.Run(ctx, pp, wordCount, text, pool.Timeout(5*time.Second))
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(t.Wait(ctx))
	}
	// Output:
	// 4 <nil>
	// 0 example.wordcount: empty text
}

package loom_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"loom"
)

func ExampleGo() {
	task := loom.Go(context.Background(), "square", func(ctx context.Context) (int, error) {
		return 7 * 7, nil
	})
	v, err := task.Wait(context.Background())
	fmt.Println(v, err, task.State())
	// Output: 49 <nil> done
}

func ExampleGroup() {
	ctx := context.Background()
	g := loom.NewGroup(ctx, loom.WithName("words"), loom.WithLimit(2))
	words := []string{"alpha", "beta", "gamma"}
	lengths := make([]int, len(words))
	for i, w := range words {
		g.Go("measure", func(ctx context.Context) error {
			lengths[i] = len(w)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		fmt.Println("error:", err)
	}
	fmt.Println(lengths)
	// Output: [5 4 5]
}

func ExampleGroup_failFast() {
	g := loom.NewGroup(context.Background())
	g.Go("waits", func(ctx context.Context) error {
		<-ctx.Done() // cancelled by the sibling's failure
		return ctx.Err()
	})
	g.Go("fails", func(ctx context.Context) error {
		return errors.New("disk full")
	})
	fmt.Println(g.Wait())
	// Output: disk full
}

func ExampleSpawn() {
	g := loom.NewGroup(context.Background())
	upper := loom.Spawn(g, "upper", func(ctx context.Context) (string, error) {
		return strings.ToUpper("loom"), nil
	})
	count := loom.Spawn(g, "count", func(ctx context.Context) (int, error) {
		return 3, nil
	})
	if err := g.Wait(); err != nil {
		fmt.Println(err)
		return
	}
	u, _ := upper.Result()
	c, _ := count.Result()
	fmt.Println(u, c)
	// Output: LOOM 3
}

func ExampleGather() {
	double := func(n int) func(context.Context) (int, error) {
		return func(ctx context.Context) (int, error) { return 2 * n, nil }
	}
	got, err := loom.Gather(context.Background(), double(1), double(2), double(3))
	fmt.Println(got, err)
	// Output: [2 4 6] <nil>
}

func ExampleGatherAll() {
	results := loom.GatherAll(context.Background(),
		func(ctx context.Context) (string, error) { return "ok", nil },
		func(ctx context.Context) (string, error) { return "", errors.New("refused") },
	)
	for i, r := range results {
		fmt.Println(i, r.Value, r.Err)
	}
	// Output:
	// 0 ok <nil>
	// 1  refused
}

func ExampleRace() {
	mirror := func(name string, delay time.Duration) func(context.Context) (string, error) {
		return func(ctx context.Context) (string, error) {
			select {
			case <-time.After(delay):
				return name, nil
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
	}
	fastest, err := loom.Race(context.Background(), mirror("slow", time.Second), mirror("fast", time.Millisecond))
	fmt.Println(fastest, err)
	// Output: fast <nil>
}

func ExampleAsCompleted() {
	ctx := context.Background()
	// Each task waits for the one before it, so the order is known: a task
	// that ended before the loop began comes in argument order, the others
	// in the order they end, and both agree here.
	first := loom.Go(ctx, "first", func(ctx context.Context) (string, error) { return "first", nil })
	second := loom.Go(ctx, "second", func(ctx context.Context) (string, error) {
		_, err := first.Wait(ctx)
		return "second", err
	})
	third := loom.Go(ctx, "third", func(ctx context.Context) (string, error) {
		_, err := second.Wait(ctx)
		return "third", err
	})
	for task, err := range loom.AsCompleted(ctx, first, second, third) {
		if err != nil {
			fmt.Println(err)
			break
		}
		v, _ := task.Result()
		fmt.Println(v)
	}
	// Output:
	// first
	// second
	// third
}

func ExampleWaitAny() {
	ctx := context.Background()
	release := make(chan struct{})
	slow := loom.Go(ctx, "slow", func(ctx context.Context) (int, error) { <-release; return 2, nil })
	quick := loom.Go(ctx, "quick", func(ctx context.Context) (int, error) { return 1, nil })
	first, err := loom.WaitAny(ctx, slow, quick)
	fmt.Println(first.Name(), err)
	close(release) // WaitAny does not cancel the others
	v, _ := slow.Wait(ctx)
	fmt.Println("slow still finished with", v)
	// Output:
	// quick <nil>
	// slow still finished with 2
}

func ExampleErrors() {
	results := loom.GatherAll(context.Background(),
		func(ctx context.Context) (int, error) { return 1, nil },
		func(ctx context.Context) (int, error) { return 0, errors.New("host unreachable") },
	)
	fmt.Println(loom.Errors(results))
	// Output: host unreachable
}

func ExampleTask_Cancel() {
	task := loom.Go(context.Background(), "poller", func(ctx context.Context) (int, error) {
		<-ctx.Done()
		return 0, context.Cause(ctx)
	})
	task.Cancel(errors.New("operator asked to stop"))
	_, err := task.Wait(context.Background())
	fmt.Println(err, task.State())
	// Output: operator asked to stop cancelled
}

func ExampleGroup_Cancel() {
	g := loom.NewGroup(context.Background(), loom.WithName("search"))
	g.Go("worker", func(ctx context.Context) error {
		<-ctx.Done() // stops when the group is cancelled
		return ctx.Err()
	})
	g.Cancel(nil) // an early exit, not an error
	fmt.Println(g.Wait())
	// Output: <nil>
}

func ExampleSetDebugHandler() {
	loom.SetDebug(true)
	defer loom.SetDebug(false)
	loom.SetDebugHandler(func(ev loom.DebugEvent) { fmt.Println(ev.Check, ev.Task.Name) })
	defer loom.SetDebugHandler(nil)

	release := make(chan struct{})
	sc := loom.NewScope(context.Background(), loom.WithName("jobs"))
	sc.Go("stubborn", func(ctx context.Context) error { <-release; return nil }) // ignores its context
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	var leak *loom.LeakError
	fmt.Println(errors.As(sc.Shutdown(ctx), &leak), len(leak.Tasks))
	close(release)
	fmt.Println(sc.Shutdown(context.Background()))
	// Output:
	// leaked-task stubborn
	// true 1
	// <nil>
}

func ExampleSetRegistry() {
	loom.SetRegistry(false) // cheaper tasks, invisible to the monitor
	defer loom.SetRegistry(true)
	task := loom.Go(context.Background(), "quiet", func(ctx context.Context) (int, error) { return 1, nil })
	task.Wait(context.Background())
	fmt.Println(task.ID())
	// Output: 0
}

func ExampleTimeout() {
	_, err := loom.Timeout(context.Background(), 10*time.Millisecond, func(ctx context.Context) (int, error) {
		<-ctx.Done() // a slow call that honours its context
		return 0, ctx.Err()
	})
	fmt.Println(errors.Is(err, loom.ErrTimeout), errors.Is(err, context.DeadlineExceeded))
	// Output: true true
}

func ExampleShield() {
	ctx, cancel := context.WithCancel(context.Background())
	saved := make(chan string)
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	_, err := loom.Shield(ctx, "save", func(ctx context.Context) (bool, error) {
		time.Sleep(50 * time.Millisecond) // outlives the caller's cancellation
		saved <- "saved anyway"
		return true, nil
	})
	fmt.Println(err)
	fmt.Println(<-saved)
	// Output:
	// context canceled
	// saved anyway
}

func ExampleScope() {
	sc := loom.NewScope(context.Background(), loom.WithName("background"))
	ticks := make(chan int, 1)
	sc.Go("heartbeat", func(ctx context.Context) error {
		ticks <- 1
		<-ctx.Done() // runs until shutdown
		return ctx.Err()
	})
	fmt.Println("tick", <-ticks)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	fmt.Println("shutdown:", sc.Shutdown(ctx))
	// Output:
	// tick 1
	// shutdown: <nil>
}

// An executor keeps a record of its own per task (here, when it was
// queued); PrepareWith allocates it with the task, and the executor runs
// the task when it chooses.
func ExamplePrepareWith() {
	type entry struct{ position int }
	task, prep, rec := loom.PrepareWith[string, entry](context.Background(), "greet", func(ctx context.Context) (string, error) {
		return "hello", nil
	})
	rec.position = 1 // the executor's bookkeeping
	fmt.Println(task.State(), rec.position)
	_ = prep.Run() // on whatever goroutine the executor picks
	v, err := task.Wait(context.Background())
	fmt.Println(v, err, task.State())
	// Output:
	// pending 1
	// hello <nil> done
}

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
	after := func(d time.Duration, s string) func(context.Context) (string, error) {
		return func(ctx context.Context) (string, error) { time.Sleep(d); return s, nil }
	}
	tasks := []*loom.Task[string]{
		loom.Go(ctx, "c", after(60*time.Millisecond, "third")),
		loom.Go(ctx, "a", after(0, "first")),
		loom.Go(ctx, "b", after(30*time.Millisecond, "second")),
	}
	for task, err := range loom.AsCompleted(ctx, tasks...) {
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

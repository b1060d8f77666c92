package dist_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"loom/dist"
	"loom/policy"
	"loom/pool"
)

// A queue of thumbnails to make, shared by producers and workers; here on
// the in-process backend, which behaves as JetStream does.
func Example() {
	ctx := context.Background()
	b := dist.Memory() // or jetstream.Embedded(dir), or jetstream.Connect("nats://...")
	q, err := dist.Open[string](ctx, b, "thumbnails", dist.MaxAttempts(3))
	if err != nil {
		panic(err)
	}
	defer q.Close()
	for _, img := range []string{"cat.jpg", "dog.jpg", "broken.jpg"} {
		_ = q.Put(ctx, img)
	}
	_ = q.Put(ctx, "cat.jpg", dist.Key("cat.jpg")) // put twice with a key: kept once
	_ = q.Put(ctx, "cat.jpg", dist.Key("cat.jpg"))

	var mu sync.Mutex
	var made []string
	work, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		served <- dist.Serve(work, q, func(ctx context.Context, img string) error {
			if strings.HasPrefix(img, "broken") {
				return policy.Permanent(errors.New("not an image"))
			}
			mu.Lock()
			made = append(made, img)
			mu.Unlock()
			return nil
		}, dist.Workers(1))
	}()
	_ = q.Join(ctx) // everything settled
	stop()
	<-served
	dead, _ := q.DeadLetters(ctx, 10)
	fmt.Println(made)
	fmt.Println(len(dead), string(dead[0].Data), dead[0].Reason)
	// Output:
	// [cat.jpg dog.jpg cat.jpg]
	// 1 "broken.jpg" not an image
}

// double is registered at package level, as pool.Register asks, so that a
// worker running the same binary has it too.
var double = pool.Register("example-double", func(_ context.Context, n int) (int, error) { return 2 * n, nil })

// A remote pool: the caller submits registered functions and gets tasks;
// workers, on any machine that reaches the backend, run them. Here both
// sides share the in-process backend.
func ExampleSubmit() {
	ctx := context.Background()
	b := dist.Memory() // or jetstream.Embedded(dir) / jetstream.Connect(url)
	p, _ := dist.NewPool(ctx, b, "numbers")
	defer p.Close()
	work, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- dist.ServePool(work, b, "numbers", nil, dist.Workers(2)) }()

	t, _ := dist.Submit(ctx, p, double, 21)
	v, err := t.Wait(ctx)
	fmt.Println(v, err)
	stop()
	<-served
	// Output: 42 <nil>
}

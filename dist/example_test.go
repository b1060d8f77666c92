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

// Headers travel beside a message's value, and a W3C trace context with
// it: the handler's work joins the producer's trace.
func ExampleHeader() {
	ctx := context.Background()
	q, err := dist.Open[string](ctx, dist.Memory(), "traced")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer q.Close()
	tctx, _ := dist.WithTraceparent(ctx, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	_ = q.Put(tctx, "resize a.png", dist.Header("Tenant", "acme"))
	m, _ := q.Get(ctx)
	tp := m.Header(dist.HeaderTraceparent)
	fmt.Println(m.Value, "for", m.Header("Tenant"))
	fmt.Println("same trace:", strings.HasPrefix(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-"), "own parent ID:", !strings.Contains(tp, "00f067aa0ba902b7"))
	_ = m.Done(ctx)
	// Output:
	// resize a.png for acme
	// same trace: true own parent ID: true
}

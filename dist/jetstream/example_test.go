package jetstream_test

import (
	"context"
	"fmt"
	"os"

	"loom/dist"
	"loom/dist/jetstream"
)

// A queue on an embedded JetStream server: messages are on disk in dir,
// and other processes reach the server at b.URL().
func Example() {
	dir, _ := os.MkdirTemp("", "loom-dist")
	defer os.RemoveAll(dir)
	b, err := jetstream.Embedded(dir)
	if err != nil {
		panic(err)
	}
	defer b.Close()
	ctx := context.Background()
	q, err := dist.Open[int](ctx, b, "squares")
	if err != nil {
		panic(err)
	}
	defer q.Close()
	_ = q.Put(ctx, 7)
	m, _ := q.Get(ctx)
	fmt.Println(m.Value*m.Value, m.Attempt())
	_ = m.Done(ctx)
	n, _ := q.Unfinished(ctx)
	fmt.Println(n)
	// Output:
	// 49 1
	// 0
}

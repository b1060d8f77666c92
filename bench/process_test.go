package bench

import (
	"context"
	"os"
	"runtime"
	"testing"

	"loom/pool"
)

func TestMain(m *testing.M) {
	pool.ServeChild() // BenchmarkProcessPool's children are this binary
	os.Exit(m.Run())
}

var double = pool.Register("double", func(_ context.Context, n int) (int, error) { return 2 * n, nil })

// BenchmarkProcessPool measures loom's process pool against running the
// same function on a goroutine pool: RoundTrip is one call at a time (the
// latency of a call: encode, pipe, child, pipe, decode), Throughput keeps
// every child busy (GOMAXPROCS children, 100 calls per operation).
func BenchmarkProcessPool(b *testing.B) {
	ctx := context.Background()
	size := runtime.GOMAXPROCS(0)
	b.Run("RoundTrip/impl=goroutines", func(b *testing.B) {
		p := pool.New("bench", pool.WithSize(1))
		defer p.Close(ctx)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			t, _ := pool.Submit(ctx, p, "double", func(context.Context) (int, error) { return 2 * i, nil })
			if _, err := t.Wait(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("RoundTrip/impl=processes", func(b *testing.B) {
		pp := pool.NewProcessPool("bench", pool.WithSize(1))
		defer pp.Close(ctx)
		warm(b, pp)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			t, _ := pool.Run(ctx, pp, double, i)
			if _, err := t.Wait(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Throughput/impl=processes", func(b *testing.B) {
		pp := pool.NewProcessPool("bench", pool.WithSize(size))
		defer pp.Close(ctx)
		warm(b, pp)
		b.ReportAllocs()
		for b.Loop() {
			var tasks []interface {
				Wait(context.Context) (int, error)
			}
			for i := range 100 {
				t, err := pool.Run(ctx, pp, double, i)
				if err != nil {
					b.Fatal(err)
				}
				tasks = append(tasks, t)
			}
			for _, t := range tasks {
				if _, err := t.Wait(ctx); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// warm starts the children before the clock does.
func warm(b *testing.B, pp *pool.ProcessPool) {
	for i := range 2 * runtime.GOMAXPROCS(0) {
		t, _ := pool.Run(context.Background(), pp, double, i)
		if _, err := t.Wait(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

package bench

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/sourcegraph/conc/stream"

	"loom/pipeline"
)

// pipeItems is how many items one operation of BenchmarkPipeline sends
// through; per-item cost is ns/op divided by pipeItems.
const pipeItems = 10_000

// BenchmarkPipeline sends 10,000 integers through one stage of 4 workers
// that squares them, and sums the results: the per-item cost of the
// machinery. chan is the same shape written by hand with goroutines and
// channels (unordered), with loom's default buffers (1 after the source,
// the number of workers after a stage); conc's stream keeps order, as
// loom-ordered does.
func BenchmarkPipeline(b *testing.B) {
	ctx := context.Background()
	src := make([]int, pipeItems)
	for i := range src {
		src[i] = i
	}
	square := func(_ context.Context, v int) (int, error) { return v * v, nil }
	want := 0
	for _, v := range src {
		want += v * v
	}
	check := func(b *testing.B, sum int) {
		if sum != want {
			b.Fatalf("sum %d, want %d", sum, want)
		}
	}
	b.Run("impl=chan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			in, out := make(chan int, 1), make(chan int, 4) // loom's default buffers
			go func() {
				for _, v := range src {
					in <- v
				}
				close(in)
			}()
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for v := range in {
						r, _ := square(ctx, v)
						out <- r
					}
				}()
			}
			go func() { wg.Wait(); close(out) }()
			sum := 0
			for r := range out {
				sum += r
			}
			check(b, sum)
		}
	})
	b.Run("impl=conc-stream-ordered", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s := stream.New().WithMaxGoroutines(4)
			sum := 0
			for _, v := range src {
				s.Go(func() stream.Callback {
					r, _ := square(ctx, v)
					return func() { sum += r }
				})
			}
			s.Wait()
			check(b, sum)
		}
	})
	for _, ordered := range []bool{false, true} {
		name := "impl=loom"
		var opts []pipeline.Option
		opts = append(opts, pipeline.Workers(4))
		if ordered {
			name += "-ordered"
			opts = append(opts, pipeline.Ordered())
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p := pipeline.New(ctx, "bench")
				sum := 0
				for r := range pipeline.Map(pipeline.From(p, slices.Values(src)), "square", square, opts...).Items() {
					sum += r
				}
				if err := p.Wait(); err != nil {
					b.Fatal(err)
				}
				check(b, sum)
			}
		})
	}
}

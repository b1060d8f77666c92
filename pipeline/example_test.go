package pipeline_test

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"loom/pipeline"
)

// Words through three stages: split lines (4 workers, order kept), keep the
// long words, batch them by three.
func Example() {
	lines := []string{"the quick brown fox", "jumps over the lazy dog", "again and again"}
	p := pipeline.New(context.Background(), "words")
	words := pipeline.FlatMap(pipeline.From(p, slices.Values(lines)), "split",
		func(_ context.Context, line string) ([]string, error) { return strings.Fields(line), nil },
		pipeline.Workers(4), pipeline.Ordered())
	long := pipeline.Filter(words, "long", func(w string) bool { return len(w) > 3 })
	for batch := range pipeline.Batch(long, "batch", 3, 0).Items() {
		fmt.Println(batch)
	}
	fmt.Println(p.Wait())
	// Output:
	// [quick brown jumps]
	// [over lazy again]
	// [again]
	// <nil>
}

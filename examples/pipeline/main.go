// Command pipeline counts words in generated documents through three
// stages: tokenize (4 workers, order kept), count, and batch the results by
// ten; slow stages hold the fast ones back.
package main

import (
	"context"
	"fmt"
	"io"
	"iter"
	"os"
	"strings"

	"loom/pipeline"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// docs generates n documents of growing length.
func docs(n int) iter.Seq[string] {
	return func(yield func(string) bool) {
		for i := range n {
			if !yield(strings.Repeat(fmt.Sprintf("word%d ", i%7), i+1)) {
				return
			}
		}
	}
}

func run(w io.Writer) error {
	p := pipeline.New(context.Background(), "words")
	tokens := pipeline.Map(pipeline.From(p, docs(40)), "tokenize",
		func(_ context.Context, d string) ([]string, error) { return strings.Fields(d), nil },
		pipeline.Workers(4), pipeline.Ordered())
	counts := pipeline.Map(tokens, "count",
		func(_ context.Context, ws []string) (int, error) { return len(ws), nil })
	total, batches := 0, 0
	for batch := range pipeline.Batch(counts, "batch", 10, 0).Items() {
		batches++
		for _, n := range batch {
			total += n
		}
	}
	if err := p.Wait(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d words in %d batches\n", total, batches)
	return nil
}

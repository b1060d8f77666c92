// Command shield shows loom.Shield: a request handler saves an order, the
// client gives up halfway, and the save still completes instead of leaving
// half a write behind.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"loom"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(w io.Writer) error {
	saved := make(chan string, 1)
	save := func(ctx context.Context) (string, error) {
		time.Sleep(50 * time.Millisecond) // writing to the database
		saved <- "order 42"
		return "order 42", nil
	}
	// The client gives up after 10ms.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := loom.Shield(ctx, "save-order", save, loom.DropDeadline())
	fmt.Fprintln(w, "handler returned:", errors.Is(err, context.DeadlineExceeded))
	fmt.Fprintln(w, "but the save finished:", <-saved)
	return nil
}

// Command loom runs loom's demo and tools.
//
//	loom demo    run the task runtime end to end against a local server
//	             (--monitor ADDR serves the monitor while it runs)
//	loom top     watch a program's monitor: tasks, pools, loops, breakers
//	loom fetch   fetch many URLs politely and resumably, as JSON lines
//	loom serve   serve HTTP/1.1 on event loops, with fault injection
//	loom worker  run this binary's registered functions for remote callers
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "loom:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "loom",
		Short:         "Structured concurrency, event loops and resilience for Go",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newDemo(), newTop(), newFetch(), newServe(), newWorker())
	return root
}

// Command background-services supervises a ticker and a flaky job: the
// job fails twice and is restarted with backoff; on shutdown both stop.
// Run it and press Ctrl-C, or let it stop after -for.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"loom/policy"
	"loom/service"
)

func main() {
	d := flag.Duration("for", time.Second, "how long to run")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *d)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer) error {
	sup := service.New("example", service.WithBackoff(policy.Backoff{Base: 20 * time.Millisecond, Max: time.Second, Jitter: policy.NoJitter}))
	var ticks atomic.Int64
	_ = sup.Add(service.Service{Name: "ticker", Run: func(ctx context.Context, ready func()) error {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		ready()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				ticks.Add(1)
			}
		}
	}})
	var attempts atomic.Int64
	_ = sup.Add(service.Service{Name: "flaky-job", Run: func(ctx context.Context, ready func()) error {
		n := attempts.Add(1)
		ready()
		if n <= 2 {
			return errors.New("upstream not ready")
		}
		<-ctx.Done()
		return nil
	}})
	if err := sup.RunMain(ctx); err != nil {
		return err
	}
	for _, st := range sup.Status() {
		fmt.Fprintf(w, "%s: %s after %d restarts\n", st.Name, st.State, st.Restarts)
	}
	if ticks.Load() == 0 {
		return errors.New("the ticker never ticked")
	}
	return nil
}

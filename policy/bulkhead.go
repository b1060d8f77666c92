package policy

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"loom"
	"loom/internal/registry"
)

// ErrBulkheadFull is wrapped by the error a Bulkhead returns when a call
// finds every slot busy and the waiting line full.
var ErrBulkheadFull = errors.New("policy: bulkhead full")

// Bulkhead bounds how many calls run at once (maxConcurrent) and how many
// may wait for a slot (maxWaiting); a call beyond both is refused at once
// with an error wrapping ErrBulkheadFull, so that a slow dependency cannot
// tie up every goroutine of its caller. Waiting calls are served in order
// and give up when their context ends. It is built on loom.Semaphore.
type Bulkhead struct {
	name       string
	sem        *loom.Semaphore
	maxWaiting int64
	waiting    atomic.Int64
	rejected   atomic.Uint64
	err        error
}

// NewBulkhead returns a bulkhead named name for the monitor. maxConcurrent
// must be at least 1 and maxWaiting at least 0; bad arguments give a
// bulkhead that refuses every call with an error wrapping
// loom.ErrInvalidArgument.
func NewBulkhead(name string, maxConcurrent, maxWaiting int) *Bulkhead {
	b := &Bulkhead{name: name, maxWaiting: int64(maxWaiting)}
	if maxConcurrent < 1 || maxWaiting < 0 {
		b.err = fmt.Errorf("policy.NewBulkhead: %w: %d concurrent (need ≥ 1), %d waiting (need ≥ 0)",
			loom.ErrInvalidArgument, maxConcurrent, maxWaiting)
		return b
	}
	b.sem = loom.NewSemaphore(name+".slots", int64(maxConcurrent))
	registry.Track(b, registry.KindBulkhead, name, (*Bulkhead).report)
	return b
}

func (b *Bulkhead) run(ctx context.Context, c chain, i int) error {
	if b.err != nil {
		return b.err
	}
	if !b.sem.TryAcquire(1) {
		if b.waiting.Add(1) > b.maxWaiting {
			b.waiting.Add(-1)
			b.rejected.Add(1)
			return fmt.Errorf("%w: %q", ErrBulkheadFull, b.name)
		}
		err := b.sem.Acquire(ctx, 1)
		b.waiting.Add(-1)
		if err != nil {
			return err
		}
	}
	defer b.sem.Release(1)
	return c.next(ctx, i)
}

// Running returns how many calls hold a slot.
func (b *Bulkhead) Running() int {
	if b.sem == nil {
		return 0
	}
	return int(b.sem.Held())
}

// Waiting returns how many calls wait for a slot.
func (b *Bulkhead) Waiting() int { return int(b.waiting.Load()) }

func (b *Bulkhead) report(f *registry.Figures) {
	f.Stat("running", float64(b.Running()))
	f.Stat("size", float64(b.sem.Size()))
	f.Stat("waiting", float64(b.Waiting()))
	f.Stat("max_waiting", float64(b.maxWaiting))
	f.Counter("rejected", float64(b.rejected.Load()))
}

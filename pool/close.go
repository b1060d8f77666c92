package pool

import (
	"context"
	"fmt"

	"loom"
	"loom/internal/registry"
)

// CloseError is what Close returns when its context ended before the pool
// drained: the tasks that never ran (each has failed with an error wrapping
// ErrPoolClosed) and those still running (cancelled, but not returned yet).
type CloseError struct {
	Pool         string
	NeverRan     []string
	StillRunning []string
	Err          error // the context's cause
}

// Error counts the tasks that never ran and those still running.
func (e *CloseError) Error() string {
	return fmt.Sprintf("pool %q closed before draining: %d tasks never ran, %d still running: %v",
		e.Pool, len(e.NeverRan), len(e.StillRunning), e.Err)
}

// Unwrap returns ErrPoolClosed and the context's cause.
func (e *CloseError) Unwrap() []error { return []error{ErrPoolClosed, e.Err} }

// Close stops the pool taking tasks and waits until every queued task has
// run and every worker has exited. If ctx ends first, the tasks still queued
// never run: each fails with an error wrapping ErrPoolClosed, so their
// submitters learn of it. The running tasks are cancelled, and Close
// returns a *CloseError naming both. Calling Close again waits again.
func (p *Pool) Close(ctx context.Context) error {
	if ctx == nil {
		return fmt.Errorf("pool.Close: %w: nil context", loom.ErrInvalidArgument)
	}
	p.mu.Lock()
	p.closed = true
	if p.reaper != nil {
		p.reaper.Stop()
		p.reaping = false
	}
	for _, w := range p.idle {
		p.exitLocked(w)
		w.wake <- nil
	}
	p.idle = nil
	if len(p.workers) == 0 {
		p.mu.Unlock()
		return nil
	}
	if p.drained == nil {
		p.drained = make(chan struct{})
	}
	drained := p.drained
	p.mu.Unlock()

	select {
	case <-drained:
		return nil
	case <-ctx.Done():
	}
	cause := context.Cause(ctx)
	p.mu.Lock()
	var never []*job
	for p.jobs.len() > 0 {
		never = append(never, p.jobs.pop())
	}
	e := &CloseError{Pool: p.name, Err: cause}
	var running []*job
	for w := range p.workers {
		if w.cur != nil {
			running = append(running, w.cur)
		}
	}
	p.mu.Unlock()
	for _, j := range never {
		if j.stop != nil {
			j.stop()
		}
		e.NeverRan = append(e.NeverRan, j.task.Name())
		p.drop(j, fmt.Errorf("task %q: %w before it ran: %w", j.task.Name(), ErrPoolClosed, cause))
	}
	for _, j := range running {
		e.StillRunning = append(e.StillRunning, j.task.Name())
		j.task.Cancel(fmt.Errorf("%w: %w", ErrPoolClosed, cause))
	}
	return e
}

// Metrics returns a copy of the pool's figures.
func (p *Pool) Metrics() Metrics {
	p.mu.Lock()
	m := Metrics{
		Name: p.name, Size: p.size, Workers: len(p.workers), Idle: len(p.idle),
		Queued: p.jobs.len(), Running: p.running,
	}
	p.mu.Unlock()
	c := &p.counters
	m.Submitted, m.Completed, m.Failed = c.submitted.Load(), c.completed.Load(), c.failed.Load()
	m.Dropped, m.Rejected = c.dropped.Load(), c.rejected.Load()
	m.Wait, m.Run = c.wait.Snapshot(), c.run.Snapshot()
	return m
}

func (p *Pool) report(f *registry.Figures) {
	m := p.Metrics()
	f.Stat("size", float64(m.Size))
	f.Stat("workers", float64(m.Workers))
	f.Stat("idle", float64(m.Idle))
	f.Stat("queued", float64(m.Queued))
	f.Stat("running", float64(m.Running))
	f.Counter("submitted", float64(m.Submitted))
	f.Counter("completed", float64(m.Completed))
	f.Counter("failed", float64(m.Failed))
	f.Counter("dropped", float64(m.Dropped))
	f.Counter("rejected", float64(m.Rejected))
	f.Display("wait_p50_seconds", m.Wait.Quantile(0.5).Seconds())
	f.Display("wait_p99_seconds", m.Wait.Quantile(0.99).Seconds())
	f.Display("run_p50_seconds", m.Run.Quantile(0.5).Seconds())
	f.Display("run_p99_seconds", m.Run.Quantile(0.99).Seconds())
	f.Histogram("wait_seconds", m.Wait.Hist())
	f.Histogram("run_seconds", m.Run.Hist())
}

package pool

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"

	"loom"
	"loom/internal/registry"
)

var (
	// ErrPoolClosed is returned by Submit after Close has been called, and
	// is wrapped by the error of a task that Close dropped before it ran.
	ErrPoolClosed = errors.New("pool: closed")

	// ErrPoolFull is returned by TrySubmit when the pool's queue is full.
	ErrPoolFull = errors.New("pool: full")
)

// Pool runs tasks on a bounded set of worker goroutines. Create one with
// New; all methods may be called from any goroutine.
type Pool struct {
	name        string
	labels      context.Context // the workers' pprof labels (loom.pool), made once; nil if unnamed
	idleTimeout time.Duration
	queueSize   int // -1: unbounded
	slots       *loom.Semaphore
	err         error // set when New's options were bad

	mu       sync.Mutex
	size     int
	workers  map[*worker]struct{}
	idle     []*worker // LIFO: busy workers stay warm, the others time out
	jobs     jobHeap
	seq      uint64
	running  int
	closed   bool
	drained  chan struct{} // closed once closed and every worker has exited
	quiet    chan struct{} // closed when nothing is queued or running; made by Wait
	reaper   *time.Timer   // retires idle workers; see reap
	reaping  bool          // reaper is armed
	counters counters
}

// worker is one goroutine of the pool.
type worker struct {
	wake      chan *job     // a job handed over while idle; nil tells it to exit
	cur       *job          // the job it runs, under Pool.mu
	idleSince time.Duration // since epoch; under Pool.mu, while in Pool.idle
}

// job is a queued task.
//
// A job is live for as long as its task is queued or running, so it is
// kept small (64 bytes; with its task, PrepareWith's one allocation fits
// 256): the task handle gives the name, the cancel and the context (which
// derives from the submitter's, so it carries its cancellation and
// cause), and the submit time is a monotonic offset rather than a
// time.Time.
type job struct {
	task    loom.Prepared
	stop    func() bool // unregisters the context watch, if any
	release func()      // cancels a per-task deadline, if any
	prio    int
	seq     uint64
	stamp   time.Duration // since epoch: when it was queued, then when it started
	index   int32         // in the heap; -1 once out of it
	watch   bool          // the submitter's context can end: watch it while queued
}

// epoch is the origin of the pool's timestamps (job.stamp, a task's
// start and end, worker.idleSince): a Duration since it is monotonic, a
// third of a time.Time's size, and costs one read of the clock where
// time.Now costs two (wall and monotonic).
var epoch = time.Now()

// New returns a pool named name (for the monitor, the metrics and the
// pprof label loom.pool on its workers) configured by opts. With no
// options it runs at most GOMAXPROCS tasks at once and queues the rest
// without bound. Bad options give a pool whose every Submit returns an
// error wrapping loom.ErrInvalidArgument.
func New(name string, opts ...Option) *Pool {
	c := config{name: name, size: runtime.GOMAXPROCS(0), queue: -1, idleTimeout: 5 * time.Second}
	err := c.apply(opts)
	if err == nil && (c.maxTasks != 0 || c.memLimit != 0) {
		err = fmt.Errorf("pool.New: %w: WithMaxTasksPerChild and WithMemoryLimit are for NewProcessPool", loom.ErrInvalidArgument)
	}
	p := &Pool{
		name: c.name, idleTimeout: c.idleTimeout, queueSize: c.queue, err: err,
		size: c.size, workers: map[*worker]struct{}{},
	}
	if err != nil {
		p.closed = true
		return p
	}
	if c.queue >= 0 {
		p.slots = loom.NewSemaphore(c.name+".slots", int64(c.size+c.queue))
	}
	if c.name != "" {
		p.labels = pprof.WithLabels(context.Background(), pprof.Labels("loom.pool", c.name))
	}
	registry.Track(p, registry.KindPool, c.name, (*Pool).report)
	return p
}

// SubmitOption configures one submission.
type SubmitOption func(*submitConfig)

type submitConfig struct {
	prio     int
	deadline time.Time
	timeout  time.Duration
}

// Priority sets the task's priority: among queued tasks, higher priorities
// run first, and tasks of equal priority in the order they were submitted.
// The default is 0; negative priorities run after it.
func Priority(p int) SubmitOption { return func(c *submitConfig) { c.prio = p } }

// Timeout gives the task a deadline d after submission: time spent queued
// counts. If it passes before a worker takes the task, the task never runs
// and fails with context.DeadlineExceeded; if it passes while the task runs,
// the task's context ends.
func Timeout(d time.Duration) SubmitOption { return func(c *submitConfig) { c.timeout = d } }

// Deadline is Timeout with an absolute time.
func Deadline(t time.Time) SubmitOption { return func(c *submitConfig) { c.deadline = t } }

// Submit queues fn to run on the pool as a task named name and returns the
// task, which ends with fn's result. It waits for room while a bounded
// queue is full, returning context.Cause(ctx) if ctx ends first. The task's
// context derives from ctx, so cancelling ctx cancels the task, queued or
// running; a queued task that is cancelled never runs.
//
// Submit returns an error wrapping ErrPoolClosed after Close, and one
// wrapping loom.ErrInvalidArgument for a nil ctx or fn or a bad option.
func Submit[T any](ctx context.Context, p *Pool, name string, fn func(ctx context.Context) (T, error), opts ...SubmitOption) (*loom.Task[T], error) {
	return submit(ctx, p, name, fn, opts, true)
}

// TrySubmit is Submit that never waits: if a bounded queue is full it
// returns ErrPoolFull at once.
func TrySubmit[T any](ctx context.Context, p *Pool, name string, fn func(ctx context.Context) (T, error), opts ...SubmitOption) (*loom.Task[T], error) {
	return submit(ctx, p, name, fn, opts, false)
}

func submit[T any](ctx context.Context, p *Pool, name string, fn func(ctx context.Context) (T, error), opts []SubmitOption, wait bool) (*loom.Task[T], error) {
	switch {
	case p == nil:
		return nil, fmt.Errorf("pool.Submit: %w: nil pool", loom.ErrInvalidArgument)
	case ctx == nil:
		return nil, fmt.Errorf("pool.Submit: %w: nil context", loom.ErrInvalidArgument)
	case fn == nil:
		return nil, fmt.Errorf("pool.Submit: %w: nil function", loom.ErrInvalidArgument)
	case p.err != nil:
		return nil, p.err
	}
	c, err := applySubmit(opts)
	if err != nil {
		return nil, err
	}
	if p.slots != nil {
		if wait {
			if err := p.slots.Acquire(ctx, 1); err != nil {
				return nil, err
			}
		} else if !p.slots.TryAcquire(1) {
			p.counters.rejected.Add(1)
			return nil, ErrPoolFull
		}
	}
	var release context.CancelFunc
	if c.timeout != 0 || !c.deadline.IsZero() {
		dl := c.deadline
		if c.timeout != 0 && (dl.IsZero() || time.Now().Add(c.timeout).Before(dl)) {
			dl = time.Now().Add(c.timeout)
		}
		ctx, release = context.WithDeadline(ctx, dl)
	}
	// The job is allocated with its task: one allocation, not two.
	t, prep, j := loom.PrepareWith[T, job](ctx, name, fn)
	*j = job{task: prep, release: release, prio: c.prio, index: -1, watch: ctx.Done() != nil}
	if err := p.enqueue(j); err != nil {
		prep.Abort(err)
		p.finished(j)
		return nil, err
	}
	return t, nil
}

// applySubmit folds opts into a config. It is a function of its own so
// that the config, which escapes through the option calls, is only
// allocated when there are options.
func applySubmit(opts []SubmitOption) (submitConfig, error) {
	if len(opts) == 0 {
		return submitConfig{}, nil
	}
	var c submitConfig
	for _, o := range opts {
		if o == nil {
			return c, fmt.Errorf("pool.Submit: %w: nil option", loom.ErrInvalidArgument)
		}
		o(&c)
	}
	return c, nil
}

// enqueue hands j to an idle worker, starts a worker for it, or queues it.
func (p *Pool) enqueue(j *job) error {
	j.stamp = time.Since(epoch)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return fmt.Errorf("pool.Submit: %w", ErrPoolClosed)
	}
	p.counters.submitted.Add(1)
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle = p.idle[:n-1]
		w.cur = j
		p.running++
		p.mu.Unlock()
		w.wake <- j
		return nil
	}
	if len(p.workers) < p.size {
		w := &worker{wake: make(chan *job, 1), cur: j}
		p.workers[w] = struct{}{}
		p.running++
		p.mu.Unlock()
		go p.work(w)
		return nil
	}
	p.seq++
	j.seq = p.seq
	if j.watch {
		// Drop the job from the queue as soon as its context ends, so a
		// deadline is met even while every worker is busy. The watch is
		// on the task's context, which ends with the submitter's and
		// with the task, so it is never left behind; it is set before
		// the job can be popped, so workers see j.stop.
		j.stop = context.AfterFunc(j.task.Context(), func() { p.expire(j) })
	}
	p.jobs.push(j)
	p.mu.Unlock()
	return nil
}

// expire removes j from the queue if it is still there and ends it with its
// context's cause.
func (p *Pool) expire(j *job) {
	p.mu.Lock()
	queued := j.index >= 0
	if queued {
		p.jobs.remove(j)
		p.quietLocked()
	}
	p.mu.Unlock()
	if queued {
		p.drop(j, context.Cause(j.task.Context()))
	}
}

// drop ends a job that never ran.
func (p *Pool) drop(j *job, err error) {
	p.counters.dropped.Add(1)
	j.task.Abort(err)
	p.finished(j)
}

// finished releases what a job held once it has ended, run or not. The
// job lives as long as its task (PrepareWith), so it lets go of its
// deadline's cancel and of its watch.
func (p *Pool) finished(j *job) {
	if j.release != nil {
		j.release()
	}
	j.release, j.stop = nil, nil
	if p.slots != nil {
		_ = p.slots.Release(1)
	}
}

// work is a worker goroutine: it runs its first job (w.cur), then
// whatever is queued, then waits for more until its idle timeout.
//
// The loop is split into small functions whose frames are gone while the
// task runs (begin, end, next): a worker's stack then stays within the
// 2 KiB a goroutine starts with, which halves the memory of a pool of many
// blocked workers. The task runs from this frame, with none between: the
// collector scans a blocked worker's stack, and counts what it scans in
// its goal; so does each word the loop keeps or passes (the job holds
// its start time, and end is told only whether the task failed).
func (p *Pool) work(w *worker) {
	if p.labels != nil {
		p.label()
	}
	j := w.cur // set before the goroutine started
	for j != nil {
		end, ok := p.begin(j)
		if ok {
			end = p.end(j, j.task.Run() != nil)
		}
		j = p.next(w, end)
	}
}

//go:noinline
func (p *Pool) label() { pprof.SetGoroutineLabels(p.labels) }

// next returns w's next job once its last one ended at end: a queued one,
// or one handed over after waiting idle; nil means exit.
//
//go:noinline
func (p *Pool) next(w *worker, end time.Duration) *job {
	p.mu.Lock()
	p.running--
	w.cur = nil
	if j := p.nextLocked(w); j != nil {
		p.mu.Unlock()
		return j
	}
	p.quietLocked()
	if p.closed || len(p.workers) > p.size {
		p.exitLocked(w)
		p.mu.Unlock()
		return nil
	}
	w.idleSince = end
	p.idle = append(p.idle, w)
	if !p.reaping {
		p.armReaperLocked(p.idleTimeout)
	}
	p.mu.Unlock()
	// A plain receive: a worker going idle is on every task's path when
	// the submitters are the bottleneck, and a timer per worker would cost
	// a reset and a select each time. One timer per pool retires the idle
	// workers instead (reap).
	return <-w.wake // nil: told to exit; the teller did the bookkeeping
}

// quietLocked wakes the Wait calls if nothing is queued or running.
func (p *Pool) quietLocked() {
	if p.quiet != nil && p.running == 0 && p.jobs.len() == 0 {
		close(p.quiet)
		p.quiet = nil
	}
}

// Wait waits until no task is queued or running, like asyncio's
// Queue.join, and the pool stays open: submit a batch, Wait for it, submit
// the next. It returns context.Cause(ctx) if ctx ends first. Tasks
// submitted while Wait waits are waited for too.
func (p *Pool) Wait(ctx context.Context) error {
	if ctx == nil {
		return fmt.Errorf("pool.Wait: %w: nil context", loom.ErrInvalidArgument)
	}
	p.mu.Lock()
	if p.running == 0 && p.jobs.len() == 0 {
		p.mu.Unlock()
		return nil
	}
	if p.quiet == nil {
		p.quiet = make(chan struct{})
	}
	quiet := p.quiet
	p.mu.Unlock()
	select {
	case <-quiet:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// armReaperLocked schedules reap after d.
func (p *Pool) armReaperLocked(d time.Duration) {
	p.reaping = true
	if p.reaper == nil {
		p.reaper = time.AfterFunc(d, p.reap)
	} else {
		p.reaper.Reset(d)
	}
}

// reap retires the workers that have been idle for the idle timeout, and
// schedules itself for the next one.
func (p *Pool) reap() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reaping = false
	if p.closed {
		return
	}
	now := time.Since(epoch)
	// idle is a stack: the workers idle the longest are at the bottom.
	k := 0
	for k < len(p.idle) && now-p.idle[k].idleSince >= p.idleTimeout {
		w := p.idle[k]
		p.exitLocked(w)
		w.wake <- nil
		k++
	}
	p.idle = append(p.idle[:0], p.idle[k:]...)
	if len(p.idle) > 0 {
		p.armReaperLocked(p.idle[0].idleSince + p.idleTimeout - now)
	}
}

// nextLocked pops the next queued job for w, or returns nil.
func (p *Pool) nextLocked(w *worker) *job {
	if p.jobs.len() == 0 {
		return nil
	}
	j := p.jobs.pop()
	w.cur = j
	p.running++
	return j
}

func (p *Pool) exitLocked(w *worker) {
	delete(p.workers, w)
	if p.closed && len(p.workers) == 0 && p.drained != nil {
		close(p.drained)
		p.drained = nil
	}
}

// begin decides whether j still runs, and if so records its wait and
// returns when it starts.
//
//go:noinline
func (p *Pool) begin(j *job) (time.Duration, bool) {
	if j.stop != nil && !j.stop() {
		// The context ended and expire is running or ran; it found the job
		// out of the queue, so the job is ours to drop.
		p.drop(j, context.Cause(j.task.Context()))
		return time.Since(epoch), false
	}
	// The task's context: the submitter's cancellation, or the task's
	// own Cancel while it was queued. Either way it never runs. (Err is an
	// atomic load; Cause takes the context's lock, so it waits for Err.)
	if ctx := j.task.Context(); ctx.Err() != nil {
		p.drop(j, context.Cause(ctx))
		return time.Since(epoch), false
	}
	start := time.Since(epoch)
	p.counters.wait.Observe(start - j.stamp)
	j.stamp = start
	return start, true
}

// end records how j went, started at j.stamp, and returns when it ended.
//
//go:noinline
func (p *Pool) end(j *job, failed bool) time.Duration {
	end := time.Since(epoch)
	p.counters.run.Observe(end - j.stamp)
	if failed {
		p.counters.failed.Add(1)
	} else {
		p.counters.completed.Add(1)
	}
	p.finished(j)
	return end
}

// Resize changes the most workers the pool runs. Growing starts workers for
// queued tasks at once; shrinking lets running tasks finish, and the extra
// workers exit as they become free. A size below 1 is an error wrapping
// loom.ErrInvalidArgument.
func (p *Pool) Resize(size int) error {
	if size < 1 {
		return fmt.Errorf("pool.Resize: %w: size %d; need at least 1", loom.ErrInvalidArgument, size)
	}
	if p.err != nil {
		return p.err
	}
	if p.slots != nil {
		if err := p.slots.Resize(int64(size + p.queueSize)); err != nil {
			return err
		}
	}
	p.mu.Lock()
	p.size = size
	for len(p.workers) < p.size && p.jobs.len() > 0 {
		j := p.jobs.pop()
		w := &worker{wake: make(chan *job, 1), cur: j}
		p.workers[w] = struct{}{}
		p.running++
		go p.work(w)
	}
	// Idle workers beyond the new size exit now.
	for len(p.workers) > p.size && len(p.idle) > 0 {
		w := p.idle[0]
		p.idle = p.idle[1:]
		p.exitLocked(w)
		w.wake <- nil
	}
	p.mu.Unlock()
	return nil
}

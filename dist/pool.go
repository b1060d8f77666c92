package dist

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"loom"
	"loom/internal/registry"
	"loom/pool"
)

// Pool runs functions registered with pool.Register on remote workers: a
// process pool whose processes are on other machines. Submit returns a
// *loom.Task on the caller's side; ServePool runs the functions on the
// workers' side. The arguments and results travel as pool.Register
// encodes them (gob), through two dist queues: the pool's jobs, which
// every worker serves, and each caller's own results.
//
// A job is delivered at least once: a worker that dies running it has it
// redelivered to another, so the function may run again; a result that
// arrives twice is dropped by job ID, so the caller's task completes once.
// Cancelling the task (or its context) tells the worker running the job to
// cancel the function's context. Every job carries a deadline (the
// context's, or JobTTL from its submission) after which workers drop it,
// so the jobs of a caller that died are not run for nobody.
//
// The backend must implement Notifier and Deleter (Memory and JetStream
// do). Open a Pool with NewPool; its methods may be called from any
// goroutine.
type Pool struct {
	name    string
	b       Backend
	jobs    *Queue[remoteJob]
	results *Queue[remoteResult]
	note    Notifier
	caller  string
	ttl     time.Duration
	maxArg  int
	origin  string   // host/pid
	qopts   []Option // the jobs queue's

	mu      sync.Mutex
	waiting map[string]*call
	stats   PoolStats
	seen    atomic.Pointer[[]WorkerInfo] // the workers, as last read for the monitor
	refresh refresher
	stop    context.CancelFunc
	read    chan struct{} // closed when the result reader ends
}

// remoteJob is a job as it travels to the workers.
type remoteJob struct {
	ID       string
	Func     string
	Arg      []byte
	Caller   string
	Deadline time.Time
}

// remoteResult is a job's outcome as it travels back.
type remoteResult struct {
	ID     string
	Result []byte `json:",omitempty"`
	Err    string `json:",omitempty"`
	Panic  string `json:",omitempty"`
	Kind   string `json:",omitempty"` // "unknown", "expired", "cancelled", "too-large", or "" for the function's own outcome
	// Attempt is the delivery of the job that ran: more than 1 when its
	// first worker died.
	Attempt int `json:",omitempty"`
}

// PoolStats counts what a caller's pool has seen.
type PoolStats struct {
	Submitted   int64 // jobs put
	Results     int64 // results handed to a waiting task
	Redelivered int64 // of those, results of a job's second or later delivery
	Dropped     int64 // results nobody waited for: delivered twice, or for a task that gave up
}

// DefaultJobTTL is how long a job submitted without a deadline may wait
// and run before workers drop it.
const DefaultJobTTL = 10 * time.Minute

// MaxPoolName is the longest name of a remote pool: its queues' names add
// to it.
const MaxPoolName = 40

// ErrJobExpired is wrapped by the error of a task whose job passed its
// deadline before a worker could finish it.
var ErrJobExpired = errors.New("dist: remote job expired")

// PoolOption configures NewPool.
type PoolOption func(*Pool) error

// JobTTL sets the deadline of jobs submitted without one (default
// DefaultJobTTL).
func JobTTL(d time.Duration) PoolOption {
	return func(p *Pool) error {
		if d <= 0 {
			return invalid("job TTL %v; want more than 0", d)
		}
		p.ttl = d
		return nil
	}
}

// JobQueue sets the options the pool's jobs queue is opened with (its
// AckWait, which is how soon the job of a worker that died goes to
// another, MaxAttempts, MaxValueBytes...); give the workers' ServePool the
// same.
func JobQueue(opts ...Option) PoolOption {
	return func(p *Pool) error {
		p.qopts = append(p.qopts, opts...)
		return nil
	}
}

// NewPool opens the remote pool named name (1 to MaxPoolName letters,
// digits, '-' and '_') on b for submitting jobs, with a result queue of
// this caller's own, which Close deletes.
func NewPool(ctx context.Context, b Backend, name string, opts ...PoolOption) (*Pool, error) {
	if ctx == nil || b == nil {
		return nil, fmt.Errorf("dist.NewPool: %w", invalid("nil context or backend"))
	}
	if !validName(name) || len(name) > MaxPoolName {
		return nil, fmt.Errorf("dist.NewPool: %w", invalid("pool name %q; want 1 to %d letters, digits, '-' and '_'", name, MaxPoolName))
	}
	note, ok := b.(Notifier)
	if _, del := b.(Deleter); !ok || !del {
		return nil, fmt.Errorf("dist.NewPool: %w", invalid("backend %T cannot notify or delete queues", b))
	}
	p := &Pool{name: name, b: b, note: note, caller: newID(), ttl: DefaultJobTTL, waiting: map[string]*call{}, read: make(chan struct{})}
	host, _ := os.Hostname()
	p.origin = fmt.Sprintf("%s/%d", host, os.Getpid())
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("dist.NewPool: %w", invalid("nil option"))
		}
		if err := o(p); err != nil {
			return nil, fmt.Errorf("dist.NewPool: %w", err)
		}
	}
	var err error
	if p.jobs, err = Open[remoteJob](ctx, b, name+"-jobs", p.qopts...); err != nil {
		return nil, fmt.Errorf("dist.NewPool: %w", err)
	}
	p.maxArg = p.jobs.cfg.MaxValueBytes * 3 / 4 // the argument travels in base64 inside JSON
	if p.results, err = Open[remoteResult](ctx, b, resultQueue(name, p.caller)); err != nil {
		_ = p.jobs.Close()
		return nil, fmt.Errorf("dist.NewPool: %w", err)
	}
	rctx, stop := context.WithCancel(context.Background())
	p.stop = stop
	go p.readResults(rctx)
	registry.Track(p, registry.KindDistPool, name, (*Pool).report)
	return p, nil
}

// report gives the monitor the pool's counts and its remote workers, as
// their heartbeats last said: each one a part, alive, left or lost, with
// its jobs and the seconds since its last heartbeat. Reading the
// heartbeats is a round trip to the backend, done in the background at
// most once a second.
func (p *Pool) report(f *registry.Figures) {
	st := p.Stats()
	p.mu.Lock()
	waiting := len(p.waiting)
	p.mu.Unlock()
	f.Counter("submitted", float64(st.Submitted))
	f.Counter("results", float64(st.Results))
	f.Counter("redelivered", float64(st.Redelivered))
	f.Counter("dropped", float64(st.Dropped))
	f.Stat("waiting", float64(waiting))
	if ws := p.seen.Load(); ws != nil {
		alive, lost := 0, 0
		for _, w := range *ws {
			switch {
			case w.Lost:
				lost++
			case !w.Left:
				alive++
			}
		}
		f.Stat("workers_alive", float64(alive))
		f.Stat("workers_lost", float64(lost))
		now := time.Now()
		for _, w := range *ws {
			state, seen := "alive", now.Sub(w.Seen).Seconds()
			switch {
			case w.Left:
				state = "left"
			case w.Lost:
				state = "lost"
			}
			f.Part(fmt.Sprintf("worker %s/%d", w.Host, w.PID), state,
				registry.Stat{Name: "running", Value: float64(w.Running)}, registry.Stat{Name: "done", Value: float64(w.Done)},
				registry.Stat{Name: "orphaned", Value: float64(w.Orphaned)}, registry.Stat{Name: "seen_seconds_ago", Value: seen})
		}
	}
	p.refresh.maybe(false, func(ctx context.Context) {
		if ws, err := RemoteWorkers(ctx, p.b, p.name); err == nil {
			p.seen.Store(&ws)
		}
	})
}

func resultQueue(pool, caller string) string { return pool + "-r-" + caller }

// maxJobID bounds a job ID as it comes back in a cancel notice (newID
// makes 16 characters).
const maxJobID = 64

func newID() string {
	// Unique, not secret: math/rand/v2's generator is seeded from the
	// system's randomness, and costs no system call per ID.
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], rand.Uint64())
	return hex.EncodeToString(b[:])
}

// readResults hands each result to the task waiting for it; a result nobody
// waits for (a duplicate, or for a task that gave up) is dropped.
func (p *Pool) readResults(ctx context.Context) {
	defer close(p.read)
	for {
		m, err := p.results.Get(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, ErrClosed) {
				return
			}
			time.Sleep(50 * time.Millisecond) // the backend is unreachable: again soon
			continue
		}
		p.mu.Lock()
		c := p.waiting[m.Value.ID]
		delete(p.waiting, m.Value.ID)
		switch {
		case c == nil:
			p.stats.Dropped++
		case m.Value.Attempt > 1:
			p.stats.Redelivered++
			fallthrough
		default:
			p.stats.Results++
		}
		p.mu.Unlock()
		if c != nil {
			p.deliver(c, m.Value)
		}
		_ = m.Done(context.WithoutCancel(ctx))
	}
}

// Submit queues a call of f with arg on the pool's workers and returns its
// task, named after f. The argument is encoded at once (an argument gob
// cannot encode, or one over the jobs queue's MaxValueBytes, is an error
// here). Cancelling the task, or ctx, cancels the remote function's
// context; the task then ends with the cause. A function error or panic
// ends the task with a *pool.RemoteError; an unknown function name with
// one wrapping pool.ErrUnknownFunc; a job past its deadline with one
// wrapping ErrJobExpired.
func Submit[A, R any](ctx context.Context, p *Pool, f *pool.Func[A, R], arg A) (*loom.Task[R], error) {
	if ctx == nil || p == nil || f == nil {
		return nil, fmt.Errorf("dist.Submit: %w", invalid("nil context, pool or function"))
	}
	raw, err := f.EncodeArg(arg)
	if err != nil {
		return nil, fmt.Errorf("dist.Submit: %w", err)
	}
	if len(raw) > p.maxArg {
		return nil, fmt.Errorf("dist.Submit: %w: the argument of %q encodes to %d bytes, over %d", ErrTooLarge, f.Name(), len(raw), p.maxArg)
	}
	job := remoteJob{ID: newID(), Func: f.Name(), Arg: raw, Caller: p.caller, Deadline: time.Now().Add(p.ttl)}
	if dl, ok := ctx.Deadline(); ok && dl.Before(job.Deadline) {
		job.Deadline = dl
	}
	c := &call{ch: make(chan remoteResult, 1)}
	p.mu.Lock()
	p.waiting[job.ID] = c
	p.mu.Unlock()
	// Where the job came from travels in headers, for the worker's monitor
	// and for tracing: always a trace context, a new trace if ctx has none.
	hdr := []PutOption{Key(job.ID), Header(HeaderTraceparent, childTraceparent(ctx, true)),
		Header(HeaderOrigin, p.origin+" task "+strconv.FormatUint(loom.TaskID(ctx), 10))}
	if name := loom.TaskName(ctx); name != "" {
		hdr = append(hdr, Header(HeaderTask, name))
	}
	if err := p.jobs.Put(ctx, job, hdr...); err != nil {
		p.forget(job.ID)
		return nil, fmt.Errorf("dist.Submit: %w", err)
	}
	p.mu.Lock()
	p.stats.Submitted++
	p.mu.Unlock()
	// The task runs no goroutine of its own while it waits: the result
	// reader runs it when the result comes, or its cancellation does
	// (whichever is first; the task's end cancels its context, which then
	// finds it run).
	t, prep := loom.Prepare(ctx, f.Name(), func(tctx context.Context) (R, error) {
		select {
		case r := <-c.ch:
			return decodeResult(f, r)
		default: // cancelled before the result came
			p.forget(job.ID)
			_ = p.note.Notify(context.WithoutCancel(tctx), cancelTopic(p.name), []byte(job.ID))
			var zero R
			return zero, context.Cause(tctx)
		}
	})
	var once sync.Once
	run := func() { once.Do(func() { _ = prep.Run() }) }
	context.AfterFunc(prep.Context(), run)
	p.arm(c, run)
	return t, nil
}

// call is a submitted job waiting for its result: the result, when it
// comes, and what runs its task.
type call struct {
	ch      chan remoteResult // buffered: holds the result
	run     func()            // set once the task exists
	arrived bool              // the result came before run was set
}

// deliver hands r to c's task and runs it (now, or once it exists).
func (p *Pool) deliver(c *call, r remoteResult) {
	c.ch <- r
	p.mu.Lock()
	run := c.run
	c.arrived = run == nil
	p.mu.Unlock()
	if run != nil {
		run()
	}
}

// arm sets what runs c's task, and runs it if the result came already.
func (p *Pool) arm(c *call, run func()) {
	p.mu.Lock()
	c.run = run
	arrived := c.arrived
	p.mu.Unlock()
	if arrived {
		run()
	}
}

// Remote returns a function that runs f on p's workers and waits for its
// result: a pipeline stage, or anything that takes a func(ctx, A) (R,
// error), hands its items to remote workers with the same backpressure
// (pipeline.Map(in, "resize", dist.Remote(p, resize), pipeline.Workers(32))
// keeps at most 32 calls in flight). Cancelling ctx cancels the remote call.
func Remote[A, R any](p *Pool, f *pool.Func[A, R]) func(ctx context.Context, arg A) (R, error) {
	return func(ctx context.Context, arg A) (R, error) {
		t, err := Submit(ctx, p, f, arg)
		if err != nil {
			var zero R
			return zero, err
		}
		return t.Wait(ctx)
	}
}

// Stats returns what the pool has seen so far.
func (p *Pool) Stats() PoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

func (p *Pool) forget(id string) {
	p.mu.Lock()
	delete(p.waiting, id)
	p.mu.Unlock()
}

func cancelTopic(pool string) string { return pool + ".cancel" }

func decodeResult[A, R any](f *pool.Func[A, R], r remoteResult) (R, error) {
	var zero R
	switch {
	case r.Kind == "closed":
		return zero, fmt.Errorf("%w: the pool was closed before the result came", ErrClosed)
	case r.Kind == "too-large":
		return zero, fmt.Errorf("%w: %s", ErrTooLarge, r.Err)
	case r.Kind == "unknown":
		return zero, fmt.Errorf("%w: %s", pool.ErrUnknownFunc, r.Err)
	case r.Kind == "expired":
		return zero, fmt.Errorf("%w: %s", ErrJobExpired, r.Err)
	case r.Err != "" || r.Panic != "":
		return zero, &pool.RemoteError{Func: f.Name(), Message: r.Err, Panic: r.Panic}
	}
	return f.DecodeResult(r.Result)
}

// Close stops waiting for results and deletes this caller's result queue;
// tasks still waiting end with ErrClosed, and their remote functions are
// cancelled.
func (p *Pool) Close() error {
	p.stop()
	<-p.read
	p.mu.Lock()
	var ids []string
	calls := make([]*call, 0, len(p.waiting))
	for id, c := range p.waiting {
		delete(p.waiting, id)
		ids, calls = append(ids, id), append(calls, c)
	}
	p.mu.Unlock()
	for i, c := range calls {
		p.deliver(c, remoteResult{ID: ids[i], Err: ErrClosed.Error(), Kind: "closed"})
	}
	// Nobody will wait for these: their functions are cancelled (a worker
	// that finishes one anyway finds no result queue, and drops it).
	for _, id := range ids {
		_ = p.note.Notify(context.Background(), cancelTopic(p.name), []byte(id))
	}
	err := errors.Join(p.jobs.Close(), p.results.Close())
	return errors.Join(err, p.b.(Deleter).DeleteQueue(context.Background(), resultQueue(p.name, p.caller)))
}

// ServePool runs the jobs of the remote pool named name, submitted by any
// caller, on this process's registered functions (pool.Register), until ctx
// ends; then it drains as Serve does. A job past its deadline is dropped
// with an expired result; a cancelled job's function sees its context
// cancelled; a job whose worker dies is redelivered to another. queue are
// the jobs queue's options (as the callers' JobQueue), opts Serve's.
func ServePool(ctx context.Context, b Backend, name string, queue []Option, opts ...ServeOption) error {
	if ctx == nil || b == nil {
		return fmt.Errorf("dist.ServePool: %w", invalid("nil context or backend"))
	}
	note, ok := b.(Notifier)
	if !ok || !validName(name) || len(name) > MaxPoolName {
		return fmt.Errorf("dist.ServePool: %w", invalid("backend %T, pool name %q", b, name))
	}
	jobs, err := Open[remoteJob](ctx, b, name+"-jobs", queue...)
	if err != nil {
		return fmt.Errorf("dist.ServePool: %w", err)
	}
	defer jobs.Close()
	w := &poolWorker{b: b, name: name, running: map[string]context.CancelCauseFunc{}, replies: map[string]*Queue[remoteResult]{}}
	defer w.close()
	if r, ok := b.(Registry); ok {
		every := DefaultHeartbeatEvery
		c := serveConfig{}
		for _, o := range opts {
			if o != nil && o(&c) == nil && c.heartbeat > 0 {
				every = c.heartbeat
			}
		}
		stopBeats := heartbeats(ctx, r, name, every, w)
		defer stopBeats()
	}
	stop, err := note.Listen(cancelTopic(name), func(id []byte) {
		if len(id) <= maxJobID {
			w.cancel(string(id))
		}
	})
	if err != nil {
		return fmt.Errorf("dist.ServePool: %w", err)
	}
	defer stop()
	return Serve(ctx, jobs, w.run, opts...)
}

// poolWorker is ServePool's state.
type poolWorker struct {
	b               Backend
	name            string
	nrunning, ndone atomic.Int64 // for the heartbeats
	orphaned        atomic.Int64 // results dropped: their caller's queue was gone
	mu              sync.Mutex
	running         map[string]context.CancelCauseFunc // by job ID
	replies         map[string]*Queue[remoteResult]    // result queues, by caller
}

// errCancelledByCaller is the cause a cancelled job's function sees.
var errCancelledByCaller = errors.New("dist: the caller cancelled the job")

func (w *poolWorker) cancel(id string) {
	w.mu.Lock()
	c := w.running[id]
	w.mu.Unlock()
	if c != nil {
		c(errCancelledByCaller)
	}
}

// run is the handler of one job: it always settles the job with a result,
// so that the job is not retried for the function's own errors.
func (w *poolWorker) run(ctx context.Context, job remoteJob) error {
	var res remoteResult
	if time.Now().After(job.Deadline) {
		res = remoteResult{Kind: "expired", Err: fmt.Sprintf("job %s of %q passed its deadline %s before it ran", job.ID, job.Func, job.Deadline.Format(time.RFC3339Nano))}
	} else {
		jctx, cancel := context.WithCancelCause(ctx)
		jctx, cancelDeadline := context.WithDeadline(jctx, job.Deadline)
		w.mu.Lock()
		w.running[job.ID] = cancel
		w.mu.Unlock()
		w.nrunning.Add(1)
		// A task of its own, named after where the job came from, so that
		// the worker's monitor shows it: `resize for build-7/4242 task 42
		// "thumbnails"`.
		name := job.Func + " for " + MessageHeader(ctx, HeaderOrigin)
		if from := MessageHeader(ctx, HeaderTask); from != "" {
			name += " " + strconv.Quote(from)
		}
		// Run here, on the Serve worker's goroutine: a goroutine of its own
		// would cost two wake-ups per job.
		t, run := loom.Prepare(jctx, name, func(ctx context.Context) ([]byte, error) {
			return pool.Invoke(ctx, job.Func, job.Arg)
		})
		_ = run.Run()
		out, err := t.Result()
		w.nrunning.Add(-1)
		w.ndone.Add(1)
		w.mu.Lock()
		delete(w.running, job.ID)
		w.mu.Unlock()
		cause := context.Cause(jctx)
		cancelDeadline()
		cancel(nil)
		var re *pool.RemoteError
		switch {
		case errors.Is(cause, errCancelledByCaller):
			res = remoteResult{Kind: "cancelled", Err: cause.Error()}
		case errors.Is(err, pool.ErrUnknownFunc):
			res = remoteResult{Kind: "unknown", Err: err.Error()}
		case errors.As(err, &re):
			res = remoteResult{Err: re.Message, Panic: re.Panic}
		case err != nil:
			res = remoteResult{Err: err.Error()}
		default:
			res = remoteResult{Result: out}
		}
	}
	res.ID, res.Attempt = job.ID, Attempt(ctx)
	q, err := w.reply(ctx, job.Caller)
	if err == nil {
		err = q.Put(context.WithoutCancel(ctx), res, Key(job.ID))
		if errors.Is(err, ErrTooLarge) {
			err = q.Put(context.WithoutCancel(ctx), remoteResult{ID: job.ID, Kind: "too-large", Err: err.Error()}, Key(job.ID+"-too-large"))
		}
	}
	if errors.Is(err, ErrNoQueue) {
		// The caller closed its pool (or died and someone deleted its
		// queue): nobody waits for the result. The job is done.
		w.forgetReply(job.Caller)
		w.orphaned.Add(1)
		return nil
	}
	return err // retried: the result queue may be back
}

// reply returns the result queue of caller, found once: it is never
// created here, so that a caller that closed its pool does not get it
// back from a worker that finishes late.
func (w *poolWorker) reply(ctx context.Context, caller string) (*Queue[remoteResult], error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if q := w.replies[caller]; q != nil {
		return q, nil
	}
	q, err := Open[remoteResult](context.WithoutCancel(ctx), w.b, resultQueue(w.name, caller), Existing())
	if err != nil {
		return nil, err
	}
	w.replies[caller] = q
	return q, nil
}

func (w *poolWorker) forgetReply(caller string) {
	w.mu.Lock()
	q := w.replies[caller]
	delete(w.replies, caller)
	w.mu.Unlock()
	if q != nil {
		_ = q.Close()
	}
}

func (w *poolWorker) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, q := range w.replies {
		_ = q.Close()
	}
}

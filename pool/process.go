package pool

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"loom"
)

var (
	// ErrWorkerDied is wrapped by the error of a task whose child process
	// died while running it: it crashed, was killed from outside, or went
	// over the memory limit. The pool replaces the child and goes on.
	ErrWorkerDied = errors.New("pool: worker process died")

	// ErrMemoryLimit is wrapped, beside ErrWorkerDied, by the error of a
	// task whose child went over the pool's memory limit and was killed.
	ErrMemoryLimit = errors.New("pool: worker process over its memory limit")
)

// RemoteError is how a child's failure reaches the parent: error values do
// not cross processes, so it carries the text.
type RemoteError struct {
	Func    string
	Message string
	// Panic holds the panic value and the child's stack if fn panicked.
	Panic string
}

// Error gives the function and the child's error text or panic.
func (e *RemoteError) Error() string {
	if e.Panic != "" {
		return fmt.Sprintf("%s panicked in a child process: %s", e.Func, e.Panic)
	}
	return fmt.Sprintf("%s: %s", e.Func, e.Message)
}

// helloTimeout bounds how long a new child may take to say hello.
const helloTimeout = 10 * time.Second

// waitDelay bounds how long reaping a child that has exited waits for its
// stderr to close: a program the child started may hold it open.
const waitDelay = time.Second

// ProcessPool runs registered Go functions in child processes of the same
// binary, so that work which runs away can be killed: cancelling a task,
// or its deadline passing, kills the child running it, and the next task
// gets a fresh one. A child that crashes fails its task with ErrWorkerDied
// and is replaced.
//
// Tasks queue as in a Pool (priorities, deadlines, a bounded queue, Close)
// and come back as *loom.Task. Each child runs one task at a time; children
// start on demand. The program must call ServeChild first thing in main.
//
// Each child runs in a process group of its own (on Unix), and killing a
// child kills its group, so programs that a function started go with it;
// the child's pipes to the parent are close-on-exec, so those programs do
// not hold them. A child found dead before a task reaches it (it died while
// idle) is replaced and the task goes to the new one: only a task the child
// had taken fails with ErrWorkerDied. Reaping a dead child waits at most a
// second for its stderr, which a program it started may still hold.
type ProcessPool struct {
	pool     *Pool
	exe      string
	maxTasks int
	memLimit int64
	children chan *child // one slot per worker; nil means none started
	err      error
}

// NewProcessPool returns a process pool named name for the monitor.
// WithSize sets the number of child processes (default GOMAXPROCS);
// WithQueueSize, WithMaxTasksPerChild and WithMemoryLimit apply too. Bad
// options, or calling it inside a child, give a pool whose Run returns the
// error.
func NewProcessPool(name string, opts ...Option) *ProcessPool {
	c := config{name: name, size: 0, queue: -1, idleTimeout: time.Hour}
	err := c.apply(opts)
	if err == nil && os.Getenv(envChild) == "1" {
		err = errors.New("pool.NewProcessPool: called inside a pool child; call pool.ServeChild first thing in main")
	}
	pp := &ProcessPool{maxTasks: c.maxTasks, memLimit: c.memLimit, err: err}
	if err != nil {
		return pp
	}
	if pp.exe, err = os.Executable(); err != nil {
		pp.err = fmt.Errorf("pool.NewProcessPool: %w", err)
		return pp
	}
	popts := []Option{WithIdleTimeout(c.idleTimeout)}
	if c.sizeSet {
		popts = append(popts, WithSize(c.size))
	}
	if c.queue >= 0 {
		popts = append(popts, WithQueueSize(c.queue))
	}
	pp.pool = New(c.name, popts...)
	pp.children = make(chan *child, pp.pool.size)
	for range pp.pool.size {
		pp.children <- nil
	}
	return pp
}

// Run queues a call of f with arg in a child process and returns its task.
// The argument is encoded at once: an argument gob cannot encode is an
// error here. Cancelling ctx, or the deadline of a Timeout or Deadline
// option passing, kills the child if the call is running; the task then
// ends with the context's cause. Errors as for Submit.
func Run[A, R any](ctx context.Context, pp *ProcessPool, f *Func[A, R], arg A, opts ...SubmitOption) (*loom.Task[R], error) {
	switch {
	case pp == nil || f == nil:
		return nil, fmt.Errorf("pool.Run: %w: nil pool or function", loom.ErrInvalidArgument)
	case pp.err != nil:
		return nil, pp.err
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&arg); err != nil {
		return nil, fmt.Errorf("pool.Run: encoding the argument of %q: %w", f.name, err)
	}
	raw := buf.Bytes()
	return Submit(ctx, pp.pool, f.name, func(ctx context.Context) (R, error) {
		var zero R
		out, err := pp.call(ctx, f.name, raw)
		if err != nil {
			return zero, err
		}
		var v R
		if err := gob.NewDecoder(bytes.NewReader(out)).Decode(&v); err != nil {
			return zero, fmt.Errorf("decoding the result of %q: %w", f.name, err)
		}
		return v, nil
	}, opts...)
}

// call runs one request on a child, starting one if the slot is empty or
// its child has died while idle.
func (pp *ProcessPool) call(ctx context.Context, name string, arg []byte) ([]byte, error) {
	c := <-pp.children // a slot is always free: the pool runs at most one call per slot
	defer func() { pp.children <- c }()
	req := request{Func: name, Arg: arg}
	if dl, ok := ctx.Deadline(); ok {
		req.Deadline = dl
	}
	var out []byte
	var err error
	for attempt := 0; ; attempt++ {
		if c != nil && c.dead() {
			// It died while idle (killed from outside, say): this task
			// was never its, so it goes to a fresh child.
			c.kill()
			c = nil
		}
		if c == nil {
			if c, err = pp.spawn(); err != nil {
				return nil, err
			}
		}
		var sent bool
		out, sent, err = c.roundTrip(ctx, pp.memLimit, &req)
		if sent || attempt == 1 {
			break
		}
		// The request never reached the child, which was dead: once more
		// on a fresh one.
		c.kill()
		c = nil
	}
	switch {
	case c.broken:
		c.kill()
		c = nil
	case pp.maxTasks > 0 && c.tasks >= pp.maxTasks:
		c.retire(time.Second)
		c = nil
	}
	return out, err
}

// Close stops taking tasks, waits for the queued ones as Pool.Close does,
// then lets every child exit; children that have not exited when ctx ends
// are killed.
func (pp *ProcessPool) Close(ctx context.Context) error {
	if pp.err != nil {
		return pp.err
	}
	err := pp.pool.Close(ctx)
	grace := time.Second
	if dl, ok := ctx.Deadline(); ok {
		grace = max(time.Until(dl), 0)
	}
	var wg sync.WaitGroup
	for range cap(pp.children) {
		c := <-pp.children
		if c != nil {
			wg.Add(1)
			go func() { defer wg.Done(); c.retire(grace) }()
		}
	}
	wg.Wait()
	for range cap(pp.children) {
		pp.children <- nil // a later Close finds the slots again
	}
	return err
}

// Metrics returns the figures of the pool's queue and workers.
func (pp *ProcessPool) Metrics() Metrics {
	if pp.pool == nil {
		return Metrics{}
	}
	return pp.pool.Metrics()
}

// child is one worker process, seen from the parent.
type child struct {
	cmd    *exec.Cmd
	in     *os.File // requests, to the child
	out    *os.File // responses, from the child
	enc    *gob.Encoder
	dec    *gob.Decoder
	stderr *tail
	exited chan struct{} // closed once the process has been reaped
	tasks  int
	broken bool // the child died or was killed; it must be replaced
}

func (pp *ProcessPool) spawn() (*child, error) {
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("pool: starting a worker process: %w", err)
	}
	respR, respW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		return nil, fmt.Errorf("pool: starting a worker process: %w", err)
	}
	c := &child{in: reqW, out: respR, stderr: &tail{w: os.Stderr}, exited: make(chan struct{})}
	c.cmd = exec.Command(pp.exe)
	c.cmd.Env = append(os.Environ(), envChild+"=1")
	if pp.memLimit > 0 {
		c.cmd.Env = append(c.cmd.Env, envMemLimit+"="+strconv.FormatInt(pp.memLimit, 10))
	}
	c.cmd.ExtraFiles = []*os.File{reqR, respW}
	c.cmd.Stdout = os.Stdout
	c.cmd.Stderr = c.stderr
	c.cmd.WaitDelay = waitDelay
	ownGroup(c.cmd)
	err = c.cmd.Start()
	reqR.Close()
	respW.Close()
	if err != nil {
		reqW.Close()
		respR.Close()
		return nil, fmt.Errorf("pool: starting a worker process: %w", err)
	}
	go func() {
		_ = c.cmd.Wait()
		close(c.exited)
	}()
	c.enc, c.dec = gob.NewEncoder(c.in), gob.NewDecoder(c.out)

	// A child that does not call ServeChild runs the program's main
	// instead and never says hello: kill it rather than wait for ever.
	timer := time.AfterFunc(helloTimeout, func() { killGroup(c.cmd) })
	var h hello
	err = c.dec.Decode(&h)
	timer.Stop()
	if err != nil {
		c.kill()
		return nil, fmt.Errorf("%w: the worker process did not start serving (does main call pool.ServeChild first?): %v%s",
			ErrWorkerDied, err, c.stderr.suffix())
	}
	return c, nil
}

// dead reports whether the child has exited.
func (c *child) dead() bool {
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}

// roundTrip sends req and waits for the response, the child's death, the
// memory limit or ctx; in the last two cases it kills the child. sent is
// false if the request could not be written to the child at all (it had
// died): then the function did not run.
func (c *child) roundTrip(ctx context.Context, memLimit int64, req *request) (out []byte, sent bool, err error) {
	c.tasks++
	if err := c.enc.Encode(req); err != nil {
		c.broken = true
		return nil, false, c.died(req.Func, err)
	}
	out, err = c.await(ctx, memLimit, req)
	if c.broken && errors.Is(err, ErrWorkerDied) && unread(c.in) > 0 {
		// The child died with the request still in its pipe: it never
		// read it, so the function did not run.
		return nil, false, err
	}
	return out, true, err
}

// await waits for the response to req.
func (c *child) await(ctx context.Context, memLimit int64, req *request) ([]byte, error) {
	type result struct {
		resp response
		err  error
	}
	got := make(chan result, 1)
	go func() {
		var r result
		r.err = c.dec.Decode(&r.resp)
		got <- r
	}()
	var tick <-chan time.Time
	if memLimit > 0 {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case r := <-got:
			if r.err != nil {
				c.broken = true
				return nil, c.died(req.Func, r.err)
			}
			if r.resp.Failed {
				return nil, &RemoteError{Func: req.Func, Message: r.resp.Err, Panic: r.resp.Panic}
			}
			return r.resp.Result, nil
		case <-ctx.Done():
			c.broken = true
			c.kill()
			<-got // the read ends with the process
			return nil, context.Cause(ctx)
		case <-tick:
			rss, err := residentBytes(c.cmd.Process.Pid)
			if err != nil || rss <= memLimit {
				continue
			}
			c.broken = true
			c.kill()
			<-got
			return nil, fmt.Errorf("%w: %w: %s used %d bytes, over the limit of %d; the process was killed",
				ErrWorkerDied, ErrMemoryLimit, req.Func, rss, memLimit)
		}
	}
}

// died describes the child's death while it ran fn.
func (c *child) died(fn string, ioErr error) error {
	select {
	case <-c.exited:
	case <-time.After(time.Second):
		c.kill()
	}
	return fmt.Errorf("%w: pid %d running %s: %v%s", ErrWorkerDied, c.cmd.Process.Pid, fn, c.cmd.ProcessState, c.stderr.suffix())
}

// kill kills the child and what it started (its process group), and reaps
// it.
func (c *child) kill() {
	killGroup(c.cmd)
	<-c.exited
	c.in.Close()
	c.out.Close()
}

// retire closes the child's request pipe, which makes it exit, and kills it
// if it has not within grace.
func (c *child) retire(grace time.Duration) {
	c.in.Close()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.exited:
	case <-t.C:
		killGroup(c.cmd)
		<-c.exited
	}
	c.out.Close()
}

// tail passes a child's stderr through and keeps its last bytes for error
// messages.
type tail struct {
	w   *os.File
	mu  sync.Mutex
	buf []byte
}

const tailSize = 2048

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailSize {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailSize:]...)
	}
	t.mu.Unlock()
	return t.w.Write(p)
}

// suffix returns "; last output: ..." or "".
func (t *tail) suffix() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := bytes.TrimSpace(t.buf)
	if len(s) == 0 {
		return ""
	}
	if len(s) > 300 {
		s = s[len(s)-300:]
	}
	return "; last output: " + strconv.Quote(string(s))
}

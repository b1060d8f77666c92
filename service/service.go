// Package service supervises long-running background services (a
// metrics flusher, a cache refresher, a queue consumer): it starts them in
// order, each announcing when it is ready (Trio's task_status.started()),
// restarts one that fails with a growing backoff that decays while it runs
// well (one-for-one, or every service with OneForAll), gives up and
// reports when a service fails too often, and shuts everything down on
// SIGINT/SIGTERM with a deadline, naming the services that did not stop.
//
// Each run of a service is a loom task, so the monitor shows it, with its
// restarts and state among the supervisor's figures.
package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"loom"
	"loom/internal/registry"
	"loom/policy"
)

// Service is one supervised service. Run must run until ctx ends (then
// return), call ready once it serves (a listener bound, a connection
// made), and return an error if it fails. A nil return before ctx ends
// means the service finished its work: it is not restarted.
type Service struct {
	Name string
	Run  func(ctx context.Context, ready func()) error
}

var (
	// ErrGaveUp is wrapped by Run's error when a service failed more often
	// than MaxRestarts allows within the decay window.
	ErrGaveUp = errors.New("service: gave up restarting")

	// ErrNotReady is wrapped by Run's error when a service did not call
	// ready within the ready timeout at start.
	ErrNotReady = errors.New("service: not ready in time")
)

// NotStoppedError is returned by Run when services were still running when
// the shutdown deadline passed; they have been cancelled and are left to
// end on their own.
type NotStoppedError struct {
	Services []string
}

// Error names the services that did not stop.
func (e *NotStoppedError) Error() string {
	return fmt.Sprintf("service: %d services did not stop in time: %v", len(e.Services), e.Services)
}

// Option configures a Supervisor.
type Option func(*Supervisor) error

// WithBackoff sets the wait before restarting a failed service: b.Delay(n)
// after its n-th recent failure (the default is policy.Backoff{Base:
// 100ms, Max: 30s, Jitter: policy.NoJitter}). b.Base must be more than 0:
// a service that fails at once must not restart in a busy loop.
func WithBackoff(b policy.Backoff) Option {
	return func(s *Supervisor) error {
		if err := b.Validate(); err != nil {
			return err
		}
		if b.Base <= 0 {
			return fmt.Errorf("%w: restart backoff base %v; need more than 0", loom.ErrInvalidArgument, b.Base)
		}
		s.backoff = b
		return nil
	}
}

// Decay sets how long a failure counts against a service: failures older
// than d are forgotten, so a service that ran well for d restarts fast
// again (default 1 minute).
func Decay(d time.Duration) Option {
	return func(s *Supervisor) error {
		if d <= 0 {
			return fmt.Errorf("%w: decay %v", loom.ErrInvalidArgument, d)
		}
		s.decay = d
		return nil
	}
}

// MaxRestarts gives up, ending Run with an error wrapping ErrGaveUp, when a
// service has failed more than n times within the decay window (default
// 10).
func MaxRestarts(n int) Option {
	return func(s *Supervisor) error {
		if n < 0 {
			return fmt.Errorf("%w: max restarts %d", loom.ErrInvalidArgument, n)
		}
		s.maxRestarts = n
		return nil
	}
}

// OneForAll restarts every service, in order, when one fails: for services
// that depend on each other's state. The default restarts only the one.
func OneForAll() Option { return func(s *Supervisor) error { s.oneForAll = true; return nil } }

// ReadyTimeout bounds how long a service may take to call ready when it
// starts (default 30s).
func ReadyTimeout(d time.Duration) Option {
	return func(s *Supervisor) error {
		if d <= 0 {
			return fmt.Errorf("%w: ready timeout %v", loom.ErrInvalidArgument, d)
		}
		s.readyTimeout = d
		return nil
	}
}

// ShutdownTimeout bounds how long Run waits for the services to stop
// (default 10s).
func ShutdownTimeout(d time.Duration) Option {
	return func(s *Supervisor) error {
		if d <= 0 {
			return fmt.Errorf("%w: shutdown timeout %v", loom.ErrInvalidArgument, d)
		}
		s.shutdownTimeout = d
		return nil
	}
}

// Supervisor runs services. Create it with New, Add services, then Run.
type Supervisor struct {
	name            string
	backoff         policy.Backoff
	decay           time.Duration
	maxRestarts     int
	oneForAll       bool
	readyTimeout    time.Duration
	shutdownTimeout time.Duration
	err             error

	mu      sync.Mutex
	runs    []*run
	started bool
	ready   chan struct{}
	exits   []exit        // attempts that returned, for the supervising loop
	notify  chan struct{} // capacity 1: exits has news
}

// run is one service's life under the supervisor.
type run struct {
	svc      Service
	cancel   context.CancelCauseFunc
	done     chan struct{} // closed when the current attempt has returned
	attempt  int           // counts starts
	settled  int           // the last attempt whose end was dealt with
	exitErr  error         // what the current attempt returned, before done closes
	task     *loom.Task[struct{}]
	failures []time.Time
	restarts int
	state    string
	lastErr  error
}

// New returns a supervisor named name for the monitor. Bad options give a
// supervisor whose Run returns an error wrapping loom.ErrInvalidArgument.
func New(name string, opts ...Option) *Supervisor {
	s := &Supervisor{name: name, backoff: policy.Backoff{Base: 100 * time.Millisecond, Max: 30 * time.Second, Jitter: policy.NoJitter},
		decay: time.Minute, maxRestarts: 10, readyTimeout: 30 * time.Second, shutdownTimeout: 10 * time.Second,
		ready: make(chan struct{}), notify: make(chan struct{}, 1)}
	for _, o := range opts {
		if o == nil {
			s.err = fmt.Errorf("service.New: %w: nil option", loom.ErrInvalidArgument)
			break
		}
		if err := o(s); err != nil {
			s.err = fmt.Errorf("service.New: %w", err)
			break
		}
	}
	registry.Track(s, registry.KindService, name, (*Supervisor).report)
	return s
}

// Add adds a service, to be started after those added before it. It fails
// once Run has started, and for a service without a name or Run.
func (s *Supervisor) Add(svc Service) error {
	if svc.Name == "" || svc.Run == nil {
		return fmt.Errorf("service.Add: %w: a service needs a name and a Run function", loom.ErrInvalidArgument)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return fmt.Errorf("service.Add %q: %w: the supervisor is running", svc.Name, loom.ErrInvalidArgument)
	}
	s.runs = append(s.runs, &run{svc: svc, state: "added"})
	return nil
}

// Ready returns a channel closed once every service has called ready.
func (s *Supervisor) Ready() <-chan struct{} { return s.ready }

type exit struct {
	r       *run
	err     error
	attempt int
}

// post hands an attempt's end to the supervising loop without ever
// blocking the service's goroutine.
func (s *Supervisor) post(e exit) {
	s.mu.Lock()
	s.exits = append(s.exits, e)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// take returns the attempts that ended and are still to be dealt with.
func (s *Supervisor) take() []exit {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []exit
	for _, e := range s.exits {
		if e.attempt == e.r.attempt && e.r.settled < e.attempt {
			e.r.settled = e.attempt
			out = append(out, e)
		}
	}
	s.exits = s.exits[:0]
	return out
}

// Run starts the services in order, each after the one before is ready,
// and supervises them until ctx ends; then it cancels them all and waits
// up to the shutdown timeout. It returns nil after a clean shutdown, an
// error wrapping ErrNotReady or ErrGaveUp if a service could not be kept
// running (the others are stopped first), and a *NotStoppedError (joined)
// for services that outlived the shutdown deadline.
func (s *Supervisor) Run(ctx context.Context) error {
	if ctx == nil {
		return fmt.Errorf("service.Run: %w: nil context", loom.ErrInvalidArgument)
	}
	if s.err != nil {
		return s.err
	}
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return fmt.Errorf("service.Run: %w: already run", loom.ErrInvalidArgument)
	}
	s.started = true
	runs := s.runs
	s.mu.Unlock()

	var failure error
	for _, r := range runs {
		if err := s.start(ctx, r); err != nil {
			failure = err
			break
		}
	}
	if failure == nil {
		close(s.ready)
	}
	for failure == nil && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-s.notify:
			for _, e := range s.take() {
				if failure = s.handle(ctx, e, runs); failure != nil {
					break
				}
			}
		}
	}
	return errors.Join(failure, s.stop(runs))
}

// start runs r once and waits until it is ready, fails or times out.
func (s *Supervisor) start(ctx context.Context, r *run) error {
	rctx, cancel := context.WithCancelCause(ctx)
	ready := make(chan struct{})
	var once sync.Once
	done := make(chan struct{})
	s.mu.Lock()
	r.cancel, r.done, r.state = cancel, done, "starting"
	r.attempt++
	attempt := r.attempt
	s.mu.Unlock()
	task := loom.Go(rctx, r.svc.Name, func(ctx context.Context) (struct{}, error) {
		err := safeRun(ctx, r.svc, func() { once.Do(func() { close(ready) }) })
		s.mu.Lock()
		r.exitErr = err
		s.mu.Unlock()
		close(done)
		s.post(exit{r, err, attempt})
		return struct{}{}, err
	})
	s.mu.Lock()
	r.task = task
	s.mu.Unlock()
	t := time.NewTimer(s.readyTimeout)
	defer t.Stop()
	select {
	case <-ready:
		s.setState(r, "running", nil)
		return nil
	case <-done:
		select {
		case <-ready:
			// It was ready, then ended: a failure after its start, which
			// the supervising loop deals with like any other.
			s.setState(r, "running", nil)
			return nil
		default:
		}
		s.mu.Lock()
		err := r.exitErr
		r.settled = attempt // dealt with here, not by the loop
		s.mu.Unlock()
		_, _ = task.Wait(context.Background()) // its error is ours now
		if err == nil && ctx.Err() == nil {
			s.setState(r, "finished", nil)
			return nil // done before it was ever needed: fine
		}
		s.setState(r, "failed", err)
		return fmt.Errorf("service %q failed while starting: %w", r.svc.Name, err)
	case <-t.C:
		return fmt.Errorf("service %q: %w (%v)", r.svc.Name, ErrNotReady, s.readyTimeout)
	case <-ctx.Done():
		return nil
	}
}

func safeRun(ctx context.Context, svc Service, ready func()) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &loom.PanicError{Task: svc.Name, Value: v, Stack: debug.Stack()}
		}
	}()
	return svc.Run(ctx, ready)
}

// handle deals with a service that returned while the supervisor runs.
func (s *Supervisor) handle(ctx context.Context, e exit, runs []*run) error {
	r := e.r
	s.mu.Lock()
	task := r.task
	s.mu.Unlock()
	_, _ = task.Wait(context.Background()) // the attempt's error is handled here
	if ctx.Err() != nil {
		return nil
	}
	if e.err == nil {
		s.setState(r, "finished", nil)
		return nil
	}
	now := time.Now()
	s.mu.Lock()
	kept := r.failures[:0]
	for _, f := range r.failures {
		if now.Sub(f) < s.decay {
			kept = append(kept, f)
		}
	}
	r.failures = append(kept, now)
	recent := len(r.failures)
	r.lastErr = e.err
	s.mu.Unlock()
	if recent > s.maxRestarts {
		s.setState(r, "failed", e.err)
		return fmt.Errorf("service %q failed %d times within %v: %w: %w", r.svc.Name, recent, s.decay, ErrGaveUp, e.err)
	}
	wait := s.backoff.Delay(recent)
	s.setState(r, "restarting", e.err)
	targets := []*run{r}
	if s.oneForAll {
		targets = runs
		for _, o := range runs { // stop the others; their ends are not failures
			if o != r && o.state == "running" {
				o.cancel(fmt.Errorf("service %q failed: restarting all", r.svc.Name))
				stopped := time.NewTimer(s.shutdownTimeout)
				select {
				case <-o.done:
					stopped.Stop()
				case <-stopped.C:
					return fmt.Errorf("service %q did not stop within %v for a one-for-all restart: %w",
						o.svc.Name, s.shutdownTimeout, ErrGaveUp)
				}
				s.mu.Lock()
				o.settled = o.attempt
				s.mu.Unlock()
			}
		}
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return nil
	}
	for _, o := range targets {
		s.mu.Lock()
		o.restarts++
		s.mu.Unlock()
		if err := s.start(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

// stop cancels every running service and waits for them up to the
// shutdown timeout.
func (s *Supervisor) stop(runs []*run) error {
	for i := len(runs) - 1; i >= 0; i-- {
		if r := runs[i]; r.cancel != nil {
			r.cancel(errors.New("service: shutting down"))
		}
	}
	deadline := time.NewTimer(s.shutdownTimeout)
	defer deadline.Stop()
	var left []string
	for _, r := range runs {
		if r.done == nil {
			continue
		}
		select {
		case <-r.done:
			if r.state != "failed" {
				s.setState(r, "stopped", nil)
			}
		case <-deadline.C:
			left = append(left, r.svc.Name)
			deadline.Reset(0)
		}
	}
	if len(left) > 0 {
		return &NotStoppedError{Services: left}
	}
	return nil
}

func (s *Supervisor) setState(r *run, state string, err error) {
	s.mu.Lock()
	r.state = state
	if err != nil {
		r.lastErr = err
	}
	s.mu.Unlock()
}

// Status is a service's state as the supervisor sees it.
type Status struct {
	Name     string
	State    string // added, starting, running, restarting, finished, failed, stopped
	Restarts int
	LastErr  error
}

// Status returns the services' states, in the order they were added.
func (s *Supervisor) Status() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, len(s.runs))
	for i, r := range s.runs {
		out[i] = Status{Name: r.svc.Name, State: r.state, Restarts: r.restarts, LastErr: r.lastErr}
	}
	return out
}

func (s *Supervisor) report(f *registry.Figures) {
	running, restarts := 0, 0
	for _, st := range s.Status() {
		if st.State == "running" {
			running++
		}
		restarts += st.Restarts
	}
	f.Stat("services", float64(len(s.Status())))
	f.Stat("running", float64(running))
	f.Counter("restarts", float64(restarts))
}

// RunMain runs the supervisor until SIGINT or SIGTERM (or ctx), then shuts
// down as Run does: the usual body of a service program's main.
func (s *Supervisor) RunMain(ctx context.Context) error {
	if ctx == nil {
		return fmt.Errorf("service.RunMain: %w: nil context", loom.ErrInvalidArgument)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return s.Run(ctx)
}

package dist

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"loom"
	"loom/policy"
)

// ServeOption configures Serve.
type ServeOption func(*serveConfig) error

type serveConfig struct {
	workers     int
	retry       policy.Backoff
	extendEvery time.Duration
	drain       time.Duration
	onError     func(error)
	heartbeat   time.Duration // ServePool's
}

// Workers sets how many messages Serve handles at once (default
// GOMAXPROCS).
func Workers(n int) ServeOption {
	return func(c *serveConfig) error {
		if n < 1 {
			return invalid("%d workers; want at least 1", n)
		}
		c.workers = n
		return nil
	}
}

// DefaultRetryBackoff is the wait between a failed attempt and the next
// that Serve uses unless RetryBackoff sets another.
var DefaultRetryBackoff = policy.Backoff{Base: time.Second, Max: time.Minute}

// RetryBackoff sets the wait between a failed attempt and the next: after
// attempt n fails, the message is handed back for b.Delay(n) (never less
// than MinRetryDelay; the default is DefaultRetryBackoff). The queue's
// MaxAttempts says when to give up.
func RetryBackoff(b policy.Backoff) ServeOption {
	return func(c *serveConfig) error {
		if err := b.Validate(); err != nil {
			return err
		}
		c.retry = b
		return nil
	}
}

// ExtendEvery sets how often a running handler's message is extended
// (default a third of the queue's AckWait).
func ExtendEvery(d time.Duration) ServeOption {
	return func(c *serveConfig) error {
		if d <= 0 {
			return invalid("extend interval %v; want more than 0", d)
		}
		c.extendEvery = d
		return nil
	}
}

// DrainTimeout sets how long, once Serve's context has ended, the handlers
// still running may take to finish (default the queue's AckWait); then
// their contexts are cancelled, and their messages handed back.
func DrainTimeout(d time.Duration) ServeOption {
	return func(c *serveConfig) error {
		if d <= 0 {
			return invalid("drain timeout %v; want more than 0", d)
		}
		c.drain = d
		return nil
	}
}

// OnError sets a function that Serve calls with the errors it meets and
// goes on from: a Get that failed (the backend unreachable) and a message
// that could not be settled. It may be called from several goroutines.
func OnError(f func(error)) ServeOption {
	return func(c *serveConfig) error {
		if f == nil {
			return invalid("nil error handler")
		}
		c.onError = f
		return nil
	}
}

// MinRetryDelay is the least delay Serve hands a failed message back with:
// JetStream redelivers a plain negative acknowledgement at once, ignoring
// its back-off list, so Serve always names a delay.
const MinRetryDelay = 10 * time.Millisecond

// Serve takes messages from q and runs handler on each, in Workers tasks of
// a loom Group, until ctx ends; then it stops taking, lets the handlers
// that run finish (within DrainTimeout) and returns nil. What the handler
// returns settles the message:
//   - nil: Done;
//   - an error marked policy.Permanent, or any error on the message's
//     MaxAttempts-th attempt: Dead, with the error's text and the attempt
//     count;
//   - any other error, or a panic (a *loom.PanicError): Retry after the
//     backoff's delay for that attempt.
//
// While a handler runs, its message is extended every ExtendEvery. A
// handler's context ends when Serve's drain time is up. Serve returns an
// error only for bad arguments or a queue that was closed under it.
func Serve[T any](ctx context.Context, q *Queue[T], handler func(ctx context.Context, v T) error, opts ...ServeOption) error {
	if ctx == nil || q == nil || handler == nil {
		return fmt.Errorf("dist.Serve: %w", invalid("nil context, queue or handler"))
	}
	c := serveConfig{retry: DefaultRetryBackoff, workers: runtime.GOMAXPROCS(0), extendEvery: q.cfg.AckWait / 3, drain: q.cfg.AckWait, onError: func(error) {}}
	for _, o := range opts {
		if o == nil {
			return fmt.Errorf("dist.Serve: %w", invalid("nil option"))
		}
		if err := o(&c); err != nil {
			return fmt.Errorf("dist.Serve: %w", err)
		}
	}
	// Handlers run under a context that outlives ctx by the drain time.
	hctx, cancelHandlers := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelHandlers(nil)
	stopDrain := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(c.drain, func() { cancelHandlers(fmt.Errorf("dist.Serve %q: drain timeout %v passed", q.name, c.drain)) })
		context.AfterFunc(hctx, func() { t.Stop() })
	})
	defer stopDrain()

	g := loom.NewGroup(hctx, loom.WithName("dist "+q.name), loom.Supervise())
	var closedErr atomic.Pointer[error]
	for i := range c.workers {
		_ = g.Go(fmt.Sprintf("worker %d", i), func(wctx context.Context) error {
			gctx, release := q.getContext(ctx)
			defer release()
			w := &extender{every: c.extendEvery, onError: c.onError}
			defer w.stop()
			pause := 50 * time.Millisecond
			for ctx.Err() == nil {
				m, err := q.get(ctx, gctx)
				switch {
				case err == nil:
					pause = 50 * time.Millisecond
					serveOne(wctx, q, m, handler, &c, w)
					continue
				case ctx.Err() != nil:
					return nil
				case errors.Is(err, ErrClosed):
					closedErr.CompareAndSwap(nil, &err)
					return nil
				}
				c.onError(fmt.Errorf("dist.Serve %q: taking a message: %w", q.name, err))
				select { // the backend is unreachable: try again soon
				case <-ctx.Done():
				case <-time.After(pause):
				}
				pause = min(2*pause, 5*time.Second)
			}
			return nil
		})
	}
	_ = g.Wait()
	if err := closedErr.Load(); err != nil {
		return *err
	}
	return nil
}

// Attempt returns, in a handler run by Serve, the attempt number of the
// message it handles (1 the first time); 0 elsewhere.
func Attempt(ctx context.Context) int {
	switch v := ctx.Value(msgKey{}).(type) {
	case Delivery:
		return v.Attempt()
	case traced:
		if v.d != nil {
			return v.d.Attempt()
		}
	}
	return 0
}

// MessageHeader returns, in a handler run by Serve, the value of the
// header key of the message it handles; "" elsewhere, or if the message
// has none.
func MessageHeader(ctx context.Context, key string) string {
	switch v := ctx.Value(msgKey{}).(type) {
	case Delivery:
		return v.Header(key)
	case traced:
		if v.d != nil {
			return v.d.Header(key)
		}
	}
	return ""
}

// serveOne runs the handler on one message and settles it.
func serveOne[T any](ctx context.Context, q *Queue[T], m *Msg[T], handler func(ctx context.Context, v T) error, c *serveConfig, w *extender) {
	w.watch(func() error { return m.Extend(context.WithoutCancel(ctx)) })
	err := callHandler(context.WithValue(ctx, msgKey{}, m.d), handler, m.Value)
	w.watch(nil)
	sctx := context.WithoutCancel(ctx)
	var settleErr error
	switch {
	case err == nil:
		settleErr = m.Done(sctx)
	case policy.IsPermanent(err) || m.Attempt() >= q.cfg.MaxAttempts:
		settleErr = m.Dead(sctx, err)
	default:
		settleErr = m.Retry(sctx, max(c.retry.Delay(m.Attempt()), MinRetryDelay))
	}
	if settleErr != nil {
		c.onError(fmt.Errorf("dist.Serve %q: settling message %s: %w", q.name, m.ID(), settleErr))
	}
}

// extender extends the message a worker is handling, every so often, on
// one timer per worker rather than one per message: a message whose
// handler has run for a whole interval is extended, then every interval
// after that.
type extender struct {
	every   time.Duration
	onError func(error)
	mu      sync.Mutex
	extend  func() error // the current message's Extend; nil between messages
	since   time.Time    // when it was last extended, or taken
	t       *time.Timer
}

// watch makes extend the current message's extension (nil: none).
func (w *extender) watch(extend func() error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.extend = extend
	if extend == nil {
		return
	}
	w.since = time.Now()
	if w.t == nil {
		w.t = time.AfterFunc(w.every, w.tick)
	}
}

func (w *extender) tick() {
	w.mu.Lock()
	extend, due := w.extend, w.extend != nil && time.Since(w.since) >= w.every
	if due {
		w.since = time.Now()
	}
	next := w.every
	if w.extend != nil && !due {
		next = w.every - time.Since(w.since)
	}
	if w.t != nil {
		w.t.Reset(max(next, time.Millisecond))
	}
	w.mu.Unlock()
	if due {
		// Outside the lock: the worker may move on meanwhile, and the
		// settled message's Extend then says ErrSettled.
		if err := extend(); err != nil && !errors.Is(err, ErrSettled) {
			w.onError(fmt.Errorf("dist.Serve: extending a message: %w", err))
		}
	}
}

func (w *extender) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.t != nil {
		w.t.Stop()
		w.t = nil
	}
}

// callHandler runs handler in the worker's own task, turning a panic into
// a *loom.PanicError as the task would.
func callHandler[T any](ctx context.Context, handler func(context.Context, T) error, v T) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &loom.PanicError{Task: "dist handler", Value: r, Stack: debug.Stack()}
		}
	}()
	return handler(ctx, v)
}

package dist

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"loom/internal/registry"
)

// Queue is a queue of values of type T that many processes, on many
// machines, share through a backend: loom's Queue beyond one process. Put
// returns once the backend holds the value durably; Get hands out a
// message that must be settled (Done, Retry or Dead) within the queue's
// AckWait, or it is delivered again, to this or another consumer. Delivery
// is at least once: a consumer that dies mid-work has its message
// redelivered, so handlers should be idempotent.
//
// Open it with Open; all methods may be called from any goroutine. It
// registers with the monitor as a resource of kind "dist-queue".
type Queue[T any] struct {
	name  string
	cfg   Config
	codec Codec
	store Store

	stop     context.Context // ends when Drain begins or Close is called
	stopNow  context.CancelCauseFunc
	mu       sync.Mutex
	inFlight int
	idle     chan struct{} // closed when inFlight drops to 0 while draining

	puts, gets, done, retried, dead, extended, settleErrs, redelivered atomic.Int64

	// The backend's figures for the monitor, refreshed in the background
	// at most once a second while the monitor reads them.
	shared  atomic.Pointer[Stats]
	refresh refresher
}

// Open opens the queue named name on b (1 to 64 letters, digits, '-' and
// '_'), creating it if it does not exist. The options set its Config and
// codec; processes that share a queue should open it alike (the last to
// open it sets its stored settings).
func Open[T any](ctx context.Context, b Backend, name string, opts ...Option) (*Queue[T], error) {
	switch {
	case ctx == nil:
		return nil, fmt.Errorf("dist.Open: %w", invalid("nil context"))
	case b == nil:
		return nil, fmt.Errorf("dist.Open: %w", invalid("nil backend"))
	case !validName(name):
		return nil, fmt.Errorf("dist.Open: %w", invalid("queue name %q; want 1 to 64 letters, digits, '-' and '_'", name))
	}
	o, err := buildOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("dist.Open: %w", err)
	}
	st, err := b.OpenStore(ctx, name, o.cfg)
	if err != nil {
		return nil, fmt.Errorf("dist.Open %q: %w", name, err)
	}
	q := &Queue[T]{name: name, cfg: st.Config(), codec: o.codec, store: st}
	q.stop, q.stopNow = context.WithCancelCause(context.Background())
	registry.Track(q, registry.KindDistQueue, name, (*Queue[T]).report)
	return q, nil
}

// Name returns the queue's name.
func (q *Queue[T]) Name() string { return q.name }

// Config returns the queue's settings.
func (q *Queue[T]) Config() Config { return q.cfg }

// Put encodes v and stores it, returning once the backend has it durably.
// It refuses a value whose encoding is over MaxValueBytes (ErrTooLarge), a
// priority at or above the queue's Levels, and, after Close, everything
// (ErrClosed). A Put with a Key already put within the DedupWindow stores
// nothing and returns nil.
func (q *Queue[T]) Put(ctx context.Context, v T, opts ...PutOption) error {
	if ctx == nil {
		return fmt.Errorf("dist.Queue.Put: %w", invalid("nil context"))
	}
	var m Outgoing
	for _, o := range opts {
		if o == nil {
			return fmt.Errorf("dist.Queue.Put: %w", invalid("nil option"))
		}
		if err := o(&m); err != nil {
			return fmt.Errorf("dist.Queue.Put: %w", err)
		}
	}
	if _, set := m.Header[HeaderTraceparent]; !set {
		if tp := childTraceparent(ctx, false); tp != "" {
			if m.Header == nil {
				m.Header = make(map[string]string, 1)
			}
			m.Header[HeaderTraceparent] = tp
		}
	}
	if m.Priority >= q.cfg.Levels {
		return fmt.Errorf("dist.Queue.Put: %w", invalid("priority %d; queue %q has levels 0 to %d", m.Priority, q.name, q.cfg.Levels-1))
	}
	if errors.Is(context.Cause(q.stop), ErrClosed) {
		return ErrClosed
	}
	data, err := q.codec.Encode(v)
	if err != nil {
		return fmt.Errorf("dist.Queue.Put: encoding the value: %w", err)
	}
	if len(data) > q.cfg.MaxValueBytes {
		return fmt.Errorf("dist.Queue.Put: %w: %d bytes encoded, over the queue's MaxValueBytes %d", ErrTooLarge, len(data), q.cfg.MaxValueBytes)
	}
	m.Data = data
	if err := q.store.Put(ctx, m); err != nil {
		return fmt.Errorf("dist.Queue.Put: %w", err)
	}
	q.puts.Add(1)
	return nil
}

// Get waits for the next message and takes it: the highest priority
// first, but no level starves (see Config.Levels). It returns
// context.Cause(ctx) if ctx ends first, and ErrClosed once Drain has begun
// or the queue is closed. A message that cannot be decoded into a T, or
// that was delivered more than MaxAttempts times without an outcome (its
// handler crashed its worker, say), is not returned: Get moves it to the
// dead letters, with the reason, and takes the next.
func (q *Queue[T]) Get(ctx context.Context) (*Msg[T], error) {
	if ctx == nil {
		return nil, fmt.Errorf("dist.Queue.Get: %w", invalid("nil context"))
	}
	gctx, done := q.getContext(ctx)
	defer done()
	return q.get(ctx, gctx)
}

// getContext returns a context that ends with ctx or when the queue stops
// taking (Drain, Close), so that a waiting Get returns then, and the
// function that releases it.
func (q *Queue[T]) getContext(ctx context.Context) (context.Context, func()) {
	gctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(q.stop, func() { cancel(context.Cause(q.stop)) })
	return gctx, func() { stop(); cancel(nil) }
}

// get is Get with the context from getContext already made: Serve's
// workers make theirs once, not once per message.
func (q *Queue[T]) get(ctx, gctx context.Context) (*Msg[T], error) {
	for {
		if err := context.Cause(q.stop); err != nil {
			return nil, err
		}
		d, err := q.store.Get(gctx)
		if err != nil {
			if c := context.Cause(q.stop); c != nil && ctx.Err() == nil {
				return nil, c
			}
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			return nil, err
		}
		if d.Attempt() > q.cfg.MaxAttempts {
			q.bury(ctx, d, fmt.Sprintf("delivered %d times without an outcome (at most %d attempts): its handler may crash the worker",
				d.Attempt()-1, q.cfg.MaxAttempts))
			continue
		}
		m := &Msg[T]{q: q, d: d}
		if err := q.codec.Decode(d.Data(), &m.Value); err != nil {
			q.bury(ctx, d, fmt.Sprintf("cannot decode the value: %v", err))
			continue
		}
		q.mu.Lock()
		q.inFlight++
		q.mu.Unlock()
		q.gets.Add(1)
		if d.Attempt() > 1 {
			q.redelivered.Add(1)
		}
		return m, nil
	}
}

// bury dead-letters a delivery that Get will not hand out.
func (q *Queue[T]) bury(ctx context.Context, d Delivery, reason string) {
	if err := d.Dead(context.WithoutCancel(ctx), reason); err != nil {
		q.settleErrs.Add(1)
		return // it comes back after AckWait and is buried then
	}
	q.dead.Add(1)
}

// settled records that a message handed out by Get has been settled.
func (q *Queue[T]) settled() {
	q.mu.Lock()
	q.inFlight--
	if q.inFlight == 0 && q.idle != nil {
		close(q.idle)
		q.idle = nil
	}
	q.mu.Unlock()
}

// Stats counts the queue's messages, in the backend, across processes.
func (q *Queue[T]) Stats(ctx context.Context) (Stats, error) {
	if ctx == nil {
		return Stats{}, fmt.Errorf("dist.Queue.Stats: %w", invalid("nil context"))
	}
	return q.store.Stats(ctx)
}

// Len returns how many messages wait to be taken (ready or delayed).
func (q *Queue[T]) Len(ctx context.Context) (int, error) {
	s, err := q.Stats(ctx)
	return s.Ready + s.Delayed, err
}

// Unfinished returns how many messages are not finished: waiting, delayed
// (retries included) or taken and not settled.
func (q *Queue[T]) Unfinished(ctx context.Context) (int, error) {
	s, err := q.Stats(ctx)
	return s.Ready + s.Delayed + s.InFlight, err
}

// Join waits until nothing is unfinished, in any process: nothing queued,
// nothing taken and unsettled, no delayed retry pending. It returns
// context.Cause(ctx) if ctx ends first. It polls the backend, from every
// 5ms up to every 200ms.
func (q *Queue[T]) Join(ctx context.Context) error {
	if ctx == nil {
		return fmt.Errorf("dist.Queue.Join: %w", invalid("nil context"))
	}
	wait := 5 * time.Millisecond
	for {
		n, err := q.Unfinished(ctx)
		if err == nil && n == 0 {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		case <-t.C:
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// Drain stops this process taking messages (Get fails with ErrClosed, a
// waiting Get included) and waits until every message it took has been
// settled, or until ctx ends, when it returns context.Cause(ctx) and the
// messages still unsettled are delivered again after their AckWait.
// Nothing is lost either way. Put still works after Drain.
func (q *Queue[T]) Drain(ctx context.Context) error {
	if ctx == nil {
		return fmt.Errorf("dist.Queue.Drain: %w", invalid("nil context"))
	}
	q.stopNow(fmt.Errorf("%w: queue %q is draining", ErrClosed, q.name))
	q.mu.Lock()
	if q.inFlight == 0 {
		q.mu.Unlock()
		return nil
	}
	if q.idle == nil {
		q.idle = make(chan struct{})
	}
	idle := q.idle
	q.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// DeadLetters returns up to max of the queue's dead letters, oldest first.
func (q *Queue[T]) DeadLetters(ctx context.Context, max int) ([]DeadLetter, error) {
	if ctx == nil || max < 1 {
		return nil, fmt.Errorf("dist.Queue.DeadLetters: %w", invalid("nil context or max %d < 1", max))
	}
	return q.store.DeadLetters(ctx, max)
}

// Close stops the queue in this process: Put, Get and Drain fail with
// ErrClosed from now on. Messages taken and not settled are delivered again
// after their AckWait; the queue itself stays in the backend.
func (q *Queue[T]) Close() error {
	q.stopNow(fmt.Errorf("%w: queue %q was closed", ErrClosed, q.name))
	return q.store.Close()
}

// report gives the monitor this process's counts and the backend's
// figures for the whole queue (ready, delayed, in_flight, dead, across
// processes), as last read: reading them is a round trip to the backend,
// so report starts a refresh in the background, at most once a second,
// and never waits for one.
func (q *Queue[T]) report(f *registry.Figures) {
	q.mu.Lock()
	f.Stat("in_flight_here", float64(q.inFlight))
	q.mu.Unlock()
	f.Counter("puts", float64(q.puts.Load()))
	f.Counter("gets", float64(q.gets.Load()))
	f.Counter("redelivered", float64(q.redelivered.Load()))
	f.Counter("done", float64(q.done.Load()))
	f.Counter("retried", float64(q.retried.Load()))
	f.Counter("dead_here", float64(q.dead.Load()))
	f.Counter("extended", float64(q.extended.Load()))
	f.Counter("settle_errors", float64(q.settleErrs.Load()))
	if st := q.shared.Load(); st != nil {
		f.Stat("ready", float64(st.Ready))
		f.Stat("delayed", float64(st.Delayed))
		f.Stat("in_flight", float64(st.InFlight))
		f.Stat("dead", float64(st.Dead))
	}
	q.refresh.maybe(q.stop.Err() != nil, func(ctx context.Context) {
		if st, err := q.store.Stats(ctx); err == nil {
			q.shared.Store(&st)
		}
	})
}

// Msg is one message taken from a Queue: its value and the calls that
// settle it. Exactly one of Done, Retry or Dead settles it; Extend may come
// before, as often as needed. A message not settled within the queue's
// AckWait (from Get or the last Extend) is delivered again.
type Msg[T any] struct {
	Value T
	q     *Queue[T]
	d     Delivery
	once  atomic.Bool
}

// ID names the message; it stays the same across redeliveries.
func (m *Msg[T]) ID() string { return m.d.ID() }

// Attempt counts the message's deliveries, this one included (1 the first
// time).
func (m *Msg[T]) Attempt() int { return m.d.Attempt() }

// Header returns the value of the message's header key (see the Header
// option), "" if it has none.
func (m *Msg[T]) Header(key string) string { return m.d.Header(key) }

// settle runs one of the settling calls, once.
func (m *Msg[T]) settle(f func() error, count *atomic.Int64) error {
	if !m.once.CompareAndSwap(false, true) {
		return ErrSettled
	}
	defer m.q.settled()
	if err := f(); err != nil {
		m.q.settleErrs.Add(1)
		return err
	}
	count.Add(1)
	return nil
}

// Done removes the message from the queue, once the backend confirms it.
// If it fails (the backend is unreachable), the message is delivered
// again after its AckWait.
func (m *Msg[T]) Done(ctx context.Context) error {
	if ctx == nil {
		return fmt.Errorf("dist.Msg.Done: %w", invalid("nil context"))
	}
	return m.settle(func() error { return m.d.Ack(ctx) }, &m.q.done)
}

// Retry hands the message back to be delivered again no sooner than after
// (at least 0).
func (m *Msg[T]) Retry(ctx context.Context, after time.Duration) error {
	if ctx == nil || after < 0 {
		return fmt.Errorf("dist.Msg.Retry: %w", invalid("nil context or negative delay %v", after))
	}
	return m.settle(func() error { return m.d.Retry(ctx, after) }, &m.q.retried)
}

// Extend restarts the message's AckWait: the work goes on.
func (m *Msg[T]) Extend(ctx context.Context) error {
	if ctx == nil {
		return fmt.Errorf("dist.Msg.Extend: %w", invalid("nil context"))
	}
	if m.once.Load() {
		return ErrSettled
	}
	if err := m.d.Extend(ctx); err != nil {
		return err
	}
	m.q.extended.Add(1)
	return nil
}

// Dead moves the message to the queue's dead letters with err's text and
// the attempt count, and out of the queue.
func (m *Msg[T]) Dead(ctx context.Context, err error) error {
	if ctx == nil || err == nil {
		return fmt.Errorf("dist.Msg.Dead: %w", invalid("nil context or error"))
	}
	return m.settle(func() error { return m.d.Dead(ctx, err.Error()) }, &m.q.dead)
}

// Package pipeline runs data through typed stages, each with its own
// concurrency, joined by bounded buffers so that a slow stage holds back
// the ones before it (backpressure) instead of letting memory grow. Stages
// keep input order or not (Ordered), batch items by size or time (Batch),
// and either stop the pipeline at the first error, skip failing items, or
// collect their errors (OnError). Streams come in and go out as iter.Seq;
// Merge and Broadcast fan in and out.
//
// Every stage runs as tasks of one loom.Group, so a pipeline is structured:
// Wait returns only when every stage has ended, cancellation reaches every
// stage, and a panic in a stage becomes an error. Each stage registers with
// the monitor with its counts.
//
// When not to use it: a single loop with a loom.Group and WithLimit is
// simpler for one stage of work.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync"
	"sync/atomic"

	"loom"
	"loom/internal/registry"
)

// ErrorPolicy says what a stage does when its function fails on an item.
type ErrorPolicy uint8

const (
	// Stop cancels the whole pipeline at the first error: Wait returns it.
	Stop ErrorPolicy = iota
	// Skip drops the failing item and goes on; the stage counts it.
	Skip
	// Collect drops the failing item and goes on; Wait returns every such
	// error, joined.
	Collect
)

// Pipeline is one run of stages. Create it with New, add a source with From
// and stages with Map, Filter, Batch, Merge or Broadcast, consume the last
// stream with Items (or ToSlice), then call Wait.
type Pipeline struct {
	name   string
	g      *loom.Group
	ctx    context.Context
	parent context.Context
	cut    atomic.Bool // a stage stopped because the pipeline was cancelled
	mu     sync.Mutex
	errs   []error
	err    error // a bad argument found while building
	ended  atomic.Bool
	// drains empty the pipeline's channels once it is cancelled (see
	// send); cancelled says they have been started, so that a channel made
	// later is drained at once.
	drains    []func()
	cancelled bool
	// streams are the pipeline's streams, for Wait to read those nobody
	// reads.
	streams []interface{ discard() }
}

// New returns an empty pipeline whose stages run under ctx.
func New(ctx context.Context, name string) *Pipeline {
	p := &Pipeline{name: name}
	if ctx == nil {
		p.err = fmt.Errorf("pipeline.New: %w: nil context", loom.ErrInvalidArgument)
		ctx = context.Background()
	}
	p.parent = ctx
	p.g = loom.NewGroup(ctx, loom.WithName("pipeline "+name))
	p.ctx = p.g.Context()
	context.AfterFunc(p.ctx, p.drainAll)
	return p
}

// drainAll starts draining every channel of the cancelled pipeline.
func (p *Pipeline) drainAll() {
	p.mu.Lock()
	p.cancelled = true
	drains := p.drains
	p.drains = nil
	p.mu.Unlock()
	for _, d := range drains {
		d()
	}
}

// chanOf makes a channel of n slots for the pipeline's items that the
// pipeline drains once it is cancelled, and which must be closed when its
// senders are done (a drain ends when its channel closes).
func chanOf[T any](p *Pipeline, n int) chan T {
	ch := make(chan T, n)
	d := func() { go drainCut(p, ch) }
	p.mu.Lock()
	if !p.cancelled {
		p.drains = append(p.drains, d)
		d = nil
	}
	p.mu.Unlock()
	if d != nil {
		d()
	}
	return ch
}

// drainCut empties ch until it is closed, after a cancellation: each item
// it takes is one the pipeline cut.
func drainCut[T any](p *Pipeline, ch <-chan T) {
	for range ch {
		p.cut.Store(true)
	}
}

// newStream makes a stream of the pipeline with n slots.
func newStream[T any](p *Pipeline, n int) *Stream[T] {
	s := &Stream[T]{p: p, ch: chanOf[T](p, n)}
	p.mu.Lock()
	p.streams = append(p.streams, s)
	p.mu.Unlock()
	return s
}

// spawn runs fn as a task of the pipeline. If the pipeline takes no more
// tasks (it failed or was cancelled while being built), it calls refused
// instead, which closes the stage's outputs so that nothing downstream
// waits for ever.
func (p *Pipeline) spawn(name string, fn func(context.Context) error, refused func()) bool {
	if err := p.g.Go(name, fn); err != nil {
		if refused != nil {
			refused()
		}
		return false
	}
	return true
}

func (p *Pipeline) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
	p.g.Cancel(err)
}

func (p *Pipeline) collect(err error) {
	p.mu.Lock()
	p.errs = append(p.errs, err)
	p.mu.Unlock()
}

// Wait waits for every stage to end and returns what went wrong: a bad
// argument, the first error of a Stop stage (with the cancellation it
// caused), the errors of Collect stages joined, or the context's cause if
// the pipeline was cancelled from outside. A stream that no stage and no
// Items reads (a pipeline run for what its stages do, say) is read by Wait,
// its items discarded, so that every item passes every stage and Wait
// returns.
func (p *Pipeline) Wait() error {
	p.mu.Lock()
	streams := slices.Clone(p.streams)
	p.mu.Unlock()
	for _, s := range streams {
		s.discard()
	}
	gerr := p.g.Wait()
	p.ended.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	errs := append([]error{p.err}, p.errs...)
	switch {
	case p.err == nil && gerr != nil:
		errs = append(errs, gerr)
	case p.err == nil && p.cut.Load() && p.parent.Err() != nil:
		errs = append(errs, context.Cause(p.parent)) // cancelled from outside
	}
	return errors.Join(errs...)
}

// Stream is the output of a stage: items of type T flowing to the next.
type Stream[T any] struct {
	p     *Pipeline
	ch    chan T
	taken atomic.Bool // a stage, Items or Wait reads it
}

// take marks the stream as read by its one reader.
func (s *Stream[T]) take() { s.taken.Store(true) }

// discard reads the stream and drops its items if nobody has taken it.
func (s *Stream[T]) discard() {
	if s.taken.CompareAndSwap(false, true) {
		go drain(s.ch)
	}
}

// Pipeline returns the pipeline the stream belongs to.
func (s *Stream[T]) Pipeline() *Pipeline { return s.p }

// Option configures a stage.
type Option func(*stage) error

type stage struct {
	workers int
	buffer  int
	ordered bool
	policy  ErrorPolicy

	// counts holds each worker's figures, then those of the goroutine
	// that emits in order (counts[workers]), each on a cache line of its
	// own: workers that shared one counter met on it at every item, which
	// cost more than a stage's own work.
	counts []counter
}

// counter is one goroutine's share of a stage's figures.
type counter struct {
	in, out, failed, busy atomic.Int64
	_                     [128 - 32]byte
}

// figures sums the stage's counters.
func (st *stage) figures() (in, out, failed, busy int64) {
	for i := range st.counts {
		c := &st.counts[i]
		in, out, failed, busy = in+c.in.Load(), out+c.out.Load(), failed+c.failed.Load(), busy+c.busy.Load()
	}
	return in, out, failed, busy
}

// Workers runs the stage's function on n items at once (at least 1; the
// default is 1).
func Workers(n int) Option {
	return func(s *stage) error {
		if n < 1 {
			return fmt.Errorf("%w: %d workers; need at least 1", loom.ErrInvalidArgument, n)
		}
		s.workers = n
		return nil
	}
}

// Buffer sets how many finished items may wait for the next stage (at
// least 0; the default is the number of workers). When it is full, the
// stage waits: backpressure.
func Buffer(n int) Option {
	return func(s *stage) error {
		if n < 0 {
			return fmt.Errorf("%w: buffer %d is negative", loom.ErrInvalidArgument, n)
		}
		s.buffer = n
		return nil
	}
}

// Ordered makes the stage emit its results in the order of its input,
// whatever order its workers finish in. It holds at most workers+buffer
// items in flight.
func Ordered() Option { return func(s *stage) error { s.ordered = true; return nil } }

// OnError sets the stage's error policy (default Stop).
func OnError(policy ErrorPolicy) Option {
	return func(s *stage) error {
		if policy > Collect {
			return fmt.Errorf("%w: unknown error policy %d", loom.ErrInvalidArgument, policy)
		}
		s.policy = policy
		return nil
	}
}

func (p *Pipeline) newStage(name string, opts []Option) (*stage, error) {
	st := &stage{workers: 1, buffer: -1}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("pipeline stage %q: %w: nil option", name, loom.ErrInvalidArgument)
		}
		if err := o(st); err != nil {
			return nil, fmt.Errorf("pipeline stage %q: %w", name, err)
		}
	}
	if st.buffer < 0 {
		st.buffer = st.workers
	}
	st.counts = make([]counter, st.workers+1)
	registry.Track(st, registry.KindPipeline, p.name+"/"+name, (*stage).report)
	return st, nil
}

func (st *stage) report(f *registry.Figures) {
	in, out, failed, busy := st.figures()
	f.Counter("in", float64(in))
	f.Counter("out", float64(out))
	f.Counter("failed", float64(failed))
	f.Stat("busy_workers", float64(busy))
	f.Stat("workers", float64(st.workers))
}

// cancelledNow reports whether the pipeline was cancelled (ctx is a
// stage's), and if so records that a stage stopped for it.
func (p *Pipeline) cancelledNow(ctx context.Context) bool {
	if ctx.Err() != nil {
		p.cut.Store(true)
		return true
	}
	return false
}

// send delivers v downstream on a channel made by chanOf, or reports that
// the pipeline was cancelled. It is a plain send, even when it has to wait:
// a select over the channel and the context's Done locks both channels,
// and costs more than the rest of a stage's work per item. A send that
// waits when the pipeline is cancelled returns because the cancellation
// drains every channel (chanOf); the next send sees the cancellation.
func send[T any](p *Pipeline, ctx context.Context, ch chan<- T, v T) bool {
	if p.cancelledNow(ctx) {
		return false
	}
	ch <- v
	return true
}

// sendOrStop is send for a channel that nothing drains (mapOrdered's
// tokens): it waits on the context too.
func sendOrStop[T any](p *Pipeline, ctx context.Context, ch chan<- T, v T) bool {
	if ctx.Err() == nil {
		select {
		case ch <- v:
			return true
		default:
		}
	}
	select {
	case ch <- v:
		return true
	case <-ctx.Done():
		p.cut.Store(true)
		return false
	}
}

// From starts a pipeline with the items of seq, read by one task.
func From[T any](p *Pipeline, seq iter.Seq[T], opts ...Option) *Stream[T] {
	st, err := p.newStage("source", opts)
	if err != nil {
		p.fail(err)
		st = &stage{workers: 1, buffer: 1, counts: make([]counter, 2)}
	}
	out := newStream[T](p, st.buffer)
	if seq == nil {
		p.fail(fmt.Errorf("pipeline.From: %w: nil sequence", loom.ErrInvalidArgument))
		close(out.ch)
		return out
	}
	p.spawn("source", func(ctx context.Context) error {
		defer close(out.ch)
		c := &st.counts[0]
		for v := range seq {
			c.in.Add(1)
			if !send(p, ctx, out.ch, v) {
				return nil
			}
			c.out.Add(1)
		}
		return nil
	}, func() { close(out.ch) })
	return out
}

// Map runs fn on every item of in, with the stage's workers, and streams
// the results. What happens when fn fails depends on OnError.
func Map[In, Out any](in *Stream[In], name string, fn func(ctx context.Context, v In) (Out, error), opts ...Option) *Stream[Out] {
	var keep func(context.Context, In) (Out, bool, error)
	if fn != nil {
		keep = func(ctx context.Context, v In) (Out, bool, error) {
			r, err := fn(ctx, v)
			return r, true, err
		}
	}
	return stageOf(in, name, keep, opts)
}

// stageOf runs fn on every item of in with the stage's workers; an item
// for which fn says false is dropped (Filter).
func stageOf[In, Out any](in *Stream[In], name string, fn func(ctx context.Context, v In) (Out, bool, error), opts []Option) *Stream[Out] {
	p := in.p
	st, err := p.newStage(name, opts)
	if err == nil && fn == nil {
		err = fmt.Errorf("pipeline stage %q: %w: nil function", name, loom.ErrInvalidArgument)
	}
	in.take()
	if err != nil {
		p.fail(err)
		out := &Stream[Out]{p: p, ch: make(chan Out)}
		close(out.ch)
		go drain(in.ch)
		return out
	}
	out := newStream[Out](p, st.buffer)
	apply := func(ctx context.Context, v In, c *counter) (Out, bool, error) {
		c.in.Add(1)
		c.busy.Add(1)
		r, emit, err := fn(ctx, v)
		c.busy.Add(-1)
		if err == nil {
			return r, emit, nil
		}
		c.failed.Add(1)
		err = fmt.Errorf("pipeline stage %q: %w", name, err)
		switch st.policy {
		case Stop:
			return r, false, err
		case Collect:
			p.collect(err)
		}
		return r, false, nil
	}
	if st.ordered && st.workers > 1 {
		mapOrdered(p, st, name, in.ch, out.ch, apply)
		return out
	}
	wg, ok := closeAfter(p, name, out.ch, func() { go drain(in.ch) })
	if !ok {
		return out
	}
	for i := range st.workers {
		wg.Add(1)
		c := &st.counts[i]
		p.spawn(fmt.Sprintf("%s#%d", name, i), func(ctx context.Context) error {
			defer wg.Done()
			for v := range in.ch {
				if p.cancelledNow(ctx) { // no item starts; the drain takes the rest
					return nil
				}
				r, ok, err := apply(ctx, v, c)
				if err != nil {
					return err
				}
				if ok {
					if !send(p, ctx, out.ch, r) {
						return nil
					}
					c.out.Add(1)
				}
			}
			return nil
		}, wg.Done)
	}
	wg.Done()
	return out
}

// closeAfter starts the task that closes ch once the stage's workers have
// all finished, and returns the WaitGroup they register on, holding one
// count for the caller to release once every worker is registered. It is
// started before the workers: if the pipeline takes no more tasks, it
// closes ch at once and calls refused (which drains the stage's input), and
// closeAfter reports false.
func closeAfter[T any](p *Pipeline, name string, ch chan T, refused func()) (*sync.WaitGroup, bool) {
	wg := new(sync.WaitGroup)
	wg.Add(1)
	ok := p.spawn(name+" closer", func(context.Context) error {
		wg.Wait()
		close(ch)
		return nil
	}, func() { close(ch); refused() })
	return wg, ok
}

// drain empties a channel whose stage could not start, so that the stage
// before it can finish.
func drain[T any](ch <-chan T) {
	for range ch {
	}
}

// mapOrdered runs apply with several workers and emits in input order: a
// dispatcher numbers the items, workers run them, and a reorderer emits
// them by number. A token per item in flight bounds what waits for an
// earlier, slower item.
func mapOrdered[In, Out any](p *Pipeline, st *stage, name string, in <-chan In, out chan<- Out, apply func(context.Context, In, *counter) (Out, bool, error)) {
	type job struct {
		seq int
		v   In
	}
	window := st.workers + st.buffer
	tokens := make(chan struct{}, window) // never closed, so sent to with sendOrStop
	jobs := chanOf[job](p, st.workers)
	results := chanOf[numbered[Out]](p, window)
	// Start from the end, so that a refusal closes every channel downstream.
	if !p.spawn(name+" reorder", func(ctx context.Context) error {
		defer close(out)
		reorder(p, ctx, &st.counts[st.workers], window, results, tokens, out)
		return nil
	}, func() { close(out); go drain(in) }) {
		return
	}
	wg, ok := closeAfter(p, name, results, func() { go drain(in) })
	if !ok {
		return
	}
	p.spawn(name+" dispatch", func(ctx context.Context) error {
		defer close(jobs)
		seq := 0
		for v := range in {
			if !sendOrStop(p, ctx, tokens, struct{}{}) {
				return nil
			}
			if !send(p, ctx, jobs, job{seq, v}) {
				return nil
			}
			seq++
		}
		return nil
	}, func() { close(jobs); go drain(in) })
	for i := range st.workers {
		wg.Add(1)
		c := &st.counts[i]
		p.spawn(fmt.Sprintf("%s#%d", name, i), func(ctx context.Context) error {
			defer wg.Done()
			for j := range jobs {
				if p.cancelledNow(ctx) {
					return nil
				}
				r, ok, err := apply(ctx, j.v, c)
				if err != nil {
					go drain(jobs)
					return err
				}
				results <- numbered[Out]{j.seq, r, ok} // room: at most window in flight
			}
			return nil
		}, wg.Done)
	}
	wg.Done()
}

// numbered is an ordered stage's result, numbered as its item came in;
// ok is false for an item the stage dropped.
type numbered[T any] struct {
	seq int
	v   T
	ok  bool
}

// reorder emits the results of an ordered stage in input order. At most
// window items are in flight, numbered from next: each waits in the slot
// of its number modulo window, and gives back its token once emitted.
func reorder[T any](p *Pipeline, ctx context.Context, c *counter, window int, results chan numbered[T], tokens <-chan struct{}, out chan<- T) {
	pending := make([]numbered[T], window)
	held := make([]bool, window)
	next := 0
	for r := range results {
		pending[r.seq%window], held[r.seq%window] = r, true
		for held[next%window] {
			r := pending[next%window]
			pending[next%window], held[next%window] = numbered[T]{}, false
			next++
			<-tokens
			if r.ok {
				if !send(p, ctx, out, r.v) {
					go drain(results)
					return
				}
				c.out.Add(1)
			}
		}
	}
}

// Filter keeps the items of in for which keep returns true.
func Filter[T any](in *Stream[T], name string, keep func(v T) bool, opts ...Option) *Stream[T] {
	var fn func(context.Context, T) (T, bool, error)
	if keep != nil {
		fn = func(_ context.Context, v T) (T, bool, error) { return v, keep(v), nil }
	}
	return stageOf(in, name, fn, opts)
}

// FlatMap runs fn on every item and streams each item of its result, in
// order.
func FlatMap[In, Out any](in *Stream[In], name string, fn func(ctx context.Context, v In) ([]Out, error), opts ...Option) *Stream[Out] {
	return Flatten(Map(in, name, fn, opts...), name+" flatten")
}

// Items returns the stream's items as an iterator, for the end of the
// pipeline. Breaking out of the loop early cancels the pipeline (Wait then
// returns nil for that cancellation). Iterate it once.
func (s *Stream[T]) Items() iter.Seq[T] {
	return func(yield func(T) bool) {
		s.take()
		for v := range s.ch {
			if !yield(v) {
				s.p.g.Cancel(nil)
				drain(s.ch)
				return
			}
		}
	}
}

// ToSlice gathers the stream's items into a slice, then waits for the
// pipeline and returns its error.
func ToSlice[T any](s *Stream[T]) ([]T, error) {
	var out []T
	for v := range s.Items() {
		out = append(out, v)
	}
	return out, s.p.Wait()
}

package policy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"loom"
	"loom/internal/registry"
)

// errHedgeLost cancels the attempts of a hedge that another attempt won.
var errHedgeLost = errors.New("policy: another hedged attempt won")

// Hedge sends a second copy of a slow call, and more up to MaxHedges, to
// cut tail latency: if the first attempt has not returned after the hedge
// delay, another starts, and the first success wins; the other attempts
// are cancelled and waited for, so none outlives the call. The delay is
// fixed (HedgeDelay) or follows the observed latency (HedgeQuantile: e.g.
// the 95th percentile of recent successful calls). A failed attempt does
// not start another one: that is Retry's job; the call fails when every
// attempt started has failed, with the last error.
//
// Only hedge calls that are safe to make twice.
type Hedge struct {
	name       string
	delay      time.Duration
	quantile   float64
	minSamples int
	maxHedges  int
	err        error

	mu      sync.Mutex
	samples []time.Duration // recent latencies, a ring
	next    int
	learned time.Duration // the delay the quantile gives, refreshed as samples come

	calls, hedges, hedgeWins atomic.Uint64
}

// HedgeOption configures a Hedge.
type HedgeOption func(*Hedge) error

// hedgeSamples is how many recent latencies HedgeQuantile keeps.
const hedgeSamples = 256

// NewHedge returns a hedge named name for the monitor. Without options it
// hedges once after 100ms. Bad options give a hedge that refuses every call
// with an error wrapping loom.ErrInvalidArgument.
func NewHedge(name string, opts ...HedgeOption) *Hedge {
	h := &Hedge{name: name, delay: 100 * time.Millisecond, maxHedges: 1}
	for _, o := range opts {
		if o == nil {
			h.err = fmt.Errorf("policy.NewHedge: %w: nil option", loom.ErrInvalidArgument)
			break
		}
		if err := o(h); err != nil {
			h.err = fmt.Errorf("policy.NewHedge: %w", err)
			break
		}
	}
	if h.err == nil {
		registry.Track(h, registry.KindHedge, name, (*Hedge).report)
	}
	return h
}

// HedgeDelay starts a hedge when an attempt has run for d.
func HedgeDelay(d time.Duration) HedgeOption {
	return func(h *Hedge) error {
		if d <= 0 {
			return fmt.Errorf("%w: hedge delay %v; need more than 0", loom.ErrInvalidArgument, d)
		}
		h.delay = d
		return nil
	}
}

// HedgeQuantile starts a hedge when an attempt has run longer than the q
// quantile (0 < q < 1) of the latency of recent successful calls. Until
// minSamples calls have been seen, the HedgeDelay (default 100ms) is used.
func HedgeQuantile(q float64, minSamples int) HedgeOption {
	return func(h *Hedge) error {
		if !(q > 0 && q < 1) || minSamples < 1 || minSamples > hedgeSamples {
			return fmt.Errorf("%w: hedge quantile %v with %d samples", loom.ErrInvalidArgument, q, minSamples)
		}
		h.quantile, h.minSamples = q, minSamples
		return nil
	}
}

// MaxHedges sets how many extra attempts may start (at least 1).
func MaxHedges(n int) HedgeOption {
	return func(h *Hedge) error {
		if n < 1 {
			return fmt.Errorf("%w: %d hedges; need at least 1", loom.ErrInvalidArgument, n)
		}
		h.maxHedges = n
		return nil
	}
}

type hedgeResult struct {
	c     chain
	err   error
	took  time.Duration
	index int
}

func (h *Hedge) run(ctx context.Context, c chain, i int) error {
	if h.err != nil {
		return h.err
	}
	h.calls.Add(1)
	hctx, cancel := context.WithCancelCause(ctx)
	defer cancel(errHedgeLost)
	results := make(chan hedgeResult, h.maxHedges+1)
	launch := func(index int) {
		fc := c.fork()
		start := time.Now()
		go func() {
			err := fc.next(hctx, i)
			results <- hedgeResult{c: fc, err: err, took: time.Since(start), index: index}
		}()
	}
	launch(0)
	started, pending := 1, 1
	timer := time.NewTimer(h.currentDelay())
	defer timer.Stop()
	// settle cancels the attempts still running and waits for them.
	settle := func() {
		cancel(errHedgeLost)
		for ; pending > 0; pending-- {
			<-results
		}
	}
	var last error
	for {
		select {
		case r := <-results:
			pending--
			if r.err == nil {
				c.adopt(r.c)
				settle()
				h.observe(r.took)
				if r.index > 0 {
					h.hedgeWins.Add(1)
				}
				return nil
			}
			last = r.err
			if pending == 0 || IsPermanent(r.err) || isCancellation(ctx, r.err) {
				settle()
				return last
			}
		case <-timer.C:
			if started <= h.maxHedges {
				h.hedges.Add(1)
				launch(started)
				started++
				pending++
				timer.Reset(h.currentDelay())
			}
		case <-ctx.Done():
			settle()
			return context.Cause(ctx)
		}
	}
}

func (h *Hedge) currentDelay() time.Duration {
	if h.quantile == 0 {
		return h.delay
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.learned > 0 {
		return h.learned
	}
	return h.delay
}

// observe records a successful call's latency and, every so often,
// recomputes the learned delay.
func (h *Hedge) observe(d time.Duration) {
	if h.quantile == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.samples) < hedgeSamples {
		h.samples = append(h.samples, d)
	} else {
		h.samples[h.next] = d
		h.next = (h.next + 1) % hedgeSamples
	}
	if len(h.samples) >= h.minSamples && (len(h.samples) < hedgeSamples || h.next%16 == 0) {
		sorted := slices.Clone(h.samples)
		slices.Sort(sorted)
		h.learned = sorted[min(int(h.quantile*float64(len(sorted))), len(sorted)-1)]
	}
}

// HedgeStats are a Hedge's counters: calls, extra attempts started, and
// calls that an extra attempt won.
type HedgeStats struct {
	Calls, Hedges, HedgeWins uint64
	Delay                    time.Duration
}

// Stats returns the hedge's counters and current delay.
func (h *Hedge) Stats() HedgeStats {
	return HedgeStats{h.calls.Load(), h.hedges.Load(), h.hedgeWins.Load(), h.currentDelay()}
}

func (h *Hedge) report(f *registry.Figures) {
	s := h.Stats()
	f.Counter("calls", float64(s.Calls))
	f.Counter("hedges", float64(s.Hedges))
	f.Counter("hedge_wins", float64(s.HedgeWins))
	f.Stat("delay_seconds", s.Delay.Seconds())
}

package policy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"loom/internal/registry"
)

// ErrBreakerOpen is matched by the error a Breaker returns when it refuses
// a call: it is open, or half-open with every probe slot taken.
var ErrBreakerOpen = errors.New("policy: circuit breaker open")

// BreakerOpenError is the error of a refused call. It matches
// ErrBreakerOpen, and its RetryAfter tells a Retry around the breaker how
// long until the breaker lets a probe through.
type BreakerOpenError struct {
	Breaker string
	Until   time.Time // when the breaker turns half-open
}

// Error says which breaker refused, and until when.
func (e *BreakerOpenError) Error() string {
	return fmt.Sprintf("policy: circuit breaker %q open until %s", e.Breaker, e.Until.Format(time.RFC3339Nano))
}

// Is reports whether target is ErrBreakerOpen.
func (e *BreakerOpenError) Is(target error) bool { return target == ErrBreakerOpen }

// RetryAfter returns the time left until the breaker turns half-open.
func (e *BreakerOpenError) RetryAfter() time.Duration { return max(time.Until(e.Until), 0) }

// BreakerState is the state of a Breaker.
type BreakerState uint32

// The states of a breaker.
const (
	// Closed: calls go through and their outcomes are recorded.
	Closed BreakerState = iota
	// Open: calls are refused until the open duration has passed.
	Open
	// HalfOpen: a few probe calls go through; their outcomes decide
	// between Closed and Open.
	HalfOpen
)

// String returns the state's name: closed, open or half-open.
func (s BreakerState) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return "unknown"
}

// Breaker is a circuit breaker in the manner of resilience4j: it records the
// outcome of calls in a sliding window, count-based (the last N calls) or
// time-based (the last D), and opens when, with at least a minimum number
// of calls in the window, the failure rate or the slow-call rate reaches
// its threshold. Open, it refuses calls with a *BreakerOpenError for the
// open duration, then lets a few probes through (half-open): if they do
// well it closes, otherwise it opens again.
//
// A call whose error is its caller's context ending is not counted: the
// caller gave up, the backend did not fail. Trip and Reset open and close
// it by hand. Use it as a Policy, or call Allow and Permit.Done around a
// call yourself: the success path allocates nothing.
type Breaker struct {
	name        string
	countWindow int           // >0: the last countWindow calls
	timeWindow  time.Duration // >0: the last timeWindow, in timeBuckets buckets
	timeBuckets int
	failRate    float64 // percent
	slowAfter   time.Duration
	slowRate    float64 // percent; 0: off
	minCalls    int
	openFor     time.Duration
	probes      int
	isFailure   func(error) bool
	onChange    func(from, to BreakerState)
	err         error

	mu       sync.Mutex
	state    BreakerState
	gen      uint64 // counts state changes; a permit from an older one is ignored
	openedAt time.Time
	openErr  *BreakerOpenError // made once per opening: refusals allocate nothing
	// count window
	ring         []uint8 // outcome bits per call, oldest overwritten
	pos, filled  int
	nFail, nSlow int
	// time window
	buckets []bucket
	// half-open
	issued, done, pFail, pSlow int

	successes, failures, ignored, rejected, transitions atomic.Uint64
}

type bucket struct {
	idx                int64
	calls, fails, slow int
}

const (
	outcomeFail = 1 << iota
	outcomeSlow
)

// Permit is the breaker's leave for one call, returned by Allow. Call Done
// with the call's error exactly once.
type Permit struct {
	b     *Breaker
	gen   uint64
	start time.Time // when slow calls are tracked
}

// Allow asks the breaker for leave to make a call. It returns a
// *BreakerOpenError, matching ErrBreakerOpen, if the call must not be made.
func (b *Breaker) Allow() (Permit, error) {
	if b.err != nil {
		return Permit{}, b.err
	}
	var start time.Time
	if b.slowAfter > 0 {
		start = time.Now()
	}
	b.mu.Lock()
	if b.state == Open {
		now := time.Now()
		if now.Before(b.openErr.Until) {
			err := b.openErr
			b.mu.Unlock()
			b.rejected.Add(1)
			return Permit{}, err
		}
		from := b.setStateLocked(HalfOpen, now)
		defer b.notify(from, HalfOpen)
	}
	if b.state == HalfOpen {
		if b.issued >= b.probes {
			b.mu.Unlock()
			b.rejected.Add(1)
			return Permit{}, &BreakerOpenError{Breaker: b.name, Until: time.Now()}
		}
		b.issued++
	}
	p := Permit{b: b, gen: b.gen, start: start}
	b.mu.Unlock()
	return p, nil
}

// Done records the call's outcome: err nil is a success; context.Canceled
// is not counted; any other error is judged by FailureIf (by default a
// failure unless Permanent).
func (p Permit) Done(err error) {
	if p.b == nil {
		return
	}
	p.b.record(p, err != nil && errors.Is(err, context.Canceled), err)
}

func (b *Breaker) run(ctx context.Context, c chain, i int) error {
	p, err := b.Allow()
	if err != nil {
		return err
	}
	err = c.next(ctx, i)
	b.record(p, err != nil && isCancellation(ctx, err), err)
	return err
}

// record counts one outcome; ignore drops it (the caller gave up).
func (b *Breaker) record(p Permit, ignore bool, err error) {
	var bits uint8
	if !ignore {
		if err != nil && b.failure(err) {
			bits |= outcomeFail
		}
		if b.slowAfter > 0 && time.Since(p.start) >= b.slowAfter {
			bits |= outcomeSlow
		}
	}
	switch {
	case ignore:
		b.ignored.Add(1)
	case bits&outcomeFail != 0:
		b.failures.Add(1)
	default:
		b.successes.Add(1)
	}
	b.mu.Lock()
	if p.gen != b.gen {
		b.mu.Unlock()
		return // the state changed meanwhile: the outcome belongs to the past
	}
	from, to := b.state, b.state
	switch b.state {
	case Closed:
		if !ignore {
			b.addLocked(bits)
			if b.tripLocked() {
				from = b.setStateLocked(Open, time.Now())
				to = Open
			}
		}
	case HalfOpen:
		if ignore {
			b.issued-- // give the probe slot back
			break
		}
		b.done++
		if bits&outcomeFail != 0 {
			b.pFail++
		}
		if bits&outcomeSlow != 0 {
			b.pSlow++
		}
		if b.done >= b.probes {
			to = Closed
			if b.overLocked(b.done, b.pFail, b.pSlow) {
				to = Open
			}
			from = b.setStateLocked(to, time.Now())
		}
	}
	b.mu.Unlock()
	if from != to {
		b.notify(from, to)
	}
}

func (b *Breaker) failure(err error) bool {
	if b.isFailure != nil {
		return b.isFailure(err)
	}
	return !IsPermanent(err)
}

// addLocked adds one outcome to the window.
func (b *Breaker) addLocked(bits uint8) {
	if b.ring != nil {
		old := b.ring[b.pos]
		if b.filled == len(b.ring) {
			b.nFail -= int(old & outcomeFail)
			b.nSlow -= int(old&outcomeSlow) >> 1
		} else {
			b.filled++
		}
		b.ring[b.pos] = bits
		b.nFail += int(bits & outcomeFail)
		b.nSlow += int(bits&outcomeSlow) >> 1
		b.pos = (b.pos + 1) % len(b.ring)
		return
	}
	idx := time.Now().UnixNano() / int64(b.timeWindow/time.Duration(b.timeBuckets))
	bk := &b.buckets[idx%int64(len(b.buckets))]
	if bk.idx != idx {
		*bk = bucket{idx: idx}
	}
	bk.calls++
	bk.fails += int(bits & outcomeFail)
	bk.slow += int(bits&outcomeSlow) >> 1
}

// windowLocked returns the calls, failures and slow calls in the window.
func (b *Breaker) windowLocked() (calls, fails, slow int) {
	if b.ring != nil {
		return b.filled, b.nFail, b.nSlow
	}
	cur := time.Now().UnixNano() / int64(b.timeWindow/time.Duration(b.timeBuckets))
	for _, bk := range b.buckets {
		if bk.idx > cur-int64(len(b.buckets)) && bk.idx <= cur {
			calls, fails, slow = calls+bk.calls, fails+bk.fails, slow+bk.slow
		}
	}
	return calls, fails, slow
}

func (b *Breaker) tripLocked() bool {
	calls, fails, slow := b.windowLocked()
	return calls >= b.minCalls && b.overLocked(calls, fails, slow)
}

func (b *Breaker) overLocked(calls, fails, slow int) bool {
	if calls == 0 {
		return false
	}
	if 100*float64(fails)/float64(calls) >= b.failRate {
		return true
	}
	return b.slowRate > 0 && 100*float64(slow)/float64(calls) >= b.slowRate
}

// setStateLocked moves to s and returns the state it left.
func (b *Breaker) setStateLocked(s BreakerState, now time.Time) BreakerState {
	from := b.state
	b.state = s
	b.gen++
	b.transitions.Add(1)
	b.issued, b.done, b.pFail, b.pSlow = 0, 0, 0, 0
	switch s {
	case Open:
		b.openedAt = now
		b.openErr = &BreakerOpenError{Breaker: b.name, Until: now.Add(b.openFor)}
	case Closed:
		b.clearLocked()
	}
	return from
}

func (b *Breaker) clearLocked() {
	clear(b.ring)
	b.pos, b.filled, b.nFail, b.nSlow = 0, 0, 0, 0
	clear(b.buckets)
}

func (b *Breaker) notify(from, to BreakerState) {
	if b.onChange != nil && from != to {
		b.onChange(from, to)
	}
}

// Trip opens the breaker by hand, for the open duration.
func (b *Breaker) Trip() {
	b.mu.Lock()
	from := b.setStateLocked(Open, time.Now())
	b.mu.Unlock()
	b.notify(from, Open)
}

// Reset closes the breaker by hand and clears its window.
func (b *Breaker) Reset() {
	b.mu.Lock()
	from := b.setStateLocked(Closed, time.Now())
	b.mu.Unlock()
	b.notify(from, Closed)
}

// State returns the breaker's state. An open breaker whose open duration
// has passed reports Open until the next call turns it half-open.
func (b *Breaker) State() BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// BreakerMetrics is a copy of a breaker's figures.
type BreakerMetrics struct {
	State                                               BreakerState
	WindowCalls, WindowFails, WindowSlow                int
	Successes, Failures, Ignored, Rejected, Transitions uint64
}

// Metrics returns a copy of the breaker's figures.
func (b *Breaker) Metrics() BreakerMetrics {
	b.mu.Lock()
	m := BreakerMetrics{State: b.state}
	m.WindowCalls, m.WindowFails, m.WindowSlow = b.windowLocked()
	b.mu.Unlock()
	m.Successes, m.Failures, m.Ignored = b.successes.Load(), b.failures.Load(), b.ignored.Load()
	m.Rejected, m.Transitions = b.rejected.Load(), b.transitions.Load()
	return m
}

func (b *Breaker) report(f *registry.Figures) {
	m := b.Metrics()
	f.Enum("state", int(m.State), "closed", "open", "half-open")
	f.Stat("window_calls", float64(m.WindowCalls))
	f.Stat("window_failures", float64(m.WindowFails))
	f.Stat("window_slow", float64(m.WindowSlow))
	f.Counter("successes", float64(m.Successes))
	f.Counter("failures", float64(m.Failures))
	f.Counter("ignored", float64(m.Ignored))
	f.Counter("rejected", float64(m.Rejected))
	f.Counter("transitions", float64(m.Transitions))
}

package policy

import (
	"fmt"
	"sync"
	"time"

	"loom"
	"loom/internal/registry"
)

// budgetBuckets and budgetBucket make the budget's sliding window: ten
// one-second buckets.
const (
	budgetBuckets = 10
	budgetBucket  = time.Second
)

// Budget caps retries at a share of calls, like gRPC's and Finagle's retry
// budgets: in any ten-second window, the retries of the Retry policies that
// share it stay below ratio times their calls, plus minPerSecond each
// second so that a quiet service can still retry. When a backend goes down,
// retries then add at most that share to its load instead of multiplying
// it.
type Budget struct {
	name         string
	ratio        float64
	minPerSecond int
	err          error

	mu      sync.Mutex
	start   int64 // the bucket index of calls[0]
	calls   [budgetBuckets]int
	retries [budgetBuckets]int
}

// NewBudget returns a retry budget named name for the monitor. ratio must be
// in [0, 1]; minPerSecond at least 0. Bad arguments give a budget that
// denies every retry; its Err says why.
func NewBudget(name string, ratio float64, minPerSecond int) *Budget {
	b := &Budget{name: name, ratio: ratio, minPerSecond: minPerSecond}
	if !(ratio >= 0 && ratio <= 1) || minPerSecond < 0 { // NaN too
		b.err = fmt.Errorf("policy.NewBudget: %w: ratio %v (need 0..1), min per second %d (need ≥ 0)",
			loom.ErrInvalidArgument, ratio, minPerSecond)
		return b
	}
	registry.Track(b, registry.KindBudget, name, (*Budget).report)
	return b
}

// Err returns the constructor's error, if its arguments were bad.
func (b *Budget) Err() error { return b.err }

// rotate moves the window to now, clearing the buckets that fell out.
func (b *Budget) rotate() int {
	idx := time.Now().UnixNano() / int64(budgetBucket)
	if gap := idx - b.start; gap >= budgetBuckets {
		b.calls, b.retries = [budgetBuckets]int{}, [budgetBuckets]int{}
		b.start = idx
	} else {
		for ; b.start+budgetBuckets <= idx; b.start++ {
			b.calls[b.start%budgetBuckets] = 0
			b.retries[b.start%budgetBuckets] = 0
		}
	}
	return int(idx % budgetBuckets)
}

func (b *Budget) recordCall() {
	b.mu.Lock()
	b.calls[b.rotate()]++
	b.mu.Unlock()
}

// withdraw takes one retry from the budget if there is one left.
func (b *Budget) withdraw() bool {
	if b.err != nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	i := b.rotate()
	if float64(b.sum(&b.retries)) >= b.allowedLocked() {
		return false
	}
	b.retries[i]++
	return true
}

func (b *Budget) allowedLocked() float64 {
	return b.ratio*float64(b.sum(&b.calls)) + float64(b.minPerSecond*budgetBuckets)
}

func (b *Budget) sum(a *[budgetBuckets]int) int {
	n := 0
	for _, v := range a {
		n += v
	}
	return n
}

// Left returns how many retries the budget allows now.
func (b *Budget) Left() int {
	if b.err != nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rotate()
	return max(int(b.allowedLocked())-b.sum(&b.retries), 0)
}

func (b *Budget) report(f *registry.Figures) {
	b.mu.Lock()
	b.rotate()
	calls, retries := b.sum(&b.calls), b.sum(&b.retries)
	b.mu.Unlock()
	f.Stat("window_calls", float64(calls))
	f.Stat("window_retries", float64(retries))
	f.Stat("left", float64(b.Left()))
}

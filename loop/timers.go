package loop

import (
	"sync/atomic"
	"time"
)

// Timer is a callback scheduled with CallLater or CallAt. Cancel it to keep
// it from running.
type Timer struct {
	when  time.Time
	fn    func()
	seq   uint64
	index int // in the heap, owned by the loop; -1 once out of it
	state atomic.Uint32
	loop  *Loop
}

// The states of a timer.
const (
	timerPending uint32 = iota
	timerFired
	timerCancelled
)

// Cancel keeps the timer from running and reports whether it stopped it (it
// had neither run nor been cancelled). It may be called from any goroutine;
// the loop drops cancelled timers when they come due, and purges them all
// at once when they are more than half of its timers.
func (t *Timer) Cancel() bool {
	if t == nil || !t.state.CompareAndSwap(timerPending, timerCancelled) {
		return false
	}
	t.loop.timersCancelled.Add(1)
	return true
}

// When returns when the timer is due.
func (t *Timer) When() time.Time { return t.when }

// timerHeap orders timers by due time, then by scheduling order.
type timerHeap []*Timer

func (h timerHeap) before(i, j int) bool {
	if !h[i].when.Equal(h[j].when) {
		return h[i].when.Before(h[j].when)
	}
	return h[i].seq < h[j].seq
}

func (h timerHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *timerHeap) push(t *Timer) {
	t.index = len(*h)
	*h = append(*h, t)
	h.up(t.index)
}

func (h *timerHeap) pop() *Timer {
	old := *h
	t := old[0]
	last := len(old) - 1
	old.swap(0, last)
	old[last] = nil
	*h = old[:last]
	if last > 0 {
		h.down(0)
	}
	t.index = -1
	return t
}

func (h timerHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.before(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h timerHeap) down(i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.before(r, l) {
			m = r
		}
		if !h.before(m, i) {
			return
		}
		h.swap(i, m)
		i = m
	}
}

// purge rebuilds the heap without its cancelled timers.
func (h *timerHeap) purge() int {
	old := *h
	kept := old[:0]
	removed := 0
	for _, t := range old {
		if t.state.Load() == timerCancelled {
			t.index = -1
			removed++
			continue
		}
		kept = append(kept, t)
	}
	for i := len(kept); i < len(old); i++ {
		old[i] = nil
	}
	*h = kept
	for i, t := range kept {
		t.index = i
	}
	for i := len(kept)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
	return removed
}

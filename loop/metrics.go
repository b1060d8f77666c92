package loop

import (
	"sync/atomic"
	"time"

	"loom/internal/registry"
	"loom/pool"
)

// metrics are written by the loop's goroutine; the counters read by other
// goroutines are atomics.
type metrics struct {
	iterations    atomic.Uint64
	iterTime      pool.Histogram
	ioWait        atomic.Int64 // nanoseconds in epoll_wait
	busy          atomic.Int64 // nanoseconds outside it
	readyLen      atomic.Int64 // after the last turn
	callbacksRun  atomic.Uint64
	timersRun     atomic.Uint64
	conns         atomic.Int64
	accepted      atomic.Uint64
	bytesIn       atomic.Uint64
	bytesOut      atomic.Uint64
	writeCalls    atomic.Uint64
	slowCallbacks atomic.Uint64
	wrongThread   atomic.Uint64

	// phase is the turn's phase in progress: when it began (nanoseconds
	// since clockBase) shifted left one, and the low bit set while the loop
	// waits in the poller. Readers add the phase so far to IOWait or Busy,
	// so that a loop stuck in a callback, or idle for long, reads as such
	// now and not only once its turn ends.
	phase atomic.Int64
	// recent holds busy and waiting time per second, for the last
	// recentSeconds seconds.
	recent [recentSeconds]second

	// plain counters, loop-goroutine only, folded into the atomics each turn
	callbacks, timers int
}

// recentSeconds is the window of Metrics' Recent figures.
const recentSeconds = 10

// second is one second of a loop's time; the loop writes it, any goroutine
// reads it.
type second struct {
	at         atomic.Int64 // which second (since clockBase) it holds
	busy, wait atomic.Int64 // nanoseconds
}

// clockBase is where the loops' monotonic phase clock starts.
var clockBase = time.Now()

func sinceBase(t time.Time) int64 { return int64(t.Sub(clockBase)) }

// enterPhase records that a phase (waiting or busy) begins at now.
func (m *metrics) enterPhase(now time.Time, waiting bool) {
	v := sinceBase(now) << 1
	if waiting {
		v |= 1
	}
	m.phase.Store(v)
}

// spend adds d of busy or waiting time, which ended at end, to the seconds
// it covered within the window.
func (m *metrics) spend(end time.Time, d time.Duration, waiting bool) {
	to := sinceBase(end)
	from := to - int64(d)
	for s := max(from/1e9, to/1e9-recentSeconds+1); s <= to/1e9; s++ {
		part := min(to, (s+1)*1e9) - max(from, s*1e9)
		if part <= 0 {
			continue
		}
		b := &m.recent[s%recentSeconds]
		if b.at.Load() != s {
			b.busy.Store(0)
			b.wait.Store(0)
			b.at.Store(s)
		}
		if waiting {
			b.wait.Add(part)
		} else {
			b.busy.Add(part)
		}
	}
}

func (m *metrics) iteration(end time.Time, total, waited time.Duration, ready int) {
	m.iterations.Add(1)
	m.iterTime.Observe(total - waited)
	m.ioWait.Add(int64(waited))
	m.busy.Add(int64(total - waited))
	m.readyLen.Store(int64(ready))
	if m.callbacks > 0 {
		m.callbacksRun.Add(uint64(m.callbacks))
		m.callbacks = 0
	}
	if m.timers > 0 {
		m.timersRun.Add(uint64(m.timers))
		m.timers = 0
	}
}

// Metrics is a copy of a loop's figures.
type Metrics struct {
	Name       string
	Iterations uint64
	// IterationTime is the busy part of each turn: what ran after the wait.
	IterationTime pool.HistogramSnapshot
	IOWait, Busy  time.Duration
	// BusyRatio is Busy over Busy+IOWait: near 1, the loop is saturated.
	// IOWait and Busy include the turn in progress, since the loop began.
	BusyRatio float64
	// RecentIOWait, RecentBusy and RecentBusyRatio are the same over the
	// last 10 seconds: what the loop is doing now, where the totals
	// average over its whole life.
	RecentIOWait, RecentBusy time.Duration
	RecentBusyRatio          float64
	// ReadyQueue counts the callbacks waiting to run: those queued for
	// the next turn and those posted and not yet taken, so a loop held up
	// by a blocked callback shows its backlog.
	ReadyQueue                      int
	CallbacksRun, TimersRun         uint64
	OpenConns                       int
	Accepted, BytesIn, BytesOut     uint64
	WriteCalls                      uint64 // writev calls: fewer than writes means batching
	SlowCallbacks, WrongThreadCalls uint64
}

// Metrics returns a copy of the loop's figures; any goroutine may call it.
func (l *Loop) Metrics() Metrics {
	m := &l.m
	out := Metrics{
		Name: l.name, Iterations: m.iterations.Load(), IterationTime: m.iterTime.Snapshot(),
		IOWait: time.Duration(m.ioWait.Load()), Busy: time.Duration(m.busy.Load()),
		ReadyQueue: int(m.readyLen.Load()) + l.postedLen(), CallbacksRun: m.callbacksRun.Load(), TimersRun: m.timersRun.Load(),
		OpenConns: int(m.conns.Load()), Accepted: m.accepted.Load(), BytesIn: m.bytesIn.Load(),
		BytesOut: m.bytesOut.Load(), WriteCalls: m.writeCalls.Load(),
		SlowCallbacks: m.slowCallbacks.Load(), WrongThreadCalls: m.wrongThread.Load(),
	}
	now := sinceBase(time.Now())
	var inPhase int64
	waiting := false
	if ph := m.phase.Load(); ph != 0 && l.state.Load() == stateRunning {
		inPhase, waiting = max(now-ph>>1, 0), ph&1 == 1
		if waiting {
			out.IOWait += time.Duration(inPhase)
		} else {
			out.Busy += time.Duration(inPhase)
		}
	}
	for i := range m.recent {
		b := &m.recent[i]
		if s := b.at.Load(); s > now/1e9-recentSeconds && s <= now/1e9 {
			out.RecentBusy += time.Duration(b.busy.Load())
			out.RecentIOWait += time.Duration(b.wait.Load())
		}
	}
	// The phase in progress, as far as it falls in the window.
	if recent := min(inPhase, now-(now/1e9-recentSeconds+1)*1e9); recent > 0 {
		if waiting {
			out.RecentIOWait += time.Duration(recent)
		} else {
			out.RecentBusy += time.Duration(recent)
		}
	}
	out.BusyRatio = ratio(out.Busy, out.IOWait)
	out.RecentBusyRatio = ratio(out.RecentBusy, out.RecentIOWait)
	return out
}

func ratio(busy, wait time.Duration) float64 {
	if total := busy + wait; total > 0 {
		return float64(busy) / float64(total)
	}
	return 0
}

func (l *Loop) report(f *registry.Figures) {
	m := l.Metrics()
	f.Counter("iterations", float64(m.Iterations))
	f.Display("iteration_p50_seconds", m.IterationTime.Quantile(0.5).Seconds())
	f.Display("iteration_p99_seconds", m.IterationTime.Quantile(0.99).Seconds())
	f.Histogram("iteration_seconds", m.IterationTime.Hist())
	f.Counter("io_wait_seconds", m.IOWait.Seconds())
	f.Counter("busy_seconds", m.Busy.Seconds())
	f.Stat("busy_ratio", m.BusyRatio)
	f.Stat("busy_ratio_10s", m.RecentBusyRatio)
	f.Stat("ready_queue", float64(m.ReadyQueue))
	f.Counter("callbacks", float64(m.CallbacksRun))
	f.Counter("timers", float64(m.TimersRun))
	f.Stat("connections", float64(m.OpenConns))
	f.Counter("accepted", float64(m.Accepted))
	f.Counter("bytes_in", float64(m.BytesIn))
	f.Counter("bytes_out", float64(m.BytesOut))
	f.Counter("write_calls", float64(m.WriteCalls))
	f.Counter("slow_callbacks", float64(m.SlowCallbacks))
	f.Counter("wrong_thread_calls", float64(m.WrongThreadCalls))
}

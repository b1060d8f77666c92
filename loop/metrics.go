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

	// plain counters, loop-goroutine only, folded into the atomics each turn
	callbacks, timers int
}

func (m *metrics) iteration(total, waited time.Duration, ready int) {
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
	BusyRatio                       float64
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
		ReadyQueue: int(m.readyLen.Load()), CallbacksRun: m.callbacksRun.Load(), TimersRun: m.timersRun.Load(),
		OpenConns: int(m.conns.Load()), Accepted: m.accepted.Load(), BytesIn: m.bytesIn.Load(),
		BytesOut: m.bytesOut.Load(), WriteCalls: m.writeCalls.Load(),
		SlowCallbacks: m.slowCallbacks.Load(), WrongThreadCalls: m.wrongThread.Load(),
	}
	if total := out.IOWait + out.Busy; total > 0 {
		out.BusyRatio = float64(out.Busy) / float64(total)
	}
	return out
}

func (l *Loop) report(f *registry.Figures) {
	m := l.Metrics()
	f.Stat("iterations", float64(m.Iterations))
	f.Stat("iteration_p50_seconds", m.IterationTime.Quantile(0.5).Seconds())
	f.Stat("iteration_p99_seconds", m.IterationTime.Quantile(0.99).Seconds())
	f.Stat("io_wait_seconds", m.IOWait.Seconds())
	f.Stat("busy_seconds", m.Busy.Seconds())
	f.Stat("busy_ratio", m.BusyRatio)
	f.Stat("ready_queue", float64(m.ReadyQueue))
	f.Stat("callbacks", float64(m.CallbacksRun))
	f.Stat("timers", float64(m.TimersRun))
	f.Stat("connections", float64(m.OpenConns))
	f.Stat("accepted", float64(m.Accepted))
	f.Stat("bytes_in", float64(m.BytesIn))
	f.Stat("bytes_out", float64(m.BytesOut))
	f.Stat("write_calls", float64(m.WriteCalls))
	f.Stat("slow_callbacks", float64(m.SlowCallbacks))
	f.Stat("wrong_thread_calls", float64(m.WrongThreadCalls))
}

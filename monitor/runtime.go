package monitor

import (
	"math"
	"runtime/metrics"
	"time"
)

// Runtime is what the Go runtime says about the process: the scheduler
// latency (how long runnable goroutines wait for a thread: the Go
// runtime's own "loop lag"), goroutines by state, and GC pauses.
type Runtime struct {
	Goroutines        uint64        `json:"goroutines"`
	Runnable          uint64        `json:"goroutines_runnable"`
	Running           uint64        `json:"goroutines_running"`
	Waiting           uint64        `json:"goroutines_waiting"`
	NotInGo           uint64        `json:"goroutines_not_in_go"`
	SchedLatencyP50   time.Duration `json:"sched_latency_p50"`
	SchedLatencyP99   time.Duration `json:"sched_latency_p99"`
	GCPauseP50        time.Duration `json:"gc_pause_p50"`
	GCPauseP99        time.Duration `json:"gc_pause_p99"`
	HeapObjectsBytes  uint64        `json:"heap_objects_bytes"`
	GoMaxProcs        uint64        `json:"gomaxprocs"`
	GoroutinesCreated uint64        `json:"goroutines_created"`
}

var runtimeNames = []string{
	"/sched/goroutines:goroutines",
	"/sched/goroutines/runnable:goroutines",
	"/sched/goroutines/running:goroutines",
	"/sched/goroutines/waiting:goroutines",
	"/sched/goroutines/not-in-go:goroutines",
	"/sched/latencies:seconds",
	"/sched/pauses/total/gc:seconds",
	"/memory/classes/heap/objects:bytes",
	"/sched/gomaxprocs:threads",
	"/sched/goroutines-created:goroutines",
}

func readRuntime() Runtime {
	samples := make([]metrics.Sample, len(runtimeNames))
	for i, n := range runtimeNames {
		samples[i].Name = n
	}
	metrics.Read(samples)
	u := func(i int) uint64 {
		if samples[i].Value.Kind() == metrics.KindUint64 {
			return samples[i].Value.Uint64()
		}
		return 0
	}
	q := func(i int, p float64) time.Duration {
		if samples[i].Value.Kind() != metrics.KindFloat64Histogram {
			return 0
		}
		return quantile(samples[i].Value.Float64Histogram(), p)
	}
	return Runtime{
		Goroutines: u(0), Runnable: u(1), Running: u(2), Waiting: u(3), NotInGo: u(4),
		SchedLatencyP50: q(5, 0.5), SchedLatencyP99: q(5, 0.99),
		GCPauseP50: q(6, 0.5), GCPauseP99: q(6, 0.99),
		HeapObjectsBytes: u(7), GoMaxProcs: u(8), GoroutinesCreated: u(9),
	}
}

// quantile returns the upper bound of the bucket holding the p quantile.
func quantile(h *metrics.Float64Histogram, p float64) time.Duration {
	var total uint64
	for _, c := range h.Counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(p * float64(total)))
	var seen uint64
	for i, c := range h.Counts {
		seen += c
		if seen >= rank {
			hi := h.Buckets[i+1]
			if math.IsInf(hi, 1) {
				hi = h.Buckets[i]
			}
			return time.Duration(hi * float64(time.Second))
		}
	}
	return 0
}

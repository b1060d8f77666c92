package pool

import (
	"slices"
	"sync/atomic"
	"time"

	"loom/internal/registry"
)

// histBuckets is the number of buckets of a Histogram: bucket i counts
// durations below 1µs·2^i, the last one everything longer (about 17 min).
const histBuckets = 31

// Histogram counts durations in exponential buckets, lock-free. Its zero
// value is empty and ready.
type Histogram struct {
	counts [histBuckets]atomic.Uint64
	sum    atomic.Int64 // nanoseconds
}

// Observe records one duration.
func (h *Histogram) Observe(d time.Duration) {
	us := uint64(max(d, 0) / time.Microsecond)
	i := 0
	for us > 0 && i < histBuckets-1 {
		us >>= 1
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// HistogramSnapshot is a copy of a Histogram.
type HistogramSnapshot struct {
	// Bounds[i] is the upper bound of bucket i; the last bucket has none
	// and counts everything above the one before.
	Bounds []time.Duration `json:"bounds"`
	Counts []uint64        `json:"counts"`
	Count  uint64          `json:"count"`
	Sum    time.Duration   `json:"sum"`
}

// Snapshot copies the histogram.
func (h *Histogram) Snapshot() HistogramSnapshot {
	s := HistogramSnapshot{Bounds: make([]time.Duration, histBuckets), Counts: make([]uint64, histBuckets)}
	for i := range histBuckets {
		s.Bounds[i] = time.Microsecond << i
		s.Counts[i] = h.counts[i].Load()
		s.Count += s.Counts[i]
	}
	s.Sum = time.Duration(h.sum.Load())
	return s
}

// Hist returns the snapshot as the registry's histogram, in seconds: the
// monitor exports it to Prometheus.
func (s HistogramSnapshot) Hist() registry.Hist {
	h := registry.Hist{Counts: slices.Clone(s.Counts), Sum: s.Sum.Seconds()}
	if n := len(s.Bounds); n > 0 {
		h.Bounds = make([]float64, n-1) // the last bucket has no bound
		for i, b := range s.Bounds[:n-1] {
			h.Bounds[i] = b.Seconds()
		}
	}
	return h
}

// Quantile returns an upper bound for the q-quantile (0 < q ≤ 1): the
// upper bound of the bucket it falls in. It is 0 for an empty histogram. A q
// outside (0, 1], or NaN, is taken as the nearest end: the first sample or
// the last.
func (s HistogramSnapshot) Quantile(q float64) time.Duration {
	if s.Count == 0 {
		return 0
	}
	rank := uint64(1)
	switch {
	case q >= 1:
		rank = s.Count
	case q > 0:
		rank = max(uint64(q*float64(s.Count)+0.5), 1)
	}
	var seen uint64
	for i, c := range s.Counts {
		seen += c
		if seen >= rank {
			return s.Bounds[i]
		}
	}
	return s.Bounds[len(s.Bounds)-1]
}

// Metrics is a copy of a pool's figures. The counters of a task are
// updated just after it ends, so a caller that has just seen a task end may
// read them a moment before they include it.
type Metrics struct {
	Name    string `json:"name"`
	Size    int    `json:"size"`    // the most workers the pool runs
	Workers int    `json:"workers"` // worker goroutines alive
	Idle    int    `json:"idle"`    // of which waiting for work
	Queued  int    `json:"queued"`  // tasks waiting for a worker
	Running int    `json:"running"`
	// Submitted counts tasks accepted; Completed those that returned nil,
	// Failed those that returned an error or panicked, Dropped those that
	// never ran (deadline passed in the queue, cancelled, pool closed), and
	// Rejected submissions refused because the pool was full.
	Submitted uint64 `json:"submitted"`
	Completed uint64 `json:"completed"`
	Failed    uint64 `json:"failed"`
	Dropped   uint64 `json:"dropped"`
	Rejected  uint64 `json:"rejected"`
	// Wait is the time from submission to start, Run the time running.
	Wait HistogramSnapshot `json:"wait"`
	Run  HistogramSnapshot `json:"run"`
}

type counters struct {
	submitted, completed, failed, dropped, rejected atomic.Uint64
	wait, run                                       Histogram
}

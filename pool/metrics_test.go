package pool

import (
	"math"
	"testing"
	"time"
)

// TestHistogramQuantile checks the buckets' bounds and the quantiles,
// including q outside (0, 1] and NaN, which are taken as the nearest end.
func TestHistogramQuantile(t *testing.T) {
	var h Histogram
	if got := h.Snapshot().Quantile(0.5); got != 0 {
		t.Fatalf("empty: %v", got)
	}
	// 90 samples under 1µs, 9 of 3ms (bucket below 4.096ms), 1 of 2s.
	for range 90 {
		h.Observe(500 * time.Nanosecond)
	}
	for range 9 {
		h.Observe(3 * time.Millisecond)
	}
	h.Observe(2 * time.Second)
	s := h.Snapshot()
	if s.Count != 100 || s.Sum != 90*500*time.Nanosecond+27*time.Millisecond+2*time.Second {
		t.Fatalf("count %d sum %v", s.Count, s.Sum)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{
		{0.5, time.Microsecond}, {0.9, time.Microsecond}, {0.95, 4096 * time.Microsecond},
		{0.99, 4096 * time.Microsecond}, {1, 2097152 * time.Microsecond},
		{0, time.Microsecond}, {-3, time.Microsecond}, {math.NaN(), time.Microsecond},
		{7, 2097152 * time.Microsecond}, {math.Inf(1), 2097152 * time.Microsecond},
	} {
		if got := s.Quantile(c.q); got != c.want {
			t.Errorf("Quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
}

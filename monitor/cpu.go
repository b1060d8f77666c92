package monitor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/pprof"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/google/pprof/profile"
)

// CPUShare is the CPU time of the goroutines of one task name (or group,
// or scope) over a sampling period: tokio-console's busy time, by name,
// read from the pprof labels loom puts on its goroutines.
type CPUShare struct {
	// Kind is "task", "group" or "scope", or "" for CPU time of
	// goroutines that are no loom task (the runtime, the monitor, plain
	// go statements).
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Seconds is the CPU time sampled; Share, its part of all of it.
	Seconds float64 `json:"seconds"`
	Share   float64 `json:"share"`
}

// CPUProfile is what a sampling period found.
type CPUProfile struct {
	Period  time.Duration `json:"period"`  // how long it sampled
	Seconds float64       `json:"seconds"` // all CPU time sampled
	Shares  []CPUShare    `json:"shares"`  // by name, the most first
}

// MaxCPUSampling bounds a sampling period asked of /api/cpu.
const MaxCPUSampling = 30 * time.Second

// ErrProfiling is wrapped by SampleCPU's error when a CPU profile is
// already being taken (by another request, or /debug/pprof/profile): Go
// takes one at a time.
var ErrProfiling = errors.New("monitor: a CPU profile is already being taken")

var cpuMu sync.Mutex

// SampleCPU takes a CPU profile for d (at most MaxCPUSampling, Go's 100
// samples a second) and returns the CPU time of each task name, from the
// pprof labels loom puts on task goroutines. While it samples, the
// process pays for the profiler: about a 100th of a CPU per busy core for
// the signal handling, and nothing after. It returns early, with what it
// has, when ctx ends.
func SampleCPU(ctx context.Context, d time.Duration) (CPUProfile, error) {
	if ctx == nil || d <= 0 || d > MaxCPUSampling {
		return CPUProfile{}, fmt.Errorf("monitor.SampleCPU: sampling period %v; want more than 0, at most %v", d, MaxCPUSampling)
	}
	if !cpuMu.TryLock() {
		return CPUProfile{}, ErrProfiling
	}
	defer cpuMu.Unlock()
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		return CPUProfile{}, fmt.Errorf("%w: %v", ErrProfiling, err)
	}
	start := time.Now()
	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
	}
	pprof.StopCPUProfile()
	p, err := profile.Parse(&buf)
	if err != nil {
		return CPUProfile{}, fmt.Errorf("monitor.SampleCPU: reading the profile: %w", err)
	}
	return cpuShares(p, time.Since(start)), nil
}

// cpuShares sums a CPU profile's samples by the loom label they carry.
func cpuShares(p *profile.Profile, period time.Duration) CPUProfile {
	idx := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" {
			idx = i
		}
	}
	out := CPUProfile{Period: period}
	if idx < 0 {
		return out
	}
	type key struct{ kind, name string }
	by := map[key]int64{}
	var total int64
	for _, s := range p.Sample {
		v := s.Value[idx]
		total += v
		k := key{}
		for _, kind := range []string{"task", "group", "scope"} {
			if names := s.Label["loom."+kind]; len(names) > 0 {
				k = key{kind, names[0]}
				break
			}
		}
		by[k] += v
	}
	out.Seconds = time.Duration(total).Seconds()
	for k, v := range by {
		share := 0.0
		if total > 0 {
			share = float64(v) / float64(total)
		}
		out.Shares = append(out.Shares, CPUShare{Kind: k.kind, Name: k.name, Seconds: time.Duration(v).Seconds(), Share: share})
	}
	sort.Slice(out.Shares, func(i, j int) bool {
		if out.Shares[i].Seconds != out.Shares[j].Seconds {
			return out.Shares[i].Seconds > out.Shares[j].Seconds
		}
		return out.Shares[i].Name < out.Shares[j].Name
	})
	return out
}

// cpu serves GET /api/cpu?seconds=N (default 2): SampleCPU's answer.
func (h *handler) cpu(w http.ResponseWriter, r *http.Request) {
	d := 2 * time.Second
	if s := r.URL.Query().Get("seconds"); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || !(f > 0 && f <= MaxCPUSampling.Seconds()) { // NaN too
			writeError(w, http.StatusBadRequest, fmt.Errorf("monitor: seconds=%q; want a number above 0, at most %v", s, MaxCPUSampling.Seconds()))
			return
		}
		d = time.Duration(f * float64(time.Second))
	}
	p, err := SampleCPU(r.Context(), d)
	switch {
	case errors.Is(err, ErrProfiling):
		writeError(w, http.StatusConflict, err)
	case err != nil:
		writeError(w, http.StatusInternalServerError, err)
	default:
		writeJSON(w, http.StatusOK, p)
	}
}

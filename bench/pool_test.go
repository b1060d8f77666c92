package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alitto/pond/v2"
	"github.com/panjf2000/ants/v2"
	concpool "github.com/sourcegraph/conc/pool"

	"loom/pool"
)

// poolBatch is how many no-op tasks one operation of BenchmarkPoolNoop
// submits and waits for; per-task cost is ns/op divided by poolBatch.
const poolBatch = 1000

// poolImpls runs n tasks of fn on a pool of the given size with each
// implementation: submit them all, then wait for all. The queue of each
// pool is bounded at size, so memory stays bounded whatever n is (ants
// blocks submitters by default; the others are told to).
var poolImpls = []struct {
	name string
	run  func(size, n int, fn func())
}{
	{"raw", func(_, n int, fn func()) {
		var wg sync.WaitGroup
		wg.Add(n)
		for range n {
			go func() { fn(); wg.Done() }()
		}
		wg.Wait()
	}},
	{"ants", func(size, n int, fn func()) {
		p, err := ants.NewPool(size)
		if err != nil {
			panic(err)
		}
		defer p.Release()
		var wg sync.WaitGroup
		wg.Add(n)
		for range n {
			if err := p.Submit(func() { fn(); wg.Done() }); err != nil {
				panic(err)
			}
		}
		wg.Wait()
	}},
	// ants-future is a reference, not a peer: ants carrying, for each
	// task, as many bytes as loom keeps per task in flight (a 208-byte
	// Task, an 80-byte context and its 16-byte cancel, an 80-byte queue
	// entry), released when the task ends. It shows what a future per
	// task costs any pool.
	{"ants-future", func(size, n int, fn func()) {
		p, err := ants.NewPool(size)
		if err != nil {
			panic(err)
		}
		defer p.Release()
		var wg sync.WaitGroup
		wg.Add(n)
		for range n {
			f := &future{}
			if err := p.Submit(func() { fn(); f.ended = true; wg.Done() }); err != nil {
				panic(err)
			}
		}
		wg.Wait()
	}},
	{"pond", func(size, n int, fn func()) {
		p := pond.NewPool(size, pond.WithQueueSize(size))
		for range n {
			p.Submit(fn)
		}
		p.StopAndWait()
	}},
	{"conc", func(size, n int, fn func()) {
		p := concpool.New().WithMaxGoroutines(size)
		for range n {
			p.Go(fn)
		}
		p.Wait()
	}},
	{"loom", func(size, n int, fn func()) {
		ctx := context.Background()
		p := pool.New("bench", pool.WithSize(size), pool.WithQueueSize(size))
		for range n {
			if _, err := pool.Submit(ctx, p, "", func(context.Context) (struct{}, error) { fn(); return struct{}{}, nil }); err != nil {
				panic(err)
			}
		}
		if err := p.Close(ctx); err != nil {
			panic(err)
		}
	}},
	// loom-noqueue is loom in ants' shape: no queue, so a submitter waits
	// for a free worker as ants' does, and no more tasks are in flight
	// than workers.
	{"loom-noqueue", func(size, n int, fn func()) {
		ctx := context.Background()
		p := pool.New("bench", pool.WithSize(size), pool.WithQueueSize(0))
		for range n {
			if _, err := pool.Submit(ctx, p, "", func(context.Context) (struct{}, error) { fn(); return struct{}{}, nil }); err != nil {
				panic(err)
			}
		}
		if err := p.Close(ctx); err != nil {
			panic(err)
		}
	}},
}

// future stands for what loom keeps per task in flight: 384 bytes.
type future struct {
	ended bool
	_     [376]byte
}

// BenchmarkPoolNoop submits 1000 tasks that do nothing to a pool of
// GOMAXPROCS workers and waits for them: the cost of the pool itself. ants
// and conc hand back nothing; pond and loom return a future (pond.Task,
// *loom.Task) for every task.
func BenchmarkPoolNoop(b *testing.B) {
	size := runtime.GOMAXPROCS(0)
	for _, impl := range poolImpls {
		b.Run("impl="+impl.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				impl.run(size, poolBatch, func() {})
			}
		})
	}
}

// loadResult is what a load child reports.
type loadResult struct {
	Seconds     float64 `json:"seconds"`
	AllocsPerOp float64 `json:"allocs_per_task"`
}

// BenchmarkPoolLoad runs 1M tasks that each sleep 10ms or 100ms through a
// pool of 10,000 workers (raw: one goroutine per task), each run in a fresh
// child process so that its peak RSS is its own. It reports the run's time
// (s/run), allocations per task and peak RSS (peak-MB). With -short it runs
// 10,000 tasks instead, for smoke tests.
func BenchmarkPoolLoad(b *testing.B) {
	n := 1_000_000
	if testing.Short() {
		n = 10_000
	}
	for _, d := range []time.Duration{10 * time.Millisecond, 100 * time.Millisecond} {
		for _, impl := range poolImpls {
			b.Run(fmt.Sprintf("d=%v/impl=%s", d, impl.name), func(b *testing.B) {
				var secs, allocs, rss float64
				for b.Loop() {
					r, peak := runLoadChild(b, impl.name, d, n)
					secs, allocs, rss = secs+r.Seconds, allocs+r.AllocsPerOp, rss+peak
				}
				k := float64(b.N)
				b.ReportMetric(secs/k, "s/run")
				b.ReportMetric(allocs/k, "allocs/task")
				b.ReportMetric(rss/k, "peak-MB")
			})
		}
	}
}

// loadWorkers is the size of each pool in BenchmarkPoolLoad.
const loadWorkers = 10_000

func runLoadChild(b *testing.B, impl string, d time.Duration, n int) (loadResult, float64) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestPoolLoadChild$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("LOOM_BENCH_LOAD=%s,%d,%d", impl, d, n))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("load child %s: %v", impl, err)
	}
	var r loadResult
	if err := json.Unmarshal(resultLine(out), &r); err != nil {
		b.Fatalf("load child %s: %v in %q", impl, err, out)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return r, float64(ru.Maxrss) / 1024 // Linux reports KiB
}

// resultLine returns the child's JSON line: the last one that starts with
// a brace (the test framework prints PASS after it).
func resultLine(out []byte) []byte {
	var found []byte
	for _, line := range bytes.Split(out, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("{")) {
			found = line
		}
	}
	return found
}

// TestPoolLoadChild is the body of a BenchmarkPoolLoad child process; it
// does nothing in a normal test run.
func TestPoolLoadChild(t *testing.T) {
	spec := os.Getenv("LOOM_BENCH_LOAD")
	if spec == "" {
		t.Skip("runs only as a child of BenchmarkPoolLoad")
	}
	parts := strings.Split(spec, ",")
	if len(parts) != 3 {
		t.Fatalf("bad spec %q", spec)
	}
	impl := parts[0]
	di, err1 := strconv.ParseInt(parts[1], 10, 64)
	n, err2 := strconv.Atoi(parts[2])
	if err1 != nil || err2 != nil {
		t.Fatalf("bad spec %q", spec)
	}
	d := time.Duration(di)
	for _, p := range poolImpls {
		if p.name != impl {
			continue
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		p.run(loadWorkers, n, func() { time.Sleep(d) })
		secs := time.Since(start).Seconds()
		runtime.ReadMemStats(&after)
		out, _ := json.Marshal(loadResult{Seconds: secs, AllocsPerOp: float64(after.Mallocs-before.Mallocs) / float64(n)})
		fmt.Printf("\n%s\n", out)
		return
	}
	t.Fatalf("no implementation %q", impl)
}

package bench

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"loom"
	"loom/internal/registry"
	"loom/internal/scale"
	"loom/monitor"
)

// BenchmarkMonitorOverhead runs 100,000 tasks per operation (a group of
// tasks that each hash 64 bytes), with no monitor (impl=off) and with the
// monitor served and polled the way an open page polls it, a full snapshot
// every 100ms (impl=on). The ratio is the cost of being watched.
func BenchmarkMonitorOverhead(b *testing.B) {
	const tasks = 100_000
	work := func(ctx context.Context) error {
		var buf [64]byte
		_ = sha256.Sum256(buf[:])
		return nil
	}
	run := func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			g := loom.NewGroup(context.Background(), loom.WithName("load"), loom.WithLimit(1024))
			for range tasks {
				if err := g.Go("t", work); err != nil {
					b.Fatal(err)
				}
			}
			if err := g.Wait(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("impl=off", run)
	b.Run("impl=on", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _ = monitor.ServeListener(ctx, ln) }()
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second}
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				resp, err := client.Get("http://" + ln.Addr().String() + "/api/snapshot")
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
		run(b)
		b.StopTimer()
		cancel()
		wg.Wait()
	})
}

// BenchmarkMonitorScale measures the monitor with 10k, 100k and 1M live
// tasks (1,000 groups of blocked tasks): one request per operation, with
// the bytes it answers. snapshot is what the page and loom top poll
// (DefaultTaskLimit tasks, the counts, the resources), snapshot-by-name
// the same in loom top's order by name; snapshot-all lists every task;
// summary counts without listing; metrics is a Prometheus scrape; stack is
// one task's stack. -short runs 10,000 tasks only.
func BenchmarkMonitorScale(b *testing.B) {
	sizes := []int{10_000, 100_000, 1_000_000}
	if testing.Short() {
		sizes = sizes[:1]
	}
	for _, n := range sizes {
		_, release, err := scale.Blocked(n, "scale", "scale-task", func(ctx context.Context) error { <-ctx.Done(); return nil })
		if err != nil {
			b.Fatal(err)
		}
		h, err := monitor.Handler()
		if err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(h)
		var one, parent uint64
		if infos, _ := registry.Select(registry.Filter{NamePrefix: "scale-task", Limit: 1}); len(infos) > 0 {
			one, parent = infos[0].ID, infos[0].Parent
		}
		for _, c := range []struct{ name, path string }{
			{"snapshot", "/api/snapshot"}, {"snapshot-by-name", "/api/snapshot?sort=name"},
			{"snapshot-all", "/api/snapshot?limit=0"}, {"summary", "/api/summary"},
			{"metrics", "/metrics"}, {"stack", fmt.Sprintf("/api/tasks/%d/stack?parent=%d", one, parent)},
			{"task", fmt.Sprintf("/api/tasks/%d?parent=%d", one, parent)}, {"task-noparent", fmt.Sprintf("/api/tasks/%d", one)},
		} {
			b.Run(fmt.Sprintf("tasks=%d/%s", n, c.name), func(b *testing.B) {
				var size int64
				for range b.N {
					resp, err := http.Get(srv.URL + c.path)
					if err != nil {
						b.Fatal(err)
					}
					size, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Fatalf("%s: %s", c.path, resp.Status)
					}
				}
				b.ReportMetric(float64(size)/1024, "KiB")
				b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/req")
			})
		}
		// The floor under one task's stack: the runtime's own profile of
		// every goroutine's stack, without labels, formatting or HTTP.
		b.Run(fmt.Sprintf("tasks=%d/goroutine-profile", n), func(b *testing.B) {
			records := make([]runtime.StackRecord, runtime.NumGoroutine()+1000)
			for range b.N {
				if _, ok := runtime.GoroutineProfile(records); !ok {
					b.Fatal("goroutine profile: too few records")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/req")
		})
		srv.Close()
		release()
	}
}

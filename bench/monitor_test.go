package bench

import (
	"context"
	"crypto/sha256"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"loom"
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

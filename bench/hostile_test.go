package bench

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"slices"
	"testing"
	"time"
)

// BenchmarkServeNonReaders runs each HTTP server alone in a child process
// and points 8 hostile clients at it, each pipelining requests for the
// home page and never reading an answer (up to 32 MiB each, 8 MiB with
// -short, or until the server stops taking them). It reports the child's
// peak resident memory (rss-MiB) and the p50 and p99 of 200 GET /health
// round trips made meanwhile on a separate connection (health-p50-ms,
// health-p99-ms). Before back-pressure, loom serve passed 1 GiB here.
func BenchmarkServeNonReaders(b *testing.B) {
	const clients = 8
	limit := 32 << 20
	if testing.Short() {
		limit = 8 << 20
	}
	for _, srv := range httpServers {
		b.Run("impl="+srv.name, func(b *testing.B) {
			var rss, p50, p99 float64
			for b.Loop() {
				r, q50, q99 := nonReaders(b, srv.name, clients, limit)
				rss, p50, p99 = rss+r, p50+q50, p99+q99
			}
			n := float64(b.N)
			b.ReportMetric(rss/n, "rss-MiB")
			b.ReportMetric(p50/n, "health-p50-ms")
			b.ReportMetric(p99/n, "health-p99-ms")
		})
	}
}

func nonReaders(b *testing.B, impl string, clients, limit int) (rssMiB, p50, p99 float64) {
	addr, pid, stop := startServerChild(b, "TestHTTPServerChild", impl)
	defer stop()
	req := bytes.Repeat([]byte("GET /home HTTP/1.1\r\nHost: bench\r\n\r\n"), 512)
	done := make(chan struct{}, clients)
	for range clients {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		go func() {
			defer func() { done <- struct{}{} }()
			for sent := 0; sent < limit; {
				_ = c.SetWriteDeadline(time.Now().Add(time.Second))
				n, err := c.Write(req)
				sent += n
				if err != nil {
					return
				}
			}
		}()
	}
	health, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer health.Close()
	r := bufio.NewReader(health)
	var lat []float64
	for range 200 {
		start := time.Now()
		if _, err := io.WriteString(health, "GET /health HTTP/1.1\r\nHost: bench\r\n\r\n"); err != nil {
			b.Fatal(err)
		}
		if err := readResponse(r); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, float64(time.Since(start).Microseconds())/1000)
		time.Sleep(5 * time.Millisecond)
	}
	for range clients {
		<-done
	}
	slices.Sort(lat)
	return float64(vmHWM(b, pid)) / 1024, lat[len(lat)/2], lat[len(lat)*99/100]
}

// vmHWM reads a process's peak resident memory in KiB.
func vmHWM(b *testing.B, pid int) int { return procStatus(b, pid, "VmHWM") }

// TestHTTPServerChild is the body of a BenchmarkServeNonReaders child: it
// runs one HTTP server, prints its address and serves until stdin closes.
func TestHTTPServerChild(t *testing.T) { serveAsChild(t, httpServers) }

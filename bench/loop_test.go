package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"

	"loom/loop"
)

// An echo server, three ways: loom's loop group, gnet v2 and the standard
// library with a goroutine per connection. Each starts on a free loopback
// port and returns its address and a stop function.
var echoServers = []struct {
	name  string
	start func() (string, func(), error)
}{
	{"std", startStdEcho},
	{"gnet", startGnetEcho},
	{"loom", startLoomEcho},
}

func startStdEcho() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if err != nil {
						break
					}
					if _, err := c.Write(buf[:n]); err != nil {
						break
					}
				}
				c.Close()
			}()
		}
	}()
	return ln.Addr().String(), func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}, nil
}

// quietLog keeps gnet's start-up lines out of the benchmark output, where
// they would break benchstat's parsing.
type quietLog struct{}

func (quietLog) Debugf(string, ...any) {}
func (quietLog) Infof(string, ...any)  {}
func (quietLog) Warnf(string, ...any)  {}
func (quietLog) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "gnet: "+format+"\n", args...)
}
func (quietLog) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "gnet: "+format+"\n", args...)
	os.Exit(1)
}

type gnetEcho struct {
	gnet.BuiltinEventEngine
	eng chan gnet.Engine
}

func (g *gnetEcho) OnBoot(eng gnet.Engine) gnet.Action { g.eng <- eng; return gnet.None }
func (g *gnetEcho) OnTraffic(c gnet.Conn) gnet.Action {
	buf, _ := c.Next(-1)
	_, _ = c.Write(buf)
	return gnet.None
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func startGnetEcho() (string, func(), error) {
	addr, err := freePort()
	if err != nil {
		return "", nil, err
	}
	h := &gnetEcho{eng: make(chan gnet.Engine, 1)}
	errc := make(chan error, 1)
	go func() {
		errc <- gnet.Run(h, "tcp://"+addr, gnet.WithMulticore(true), gnet.WithReusePort(true), gnet.WithLogger(quietLog{}))
	}()
	select {
	case eng := <-h.eng:
		return addr, func() { _ = eng.Stop(context.Background()); <-errc }, nil
	case err := <-errc:
		return "", nil, err
	}
}

type loomEcho struct{}

func (loomEcho) OnOpen(*loop.Conn)                {}
func (loomEcho) OnData(c *loop.Conn, data []byte) { _, _ = c.Write(data) }
func (loomEcho) OnClose(*loop.Conn, error)        {}

func startLoomEcho() (string, func(), error) {
	g, err := loop.NewGroup("echo", 0)
	if err != nil {
		return "", nil, err
	}
	addr, err := g.Listen("127.0.0.1:0", loomEcho{})
	if err != nil {
		return "", nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- g.Run(ctx) }()
	return addr.String(), func() { cancel(); <-errc }, nil
}

// BenchmarkEcho sends b.N messages of 64 B or 4 KiB, spread over 50 or
// 1,000 connections, each waiting for its echo before the next: one load
// client (goroutines in this process) against each server in the same run.
// The figure is throughput (MB/s) of echoed payload.
func BenchmarkEcho(b *testing.B) {
	for _, conns := range []int{50, 1000} {
		for _, size := range []int{64, 4096} {
			for _, srv := range echoServers {
				b.Run(fmt.Sprintf("conns=%d/size=%d/impl=%s", conns, size, srv.name), func(b *testing.B) {
					addr, stop, err := srv.start()
					if err != nil {
						b.Fatal(err)
					}
					defer stop()
					echoLoad(b, addr, conns, size)
				})
			}
		}
	}
}

func echoLoad(b *testing.B, addr string, conns, size int) {
	cs := make([]net.Conn, conns)
	for i := range cs {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		cs[i] = c
	}
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	msg := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N / conns
	for i, c := range cs {
		n := per
		if i < b.N%conns {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, size)
			for range n {
				if _, err := c.Write(msg); err != nil {
					b.Error(err)
					return
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer() // closing the connections and the server is not the load
}

// BenchmarkIdleConns opens 10,000 idle connections (1,000 with -short) to
// each server, run alone in a child process, and reports the growth of
// that process's resident memory per connection (KB/conn).
func BenchmarkIdleConns(b *testing.B) {
	n := 10_000
	if testing.Short() {
		n = 1000
	}
	for _, srv := range echoServers {
		b.Run("impl="+srv.name, func(b *testing.B) {
			var perConn float64
			for b.Loop() {
				perConn += idleRSS(b, srv.name, n)
			}
			b.ReportMetric(perConn/float64(b.N), "KB/conn")
		})
	}
}

func idleRSS(b *testing.B, impl string, n int) float64 {
	cmd := exec.Command(os.Args[0], "-test.run=^TestEchoServerChild$")
	cmd.Env = append(os.Environ(), "LOOM_BENCH_SERVER="+impl)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	r := bufio.NewReader(stdout)
	var addr string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			b.Fatalf("server child: %v", err)
		}
		if a, ok := strings.CutPrefix(strings.TrimSpace(line), "addr "); ok {
			addr = a
			break
		}
	}
	pid := cmd.Process.Pid
	time.Sleep(100 * time.Millisecond)
	before := vmRSS(b, pid)
	cs := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		cs = append(cs, c)
	}
	// One round trip on each, so that every server has set the
	// connection up completely (buffers, goroutines), then let it idle.
	one := []byte{1}
	for _, c := range cs {
		_, _ = c.Write(one)
	}
	for _, c := range cs {
		_, _ = io.ReadFull(c, one)
	}
	time.Sleep(200 * time.Millisecond)
	after := vmRSS(b, pid)
	return float64(after-before) / float64(n)
}

// vmRSS returns a process's resident memory in KB.
func vmRSS(b *testing.B, pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.Fields(rest)[0])
			return kb
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// TestEchoServerChild is the body of a BenchmarkIdleConns child: it runs
// one echo server, prints its address and serves until stdin closes.
func TestEchoServerChild(t *testing.T) {
	impl := os.Getenv("LOOM_BENCH_SERVER")
	if impl == "" {
		t.Skip("runs only as a child of BenchmarkIdleConns")
	}
	for _, srv := range echoServers {
		if srv.name != impl {
			continue
		}
		runtime.GC()
		addr, stop, err := srv.start()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("addr %s\n", addr)
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
		return
	}
	t.Fatalf("no server %q", impl)
}

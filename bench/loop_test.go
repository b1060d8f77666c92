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

// An echo server, three ways: loom's loop group (its loops parked in Go's
// netpoller when idle, the default, or each on a locked OS thread), gnet v2
// and the standard library with a goroutine per connection. Each starts on a free loopback
// port and returns its address and a stop function.
var echoServers = []struct {
	name  string
	start func() (string, func(), error)
}{
	{"std", startStdEcho},
	{"gnet", startGnetEcho},
	{"loom", func() (string, func(), error) { return startLoomEcho() }},
	{"loom-locked", func() (string, func(), error) { return startLoomEcho(loop.WithLockedThread()) }},
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

func startLoomEcho(opts ...loop.Option) (string, func(), error) {
	g, err := loop.NewGroup("echo", 0, opts...)
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

// BenchmarkEchoServerCore runs each echo server alone in a child process
// with GOMAXPROCS=1, against an event-loop client (one loop, one thread)
// in this process: one core each, so neither side's scheduler competes
// with the other's. Each of conns connections sends a message, waits for
// its whole echo and sends the next; b.N messages in all. Besides
// throughput it reports how much of a core the server used (server-cores)
// and which share of that was its own code rather than the kernel's TCP
// work (server-user-%): the most an event loop can save over a goroutine
// per connection is that share.
func BenchmarkEchoServerCore(b *testing.B) {
	for _, conns := range []int{50, 1000} {
		for _, size := range []int{64, 4096} {
			for _, srv := range echoServers {
				b.Run(fmt.Sprintf("conns=%d/size=%d/impl=%s", conns, size, srv.name), func(b *testing.B) {
					addr, pid, stop := startChild(b, srv.name, "GOMAXPROCS=1")
					defer stop()
					u0, s0 := procCPU(b, pid)
					t0 := time.Now()
					loopEchoLoad(b, addr, conns, size)
					u1, s1 := procCPU(b, pid)
					user, sys := (u1 - u0).Seconds(), (s1 - s0).Seconds()
					b.ReportMetric((user+sys)/time.Since(t0).Seconds(), "server-cores")
					if user+sys > 0 { // a short run may use less than a clock tick
						b.ReportMetric(100*user/(user+sys), "server-user-%")
					}
				})
			}
		}
	}
}

// echoClient is the client side of BenchmarkEchoServerCore, run on one
// loop: it keeps one message in flight on every connection.
type echoClient struct {
	msg           []byte
	pending       map[*loop.Conn]int // bytes of the current echo still due
	sent, total   int
	echoed        int
	opened        int
	start, finish chan struct{}
	err           error
}

func (e *echoClient) OnOpen(c *loop.Conn) {
	e.opened++
	e.pending[c] = 0
	if e.opened == len(e.pending) && e.opened == cap(e.start) {
		close(e.start)
	}
}

// begin sends the first message on every connection (loop only).
func (e *echoClient) begin() {
	for c := range e.pending {
		e.send(c)
	}
}

func (e *echoClient) send(c *loop.Conn) {
	if e.sent == e.total {
		return
	}
	e.sent++
	e.pending[c] = len(e.msg)
	if _, err := c.Write(e.msg); err != nil && e.err == nil {
		e.err = err
	}
}

func (e *echoClient) OnData(c *loop.Conn, data []byte) {
	left := e.pending[c] - len(data)
	e.pending[c] = left
	if left > 0 {
		return
	}
	e.echoed++
	if e.echoed == e.total {
		close(e.finish)
		return
	}
	e.send(c)
}

func (e *echoClient) OnClose(_ *loop.Conn, err error) {
	if err != nil && e.err == nil && e.echoed < e.total {
		e.err = err
	}
}

func loopEchoLoad(b *testing.B, addr string, conns, size int) {
	l, err := loop.New(loop.WithName("echo-client"))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- l.Run(ctx) }()
	defer func() { cancel(); <-errc }()
	e := &echoClient{
		msg: make([]byte, size), pending: make(map[*loop.Conn]int, conns), total: b.N,
		start: make(chan struct{}, conns), finish: make(chan struct{}),
	}
	dialed := make(chan error, 1)
	_ = l.Post(func() {
		for range conns {
			if err := l.Dial(addr, e); err != nil {
				dialed <- err
				return
			}
		}
		dialed <- nil
	})
	if err := <-dialed; err != nil {
		b.Fatal(err)
	}
	<-e.start
	b.SetBytes(int64(size))
	b.ResetTimer()
	_ = l.Post(e.begin)
	select {
	case <-e.finish:
	case err := <-errc:
		b.Fatalf("client loop stopped: %v", err)
	}
	b.StopTimer()
	if e.err != nil {
		b.Fatal(e.err)
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

// startChild runs the echo server impl alone in a child process and
// returns its address, its pid and a stop function; env is added to its
// environment.
func startChild(b *testing.B, impl string, env ...string) (string, int, func()) {
	return startServerChild(b, "TestEchoServerChild", impl, env...)
}

// startServerChild runs the test named child (TestEchoServerChild or
// TestHTTPServerChild) as a server child process of impl.
func startServerChild(b *testing.B, child, impl string, env ...string) (string, int, func()) {
	cmd := exec.Command(os.Args[0], "-test.run=^"+child+"$")
	cmd.Env = append(append(os.Environ(), "LOOM_BENCH_SERVER="+impl), env...)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	stop := func() { stdin.Close(); _ = cmd.Wait() }
	r := bufio.NewReader(stdout)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			stop()
			b.Fatalf("server child: %v", err)
		}
		if a, ok := strings.CutPrefix(strings.TrimSpace(line), "addr "); ok {
			return a, cmd.Process.Pid, stop
		}
	}
}

func idleRSS(b *testing.B, impl string, n int) float64 {
	addr, pid, stop := startChild(b, impl)
	defer stop()
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

// procCPU returns the CPU time a process has used so far, in user space
// and in the kernel.
func procCPU(b *testing.B, pid int) (user, sys time.Duration) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses: utime and
	// stime are the 12th and 13th, in clock ticks (100 per second).
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return time.Duration(ut) * 10 * time.Millisecond, time.Duration(st) * 10 * time.Millisecond
}

// vmRSS returns a process's resident memory in KB.
func vmRSS(b *testing.B, pid int) int { return procStatus(b, pid, "VmRSS") }

// procStatus reads a figure in KB (VmRSS, VmHWM) of /proc/PID/status.
func procStatus(b *testing.B, pid int, field string) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.Atoi(strings.Fields(rest)[0])
			return kb
		}
	}
	b.Fatal("no " + field)
	return 0
}

// TestEchoServerChild is the body of a BenchmarkIdleConns child: it runs
// one echo server, prints its address and serves until stdin closes.
func TestEchoServerChild(t *testing.T) { serveAsChild(t, echoServers) }

// serveAsChild runs the server of servers that LOOM_BENCH_SERVER names,
// prints its address and serves until stdin closes; outside a child it
// skips.
func serveAsChild(t *testing.T, servers []struct {
	name  string
	start func() (string, func(), error)
}) {
	impl := os.Getenv("LOOM_BENCH_SERVER")
	if impl == "" {
		t.Skip("runs only as a benchmark's child process")
	}
	for _, srv := range servers {
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

package bench

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkServeWrk is the HTTP keep-alive benchmark out of process: each
// server alone in a process pinned to CPU 0 (Go servers with GOMAXPROCS=1),
// wrk pinned to CPU 1, GET /health over 50 and 1,000 connections, and over
// 50 with 16 requests per write (pipelined: the server's own cost per
// request, with the kernel's spread over 16), for 3 seconds per operation. It reports the server's CPU time per request
// (cpu-us/req, from /proc/PID/task/*/schedstat), requests per second, how
// busy wrk's own core was (client-busy: near 1, the client and not the
// server set the pace, and cpu-us/req is what compares), and syscalls per
// request where perf can count them.
//
// The servers: c-epoll, a minimal epoll responder in C (bench/ref, no
// parsing: the ceiling); c-epoll-mt, the same with an idle second thread
// (the kernel's multi-threaded paths, which every Go program takes);
// go-epoll, the same responder in Go on a locked thread
// (TestGoEpollChild: the floor of any Go server, the kernel plus the Go
// runtime); loom serve (one loop); uvloop, the same minimal
// responder as a bare asyncio Protocol on uvloop (bench/ref); net/http.
// scripts/install-http-bench.sh installs wrk, gcc and python3-uvloop; a row
// whose tool is missing is skipped, with a message. -short skips it all:
// each operation is a 3 s run.
func BenchmarkServeWrk(b *testing.B) {
	if testing.Short() {
		b.Skip("wrk runs take seconds each; run without -short")
	}
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		b.Skip("no wrk: run scripts/install-http-bench.sh")
	}
	if runtime.NumCPU() < 2 {
		b.Skip("needs two CPUs: the server on one, wrk on the other")
	}
	raiseFileLimit(b)
	for _, load := range []struct {
		name      string
		conns     int
		pipelined bool
	}{{"conns=50", 50, false}, {"conns=1000", 1000, false}, {"pipelined=16", 50, true}} {
		conns := load.conns
		for _, srv := range wrkServers {
			b.Run(fmt.Sprintf("%s/impl=%s", load.name, srv.name), func(b *testing.B) {
				cmd, skip := srv.command(b)
				if skip != "" {
					b.Skip(skip)
				}
				addr, pid, stop := startPinned(b, cmd)
				defer stop()
				// Warm up: connections made, code paged in.
				runWrk(b, wrk, addr, conns, load.pipelined, time.Second)
				var cpu time.Duration
				var reqs, syscalls float64
				var busy float64
				for range b.N {
					before := taskCPU(b, pid)
					countSyscalls := perfSyscalls(pid, 3*time.Second)
					r := runWrk(b, wrk, addr, conns, load.pipelined, 3*time.Second)
					cpu += taskCPU(b, pid) - before
					reqs += r.requests
					busy = max(busy, r.busy)
					if n, ok := countSyscalls(); ok {
						syscalls += n
					} else {
						syscalls = -1
					}
				}
				b.ReportMetric(float64(cpu.Microseconds())/reqs, "cpu-us/req")
				b.ReportMetric(reqs/(3*float64(b.N)), "req/s")
				b.ReportMetric(busy, "client-busy")
				if syscalls >= 0 {
					b.ReportMetric(syscalls/reqs, "syscalls/req")
				}
			})
		}
	}
}

// wrkServers are the rows of BenchmarkServeWrk: each says how to start
// its server process (which prints "addr HOST:PORT" once listening, or
// serving on http://HOST:PORT for loom serve), or why it cannot.
var wrkServers = []struct {
	name    string
	command func(b *testing.B) (*exec.Cmd, string)
}{
	{"c-epoll", func(b *testing.B) (*exec.Cmd, string) { return cResponder(b) }},
	{"c-epoll-mt", func(b *testing.B) (*exec.Cmd, string) { return cResponder(b, "idle-thread") }},
	{"loom", func(b *testing.B) (*exec.Cmd, string) {
		bin := filepath.Join(b.TempDir(), "loom")
		build := exec.Command("go", "build", "-o", bin, "./cmd/loom")
		build.Dir = ".." // the main module, with its own go.sum
		if out, err := build.CombinedOutput(); err != nil {
			b.Fatalf("building loom: %v: %s", err, out)
		}
		cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--loops", "1")
		cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
		return cmd, ""
	}},
	{"go-epoll", func(b *testing.B) (*exec.Cmd, string) {
		if runtime.GOOS != "linux" {
			return nil, "go-epoll is the Linux reference"
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestGoEpollChild$")
		cmd.Env = append(os.Environ(), "GOMAXPROCS=1", "LOOM_BENCH_GOEPOLL=1")
		return cmd, ""
	}},
	{"uvloop", func(b *testing.B) (*exec.Cmd, string) {
		if exec.Command("/usr/bin/python3", "-c", "import uvloop").Run() != nil {
			return nil, "no python3-uvloop: run scripts/install-http-bench.sh"
		}
		return exec.Command("/usr/bin/python3", "ref/uvloop_responder.py"), ""
	}},
	{"nethttp", func(b *testing.B) (*exec.Cmd, string) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestNetHTTPChild$")
		cmd.Env = append(os.Environ(), "GOMAXPROCS=1", "LOOM_BENCH_NETHTTP=1")
		return cmd, ""
	}},
}

// cResponder builds bench/ref/responder.c and returns the command that
// runs it with the extra arguments, or why it cannot.
func cResponder(b *testing.B, args ...string) (*exec.Cmd, string) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return nil, "no gcc: run scripts/install-http-bench.sh"
	}
	bin := filepath.Join(b.TempDir(), "responder")
	if out, err := exec.Command(gcc, "-O2", "-pthread", "-o", bin, "ref/responder.c").CombinedOutput(); err != nil {
		return nil, fmt.Sprintf("building the C responder: %v: %s", err, out)
	}
	return exec.Command(bin, append([]string{"0"}, args...)...), ""
}

// TestNetHTTPChild is BenchmarkServeWrk's net/http server, in a child
// process: it prints its address and serves /health until stdin closes.
func TestNetHTTPChild(t *testing.T) {
	if os.Getenv("LOOM_BENCH_NETHTTP") == "" {
		t.Skip("runs only as a benchmark's child process")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	go func() { _ = http.Serve(ln, mux) }()
	fmt.Printf("addr %s\n", ln.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
}

var addrLine = regexp.MustCompile(`(?:addr |serving on http://)([0-9.]+:\d+)`)

// startPinned starts cmd on CPU 0 and waits for its address.
func startPinned(b *testing.B, cmd *exec.Cmd) (addr string, pid int, stop func()) {
	b.Helper()
	pinned := exec.Command("taskset", append([]string{"-c", "0", cmd.Path}, cmd.Args[1:]...)...)
	pinned.Env, pinned.Dir = cmd.Env, cmd.Dir
	stdin, _ := pinned.StdinPipe()
	stdout, _ := pinned.StdoutPipe()
	pinned.Stderr = os.Stderr
	if err := pinned.Start(); err != nil {
		b.Fatal(err)
	}
	stop = func() {
		stdin.Close()
		_ = pinned.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = pinned.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = pinned.Process.Kill()
			<-done
		}
	}
	lines := bufio.NewScanner(stdout)
	found := make(chan string, 1)
	go func() {
		for lines.Scan() {
			if m := addrLine.FindStringSubmatch(lines.Text()); m != nil {
				found <- m[1]
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case addr = <-found:
	case <-time.After(30 * time.Second):
		stop()
		b.Fatal("the server did not say its address within 30s")
	}
	return addr, pinned.Process.Pid, stop
}

type wrkResult struct {
	requests float64
	busy     float64 // wrk's CPU time over the wall time
}

var wrkRequests = regexp.MustCompile(`(\d+) requests in`)

// runWrk runs wrk on CPU 1 against addr's /health; pipelined, 16
// requests per write (ref/pipeline.lua).
func runWrk(b *testing.B, wrk, addr string, conns int, pipelined bool, d time.Duration) wrkResult {
	b.Helper()
	args := []string{"-c", "1", wrk, "-t1", fmt.Sprintf("-c%d", conns), fmt.Sprintf("-d%ds", int(d.Seconds()))}
	if pipelined {
		args = append(args, "-s", "ref/pipeline.lua")
	}
	cmd := exec.Command("taskset", append(args, "http://"+addr+"/health")...)
	start := time.Now()
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("wrk: %v: %s", err, out)
	}
	m := wrkRequests.FindSubmatch(out)
	if m == nil {
		b.Fatalf("wrk said:\n%s", out)
	}
	n, _ := strconv.ParseFloat(string(m[1]), 64)
	if strings.Contains(string(out), "Non-2xx") {
		b.Fatalf("the server answered errors:\n%s", out)
	}
	used := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return wrkResult{requests: n, busy: used.Seconds() / time.Since(start).Seconds()}
}

// taskCPU returns the CPU time of every thread of process pid, from the
// scheduler's nanosecond counters.
func taskCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		b.Fatalf("no threads of %d: %v", pid, err)
	}
	var total time.Duration
	for _, t := range tasks {
		data, err := os.ReadFile(t)
		if err != nil {
			continue // a thread that ended
		}
		ns, _ := strconv.ParseInt(strings.Fields(string(data))[0], 10, 64)
		total += time.Duration(ns)
	}
	return total
}

// perfSyscalls starts counting pid's system calls for d with perf, and
// returns what reads the count; false where perf cannot.
func perfSyscalls(pid int, d time.Duration) func() (float64, bool) {
	perf, err := exec.LookPath("perf")
	if err != nil {
		return func() (float64, bool) { return 0, false }
	}
	cmd := exec.Command(perf, "stat", "-x,", "-e", "raw_syscalls:sys_enter", "-p", strconv.Itoa(pid), "--", "sleep", strconv.Itoa(int(d.Seconds())))
	var out strings.Builder
	cmd.Stderr = &out
	if cmd.Start() != nil {
		return func() (float64, bool) { return 0, false }
	}
	return func() (float64, bool) {
		if cmd.Wait() != nil {
			return 0, false
		}
		for _, line := range strings.Split(out.String(), "\n") {
			if f := strings.Split(line, ","); len(f) > 2 && strings.Contains(line, "sys_enter") {
				n, err := strconv.ParseFloat(f[0], 64)
				return n, err == nil
			}
		}
		return 0, false
	}
}

// raiseFileLimit lets this process and its children hold 1,000
// connections and more.
func raiseFileLimit(b *testing.B) {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < 8192 {
		l.Cur = min(l.Max, 65536)
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

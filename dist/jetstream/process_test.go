package jetstream_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"loom/dist"
	"loom/dist/jetstream"
	"loom/pool"

	"github.com/nats-io/nats-server/v2/server"
)

// Faults against real processes: the test binary runs again as a NATS
// server (LOOM_DIST_ROLE=server) or as a worker (LOOM_DIST_ROLE=worker),
// so that a test can SIGKILL either.

// job is what the fault tests queue.
type job struct {
	ID   string
	Mode string // "": record the effect; "slow": record it after 500ms; "hang": hang (in a worker told to); "crash": exit at once
}

// childRole runs the test binary's child roles; it returns false in the
// test process itself.
func childRole() bool {
	switch os.Getenv("LOOM_DIST_ROLE") {
	case "server":
		runServer()
	case "worker":
		runWorker()
	case "poolworker":
		runPoolWorker()
	default:
		return false
	}
	return true
}

// runServer serves JetStream from LOOM_DIST_DIR on LOOM_DIST_ADDR until
// its standard input closes (or it is killed).
func runServer() {
	opts := []jetstream.EmbeddedOption{jetstream.Listen(os.Getenv("LOOM_DIST_ADDR"))}
	if os.Getenv("LOOM_NATS_LOG") == "1" {
		opts = append(opts, func(o *server.Options) error { o.NoLog = false; return nil })
	}
	if listen := os.Getenv("LOOM_DIST_CLUSTER"); listen != "" {
		opts = append(opts, jetstream.ServerName(os.Getenv("LOOM_DIST_NAME")),
			jetstream.Cluster("loom-test", listen, strings.Split(os.Getenv("LOOM_DIST_ROUTES"), ",")...))
	}
	b, err := jetstream.Embedded(os.Getenv("LOOM_DIST_DIR"), opts...)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	fmt.Println("ready", b.URL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	b.Close()
	os.Exit(0)
}

// runWorker serves the queue LOOM_DIST_QUEUE at LOOM_DIST_URL: a job's
// effect is a line with its ID appended to LOOM_DIST_EFFECTS.
func runWorker() {
	workerMain(func(ctx context.Context, b *jetstream.Backend) error {
		q, err := dist.Open[job](ctx, b, os.Getenv("LOOM_DIST_QUEUE"), queueOptions...)
		if err != nil {
			return err
		}
		hang := os.Getenv("LOOM_DIST_HANG") == "1"
		effects := os.Getenv("LOOM_DIST_EFFECTS")
		fmt.Println("ready")
		return dist.Serve(ctx, q, func(ctx context.Context, j job) error {
			switch {
			case j.Mode == "hang" && hang:
				fmt.Println("hanging", j.ID)
				select {}
			case j.Mode == "crash":
				os.Exit(3)
			case j.Mode == "slow":
				fmt.Println("working", j.ID)
				time.Sleep(500 * time.Millisecond)
			}
			f, err := os.OpenFile(effects, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = fmt.Fprintln(f, j.ID)
			return err
		}, dist.Workers(2))
	})
}

// workerMain is a worker child's main: it connects to LOOM_DIST_URL, runs
// serve until SIGTERM, and exits 0, or 2 with an error line.
func workerMain(serve func(ctx context.Context, b *jetstream.Backend) error) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	b, err := jetstream.Connect(os.Getenv("LOOM_DIST_URL"))
	if err == nil {
		err = serve(ctx, b)
		b.Close()
	}
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	os.Exit(0)
}

// record is the remote pool's function in the fault tests: its effect is a
// line with its argument appended to LOOM_DIST_EFFECTS; in a worker told
// to hang (LOOM_DIST_HANG=1) it hangs instead.
var record = pool.Register("dist-record", func(ctx context.Context, id string) (string, error) {
	if os.Getenv("LOOM_DIST_HANG") == "1" {
		fmt.Println("hanging", id)
		select {}
	}
	f, err := os.OpenFile(os.Getenv("LOOM_DIST_EFFECTS"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return "", err
	}
	defer f.Close()
	_, err = fmt.Fprintln(f, id)
	return "recorded " + id, err
})

// waitForCancel is the remote function of the cancel test: it says it
// runs, waits for its context to end, and says so, with the cause.
var waitForCancel = pool.Register("dist-wait-cancel", func(ctx context.Context, id string) (string, error) {
	fmt.Println("waiting", id)
	<-ctx.Done()
	fmt.Println("stopped", id, context.Cause(ctx))
	return "", context.Cause(ctx)
})

// runPoolWorker serves the remote pool LOOM_DIST_QUEUE at LOOM_DIST_URL.
func runPoolWorker() {
	workerMain(func(ctx context.Context, b *jetstream.Backend) error {
		fmt.Println("ready")
		return dist.ServePool(ctx, b, os.Getenv("LOOM_DIST_QUEUE"), queueOptions, dist.Workers(2), dist.Heartbeat(100*time.Millisecond))
	})
}

// queueOptions are the fault tests' queue settings, the same in every
// process.
var queueOptions = []dist.Option{dist.AckWait(time.Second), dist.MaxAttempts(2)}

// child is a child process of the test binary.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

// start runs the test binary in role with env, and returns once it printed
// a line starting with "ready".
func start(t *testing.T, role string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), "LOOM_DIST_ROLE="+role), env...)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin, lines: make(chan string, 64)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(func() { c.kill() })
	c.expect(t, "ready")
	return c
}

// expect waits up to 60s for a line that starts with prefix and returns it.
func (c *child) expect(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				t.Fatalf("child exited before printing %q", prefix)
			}
			if strings.HasPrefix(line, "error") {
				t.Fatalf("child: %s", line)
			}
			if strings.HasPrefix(line, prefix) {
				return line
			}
		case <-timeout:
			t.Fatalf("child did not print %q within 60s", prefix)
		}
	}
}

// kill SIGKILLs the child and reaps it.
func (c *child) kill() {
	if c.cmd.ProcessState == nil {
		_ = c.cmd.Process.Signal(syscall.SIGKILL)
		_ = c.cmd.Wait()
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func effects(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	lines := strings.Fields(string(data))
	slices.Sort(lines)
	return lines
}

// A worker SIGKILLed in the middle of a job: the job is delivered again
// after its AckWait, to another worker, and its effect is recorded once.
func TestWorkerKilledMidJobIsRedeliveredAndDoneOnce(t *testing.T) {
	b := embedded(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	q, err := dist.Open[job](ctx, b, "killed-worker", queueOptions...)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	out := filepath.Join(t.TempDir(), "effects")
	env := []string{"LOOM_DIST_URL=" + b.URL(), "LOOM_DIST_QUEUE=killed-worker", "LOOM_DIST_EFFECTS=" + out}
	first := start(t, "worker", append(env, "LOOM_DIST_HANG=1")...)
	if err := q.Put(ctx, job{ID: "slow", Mode: "hang"}); err != nil {
		t.Fatal(err)
	}
	first.expect(t, "hanging slow")
	first.kill()
	killed := time.Now()
	start(t, "worker", env...)
	for _, id := range []string{"a", "b", "c"} {
		if err := q.Put(ctx, job{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Join(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("the killed worker's job was done by another %v after the kill (AckWait 1s)", time.Since(killed).Round(time.Millisecond))
	if got := effects(t, out); !slices.Equal(got, []string{"a", "b", "c", "slow"}) {
		t.Fatalf("effects %v, want each job once", got)
	}
}

// SIGTERM drains a worker: it takes nothing more, finishes the job it runs,
// settles it and exits cleanly; nothing is redelivered.
func TestSIGTERMDrainsAWorker(t *testing.T) {
	b := embedded(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	q, err := dist.Open[job](ctx, b, "sigterm", queueOptions...)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	out := filepath.Join(t.TempDir(), "effects")
	w := start(t, "worker", "LOOM_DIST_URL="+b.URL(), "LOOM_DIST_QUEUE=sigterm", "LOOM_DIST_EFFECTS="+out)
	if err := q.Put(ctx, job{ID: "long", Mode: "slow"}); err != nil {
		t.Fatal(err)
	}
	w.expect(t, "working long")
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Wait(); err != nil {
		t.Fatalf("worker after SIGTERM: %v", err)
	}
	if got := effects(t, out); !slices.Equal(got, []string{"long"}) {
		t.Fatalf("effects %v: the job running at SIGTERM was not finished", got)
	}
	if n, err := q.Unfinished(ctx); err != nil || n != 0 {
		t.Fatalf("unfinished %d, %v after the drained worker left", n, err)
	}
	if err := q.Put(ctx, job{ID: "after"}); err != nil {
		t.Fatal(err)
	}
	nothing, cancelGet := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelGet()
	if _, err := q.Get(nothing); err != nil {
		t.Fatalf("the job put after the drained worker left is still there: %v", err)
	}
}

// A remote-pool worker SIGKILLed while it runs a function: the caller's
// task still completes, the job redelivered to another worker, and the
// function's effect is recorded once.
func TestRemotePoolWorkerKilledMidFunction(t *testing.T) {
	b := embedded(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := dist.NewPool(ctx, b, "rpool", dist.JobQueue(queueOptions...))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	out := filepath.Join(t.TempDir(), "effects")
	env := []string{"LOOM_DIST_URL=" + b.URL(), "LOOM_DIST_QUEUE=rpool", "LOOM_DIST_EFFECTS=" + out}
	first := start(t, "poolworker", append(env, "LOOM_DIST_HANG=1")...)
	task, err := dist.Submit(ctx, p, record, "x")
	if err != nil {
		t.Fatal(err)
	}
	first.expect(t, "hanging x")
	first.kill()
	start(t, "poolworker", env...)
	if v, err := task.Wait(ctx); err != nil || v != "recorded x" {
		t.Fatalf("the task of a killed worker's job: %q, %v", v, err)
	}
	if got := effects(t, out); !slices.Equal(got, []string{"x"}) {
		t.Fatalf("effects %v, want the function's effect once", got)
	}
	// The killed worker shows as lost, the other as alive, from their
	// heartbeats in the server's key-value bucket.
	var ws []dist.WorkerInfo
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if ws, err = dist.RemoteWorkers(ctx, b, "rpool"); err != nil {
			t.Fatal(err)
		}
		if len(ws) == 2 && ws[0].Lost && !ws[1].Lost {
			return
		}
	}
	t.Fatalf("workers by their heartbeats: %+v, want the first lost and the second alive", ws)
}

// A caller that cancels its task mid-job stops the function in the worker
// process within a second, and the function sees why.
func TestRemotePoolCancelStopsTheRemoteFunction(t *testing.T) {
	b := embedded(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := dist.NewPool(ctx, b, "cpool", dist.JobQueue(queueOptions...))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	w := start(t, "poolworker", "LOOM_DIST_URL="+b.URL(), "LOOM_DIST_QUEUE=cpool")
	task, err := dist.Submit(ctx, p, waitForCancel, "c1")
	if err != nil {
		t.Fatal(err)
	}
	w.expect(t, "waiting c1")
	why := errors.New("user pressed stop")
	start := time.Now()
	task.Cancel(why)
	line := w.expect(t, "stopped c1")
	if took := time.Since(start); took > time.Second {
		t.Fatalf("the remote function stopped %v after the cancel, want within 1s", took)
	}
	if !strings.Contains(line, "the caller cancelled the job") {
		t.Fatalf("the remote function saw %q", line)
	}
	if _, err := task.Wait(ctx); !errors.Is(err, why) {
		t.Fatalf("the cancelled task: %v", err)
	}
}

// A job that crashes its worker every time is dead-lettered once it has
// been delivered MaxAttempts times, and the workers carry on.
func TestJobThatCrashesEveryWorkerIsDeadLettered(t *testing.T) {
	b := embedded(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	q, err := dist.Open[job](ctx, b, "crashing", queueOptions...)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	out := filepath.Join(t.TempDir(), "effects")
	env := []string{"LOOM_DIST_URL=" + b.URL(), "LOOM_DIST_QUEUE=crashing", "LOOM_DIST_EFFECTS=" + out}
	if err := q.Put(ctx, job{ID: "poison", Mode: "crash"}); err != nil {
		t.Fatal(err)
	}
	for crash := 1; crash <= 2; crash++ {
		w := start(t, "worker", env...)
		if err := w.cmd.Wait(); err == nil {
			t.Fatalf("worker %d did not crash", crash)
		}
	}
	start(t, "worker", env...)
	if err := q.Put(ctx, job{ID: "fine"}); err != nil {
		t.Fatal(err)
	}
	if err := q.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if got := effects(t, out); !slices.Equal(got, []string{"fine"}) {
		t.Fatalf("effects %v", got)
	}
	dead, err := q.DeadLetters(ctx, 10)
	if err != nil || len(dead) != 1 || !strings.Contains(string(dead[0].Data), "poison") || !strings.Contains(dead[0].Reason, "without an outcome") {
		t.Fatalf("dead letters %+v, %v", dead, err)
	}
}

// The server SIGKILLed and started again on the same storage: every Put it
// acknowledged is still there, and the work in flight at the kill is done
// after it; the client reconnects by itself.
func TestServerKilledAndRestartedKeepsAcknowledgedPuts(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	env := []string{"LOOM_DIST_DIR=" + dir, "LOOM_DIST_ADDR=" + addr}
	srv := start(t, "server", env...)
	b, err := jetstream.Connect("nats://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	q, err := dist.Open[int](ctx, b, "survivor", dist.AckWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	const n = 200
	for i := range n {
		if err := q.Put(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	done := map[int]int{}
	for range 10 {
		m, err := q.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Done(ctx); err != nil {
			t.Fatal(err)
		}
		done[m.Value]++
	}
	for range 5 { // in flight at the kill
		if _, err := q.Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	srv.kill()
	start(t, "server", env...)
	for {
		m, err := q.Get(ctx)
		if err != nil {
			t.Fatalf("after the restart, with %d of %d done: %v", len(done), n, err)
		}
		if err := m.Done(ctx); err != nil {
			continue // a delivery from before the kill: it comes again
		}
		done[m.Value]++
		if len(done) == n {
			break
		}
	}
	for i := range n {
		if done[i] != 1 {
			t.Fatalf("value %d done %d times", i, done[i])
		}
	}
	if left, err := q.Unfinished(ctx); err != nil || left != 0 {
		t.Fatalf("unfinished %d, %v", left, err)
	}
}

// A three-node JetStream cluster on loopback, a queue with three replicas,
// one node SIGKILLed under load: every acknowledged Put is taken, and the
// producer and consumer carry on through the failover (our simulation of
// several machines).
func TestClusterLosesANode(t *testing.T) {
	var clients, routes [3]string
	for i := range 3 {
		clients[i], routes[i] = freeAddr(t), freeAddr(t)
	}
	var nodes [3]*child
	for i := range 3 {
		var others []string
		for j := range 3 {
			if j != i {
				others = append(others, "nats://"+routes[j])
			}
		}
		nodes[i] = start(t, "server", "LOOM_DIST_DIR="+t.TempDir(), "LOOM_DIST_ADDR="+clients[i],
			fmt.Sprintf("LOOM_DIST_NAME=n%d", i), "LOOM_DIST_CLUSTER="+routes[i], "LOOM_DIST_ROUTES="+strings.Join(others, ","))
	}
	b, err := jetstream.Connect("nats://" + strings.Join(clients[:], ",nats://"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var q *dist.Queue[int]
	for { // the cluster elects its leaders first: try again every 2s
		octx, cancelOpen := context.WithTimeout(ctx, 2*time.Second)
		q, err = dist.Open[int](octx, b, "replicated", dist.Replicas(3), dist.AckWait(2*time.Second))
		cancelOpen()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the cluster never took the queue: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	defer q.Close()
	const n = 300
	var mu sync.Mutex
	acked, seen := map[int]bool{}, map[int]bool{}
	produced, afterKill := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(produced)
		for i := range n {
			if i == n/2 {
				<-afterKill // the second half goes to a cluster short of a node
			}
			t0 := time.Now()
			perr := q.Put(ctx, i)
			if os.Getenv("LOOM_TEST_TRACE") == "1" && (perr != nil || time.Since(t0) > 100*time.Millisecond) {
				t.Logf("put %d took %v: %v", i, time.Since(t0).Round(time.Millisecond), perr)
			}
			if perr == nil { // a Put that failed during the failover is not counted
				mu.Lock()
				acked[i] = true
				mu.Unlock()
			}
		}
	}()
	killed := false
	for {
		mu.Lock()
		all := len(acked) > 0 && len(seen) >= len(acked)
		for v := range acked {
			if !seen[v] {
				all = false
				break
			}
		}
		count := len(seen)
		mu.Unlock()
		select {
		case <-produced:
			if all {
				goto done
			}
		default:
		}
		if !killed && count >= n/3 {
			if os.Getenv("LOOM_TEST_GRACEFUL") == "1" {
				nodes[0].stdin.Close()
				_ = nodes[0].cmd.Wait()
			} else {
				nodes[0].kill()
			}
			killed = true
			close(afterKill)
			t.Logf("killed node n0 after %d values were taken", count)
		}
		gctx, cancelGet := context.WithTimeout(ctx, time.Second)
		m, err := q.Get(gctx)
		cancelGet()
		if ctx.Err() != nil {
			t.Fatalf("%d of the acknowledged values taken when time ran out", count)
		}
		if err != nil {
			continue // failing over
		}
		mu.Lock()
		seen[m.Value] = true
		mu.Unlock()
		t0 := time.Now()
		derr := m.Done(ctx)
		if os.Getenv("LOOM_TEST_TRACE") == "1" {
			t.Logf("got %d attempt %d, done in %v: %v", m.Value, m.Attempt(), time.Since(t0).Round(time.Millisecond), derr)
		}
	}
done:
	if !killed {
		t.Fatal("the node was never killed")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(acked) < n*9/10 {
		t.Fatalf("only %d of %d puts were acknowledged", len(acked), n)
	}
	t.Logf("%d puts acknowledged, all %d taken, across the loss of a node", len(acked), len(seen))
}

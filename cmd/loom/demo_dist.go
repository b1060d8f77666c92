package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"loom"
	"loom/dist"
	"loom/dist/jetstream"
)

// distDemoConfig is what loom demo --dist runs.
type distDemoConfig struct {
	jobs    int
	workers int // worker processes
}

// distAckWait is how soon the job of a worker the demo kills goes to
// another worker.
const distAckWait = time.Second

// runDistDemo starts an embedded JetStream server and worker processes of
// this binary (loom worker), submits jobs to the remote pool they serve,
// SIGKILLs one worker midway, and reports what became of every job.
func runDistDemo(ctx context.Context, out io.Writer, c distDemoConfig) error {
	start := time.Now()
	dir, err := os.MkdirTemp("", "loom-demo-dist")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b, err := jetstream.Embedded(dir)
	if err != nil {
		return err
	}
	defer b.Close()
	p, err := dist.NewPool(ctx, b, "demo", dist.JobQueue(dist.AckWait(distAckWait)))
	if err != nil {
		return err
	}
	defer p.Close()
	fmt.Fprintf(out, "loom demo --dist: an embedded JetStream server at %s, %d worker processes (loom worker), %d jobs\n", b.URL(), c.workers, c.jobs)
	workers, err := startWorkers(b.URL(), c.workers)
	defer func() {
		for _, w := range workers {
			w.stop()
		}
	}()
	if err != nil {
		return err
	}
	tasks := make([]*loom.Task[string], 0, c.jobs)
	for i := range c.jobs {
		t, err := dist.Submit(ctx, p, hashFunc, hashJob{Data: []byte(fmt.Sprint(i)), Rounds: 1000, Delay: 20 * time.Millisecond})
		if err != nil {
			return err
		}
		tasks = append(tasks, t)
	}
	var done, failed int
	killed := false
	for t, err := range loom.AsCompleted(ctx, tasks...) {
		if err != nil {
			return err
		}
		if _, err := t.Result(); err != nil {
			failed++
		} else {
			done++
		}
		if !killed && done >= c.jobs/3 && len(workers) > 1 {
			workers[0].kill()
			killed = true
			fmt.Fprintf(out, "  worker 1 (pid %d) SIGKILLed after %d results\n", workers[0].pid(), done)
		}
	}
	st := p.Stats()
	dead := 0
	if n, err := deadJobs(ctx, b); err == nil {
		dead = n
	}
	fmt.Fprintf(out, "\nreport:\n")
	fmt.Fprintf(out, "  jobs submitted   %d\n", st.Submitted)
	fmt.Fprintf(out, "  done             %d\n", done)
	fmt.Fprintf(out, "  failed           %d\n", failed)
	fmt.Fprintf(out, "  redelivered      %d (run again after their worker died; AckWait %v)\n", st.Redelivered, distAckWait)
	fmt.Fprintf(out, "  dead-lettered    %d\n", dead)
	fmt.Fprintf(out, "  lost             %d\n", int(st.Submitted)-done-failed)
	fmt.Fprintf(out, "  done twice       %d (results delivered twice, dropped by job ID)\n", st.Dropped)
	fmt.Fprintf(out, "  elapsed          %v\n", time.Since(start).Round(time.Millisecond))
	if failed > 0 || int(st.Submitted) != done {
		return fmt.Errorf("%d of %d jobs failed or were lost", int(st.Submitted)-done, st.Submitted)
	}
	return nil
}

// deadJobs counts the demo pool's dead letters.
func deadJobs(ctx context.Context, b *jetstream.Backend) (int, error) {
	q, err := dist.Open[struct{}](ctx, b, "demo-jobs", dist.AckWait(distAckWait))
	if err != nil {
		return 0, err
	}
	defer q.Close()
	st, err := q.Stats(ctx)
	return st.Dead, err
}

// workerProc is a loom worker child process.
type workerProc struct {
	cmd  *exec.Cmd
	once sync.Once
}

func (w *workerProc) pid() int { return w.cmd.Process.Pid }

// kill SIGKILLs the worker and reaps it.
func (w *workerProc) kill() {
	w.once.Do(func() {
		_ = w.cmd.Process.Kill()
		_ = w.cmd.Wait()
	})
}

// stop ends the worker as Ctrl-C would: it drains, then exits.
func (w *workerProc) stop() {
	w.once.Do(func() {
		_ = w.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = w.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = w.cmd.Process.Kill()
			<-done
		}
	})
}

// startWorkers starts n loom worker processes of this binary on url and
// waits until each serves.
func startWorkers(url string, n int) ([]*workerProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var ws []*workerProc
	for range n {
		cmd := exec.Command(exe, "worker", "--url", url, "--pool", "demo", "--workers", "2", "--ack-wait", distAckWait.String())
		cmd.Env = append(os.Environ(), "LOOM_RUN_MAIN=1") // a test binary runs the command instead of its tests
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return ws, err
		}
		if err := cmd.Start(); err != nil {
			return ws, err
		}
		w := &workerProc{cmd: cmd}
		ws = append(ws, w)
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "worker: serving") {
			return ws, errors.Join(fmt.Errorf("a worker process did not start: %q", line), err)
		}
		go func() { _, _ = io.Copy(io.Discard, stdout) }()
	}
	return ws, nil
}

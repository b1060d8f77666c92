package pool

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hogged keeps what hog allocates reachable.
var hogged [][]byte

// The functions the test children run. They are registered at package
// level, so the child (this test binary again) has them too.
var (
	square = Register("square", func(_ context.Context, n int) (int, error) { return n * n, nil })
	getPid = Register("pid", func(context.Context, struct{}) (int, error) { return os.Getpid(), nil })
	refuse = Register("refuse", func(_ context.Context, why string) (int, error) { return 0, errors.New(why) })
	blowUp = Register("blow-up", func(context.Context, string) (int, error) { panic("child panic") })
	crash  = Register("crash", func(_ context.Context, code int) (int, error) { os.Exit(code); return 0, nil })
	// spin writes its pid to the file it is given, then runs away: it
	// ignores its context and never returns.
	spin = Register("spin", func(_ context.Context, pidFile string) (int, error) {
		if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
			return 0, err
		}
		for {
			time.Sleep(time.Millisecond)
		}
	})
	takesFunc = Register("takes-func", func(context.Context, func()) (int, error) { return 0, nil })
	// hog keeps allocating and touching memory.
	hog = Register("hog", func(context.Context, int) (int, error) {
		for {
			b := make([]byte, 8<<20)
			for i := range b {
				b[i] = byte(i)
			}
			hogged = append(hogged, b)
			time.Sleep(5 * time.Millisecond)
		}
	})
)

func closeProcessPool(t *testing.T, pp *ProcessPool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pp.Close(ctx); err != nil {
		t.Fatal("Close:", err)
	}
}

func TestProcessPoolRunsFunctions(t *testing.T) {
	ctx := context.Background()
	pp := NewProcessPool(WithName("squares"), WithSize(2))
	defer closeProcessPool(t, pp)
	for i := range 20 {
		task, err := Run(ctx, pp, square, i)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := task.Wait(ctx); err != nil || v != i*i {
			t.Fatalf("square(%d) = %d, %v", i, v, err)
		}
	}
	pids := map[int]bool{}
	for range 6 {
		task, _ := Run(ctx, pp, getPid, struct{}{})
		pid, err := task.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if pid == os.Getpid() {
			t.Fatal("the function ran in the parent")
		}
		pids[pid] = true
	}
	if len(pids) > 2 {
		t.Fatalf("%d child processes for a pool of 2", len(pids))
	}
}

func TestProcessPoolReportsErrorsAndPanics(t *testing.T) {
	ctx := context.Background()
	pp := NewProcessPool(WithSize(1))
	defer closeProcessPool(t, pp)
	task, _ := Run(ctx, pp, refuse, "disk full")
	_, err := task.Wait(ctx)
	var re *RemoteError
	if !errors.As(err, &re) || re.Message != "disk full" || re.Func != "refuse" {
		t.Fatalf("error: %v", err)
	}
	task, _ = Run(ctx, pp, blowUp, "")
	_, err = task.Wait(ctx)
	if !errors.As(err, &re) || !strings.Contains(re.Panic, "child panic") || !strings.Contains(re.Panic, "goroutine") {
		t.Fatalf("panic: %v", err)
	}
	// A failure of the function does not cost the child.
	task, _ = Run(ctx, pp, square, 3)
	if v, err := task.Wait(ctx); v != 9 || err != nil {
		t.Fatal(v, err)
	}
}

// pidOf waits until a spinning task has written its pid.
func pidOf(t *testing.T, file string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(file); err == nil && len(b) > 0 {
			pid, err := strconv.Atoi(string(b))
			if err == nil {
				return pid
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the spinning task never started")
	return 0
}

func TestProcessPoolKilledChildFailsItsTaskAndIsReplaced(t *testing.T) {
	ctx := context.Background()
	pp := NewProcessPool(WithSize(1))
	defer closeProcessPool(t, pp)
	file := filepath.Join(t.TempDir(), "pid")
	task, _ := Run(ctx, pp, spin, file)
	queued, _ := Run(ctx, pp, square, 5) // waits behind the runaway
	pid := pidOf(t, file)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, err := task.Wait(ctx)
	if !errors.Is(err, ErrWorkerDied) || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("task on the killed child: %v", err)
	}
	if v, err := queued.Wait(ctx); v != 25 || err != nil {
		t.Fatalf("the next task: %d %v", v, err)
	}
	closeProcessPool(t, pp) // the counters are final once the workers have exited
	if m := pp.Metrics(); m.Failed != 1 || m.Completed != 1 {
		t.Fatalf("metrics %+v", m)
	}
}

func TestProcessPoolDeadlineKillsRunawayWork(t *testing.T) {
	ctx := context.Background()
	pp := NewProcessPool(WithSize(1))
	defer closeProcessPool(t, pp)
	file := filepath.Join(t.TempDir(), "pid")
	task, _ := Run(ctx, pp, spin, file, Timeout(2*time.Second))
	pid := pidOf(t, file)
	if _, err := task.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("runaway task: %v", err)
	}
	// The runaway child is gone, not merely abandoned.
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("the runaway child %d is still there: %v", pid, err)
	}
	next, _ := Run(ctx, pp, square, 4)
	if v, err := next.Wait(ctx); v != 16 || err != nil {
		t.Fatal(v, err)
	}
}

func TestProcessPoolCancelKillsTheChild(t *testing.T) {
	pp := NewProcessPool(WithSize(1))
	defer closeProcessPool(t, pp)
	ctx, cancel := context.WithCancelCause(context.Background())
	file := filepath.Join(t.TempDir(), "pid")
	task, _ := Run(ctx, pp, spin, file)
	pidOf(t, file)
	cause := errors.New("user pressed stop")
	cancel(cause)
	if _, err := task.Wait(context.Background()); !errors.Is(err, cause) {
		t.Fatalf("cancelled task: %v", err)
	}
}

func TestProcessPoolCrashIsAClearError(t *testing.T) {
	ctx := context.Background()
	pp := NewProcessPool(WithSize(1))
	defer closeProcessPool(t, pp)
	task, _ := Run(ctx, pp, crash, 7)
	_, err := task.Wait(ctx)
	if !errors.Is(err, ErrWorkerDied) || !strings.Contains(err.Error(), "exit status 7") || !strings.Contains(err.Error(), "crash") {
		t.Fatalf("crash: %v", err)
	}
	next, _ := Run(ctx, pp, square, 6)
	if v, err := next.Wait(ctx); v != 36 || err != nil {
		t.Fatal(v, err)
	}
}

func TestProcessPoolMaxTasksPerChild(t *testing.T) {
	ctx := context.Background()
	pp := NewProcessPool(WithSize(1), WithMaxTasksPerChild(2))
	defer closeProcessPool(t, pp)
	var pids []int
	for range 4 {
		task, _ := Run(ctx, pp, getPid, struct{}{})
		pid, err := task.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	if pids[0] != pids[1] || pids[2] != pids[3] || pids[1] == pids[2] {
		t.Fatalf("pids %v: want each child to serve two tasks", pids)
	}
}

func TestProcessPoolMemoryLimit(t *testing.T) {
	ctx := context.Background()
	pp := NewProcessPool(WithSize(1), WithMemoryLimit(64<<20))
	defer closeProcessPool(t, pp)
	task, _ := Run(ctx, pp, hog, 0, Timeout(30*time.Second))
	_, err := task.Wait(ctx)
	if !errors.Is(err, ErrMemoryLimit) || !errors.Is(err, ErrWorkerDied) {
		t.Fatalf("memory hog: %v", err)
	}
	next, _ := Run(ctx, pp, square, 2)
	if v, err := next.Wait(ctx); v != 4 || err != nil {
		t.Fatal(v, err)
	}
}

func TestProcessPoolBadInput(t *testing.T) {
	ctx := context.Background()
	if _, err := Run(ctx, NewProcessPool(WithSize(0)), square, 1); err == nil {
		t.Error("bad size accepted")
	}
	if _, err := Run[int, int](ctx, nil, square, 1); err == nil {
		t.Error("nil pool accepted")
	}
	for _, o := range []Option{WithMaxTasksPerChild(2), WithMemoryLimit(1 << 30)} {
		if _, err := Submit(ctx, New(o), "t", func(context.Context) (int, error) { return 0, nil }); err == nil {
			t.Error("goroutine pool accepted a process-pool option")
		}
	}
	if _, err := Run(ctx, NewProcessPool(WithMemoryLimit(0)), square, 1); err == nil {
		t.Error("zero memory limit accepted")
	}
	// The child's side of an unknown function.
	if resp := serveOne(request{Func: "nobody"}); !resp.Failed || !strings.Contains(resp.Err, "pool.Register") {
		t.Errorf("unknown function: %+v", resp)
	}
	pp := NewProcessPool(WithSize(1))
	defer closeProcessPool(t, pp)
	if _, err := Run(ctx, pp, takesFunc, func() {}); err == nil {
		t.Error("an argument gob cannot encode was accepted")
	}
}

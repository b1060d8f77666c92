package pool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
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
	// family starts a program that outlives it unless killed (sleep, with
	// the child's stderr, as a careless function would start it), writes
	// "child-pid program-pid" to the file it is given, then runs away.
	family = Register("family", func(_ context.Context, pidFile string) (int, error) {
		cmd := exec.Command("sleep", "60")
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		if err := os.WriteFile(pidFile, []byte(fmt.Sprintf("%d %d", os.Getpid(), cmd.Process.Pid)), 0o600); err != nil {
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
	pp := NewProcessPool("squares", WithSize(2))
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
	pp := NewProcessPool("test", WithSize(1))
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
	pp := NewProcessPool("test", WithSize(1))
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
	pp := NewProcessPool("test", WithSize(1))
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
	pp := NewProcessPool("test", WithSize(1))
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

// familyOf waits until a family task has written its pids.
func familyOf(t *testing.T, file string) (child, program int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(file); err == nil {
			if n, _ := fmt.Sscanf(string(b), "%d %d", &child, &program); n == 2 {
				return child, program
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the family task never started")
	return 0, 0
}

// gone waits up to five seconds for pid to exit (a zombie counts: it has).
func gone(pid int) bool {
	for range 500 {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		if f := strings.Fields(string(stat)); len(f) > 2 && f[2] == "Z" {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// A program that a task starts inherits none of the child's pipes, a child
// SIGKILLed from outside is noticed although that program still runs, and
// killing a child kills what it started (issue 13 item 12: the pipes
// leaked into the program, the death was noticed only when the program
// exited, and cancel left the program running).
func TestProcessPoolChildsProgramsLeaveWithIt(t *testing.T) {
	t.Run("killed from outside", func(t *testing.T) {
		ctx := context.Background()
		pp := NewProcessPool("test", WithSize(1))
		defer closeProcessPool(t, pp)
		file := filepath.Join(t.TempDir(), "pids")
		task, _ := Run(ctx, pp, family, file)
		child, program := familyOf(t, file)
		defer syscall.Kill(program, syscall.SIGKILL)
		// The child's pipes to the parent are its descriptors 3 and 4;
		// the program must hold neither (it may hold what the test
		// binary itself inherited).
		pipes := map[string]bool{}
		for _, fd := range []int{childRequestFD, childResponseFD} {
			target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", child, fd))
			if err != nil || !strings.HasPrefix(target, "pipe:") {
				t.Fatalf("child descriptor %d: %q %v", fd, target, err)
			}
			pipes[target] = true
		}
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", program))
		if err != nil {
			t.Fatal(err)
		}
		for _, fd := range fds {
			if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", program, fd.Name())); pipes[target] {
				t.Errorf("the program a task started inherited the child's pipe %s as descriptor %s", target, fd.Name())
			}
		}
		if err := syscall.Kill(child, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second) // the program lives 60 s
		defer cancel()
		if _, err := task.Wait(wctx); !errors.Is(err, ErrWorkerDied) {
			t.Fatalf("task of a child killed while its program runs: %v", err)
		}
		if !gone(program) {
			t.Fatalf("the program %d of a dead child is still running", program)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		pp := NewProcessPool("test", WithSize(1))
		defer closeProcessPool(t, pp)
		ctx, cancel := context.WithCancel(context.Background())
		file := filepath.Join(t.TempDir(), "pids")
		task, _ := Run(ctx, pp, family, file)
		child, program := familyOf(t, file)
		defer syscall.Kill(program, syscall.SIGKILL)
		cancel()
		if _, err := task.Wait(context.Background()); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled task: %v", err)
		}
		if !gone(child) || !gone(program) {
			t.Fatalf("after cancel: child %d gone %v, its program %d gone %v", child, gone(child), program, gone(program))
		}
	})
}

// A child that dies while idle does not fail the next task, which never
// ran on it: that task goes to a fresh child (issue 13 item 13), whether
// the pool has reaped the dead child yet (it then sees it has exited) or
// not (the request then finds the child's pipe closed).
func TestProcessPoolIdleChildDeathFailsNoTask(t *testing.T) {
	ctx := context.Background()
	pp := NewProcessPool("test", WithSize(1))
	defer closeProcessPool(t, pp)
	for _, reaped := range []bool{false, true} {
		task, _ := Run(ctx, pp, getPid, struct{}{})
		pid, err := task.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if !gone(pid) {
			t.Fatal("the killed child did not exit")
		}
		if reaped {
			time.Sleep(100 * time.Millisecond) // the pool's reaper has run
		}
		next, _ := Run(ctx, pp, square, 7)
		if v, err := next.Wait(ctx); v != 49 || err != nil {
			t.Fatalf("task after an idle child died (reaped %v): %d, %v", reaped, v, err)
		}
	}
	if m := pp.Metrics(); m.Failed != 0 {
		t.Fatalf("%d tasks failed", m.Failed)
	}
}

func TestProcessPoolCrashIsAClearError(t *testing.T) {
	ctx := context.Background()
	pp := NewProcessPool("test", WithSize(1))
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
	pp := NewProcessPool("test", WithSize(1), WithMaxTasksPerChild(2))
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
	pp := NewProcessPool("test", WithSize(1), WithMemoryLimit(64<<20))
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
	if _, err := Run(ctx, NewProcessPool("test", WithSize(0)), square, 1); err == nil {
		t.Error("bad size accepted")
	}
	if _, err := Run[int, int](ctx, nil, square, 1); err == nil {
		t.Error("nil pool accepted")
	}
	for _, o := range []Option{WithMaxTasksPerChild(2), WithMemoryLimit(1 << 30)} {
		if _, err := Submit(ctx, New("test", o), "t", func(context.Context) (int, error) { return 0, nil }); err == nil {
			t.Error("goroutine pool accepted a process-pool option")
		}
	}
	if _, err := Run(ctx, NewProcessPool("test", WithMemoryLimit(0)), square, 1); err == nil {
		t.Error("zero memory limit accepted")
	}
	// The child's side of an unknown function.
	if resp := serveOne(request{Func: "nobody"}); !resp.Failed || !strings.Contains(resp.Err, "pool.Register") {
		t.Errorf("unknown function: %+v", resp)
	}
	pp := NewProcessPool("test", WithSize(1))
	defer closeProcessPool(t, pp)
	if _, err := Run(ctx, pp, takesFunc, func() {}); err == nil {
		t.Error("an argument gob cannot encode was accepted")
	}
}

package loom

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestGoReturnsResult(t *testing.T) {
	task := Go(context.Background(), "answer", func(ctx context.Context) (int, error) { return 42, nil })
	v, err := task.Wait(context.Background())
	if v != 42 || err != nil {
		t.Fatalf("Wait = %v, %v; want 42, nil", v, err)
	}
	if task.State() != Done {
		t.Fatalf("state = %v, want done", task.State())
	}
	if task.Name() != "answer" {
		t.Fatalf("name = %q", task.Name())
	}
	info := task.Info()
	if info.State != "done" || info.Ended.Before(info.Created) {
		t.Fatalf("info = %+v", info)
	}
	if !strings.Contains(info.Location, "task_test.go") {
		t.Fatalf("location %q does not point at the test", info.Location)
	}
}

func TestGoFailure(t *testing.T) {
	boom := errors.New("boom")
	task := Go(context.Background(), "fail", func(ctx context.Context) (string, error) { return "", boom })
	_, err := task.Wait(context.Background())
	if !errors.Is(err, boom) || task.State() != Failed {
		t.Fatalf("err = %v, state = %v", err, task.State())
	}
}

func TestPanicBecomesErrorWithStack(t *testing.T) {
	sentinel := errors.New("inner")
	task := Go(context.Background(), "panicky", func(ctx context.Context) (int, error) { panic(sentinel) })
	_, err := task.Wait(context.Background())
	var pe *PanicError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want *PanicError", err)
	}
	if pe.Task != "panicky" || !errors.Is(err, sentinel) {
		t.Fatalf("panic error = %+v", pe)
	}
	if !strings.Contains(string(pe.Stack), "task_test.go") {
		t.Fatalf("stack does not show the panicking function:\n%s", pe.Stack)
	}
	if task.State() != Failed {
		t.Fatalf("state = %v", task.State())
	}
}

func TestGoexitIsAnError(t *testing.T) {
	task := Go(context.Background(), "exit", func(ctx context.Context) (int, error) { runtime.Goexit(); return 0, nil })
	if _, err := task.Wait(context.Background()); !errors.Is(err, errGoexit) {
		t.Fatalf("err = %v", err)
	}
}

func TestCancelTask(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		why := errors.New("operator said stop")
		task := Go(context.Background(), "sleeper", func(ctx context.Context) (int, error) {
			<-ctx.Done()
			return 0, context.Cause(ctx)
		})
		synctest.Wait()
		if task.State() != Running {
			t.Fatalf("state = %v, want running", task.State())
		}
		task.Cancel(why)
		_, err := task.Wait(context.Background())
		if !errors.Is(err, why) || task.State() != Cancelled {
			t.Fatalf("err = %v, state = %v", err, task.State())
		}
	})
}

func TestCancelledButReturnedOtherError(t *testing.T) {
	other := errors.New("cleanup failed")
	task := Go(context.Background(), "x", func(ctx context.Context) (int, error) {
		<-ctx.Done()
		return 0, other
	})
	task.Cancel(nil)
	if _, err := task.Wait(context.Background()); !errors.Is(err, other) || task.State() != Failed {
		t.Fatalf("err = %v, state = %v; a real error after cancel is a failure", err, task.State())
	}
}

func TestWaitContextEndsFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		task := Go(context.Background(), "slow", func(ctx context.Context) (int, error) {
			<-release
			return 1, nil
		})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := task.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		if _, err := task.Result(); !errors.Is(err, ErrNotDone) {
			t.Fatalf("Result while running = %v, want ErrNotDone", err)
		}
		close(release)
		if v, err := task.Wait(context.Background()); v != 1 || err != nil {
			t.Fatalf("Wait = %v, %v", v, err)
		}
	})
}

func TestBadArguments(t *testing.T) {
	//lint:ignore SA1012 testing the nil check
	task := Go[int](nil, "nilctx", func(ctx context.Context) (int, error) { return 0, nil })
	if _, err := task.Result(); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "nil context") {
		t.Fatalf("nil ctx: %v", err)
	}
	task = Go[int](context.Background(), "nilfn", nil)
	if _, err := task.Result(); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "nil function") {
		t.Fatalf("nil fn: %v", err)
	}
}

func TestParentIsTheSpawningTask(t *testing.T) {
	outer := Go(context.Background(), "outer", func(ctx context.Context) (uint64, error) {
		inner := Go(ctx, "inner", func(ctx context.Context) (uint64, error) { return 0, nil })
		_, err := inner.Wait(ctx)
		return inner.Info().Parent, err
	})
	parent, err := outer.Wait(context.Background())
	if err != nil || parent != outer.ID() || parent == 0 {
		t.Fatalf("inner's parent = %d, outer = %d, err %v", parent, outer.ID(), err)
	}
}

// A task's context is cancelled once its function has returned, so work it
// left running under that context is told to stop; the parent context is
// not touched.
func TestTaskContextEndsWithTheTask(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		parent, cancel := context.WithCancel(context.Background())
		defer cancel()
		leftover := make(chan context.Context, 1)
		task := Go(parent, "spawner", func(ctx context.Context) (int, error) {
			leftover <- ctx
			return 1, nil
		})
		if _, err := task.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx := <-leftover
		<-ctx.Done() // a deadlock, which synctest reports, if it never ends
		if !errors.Is(context.Cause(ctx), errTaskEnded) || parent.Err() != nil {
			t.Fatalf("cause %v, parent %v", context.Cause(ctx), parent.Err())
		}
	})
}

// TaskID and TaskName find the task a context belongs to, through contexts
// derived from it, and nothing outside one.
func TestTaskIDAndName(t *testing.T) {
	ctx := context.Background()
	if TaskID(ctx) != 0 || TaskName(ctx) != "" {
		t.Fatal("a context outside any task names one")
	}
	task := Go(ctx, "named", func(ctx context.Context) ([2]any, error) {
		inner, cancel := context.WithCancel(ctx)
		defer cancel()
		return [2]any{TaskID(inner), TaskName(inner)}, nil
	})
	got, err := task.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got != [2]any{task.ID(), "named"} {
		t.Fatalf("inside task %d %q: %v", task.ID(), "named", got)
	}
}

package loom

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

// A prepared task runs on the goroutine that calls Run; cancelling it
// before then ends its Context, which is how an executor learns of it, and
// Abort ends it without running its function.
func TestPreparedContextAndAbort(t *testing.T) {
	ctx := context.Background()
	ran := false
	task, prep := Prepare(ctx, "prepared", func(ctx context.Context) (int, error) { ran = true; return 7, nil })
	if task.State() != Pending || prep.Name() != "prepared" || prep.Context().Err() != nil {
		t.Fatalf("before Run: state %v, name %q, context %v", task.State(), prep.Name(), prep.Context().Err())
	}
	if err := prep.Run(); err != nil || !ran {
		t.Fatalf("Run: %v, ran %v", err, ran)
	}
	if v, err := task.Wait(ctx); v != 7 || err != nil {
		t.Fatalf("result %d, %v", v, err)
	}
	why := errors.New("nobody wants it")
	cancelled, prep2 := Prepare(ctx, "cancelled", func(ctx context.Context) (int, error) { t.Error("an aborted task ran"); return 0, nil })
	seen := make(chan error, 1)
	context.AfterFunc(prep2.Context(), func() { seen <- context.Cause(prep2.Context()) })
	cancelled.Cancel(why)
	select {
	case err := <-seen:
		if !errors.Is(err, why) {
			t.Fatalf("the executor saw %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancelling a prepared task did not end its Context")
	}
	prep2.Abort(why)
	if _, err := cancelled.Wait(ctx); !errors.Is(err, why) || cancelled.State() != Cancelled {
		t.Fatalf("aborted: %v, state %v", err, cancelled.State())
	}
}

// PrepareWith hands the executor a record allocated with the task: the
// task runs as a prepared one does, and the record is the executor's to
// fill; bad arguments give a failed task and a record still.
func TestPrepareWithGivesARecord(t *testing.T) {
	type entry struct {
		queued bool
		prio   int
	}
	task, prep, rec := PrepareWith[int, entry](context.Background(), "with-record", func(ctx context.Context) (int, error) { return 3, nil })
	if *rec != (entry{}) {
		t.Fatalf("the record is not zero: %+v", *rec)
	}
	rec.queued, rec.prio = true, 5
	if task.State() != Pending || prep.Name() != "with-record" {
		t.Fatalf("state %v, name %q", task.State(), prep.Name())
	}
	if err := prep.Run(); err != nil {
		t.Fatal(err)
	}
	if v, err := task.Wait(context.Background()); v != 3 || err != nil || !rec.queued {
		t.Fatalf("result %d, %v, record %+v", v, err, *rec)
	}
	//lint:ignore SA1012 testing the nil check
	bad, badPrep, badRec := PrepareWith[int, entry](nil, "nil-context", func(ctx context.Context) (int, error) { return 0, nil })
	if _, err := bad.Wait(context.Background()); !errors.Is(err, ErrInvalidArgument) || badRec == nil {
		t.Fatalf("nil context: %v, record %v", err, badRec)
	}
	if err := badPrep.Run(); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("running a failed preparation: %v", err)
	}
	if allocs := testing.AllocsPerRun(100, func() {
		_, p, _ := PrepareWith[int, entry](context.Background(), "", func(ctx context.Context) (int, error) { return 0, nil })
		p.Abort(nil)
	}); allocs > 3 {
		t.Errorf("PrepareWith and Abort: %.1f allocations, want the task with its record, a context and its cancel", allocs)
	}
}

// TestPreparedRunReturnsAPanic checks that Run returns a panic of the
// task's function as a *PanicError, as the task's Wait does, and that a
// function that calls runtime.Goexit still ends its task.
func TestPreparedRunReturnsAPanic(t *testing.T) {
	task, p := Prepare(context.Background(), "boom", func(context.Context) (int, error) { panic("bad input") })
	var pe *PanicError
	if err := p.Run(); !errors.As(err, &pe) || pe.Value != "bad input" {
		t.Fatalf("Run returned %v", err)
	}
	if _, err := task.Wait(context.Background()); !errors.As(err, &pe) || task.State() != Failed {
		t.Fatalf("the task ended with %v (%v)", err, task.State())
	}
	exited, p2 := Prepare(context.Background(), "exit", func(context.Context) (int, error) { runtime.Goexit(); return 0, nil })
	go func() { _ = p2.Run() }()
	if _, err := exited.Wait(context.Background()); err == nil || exited.State() != Failed {
		t.Fatalf("a task whose function called Goexit ended with %v (%v)", err, exited.State())
	}
}

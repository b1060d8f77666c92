package loom

import (
	"context"
	"errors"
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

package loom

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func sleepReturn[T any](d time.Duration, v T, err error) func(context.Context) (T, error) {
	return func(ctx context.Context) (T, error) {
		select {
		case <-time.After(d):
			return v, err
		case <-ctx.Done():
			var zero T
			return zero, context.Cause(ctx)
		}
	}
}

func TestGatherKeepsOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		got, err := Gather(context.Background(),
			sleepReturn(3*time.Second, "c", nil),
			sleepReturn(1*time.Second, "a", nil),
			sleepReturn(2*time.Second, "b", nil))
		if err != nil || !slices.Equal(got, []string{"c", "a", "b"}) {
			t.Fatalf("Gather = %v, %v", got, err)
		}
	})
}

func TestGatherFailFast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("boom")
		start := time.Now()
		got, err := Gather(context.Background(),
			sleepReturn(time.Hour, 1, nil),
			sleepReturn(time.Second, 0, boom))
		if err != boom || got != nil {
			t.Fatalf("Gather = %v, %v", got, err)
		}
		if time.Since(start) != time.Second {
			t.Fatalf("took %v: the slow function was not cancelled", time.Since(start))
		}
	})
}

// Every function given to Gather, GatherAll or Race is called, even when
// the group is cancelled before it starts (issue 13 item 5: a quick failure
// made Gather refuse the functions after it, so whether one ran depended
// on timing). Cancelling the parent first makes the case deterministic;
// the many-functions case is the race the issue saw.
func TestGatherCallsEveryFunction(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		ctx  context.Context
		fail bool // the first function fails at once
	}{
		{"parent cancelled", cancelled, false},
		{"first fails at once", context.Background(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 500
			var called atomic.Int64
			var sawCancel atomic.Int64
			fns := make([]func(context.Context) (int, error), n)
			for i := range fns {
				fns[i] = func(ctx context.Context) (int, error) {
					called.Add(1)
					if i == 0 && tc.fail {
						return 0, boom
					}
					if ctx.Err() != nil {
						sawCancel.Add(1)
					}
					<-ctx.Done()
					return 0, context.Cause(ctx)
				}
			}
			if _, err := Gather(tc.ctx, fns...); err == nil {
				t.Fatal("Gather succeeded")
			}
			if called.Load() != n {
				t.Fatalf("Gather called %d of %d functions", called.Load(), n)
			}
			if tc.ctx.Err() != nil && sawCancel.Load() != n {
				t.Fatalf("%d of %d functions saw a cancelled context", sawCancel.Load(), n)
			}
			if tc.ctx.Err() != nil {
				// Supervised: only a cancelled parent ends the others.
				called.Store(0)
				GatherAll(tc.ctx, fns[1:]...)
				if called.Load() != n-1 {
					t.Fatalf("GatherAll called %d of %d functions", called.Load(), n-1)
				}
			}
			called.Store(0)
			win := func(context.Context) (int, error) { called.Add(1); return 7, nil }
			if v, err := Race(context.Background(), append([]func(context.Context) (int, error){win}, fns[1:]...)...); v != 7 || err != nil {
				t.Fatalf("Race = %d, %v", v, err)
			}
			if called.Load() != n {
				t.Fatalf("Race called %d of %d functions", called.Load(), n)
			}
		})
	}
}

func TestGatherParentCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Gather(ctx, sleepReturn(time.Hour, 1, nil)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Gather on a cancelled context = %v", err)
	}
}

func TestGatherAllCollectsEveryOutcome(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := errors.New("bad")
		res := GatherAll(context.Background(),
			sleepReturn(2*time.Second, 1, nil),
			sleepReturn(1*time.Second, 0, e),
			sleepReturn(3*time.Second, 3, nil))
		if res[0].Value != 1 || res[1].Err != e || res[2].Value != 3 || res[2].Err != nil {
			t.Fatalf("GatherAll = %+v", res)
		}
		if err := Errors(res); !errors.Is(err, e) {
			t.Fatalf("Errors = %v", err)
		}
	})
}

func TestGatherNilFunction(t *testing.T) {
	if _, err := Gather[int](context.Background(), nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("err = %v", err)
	}
	res := GatherAll[int](context.Background(), nil)
	if !errors.Is(res[0].Err, ErrInvalidArgument) {
		t.Fatalf("GatherAll = %+v", res)
	}
}

func TestRaceFirstSuccessWinsAndLosersAreWaited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var losersDone atomic.Int32
		loser := func(ctx context.Context) (string, error) {
			defer losersDone.Add(1)
			<-ctx.Done()
			if !errors.Is(context.Cause(ctx), errLostRace) {
				t.Errorf("loser's cause = %v", context.Cause(ctx))
			}
			return "", ctx.Err()
		}
		v, err := Race(context.Background(),
			loser,
			sleepReturn(time.Second, "", errors.New("fast failure")),
			sleepReturn(2*time.Second, "winner", nil),
			loser)
		if v != "winner" || err != nil {
			t.Fatalf("Race = %q, %v", v, err)
		}
		if losersDone.Load() != 2 {
			t.Fatalf("Race returned before its losers: %d of 2 done", losersDone.Load())
		}
	})
}

func TestRaceAllFail(t *testing.T) {
	e1, e2 := errors.New("one"), errors.New("two")
	_, err := Race(context.Background(),
		func(ctx context.Context) (int, error) { return 0, e1 },
		func(ctx context.Context) (int, error) { return 0, e2 })
	if !errors.Is(err, e1) || !errors.Is(err, e2) {
		t.Fatalf("Race = %v", err)
	}
	if _, err := Race[int](context.Background()); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("empty Race = %v", err)
	}
}

func TestWaitAnyAndAsCompleted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		slow := Go(ctx, "slow", sleepReturn(3*time.Second, "slow", nil))
		fast := Go(ctx, "fast", sleepReturn(1*time.Second, "fast", nil))
		mid := Go(ctx, "mid", sleepReturn(2*time.Second, "mid", errors.New("mid failed")))
		first, err := WaitAny(ctx, slow, fast, mid)
		if err != nil || first != fast {
			t.Fatalf("WaitAny = %v, %v", first, err)
		}
		var order []string
		for task, err := range AsCompleted(ctx, slow, fast, mid) {
			if err != nil {
				t.Fatal(err)
			}
			order = append(order, task.Name())
			task.Result()
		}
		if !slices.Equal(order, []string{"fast", "mid", "slow"}) {
			t.Fatalf("order %v", order)
		}
	})
}

func TestAsCompletedContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		stuck := Go(context.Background(), "stuck", func(ctx context.Context) (int, error) { <-release; return 0, nil })
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		var gotErr error
		for task, err := range AsCompleted(ctx, stuck) {
			if task != nil {
				t.Fatal("yielded a task that has not ended")
			}
			gotErr = err
		}
		if !errors.Is(gotErr, context.DeadlineExceeded) {
			t.Fatalf("err = %v", gotErr)
		}
		if _, err := WaitAny(ctx, stuck); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("WaitAny = %v", err)
		}
		close(release)
		stuck.Wait(context.Background())
	})
}

// A task that waits for another and then ends must come after it: the order
// AsCompleted yields respects causality, however the goroutines interleave.
func TestAsCompletedRespectsCausality(t *testing.T) {
	ctx := context.Background()
	for range 200 {
		const n = 8
		gate := make(chan struct{})
		tasks := make([]*Task[int], n)
		tasks[0] = Go(ctx, "t0", func(context.Context) (int, error) { <-gate; return 0, nil })
		for i := 1; i < n; i++ {
			prev := tasks[i-1]
			tasks[i] = Go(ctx, "t", func(ctx context.Context) (int, error) {
				_, err := prev.Wait(ctx)
				return i, err
			})
		}
		// Open the gate once AsCompleted is watching every task, so the
		// order below comes from the tasks' ends, not from argument order.
		go func() {
			for !watched(tasks) {
				runtime.Gosched()
			}
			close(gate)
		}()
		reversed := slices.Clone(tasks)
		slices.Reverse(reversed)
		var got []int
		for task, err := range AsCompleted(ctx, reversed...) {
			if err != nil {
				t.Fatal(err)
			}
			v, err := task.Result()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, v)
		}
		if !slices.IsSorted(got) || len(got) != n {
			t.Fatalf("AsCompleted order = %v, want 0..%d in order", got, n-1)
		}
	}
}

// Tasks that had ended before the iteration began come first, in the order
// given.
func TestAsCompletedEndedTasksInArgumentOrder(t *testing.T) {
	ctx := context.Background()
	a := Go(ctx, "a", func(context.Context) (string, error) { return "a", nil })
	b := Go(ctx, "b", func(context.Context) (string, error) { return "b", nil })
	c := Go(ctx, "c", func(context.Context) (string, error) { return "c", nil })
	for _, task := range []*Task[string]{a, b, c} {
		<-task.Done()
	}
	var got []string
	for task := range AsCompleted(ctx, c, a, b) {
		v, _ := task.Result()
		got = append(got, v)
	}
	if want := []string{"c", "a", "b"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// watched reports whether every task has a callback waiting for its end.
func watched(tasks []*Task[int]) bool {
	for _, t := range tasks {
		t.mu.Lock()
		n := 0
		if t.onDone != nil {
			n = len(*t.onDone)
		}
		t.mu.Unlock()
		if n == 0 {
			return false
		}
	}
	return true
}

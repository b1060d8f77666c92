package pool

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"loom"
)

func TestMain(m *testing.M) {
	ServeChild() // the process pool's children are this test binary
	// A binary built with -race sleeps a second at exit by default; the
	// children exit often here.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	goleak.VerifyTestMain(m)
}

func mustClose(t *testing.T, p *Pool) {
	t.Helper()
	if err := p.Close(context.Background()); err != nil {
		t.Fatal("Close:", err)
	}
}

func TestSubmitRunsTasksWithinTheSize(t *testing.T) {
	ctx := context.Background()
	p := New("cpu", WithSize(3))
	var inside, peak atomic.Int64
	var tasks []*loom.Task[int]
	for i := range 50 {
		task, err := Submit(ctx, p, fmt.Sprint("sq-", i), func(ctx context.Context) (int, error) {
			n := inside.Add(1)
			for {
				old := peak.Load()
				if n <= old || peak.CompareAndSwap(old, n) {
					break
				}
			}
			time.Sleep(time.Millisecond)
			inside.Add(-1)
			return i * i, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		tasks = append(tasks, task)
	}
	for i, task := range tasks {
		if v, err := task.Wait(ctx); err != nil || v != i*i {
			t.Fatalf("task %d: %d %v", i, v, err)
		}
	}
	if peak.Load() > 3 {
		t.Fatalf("%d tasks ran at once in a pool of 3", peak.Load())
	}
	mustClose(t, p)
	m := p.Metrics()
	if m.Submitted != 50 || m.Completed != 50 || m.Failed != 0 || m.Workers != 0 || m.Run.Count != 50 || m.Wait.Count != 50 {
		t.Fatalf("metrics: %+v", m)
	}
}

func TestPanicBecomesError(t *testing.T) {
	p := New("test")
	task, _ := Submit(context.Background(), p, "boom", func(context.Context) (int, error) { panic("bad input") })
	_, err := task.Wait(context.Background())
	var pe *loom.PanicError
	if !errors.As(err, &pe) || pe.Value != "bad input" || task.State() != loom.Failed {
		t.Fatalf("got %v (%v)", err, task.State())
	}
	mustClose(t, p) // the counters are updated just after the task ends
	if p.Metrics().Failed != 1 {
		t.Fatal("failure not counted")
	}
}

// gate occupies the pool's only worker until released.
func gate(t *testing.T, p *Pool) (release func()) {
	t.Helper()
	ch := make(chan struct{})
	started := make(chan struct{})
	_, err := Submit(context.Background(), p, "gate", func(context.Context) (int, error) {
		close(started)
		<-ch
		return 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	return func() { close(ch) }
}

func TestPriorityOrder(t *testing.T) {
	p := New("test", WithSize(1))
	defer mustClose(t, p)
	release := gate(t, p)
	var mu sync.Mutex
	var order []string
	var tasks []*loom.Task[int]
	for _, c := range []struct {
		name string
		prio int
	}{{"low", -1}, {"a5", 5}, {"mid", 3}, {"b5", 5}, {"default", 0}} {
		task, err := Submit(context.Background(), p, c.name, func(context.Context) (int, error) {
			mu.Lock()
			order = append(order, c.name)
			mu.Unlock()
			return 0, nil
		}, Priority(c.prio))
		if err != nil {
			t.Fatal(err)
		}
		tasks = append(tasks, task)
	}
	if q := p.Metrics().Queued; q != 5 {
		t.Fatalf("queued %d", q)
	}
	release()
	for _, task := range tasks {
		_, _ = task.Wait(context.Background())
	}
	if want := []string{"a5", "b5", "mid", "default", "low"}; !slices.Equal(order, want) {
		t.Fatalf("ran %v, want %v", order, want)
	}
}

func TestDeadlinePassesInTheQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		p := New("test", WithSize(1))
		release := gate(t, p)
		ran := false
		task, err := Submit(ctx, p, "late", func(context.Context) (int, error) { ran = true; return 1, nil }, Timeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = task.Wait(ctx)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Second {
			t.Fatalf("got %v after %v", err, time.Since(start))
		}
		if ran || task.State() != loom.Cancelled {
			t.Fatalf("ran %v, state %v", ran, task.State())
		}
		if m := p.Metrics(); m.Dropped != 1 || m.Queued != 0 {
			t.Fatalf("metrics %+v", m)
		}
		release()
		mustClose(t, p)
	})
}

func TestDeadlineReachesTheRunningTask(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		p := New("test", WithSize(1))
		dl := time.Now().Add(3 * time.Second)
		task, _ := Submit(ctx, p, "slow", func(ctx context.Context) (int, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		}, Deadline(dl), Timeout(time.Hour))
		if _, err := task.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) || !time.Now().Equal(dl) {
			t.Fatalf("%v at %v", err, time.Now())
		}
		mustClose(t, p)
	})
}

func TestCancelledSubmitterDropsQueuedTask(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := New("test", WithSize(1))
		release := gate(t, p)
		ctx, cancel := context.WithCancelCause(context.Background())
		task, _ := Submit(ctx, p, "gone", func(context.Context) (int, error) { return 1, nil })
		cause := errors.New("client went away")
		cancel(cause)
		if _, err := task.Wait(context.Background()); !errors.Is(err, cause) {
			t.Fatal(err)
		}
		release()
		mustClose(t, p)
	})
}

// TestCancelledQueuedTaskNeverRuns cancels a queued task through its own
// handle: it never runs and ends with the cause. With a submitter's
// context that can end, the pool watches the task's context and drops
// it at once, while the only worker is still busy; with one that cannot,
// the worker drops it when it comes to it.
func TestCancelledQueuedTaskNeverRuns(t *testing.T) {
	for _, cancellable := range []bool{true, false} {
		t.Run(fmt.Sprintf("cancellable=%v", cancellable), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := New("test", WithSize(1))
				release := gate(t, p)
				ctx := context.Background()
				if cancellable {
					var cancel context.CancelFunc
					ctx, cancel = context.WithCancel(ctx)
					defer cancel()
				}
				ran := false
				task, err := Submit(ctx, p, "unwanted", func(context.Context) (int, error) { ran = true; return 1, nil })
				if err != nil {
					t.Fatal(err)
				}
				cause := errors.New("not needed any more")
				task.Cancel(cause)
				if cancellable {
					synctest.Wait()
					if _, err := task.Result(); !errors.Is(err, cause) {
						t.Fatalf("with the worker busy: %v, want the cause", err)
					}
				}
				release()
				if _, err := task.Wait(context.Background()); !errors.Is(err, cause) || ran {
					t.Fatalf("Wait = %v, ran %v; want the cause, never run", err, ran)
				}
				if m := p.Metrics(); m.Dropped != 1 {
					t.Fatalf("metrics %+v, want one dropped", m)
				}
				mustClose(t, p)
			})
		})
	}
}

func TestBoundedQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		p := New("test", WithSize(1), WithQueueSize(1))
		release := gate(t, p)
		queued, err := TrySubmit(ctx, p, "queued", func(context.Context) (int, error) { return 1, nil })
		if err != nil {
			t.Fatal(err)
		}
		if _, err := TrySubmit(ctx, p, "extra", func(context.Context) (int, error) { return 2, nil }); !errors.Is(err, ErrPoolFull) {
			t.Fatalf("TrySubmit on a full pool: %v", err)
		}
		var waited *loom.Task[int]
		done := make(chan error, 1)
		go func() {
			var err error
			waited, err = Submit(ctx, p, "waited", func(context.Context) (int, error) { return 3, nil })
			done <- err
		}()
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("Submit did not wait for room")
		default:
		}
		release()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if v, _ := queued.Wait(ctx); v != 1 {
			t.Fatal(v)
		}
		if v, _ := waited.Wait(ctx); v != 3 {
			t.Fatal(v)
		}
		if p.Metrics().Rejected != 1 {
			t.Fatal("rejection not counted")
		}
		tctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		release = gate(t, p)
		_, _ = TrySubmit(ctx, p, "fill", func(context.Context) (int, error) { return 0, nil })
		if _, err := Submit(tctx, p, "never", func(context.Context) (int, error) { return 0, nil }); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Submit that timed out waiting for room: %v", err)
		}
		release()
		mustClose(t, p)
	})
}

func TestIdleWorkersRetire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		p := New("test", WithSize(4), WithIdleTimeout(time.Minute))
		var tasks []*loom.Task[int]
		for range 4 {
			task, _ := Submit(ctx, p, "t", func(context.Context) (int, error) { time.Sleep(time.Second); return 0, nil })
			tasks = append(tasks, task)
		}
		for _, task := range tasks {
			_, _ = task.Wait(ctx)
		}
		synctest.Wait()
		if m := p.Metrics(); m.Workers != 4 || m.Idle != 4 {
			t.Fatalf("after the work: %+v", m)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if m := p.Metrics(); m.Workers != 0 {
			t.Fatalf("workers still alive after the idle timeout: %d", m.Workers)
		}
		// Workers come back on demand.
		task, _ := Submit(ctx, p, "again", func(context.Context) (int, error) { return 7, nil })
		if v, err := task.Wait(ctx); v != 7 || err != nil {
			t.Fatal(v, err)
		}
		mustClose(t, p)
	})
}

func TestResize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		p := New("test", WithSize(1))
		var running atomic.Int64
		block := make(chan struct{})
		for range 4 {
			_, _ = Submit(ctx, p, "t", func(context.Context) (int, error) {
				running.Add(1)
				<-block
				return 0, nil
			})
		}
		synctest.Wait()
		if running.Load() != 1 {
			t.Fatalf("running %d before growing", running.Load())
		}
		if err := p.Resize(3); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if running.Load() != 3 {
			t.Fatalf("running %d after growing to 3", running.Load())
		}
		_ = p.Resize(1)
		close(block)
		synctest.Wait()
		if m := p.Metrics(); m.Workers != 1 || m.Size != 1 {
			t.Fatalf("after shrinking: %+v", m)
		}
		if err := p.Resize(0); !errors.Is(err, loom.ErrInvalidArgument) {
			t.Fatal(err)
		}
		mustClose(t, p)
	})
}

func TestCloseDrainsQueue(t *testing.T) {
	ctx := context.Background()
	p := New("test", WithSize(2))
	var ran atomic.Int64
	var tasks []*loom.Task[int]
	for range 20 {
		task, _ := Submit(ctx, p, "t", func(context.Context) (int, error) {
			time.Sleep(100 * time.Microsecond)
			ran.Add(1)
			return 0, nil
		})
		tasks = append(tasks, task)
	}
	mustClose(t, p)
	if ran.Load() != 20 {
		t.Fatalf("Close returned with %d of 20 run", ran.Load())
	}
	for _, task := range tasks {
		if task.State() != loom.Done {
			t.Fatalf("task %s after Close", task.State())
		}
	}
	if _, err := Submit(ctx, p, "late", func(context.Context) (int, error) { return 0, nil }); !errors.Is(err, ErrPoolClosed) {
		t.Fatalf("Submit after Close: %v", err)
	}
	mustClose(t, p) // again: nothing to wait for
}

func TestCloseTimesOutAndNamesWhatNeverRan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := New("slow", WithSize(1))
		bg := context.Background()
		running, _ := Submit(bg, p, "busy", func(ctx context.Context) (int, error) {
			<-ctx.Done()
			return 0, context.Cause(ctx)
		})
		synctest.Wait()
		q1, _ := Submit(bg, p, "q1", func(context.Context) (int, error) { return 1, nil })
		q2, _ := Submit(bg, p, "q2", func(context.Context) (int, error) { return 2, nil })
		ctx, cancel := context.WithTimeout(bg, time.Second)
		defer cancel()
		err := p.Close(ctx)
		var ce *CloseError
		if !errors.As(err, &ce) || !errors.Is(err, ErrPoolClosed) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close: %v", err)
		}
		if !slices.Equal(ce.NeverRan, []string{"q1", "q2"}) || !slices.Equal(ce.StillRunning, []string{"busy"}) {
			t.Fatalf("never ran %v, still running %v", ce.NeverRan, ce.StillRunning)
		}
		for _, q := range []*loom.Task[int]{q1, q2} {
			if _, err := q.Wait(bg); !errors.Is(err, ErrPoolClosed) {
				t.Fatalf("dropped task: %v", err)
			}
		}
		if _, err := running.Wait(bg); !errors.Is(err, ErrPoolClosed) {
			t.Fatalf("running task: %v", err)
		}
		mustClose(t, p)
		if m := p.Metrics(); m.Dropped != 2 || m.Failed != 1 {
			t.Fatalf("metrics %+v", m)
		}
	})
}

func TestBadArguments(t *testing.T) {
	ctx := context.Background()
	fn := func(context.Context) (int, error) { return 0, nil }
	p := New("test")
	defer mustClose(t, p)
	var noCtx context.Context
	for name, err := range map[string]error{
		"size 0":       func() error { _, err := Submit(ctx, New("test", WithSize(0)), "t", fn); return err }(),
		"queue -1":     func() error { _, err := Submit(ctx, New("test", WithQueueSize(-1)), "t", fn); return err }(),
		"idle 0":       func() error { _, err := Submit(ctx, New("test", WithIdleTimeout(0)), "t", fn); return err }(),
		"nil option":   func() error { _, err := Submit(ctx, New("test", nil), "t", fn); return err }(),
		"nil pool":     func() error { _, err := Submit(ctx, nil, "t", fn); return err }(),
		"nil ctx":      func() error { _, err := Submit(noCtx, p, "t", fn); return err }(),
		"nil fn":       func() error { _, err := Submit[int](ctx, p, "t", nil); return err }(),
		"nil sub opt":  func() error { _, err := Submit(ctx, p, "t", fn, nil); return err }(),
		"nil ctx shut": p.Close(noCtx),
	} {
		if !errors.Is(err, loom.ErrInvalidArgument) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

// Many submitters, random deadlines and cancellations: every task ends, and
// the counters add up.
func TestStressEveryTaskEnds(t *testing.T) {
	p := New("stress", WithSize(4), WithQueueSize(16), WithIdleTimeout(time.Millisecond))
	var wg sync.WaitGroup
	var accepted atomic.Int64
	for s := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(s), 2))
			for range 200 {
				ctx, cancel := context.WithCancel(context.Background())
				var opts []SubmitOption
				if r.IntN(3) == 0 {
					opts = append(opts, Timeout(time.Duration(r.IntN(200))*time.Microsecond))
				}
				opts = append(opts, Priority(r.IntN(3)))
				task, err := Submit(ctx, p, "s", func(ctx context.Context) (int, error) {
					if r := time.Duration(rand.IntN(50)) * time.Microsecond; r > 0 {
						time.Sleep(r)
					}
					return 0, ctx.Err()
				}, opts...)
				if r.IntN(4) == 0 {
					cancel()
				}
				if err == nil {
					accepted.Add(1)
					_, _ = task.Wait(context.Background())
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	mustClose(t, p)
	m := p.Metrics()
	if m.Submitted != uint64(accepted.Load()) || m.Completed+m.Failed+m.Dropped != m.Submitted {
		t.Fatalf("counters do not add up: %+v (accepted %d)", m, accepted.Load())
	}
	if m.Queued != 0 || m.Running != 0 || m.Workers != 0 {
		t.Fatalf("left behind: %+v", m)
	}
}

func TestWaitForABatchAndReuse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		p := New("test", WithSize(2))
		if err := p.Wait(ctx); err != nil {
			t.Fatal("Wait on an empty pool:", err)
		}
		for round := range 2 {
			var done atomic.Int64
			for range 6 {
				_, _ = Submit(ctx, p, "t", func(context.Context) (int, error) {
					time.Sleep(time.Second)
					done.Add(1)
					return 0, nil
				})
			}
			start := time.Now()
			if err := p.Wait(ctx); err != nil {
				t.Fatal(err)
			}
			if done.Load() != 6 || time.Since(start) != 3*time.Second {
				t.Fatalf("round %d: Wait returned after %v with %d done", round, time.Since(start), done.Load())
			}
		}
		block := make(chan struct{})
		_, _ = Submit(ctx, p, "stuck", func(context.Context) (int, error) { <-block; return 0, nil })
		tctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := p.Wait(tctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
		close(block)
		if err := p.Wait(noCtx()); !errors.Is(err, loom.ErrInvalidArgument) {
			t.Fatal(err)
		}
		mustClose(t, p)
	})
}

func noCtx() context.Context { return nil }

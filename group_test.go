package loom

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestGroupFirstErrorCancelsSiblings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("boom")
		g := NewGroup(context.Background(), WithName("fail-fast"))
		var sawCause atomic.Value
		for range 3 {
			g.Go("sibling", func(ctx context.Context) error {
				<-ctx.Done()
				sawCause.Store(context.Cause(ctx))
				return ctx.Err()
			})
		}
		g.Go("failer", func(ctx context.Context) error {
			time.Sleep(time.Second)
			return boom
		})
		err := g.Wait()
		if err != boom {
			t.Fatalf("Wait = %v, want exactly boom (the siblings' cancellations are not failures)", err)
		}
		if c := sawCause.Load(); c != boom {
			t.Fatalf("siblings saw cause %v, want boom", c)
		}
	})
}

func TestGroupSuperviseKeepsSiblingsAndJoinsErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e1, e2 := errors.New("first"), errors.New("second")
		g := NewGroup(context.Background(), Supervise())
		var finished atomic.Int32
		g.Go("a", func(ctx context.Context) error { return e1 })
		g.Go("b", func(ctx context.Context) error { time.Sleep(time.Second); return e2 })
		g.Go("c", func(ctx context.Context) error {
			select {
			case <-time.After(2 * time.Second):
				finished.Add(1)
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		err := g.Wait()
		if !errors.Is(err, e1) || !errors.Is(err, e2) {
			t.Fatalf("Wait = %v, want both failures", err)
		}
		if finished.Load() != 1 {
			t.Fatal("the supervised sibling was cancelled")
		}
	})
}

func TestGroupClosedAfterWait(t *testing.T) {
	g := NewGroup(context.Background(), WithName("done"))
	if err := g.Go("x", func(ctx context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	err := g.Go("late", func(ctx context.Context) error { t.Error("ran after Wait"); return nil })
	if !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), "has been waited") {
		t.Fatalf("Go after Wait = %v", err)
	}
	task := Spawn(g, "late", func(ctx context.Context) (int, error) { return 1, nil })
	if _, err := task.Result(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Spawn after Wait = %v", err)
	}
	if g.Context().Err() == nil {
		t.Fatal("group context still live after Wait")
	}
}

func TestGroupClosedAfterCancel(t *testing.T) {
	g := NewGroup(context.Background(), WithName("stopped"))
	why := errors.New("enough")
	g.Cancel(why)
	err := g.Go("late", func(ctx context.Context) error { return nil })
	if !errors.Is(err, ErrClosed) || !errors.Is(err, why) {
		t.Fatalf("Go after Cancel = %v, want ErrClosed wrapping the cause", err)
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("Wait after explicit Cancel = %v, want nil", err)
	}
}

func TestGroupExplicitCancelIsNotAnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := NewGroup(context.Background())
		for range 4 {
			g.Go("", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
		}
		synctest.Wait()
		g.Cancel(nil)
		if err := g.Wait(); err != nil {
			t.Fatalf("Wait = %v", err)
		}
	})
}

func TestGroupParentCancelReturnsCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		why := errors.New("client went away")
		parent, cancel := context.WithCancelCause(context.Background())
		g := NewGroup(parent)
		g.Go("", func(ctx context.Context) error { <-ctx.Done(); return context.Cause(ctx) })
		synctest.Wait()
		cancel(why)
		if err := g.Wait(); err != why {
			t.Fatalf("Wait = %v, want the parent's cause", err)
		}
	})
}

func TestGroupLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit = 3
		g := NewGroup(context.Background(), WithLimit(limit))
		var running, peak atomic.Int32
		for range 20 {
			err := g.Go("", func(ctx context.Context) error {
				n := running.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				time.Sleep(time.Millisecond)
				running.Add(-1)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
		if peak.Load() != limit {
			t.Fatalf("peak concurrency %d, want %d", peak.Load(), limit)
		}
	})
}

// Name and Len say what the group is called and how many of its tasks run.
func TestGroupNameAndLen(t *testing.T) {
	g := NewGroup(context.Background(), WithName("crawler"))
	release := make(chan struct{})
	var started sync.WaitGroup
	for range 3 {
		started.Add(1)
		g.Go("", func(context.Context) error { started.Done(); <-release; return nil })
	}
	started.Wait()
	if g.Name() != "crawler" || g.Len() != 3 {
		t.Fatalf("name %q, len %d", g.Name(), g.Len())
	}
	close(release)
	if err := g.Wait(); err != nil || g.Len() != 0 {
		t.Fatalf("after Wait: len %d, %v", g.Len(), err)
	}
}

func TestGroupLimitBlockedGoFailsOnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := NewGroup(context.Background(), WithLimit(1))
		g.Go("hog", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
		errc := make(chan error)
		go func() { errc <- g.Go("waiter", func(ctx context.Context) error { return nil }) }()
		synctest.Wait()
		g.Cancel(errors.New("stop"))
		if err := <-errc; !errors.Is(err, ErrClosed) {
			t.Fatalf("blocked Go = %v", err)
		}
		g.Wait()
	})
}

func TestSpawnTypedResults(t *testing.T) {
	g := NewGroup(context.Background())
	a := Spawn(g, "a", func(ctx context.Context) (string, error) { return "alpha", nil })
	b := Spawn(g, "b", func(ctx context.Context) (int, error) { return 7, nil })
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	av, _ := a.Result()
	bv, _ := b.Result()
	if av != "alpha" || bv != 7 {
		t.Fatalf("results %q %d", av, bv)
	}
	if a.Info().Parent != g.ID() {
		t.Fatalf("spawned task's parent %d, group %d", a.Info().Parent, g.ID())
	}
}

func TestSpawnCancelOneTaskOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := NewGroup(context.Background())
		victim := Spawn(g, "victim", func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() })
		other := Spawn(g, "other", func(ctx context.Context) (int, error) { time.Sleep(time.Second); return 2, ctx.Err() })
		synctest.Wait()
		victim.Cancel(nil)
		if err := g.Wait(); err != nil {
			t.Fatalf("Wait = %v: cancelling one task is not a failure", err)
		}
		if victim.State() != Cancelled || other.State() != Done {
			t.Fatalf("victim %v, other %v", victim.State(), other.State())
		}
	})
}

func TestGroupPanicIsFailure(t *testing.T) {
	g := NewGroup(context.Background())
	g.Go("p", func(ctx context.Context) error { panic("kaboom") })
	var pe *PanicError
	if err := g.Wait(); !errors.As(err, &pe) || pe.Value != "kaboom" {
		t.Fatalf("Wait = %v", err)
	}
}

func TestGroupInvalidOptions(t *testing.T) {
	cases := []struct {
		name string
		ctx  context.Context
		opts []Option
		want string
	}{
		{"zero limit", context.Background(), []Option{WithLimit(0)}, "at least 1"},
		{"nil ctx", nil, nil, "nil context"},
		{"nil option", context.Background(), []Option{nil}, "nil option"},
		{"scope option", context.Background(), []Option{OnError(func(TaskInfo, error) {})}, "applies to a Scope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := NewGroup(c.ctx, c.opts...)
			err := g.Go("x", func(ctx context.Context) error { return nil })
			if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Go = %v, want invalid argument mentioning %q", err, c.want)
			}
			if err := g.Wait(); !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("Wait = %v", err)
			}
		})
	}
	g := NewGroup(context.Background())
	if err := g.Go("nil", nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Go(nil) = %v", err)
	}
	g.Wait()
}

func TestGroupConcurrentWaitAndGoFromTasks(t *testing.T) {
	g := NewGroup(context.Background())
	var n atomic.Int32
	var spawn func(depth int) func(context.Context) error
	spawn = func(depth int) func(context.Context) error {
		return func(ctx context.Context) error {
			n.Add(1)
			if depth > 0 {
				for range 2 {
					if err := g.Go("child", spawn(depth-1)); err != nil {
						return err
					}
				}
			}
			return nil
		}
	}
	g.Go("root", spawn(6))
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = g.Wait() })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n.Load() != 127 {
		t.Fatalf("ran %d tasks, want 127", n.Load())
	}
}

package policy

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"loom"
)

func ok(context.Context) (int, error)   { return 1, nil }
func fail(context.Context) (int, error) { return 0, errBoom }

func TestBreakerOpensAtFailureRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		var events []string
		b := NewBreaker("db", CountWindow(10), MinCalls(10), FailureRate(50), OpenFor(30*time.Second),
			OnStateChange(func(from, to BreakerState) { events = append(events, from.String()+">"+to.String()) }))
		for range 5 {
			_, _ = Do(ctx, ok, b)
		}
		for range 4 {
			_, _ = Do(ctx, fail, b)
		}
		if b.State() != Closed {
			t.Fatal("opened before the minimum number of calls")
		}
		_, _ = Do(ctx, fail, b) // 5 of 10 failed: 50%
		if b.State() != Open {
			t.Fatalf("state %v at a 50%% failure rate", b.State())
		}
		calls := 0
		_, err := Do(ctx, func(context.Context) (int, error) { calls++; return 0, nil }, b)
		var oe *BreakerOpenError
		if !errors.As(err, &oe) || !errors.Is(err, ErrBreakerOpen) || calls != 0 || oe.RetryAfter() != 30*time.Second {
			t.Fatalf("open breaker: %v (calls %d)", err, calls)
		}
		if m := b.Metrics(); m.Rejected != 1 || m.Failures != 5 || m.Successes != 5 {
			t.Fatalf("metrics %+v", m)
		}
		if !slices.Equal(events, []string{"closed>open"}) {
			t.Fatalf("events %v", events)
		}
	})
}

func TestBreakerHalfOpenProbes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		var events []string
		b := NewBreaker("db", CountWindow(4), MinCalls(2), OpenFor(10*time.Second), HalfOpenProbes(2),
			OnStateChange(func(from, to BreakerState) { events = append(events, to.String()) }))
		_, _ = Do(ctx, fail, b)
		_, _ = Do(ctx, fail, b)
		time.Sleep(10 * time.Second)
		// Half-open: two probes. One success and one failure: 50% fails → open.
		_, _ = Do(ctx, ok, b)
		if b.State() != HalfOpen {
			t.Fatalf("state %v after one probe", b.State())
		}
		_, _ = Do(ctx, fail, b)
		if b.State() != Open {
			t.Fatalf("state %v after a failed probe", b.State())
		}
		time.Sleep(10 * time.Second)
		_, _ = Do(ctx, ok, b)
		_, _ = Do(ctx, ok, b)
		if b.State() != Closed {
			t.Fatalf("state %v after two good probes", b.State())
		}
		if m := b.Metrics(); m.WindowCalls != 0 {
			t.Fatal("closing did not clear the window")
		}
		want := []string{"open", "half-open", "open", "half-open", "closed"}
		if !slices.Equal(events, want) {
			t.Fatalf("events %v, want %v", events, want)
		}
	})
}

// While half-open, only the probes go through; the others are refused.
func TestBreakerHalfOpenRefusesBeyondProbes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBreaker("db", MinCalls(1), OpenFor(time.Second), HalfOpenProbes(1))
		_, _ = Do(context.Background(), fail, b)
		time.Sleep(time.Second)
		p, err := b.Allow() // the probe, held open
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Allow(); !errors.Is(err, ErrBreakerOpen) {
			t.Fatalf("second call while probing: %v", err)
		}
		p.Done(nil)
		if b.State() != Closed {
			t.Fatal(b.State())
		}
	})
}

func TestBreakerSlowCallRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := func(context.Context) (int, error) { time.Sleep(2 * time.Second); return 1, nil }
		b := NewBreaker("api", CountWindow(4), MinCalls(4), SlowCalls(time.Second, 75))
		for range 3 {
			_, _ = Do(context.Background(), slow, b)
		}
		_, _ = Do(context.Background(), ok, b)
		if b.State() != Open {
			t.Fatalf("state %v with 3 of 4 calls slow", b.State())
		}
		if m := b.Metrics(); m.Failures != 0 || m.Successes != 4 {
			t.Fatalf("slow successes counted as failures: %+v", m)
		}
	})
}

func TestBreakerIgnoresCallerCancellation(t *testing.T) {
	b := NewBreaker("db", MinCalls(1))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 5 {
		_, _ = Do(ctx, func(ctx context.Context) (int, error) { return 0, ctx.Err() }, b)
	}
	p, _ := b.Allow()
	p.Done(context.Canceled)
	if m := b.Metrics(); b.State() != Closed || m.Ignored != 6 || m.WindowCalls != 0 {
		t.Fatalf("state %v, metrics %+v", b.State(), m)
	}
	// A permanent error is not the backend's fault either, by default.
	_, _ = Do(context.Background(), func(context.Context) (int, error) { return 0, Permanent(errBoom) }, b)
	if b.State() != Closed {
		t.Fatal("a permanent error opened the breaker")
	}
}

func TestBreakerTimeWindowForgetsOldCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBreaker("db", TimeWindow(10*time.Second, 10), MinCalls(3))
		_, _ = Do(context.Background(), fail, b)
		_, _ = Do(context.Background(), fail, b)
		time.Sleep(11 * time.Second) // both fall out of the window
		_, _ = Do(context.Background(), fail, b)
		if m := b.Metrics(); b.State() != Closed || m.WindowCalls != 1 {
			t.Fatalf("state %v, window %+v", b.State(), m)
		}
		_, _ = Do(context.Background(), fail, b)
		_, _ = Do(context.Background(), fail, b)
		if b.State() != Open {
			t.Fatal("three failures within the window did not open it")
		}
	})
}

func TestBreakerManualTripAndReset(t *testing.T) {
	b := NewBreaker("db")
	b.Trip()
	if _, err := b.Allow(); !errors.Is(err, ErrBreakerOpen) {
		t.Fatal(err)
	}
	b.Reset()
	if _, err := Do(context.Background(), ok, b); err != nil || b.State() != Closed {
		t.Fatal(err, b.State())
	}
	if _, err := NewBreaker("bad", FailureRate(0)).Allow(); !errors.Is(err, loom.ErrInvalidArgument) {
		t.Fatal(err)
	}
}

func TestBreakerSuccessPathAllocatesNothing(t *testing.T) {
	b := NewBreaker("hot")
	if n := testing.AllocsPerRun(1000, func() {
		p, err := b.Allow()
		if err != nil {
			t.Fatal(err)
		}
		p.Done(nil)
	}); n != 0 {
		t.Fatalf("Allow/Done: %v allocations", n)
	}
	ex := New[int](b)
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := ex.Do(ctx, ok); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("Executor.Do through a breaker: %v allocations", n)
	}
}

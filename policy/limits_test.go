package policy

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"loom"
)

func TestBulkhead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		bh := NewBulkhead("db", 2, 1)
		release := make(chan struct{})
		hold := func(context.Context) (int, error) { <-release; return 1, nil }
		var wg sync.WaitGroup
		errs := make(chan error, 3)
		for range 3 {
			wg.Add(1)
			go func() { defer wg.Done(); _, err := Do(ctx, hold, bh); errs <- err }()
			synctest.Wait()
		}
		if bh.Running() != 2 || bh.Waiting() != 1 {
			t.Fatalf("running %d waiting %d", bh.Running(), bh.Waiting())
		}
		if _, err := Do(ctx, hold, bh); !errors.Is(err, ErrBulkheadFull) {
			t.Fatalf("fourth call: %v", err)
		}
		close(release)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		// A waiting call gives up with its context.
		block := make(chan struct{})
		go func() {
			_, _ = Do(ctx, func(context.Context) (int, error) { <-block; return 0, nil }, NewBulkhead("x", 1, 1))
		}()
		bh2 := NewBulkhead("one", 1, 1)
		go func() { _, _ = Do(ctx, func(context.Context) (int, error) { <-block; return 0, nil }, bh2) }()
		synctest.Wait()
		tctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, err := Do(tctx, ok, bh2); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("waiting call: %v", err)
		}
		close(block)
		if _, err := Do(ctx, ok, NewBulkhead("bad", 0, 0)); !errors.Is(err, loom.ErrInvalidArgument) {
			t.Fatal(err)
		}
	})
}

func TestRateLimitSpacesCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		rl := NewRateLimit("api", 10, 1) // one call per 100ms
		start := time.Now()
		for range 5 {
			if _, err := Do(ctx, ok, rl); err != nil {
				t.Fatal(err)
			}
		}
		if got := time.Since(start); got != 400*time.Millisecond {
			t.Fatalf("5 calls took %v, want 400ms", got)
		}
		// A deadline before the next token: refused at once.
		tctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		defer cancel()
		if _, err := Do(tctx, ok, rl); !errors.Is(err, ErrRateLimited) {
			t.Fatalf("short deadline: %v", err)
		}
		nw := NewRateLimit("api", 10, 1, NoWait())
		_, _ = Do(ctx, ok, nw)
		_, err := Do(ctx, ok, nw)
		var le *RateLimitedError
		if !errors.As(err, &le) || le.RetryAfter() != 100*time.Millisecond {
			t.Fatalf("NoWait: %v", err)
		}
	})
}

func TestKeyedRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		k := NewKeyedRateLimit("hosts", 1, 1, NoWait(), MaxKeys(2), KeyIdle(time.Minute))
		a, b, c := WithKey(ctx, "a.example"), WithKey(ctx, "b.example"), WithKey(ctx, "c.example")
		if _, err := Do(a, ok, k); err != nil {
			t.Fatal(err)
		}
		if _, err := Do(a, ok, k); !errors.Is(err, ErrRateLimited) {
			t.Fatalf("second call for a: %v", err)
		}
		if _, err := Do(b, ok, k); err != nil {
			t.Fatal("b has its own bucket:", err)
		}
		_, _ = Do(c, ok, k) // a third key: the least recently used (a) goes
		if k.Keys() != 2 {
			t.Fatalf("%d keys, max 2", k.Keys())
		}
		if _, err := Do(a, ok, k); err != nil {
			t.Fatal("a forgotten key starts with a full bucket:", err)
		}
		time.Sleep(2 * time.Minute)
		_, _ = Do(b, ok, k)
		if k.Keys() != 1 {
			t.Fatalf("%d keys after the idle time, want 1", k.Keys())
		}
		if _, err := Do(ctx, ok, k); !errors.Is(err, loom.ErrInvalidArgument) {
			t.Fatalf("no key: %v", err)
		}
		if _, err := Do(a, ok, NewKeyedRateLimit("bad", 0, 1)); !errors.Is(err, loom.ErrInvalidArgument) {
			t.Fatal(err)
		}
	})
}

func TestHedgeWinsWithTheFasterCopy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := NewHedge("search", HedgeDelay(time.Second))
		calls := 0
		var mu sync.Mutex
		var loser context.Context
		start := time.Now()
		v, err := Do(context.Background(), func(ctx context.Context) (int, error) {
			mu.Lock()
			calls++
			n := calls
			mu.Unlock()
			if n == 1 { // the first copy is stuck behind a slow replica
				loser = ctx
				<-ctx.Done()
				return 0, context.Cause(ctx)
			}
			time.Sleep(time.Second)
			return 2, nil
		}, h)
		if v != 2 || err != nil || time.Since(start) != 2*time.Second {
			t.Fatalf("%d %v after %v", v, err, time.Since(start))
		}
		if !errors.Is(context.Cause(loser), errHedgeLost) {
			t.Fatalf("the losing copy was not cancelled: %v", context.Cause(loser))
		}
		if s := h.Stats(); s.Calls != 1 || s.Hedges != 1 || s.HedgeWins != 1 {
			t.Fatalf("stats %+v", s)
		}
		// A fast call is not hedged.
		if _, err := Do(context.Background(), ok, h); err != nil || h.Stats().Hedges != 1 {
			t.Fatal("a fast call was hedged")
		}
	})
}

func TestHedgeAllFailAndQuantile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := NewHedge("s", HedgeDelay(time.Second), MaxHedges(2))
		_, err := Do(context.Background(), func(ctx context.Context) (int, error) {
			time.Sleep(5 * time.Second)
			return 0, errBoom
		}, h)
		if !errors.Is(err, errBoom) || h.Stats().Hedges != 2 {
			t.Fatalf("%v, stats %+v", err, h.Stats())
		}
		q := NewHedge("q", HedgeQuantile(0.9, 10))
		for i := range 20 {
			d := time.Duration(i+1) * 10 * time.Millisecond
			_, _ = Do(context.Background(), func(context.Context) (int, error) { time.Sleep(d); return 0, nil }, q)
		}
		if d := q.Stats().Delay; d < 150*time.Millisecond || d > 200*time.Millisecond {
			t.Fatalf("learned delay %v, want about the 90th percentile (180ms)", d)
		}
		if _, err := Do(context.Background(), ok, NewHedge("bad", MaxHedges(0))); !errors.Is(err, loom.ErrInvalidArgument) {
			t.Fatal(err)
		}
	})
}

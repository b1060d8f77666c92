package policy

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestRetrySucceedsAfterBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewRetry("r", Attempts(5), WithBackoff(Backoff{Base: time.Second, Max: 10 * time.Second, Jitter: NoJitter}))
		calls := 0
		start := time.Now()
		v, err := Do(context.Background(), failing(2, 42, &calls), r)
		if v != 42 || err != nil || calls != 3 {
			t.Fatalf("%d %v after %d calls", v, err, calls)
		}
		if got := time.Since(start); got != 3*time.Second { // waits of 1s then 2s
			t.Fatalf("waited %v, want 3s", got)
		}
		if s := r.Stats(); s.Calls != 1 || s.Attempts != 3 || s.Retries != 2 || s.Exhausted != 0 {
			t.Fatalf("stats %+v", s)
		}
	})
}

func TestRetryGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewRetry("r", Attempts(3), WithBackoff(Backoff{Base: time.Second, Max: time.Second, Jitter: NoJitter}))
		calls := 0
		_, err := Do(context.Background(), failing(10, 0, &calls), r)
		var ee *ExhaustedError
		if !errors.As(err, &ee) || !errors.Is(err, ErrExhausted) || !errors.Is(err, errBoom) || ee.Attempts != 3 || calls != 3 {
			t.Fatalf("%v after %d calls", err, calls)
		}
	})
}

func TestRetryStopsOnPermanentPredicateAndCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		calls := 0
		_, err := Do(ctx, func(context.Context) (int, error) { calls++; return 0, Permanent(errBoom) }, NewRetry("r"))
		if calls != 1 || !errors.Is(err, errBoom) || !IsPermanent(err) {
			t.Fatalf("permanent: %v after %d calls", err, calls)
		}
		calls = 0
		_, err = Do(ctx, failing(10, 0, &calls), NewRetry("r", RetryIf(func(err error) bool { return false })))
		if calls != 1 || !errors.Is(err, errBoom) {
			t.Fatalf("RetryIf: %v after %d calls", err, calls)
		}
		cctx, cancel := context.WithCancelCause(ctx)
		cause := errors.New("caller left")
		calls = 0
		_, err = Do(cctx, func(ctx context.Context) (int, error) {
			calls++
			cancel(cause)
			return 0, context.Cause(ctx)
		}, NewRetry("r", Attempts(5)))
		if calls != 1 || !errors.Is(err, cause) {
			t.Fatalf("cancelled: %v after %d calls", err, calls)
		}
		// Cancelled during the wait between attempts.
		cctx, cancel2 := context.WithTimeout(ctx, 1500*time.Millisecond)
		defer cancel2()
		_, err = Do(cctx, failing(10, 0, new(int)), NewRetry("r", Attempts(5), WithBackoff(Backoff{Base: time.Second, Max: time.Second, Jitter: NoJitter})))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("deadline during the wait: %v", err)
		}
	})
}

func TestRetryHonoursRetryAfterAndMaxElapsed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		start := time.Now()
		_, err := Do(context.Background(), func(context.Context) (int, error) {
			calls++
			if calls == 1 {
				return 0, RetryAfter(errBoom, 7*time.Second)
			}
			return 1, nil
		}, NewRetry("r", WithBackoff(Backoff{Base: time.Second, Max: time.Second, Jitter: NoJitter})))
		if err != nil || time.Since(start) != 7*time.Second {
			t.Fatalf("%v after %v", err, time.Since(start))
		}
		calls = 0
		start = time.Now()
		_, err = Do(context.Background(), failing(100, 0, &calls),
			NewRetry("r", Attempts(100), WithBackoff(Backoff{Base: time.Second, Max: time.Second, Jitter: NoJitter}), MaxElapsed(3500*time.Millisecond)))
		var ee *ExhaustedError
		if !errors.As(err, &ee) || ee.Reason != "elapsed time" || calls != 4 || time.Since(start) != 3*time.Second {
			t.Fatalf("%v after %d calls, %v", err, calls, time.Since(start))
		}
	})
}

func TestRetryGivesEachAttemptItsOwnContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ctxs []context.Context
		_, _ = Do(context.Background(), func(ctx context.Context) (int, error) {
			ctxs = append(ctxs, ctx)
			if len(ctxs) < 2 {
				return 0, errBoom
			}
			return 0, nil
		}, NewRetry("r", WithBackoff(Backoff{Base: time.Millisecond, Max: time.Millisecond})))
		if len(ctxs) != 2 || ctxs[0] == ctxs[1] {
			t.Fatal("attempts shared a context")
		}
		if !errors.Is(context.Cause(ctxs[0]), errAttemptEnded) {
			t.Fatalf("the first attempt's context was not ended: %v", context.Cause(ctxs[0]))
		}
	})
}

func TestJitterStaysInBounds(t *testing.T) {
	base, maxD := 100*time.Millisecond, 5*time.Second
	full := NewRetry("r", WithBackoff(Backoff{Base: base, Max: maxD}))
	dec := NewRetry("r", WithBackoff(Backoff{Base: base, Max: maxD, Jitter: DecorrelatedJitter}))
	prevF, prevD := base, base
	for n := 1; n <= 20; n++ {
		exp := min(base<<(n-1), maxD)
		if d := full.delay(n, &prevF); d < 0 || d > exp {
			t.Fatalf("full jitter %v outside [0, %v]", d, exp)
		}
		before := prevD
		if d := dec.delay(n, &prevD); d < base || d > min(3*before, maxD) {
			t.Fatalf("decorrelated jitter %v outside [%v, %v]", d, base, min(3*before, maxD))
		}
	}
	// Many attempts do not overflow.
	p := base
	if d := NewRetry("r", WithBackoff(Backoff{Base: base, Max: maxD, Jitter: NoJitter})).delay(200, &p); d != maxD {
		t.Fatalf("attempt 200: %v", d)
	}
}

func TestRetryBudgetCapsRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBudget("shared", 0.2, 0)
		r := NewRetry("r", Attempts(3), WithBackoff(Backoff{Base: time.Millisecond, Max: time.Millisecond}), WithBudget(b))
		exhaustedByBudget := 0
		for range 10 {
			_, err := Do(context.Background(), failing(100, 0, new(int)), r)
			var ee *ExhaustedError
			if errors.As(err, &ee) && ee.Reason == "budget" {
				exhaustedByBudget++
			}
		}
		// 10 calls allow 2 retries in the window (at the 1st and 6th
		// call); every call ends when the budget denies its next retry.
		if s := r.Stats(); s.Retries != 2 || s.BudgetDenied != 10 || exhaustedByBudget != 10 {
			t.Fatalf("stats %+v, %d stopped by the budget", s, exhaustedByBudget)
		}
		if b.Left() != 0 {
			t.Fatalf("left %d", b.Left())
		}
		time.Sleep(11 * time.Second) // the window moves on
		if b.Left() != 0 {
			t.Fatal("a budget with no calls in the window should allow nothing at ratio only")
		}
		if NewBudget("bad", 2, 0).Err() == nil {
			t.Fatal("ratio 2 accepted")
		}
	})
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"120", 2 * time.Minute, true},
		{" 0 ", 0, true},
		{"Wed, 25 Nov 2026 12:00:30 GMT", 30 * time.Second, true},
		{"Wed, 25 Nov 2026 11:00:00 GMT", 0, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{"", 0, false},
		{"99999999999999999999", 0, false},
	} {
		got, ok := ParseRetryAfter(c.in, now)
		if got != c.want || ok != c.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"120", "Wed, 25 Nov 2026 12:00:30 GMT", "-5", "1e3", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ParseRetryAfter(s, now)
		if d < 0 {
			t.Fatalf("negative wait %v for %q", d, s)
		}
		if !ok && d != 0 {
			t.Fatalf("rejected %q but returned %v", s, d)
		}
	})
}

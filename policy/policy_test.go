package policy

import (
	"context"
	"errors"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"loom"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var errBoom = errors.New("boom")

// failing returns a function that fails its first n calls, then returns v,
// and counts the calls.
func failing(n int, v int, calls *int) func(context.Context) (int, error) {
	return func(context.Context) (int, error) {
		*calls++
		if *calls <= n {
			return 0, errBoom
		}
		return v, nil
	}
}

func TestDoWithoutPoliciesAndBadInput(t *testing.T) {
	ctx := context.Background()
	if v, err := Do(ctx, func(context.Context) (int, error) { return 7, nil }); v != 7 || err != nil {
		t.Fatal(v, err)
	}
	var noCtx context.Context
	for name, err := range map[string]error{
		"nil ctx":    func() error { _, err := Do(noCtx, func(context.Context) (int, error) { return 0, nil }); return err }(),
		"nil fn":     func() error { _, err := Do[int](ctx, nil); return err }(),
		"nil policy": func() error { _, err := Do(ctx, func(context.Context) (int, error) { return 0, nil }, nil); return err }(),
		"executor": func() error {
			_, err := New[int](nil).Do(ctx, func(context.Context) (int, error) { return 0, nil })
			return err
		}(),
		"retry opt": func() error {
			_, err := Do(ctx, func(context.Context) (int, error) { return 0, nil }, NewRetry("r", Attempts(0)))
			return err
		}(),
		// NaN fails every comparison, so each check must be written to
		// accept only what is in range.
		"NaN failure rate": func() error { _, err := NewBreaker("b", FailureRate(math.NaN())).Allow(); return err }(),
		"NaN slow rate":    func() error { _, err := NewBreaker("b", SlowCalls(time.Second, math.NaN())).Allow(); return err }(),
		"NaN budget":       NewBudget("b", math.NaN(), 1).Err(),
		"NaN rate": func() error {
			_, err := Do(ctx, func(context.Context) (int, error) { return 0, nil }, NewRateLimit("r", math.NaN(), 1))
			return err
		}(),
		"NaN quantile": func() error {
			_, err := Do(ctx, func(context.Context) (int, error) { return 0, nil }, NewHedge("h", HedgeQuantile(math.NaN(), 10)))
			return err
		}(),
	} {
		if !errors.Is(err, loom.ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	_, err := Do(ctx, func(context.Context) (int, error) { panic("kaput") })
	var pe *loom.PanicError
	if !errors.As(err, &pe) || pe.Value != "kaput" {
		t.Fatalf("panic: %v", err)
	}
}

func TestTimeoutPolicy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		start := time.Now()
		_, err := Do(ctx, func(ctx context.Context) (int, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		}, Timeout(2*time.Second))
		var te *loom.TimeoutError
		if !errors.As(err, &te) || !errors.Is(err, loom.ErrTimeout) || time.Since(start) != 2*time.Second {
			t.Fatalf("%v after %v", err, time.Since(start))
		}
		if v, err := Do(ctx, func(context.Context) (int, error) { return 1, nil }, Timeout(time.Second)); v != 1 || err != nil {
			t.Fatal(v, err)
		}
	})
}

func TestFallback(t *testing.T) {
	ctx := context.Background()
	calls := 0
	v, err := Do(ctx, failing(5, 1, &calls), Fallback(func(_ context.Context, err error) (int, error) {
		if !errors.Is(err, errBoom) {
			t.Errorf("fallback got %v", err)
		}
		return -1, nil
	}))
	if v != -1 || err != nil {
		t.Fatal(v, err)
	}
	// The predicate can refuse.
	_, err = Do(ctx, failing(5, 1, new(int)), Fallback(func(context.Context, error) (int, error) { return -1, nil },
		func(err error) bool { return false }))
	if !errors.Is(err, errBoom) {
		t.Fatal(err)
	}
	// A fallback of the wrong type says so.
	_, err = Do(ctx, failing(5, 1, new(int)), Fallback(func(context.Context, error) (string, error) { return "", nil }))
	if err == nil || !errors.Is(err, errBoom) {
		t.Fatal(err)
	}
}

// The documented order: each retry goes through the breaker; once the
// breaker opens, the retry waits as long as the breaker's RetryAfter says,
// and the fallback has the last word.
func TestComposedStack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		br := NewBreaker("backend", CountWindow(4), MinCalls(4), OpenFor(10*time.Second), HalfOpenProbes(1))
		ex := New[string](
			Fallback(func(context.Context, error) (string, error) { return "cached", nil }),
			NewRetry("backend", Attempts(6), WithBackoff(Backoff{Base: time.Second, Max: time.Second, Jitter: NoJitter})),
			br,
			Timeout(time.Second),
		)
		calls := 0
		start := time.Now()
		v, err := ex.Do(ctx, func(ctx context.Context) (string, error) {
			calls++
			if calls <= 4 {
				return "", errBoom
			}
			return "fresh", nil
		})
		// Attempts 1-4 fail (t=0,1,2,3s) and open the breaker at 3s; attempt
		// 5 is refused with RetryAfter 10s; attempt 6, at 13s, is the
		// half-open probe and succeeds.
		if v != "fresh" || err != nil || calls != 5 {
			t.Fatalf("%q %v after %d calls", v, err, calls)
		}
		if got := time.Since(start); got != 13*time.Second {
			t.Fatalf("took %v, want 13s", got)
		}
		if br.State() != Closed {
			t.Fatalf("breaker %v after a good probe", br.State())
		}
	})
}

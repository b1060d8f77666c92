package policy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"loom/policy"
)

// A flaky HTTP backend behind the recommended stack: fallback, retry
// (honouring Retry-After), breaker, timeout per attempt.
func ExampleDo() {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) <= 2 {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "hello")
	}))
	defer srv.Close()

	get := func(ctx context.Context) (string, error) {
		req, err := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
		if err != nil {
			return "", policy.Permanent(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusServiceUnavailable {
			err := fmt.Errorf("status %d", resp.StatusCode)
			if d, ok := policy.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
				err = policy.RetryAfter(err, d)
			}
			return "", err
		}
		return string(body), nil
	}

	body, err := policy.Do(context.Background(), get,
		policy.Fallback(func(context.Context, error) (string, error) { return "cached", nil }),
		policy.NewRetry("backend", policy.Attempts(4), policy.WithBackoff(policy.Backoff{Base: time.Millisecond, Max: 10 * time.Millisecond})),
		policy.NewBreaker("backend"),
		policy.Timeout(time.Second),
	)
	fmt.Println(body, err, "after", hits.Load(), "requests")
	// Output: hello <nil> after 3 requests
}

// A breaker used by hand around a call: Allow, then Done with the outcome.
func ExampleBreaker() {
	b := policy.NewBreaker("payments", policy.CountWindow(4), policy.MinCalls(4), policy.OpenFor(time.Minute),
		policy.OnStateChange(func(from, to policy.BreakerState) { fmt.Println("breaker:", from, "->", to) }))
	charge := func(fail bool) error {
		p, err := b.Allow()
		if err != nil {
			return err
		}
		var callErr error
		if fail {
			callErr = errors.New("gateway timeout")
		}
		p.Done(callErr)
		return callErr
	}
	for _, fail := range []bool{false, true, true, false} {
		_ = charge(fail)
	}
	err := charge(false)
	fmt.Println(errors.Is(err, policy.ErrBreakerOpen))
	// Output:
	// breaker: closed -> open
	// true
}

// An Executor is built once and shared; its per-call state is reused.
func ExampleNew() {
	ex := policy.New[int](
		policy.NewRetry("compute", policy.Attempts(3), policy.WithBackoff(policy.Backoff{Base: time.Millisecond, Max: time.Millisecond})),
		policy.NewBulkhead("compute", 4, 16),
	)
	calls := 0
	v, err := ex.Do(context.Background(), func(context.Context) (int, error) {
		calls++
		if calls < 2 {
			return 0, errors.New("transient")
		}
		return 42, nil
	})
	fmt.Println(v, err, calls)
	// Output: 42 <nil> 2
}

// One backoff for every growing wait: a Retry's, a supervisor's restarts,
// a distributed queue's redeliveries. Without jitter the waits double.
func ExampleBackoff() {
	b := policy.Backoff{Base: 100 * time.Millisecond, Max: time.Second, Jitter: policy.NoJitter}
	for n := 1; n <= 5; n++ {
		fmt.Println(n, b.Delay(n))
	}
	_ = policy.NewRetry("api", policy.Attempts(5), policy.WithBackoff(b))
	// Output:
	// 1 100ms
	// 2 200ms
	// 3 400ms
	// 4 800ms
	// 5 1s
}

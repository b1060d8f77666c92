// Command timeouts-retries calls a flaky local backend through a retry
// (honouring Retry-After), a circuit breaker and a timeout per attempt,
// with a fallback for when nothing works; then the backend goes down, the
// breaker opens and refuses calls, and closes again once a probe succeeds.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"time"

	"loom/policy"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(w io.Writer) error {
	var hits atomic.Int64
	var down atomic.Bool // the backend's outage, in the second part
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(rw, "down", http.StatusServiceUnavailable)
			return
		}
		switch n := hits.Add(1); {
		case n == 1:
			time.Sleep(200 * time.Millisecond) // too slow: the attempt times out
		case n == 2:
			rw.Header().Set("Retry-After", "0")
			http.Error(rw, "overloaded", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(rw, "fresh data")
	}))
	defer srv.Close()
	defer http.DefaultClient.CloseIdleConnections()

	get := func(ctx context.Context) (string, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			err := fmt.Errorf("status %d", resp.StatusCode)
			if d, ok := policy.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
				err = policy.RetryAfter(err, d)
			}
			return "", err
		}
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	retry := policy.NewRetry("backend", policy.Attempts(4), policy.WithBackoff(policy.Backoff{Base: 10 * time.Millisecond, Max: 100 * time.Millisecond}))
	// A small window, so that the breaker acts within a few calls: open
	// when half of the last 4 calls (at least 4) failed, for 100ms, then
	// one probe.
	breaker := policy.NewBreaker("backend", policy.CountWindow(4), policy.MinCalls(4), policy.FailureRate(50),
		policy.OpenFor(100*time.Millisecond), policy.HalfOpenProbes(1),
		policy.OnStateChange(func(from, to policy.BreakerState) { fmt.Fprintf(w, "breaker: %v -> %v\n", from, to) }))
	ex := policy.New[string](
		policy.Fallback(func(context.Context, error) (string, error) { return "cached data", nil }),
		retry,
		breaker,
		policy.Timeout(50*time.Millisecond),
	)
	ctx := context.Background()
	// A slow answer and an overloaded one: the retry gets through.
	v, err := ex.Do(ctx, get)
	fmt.Fprintf(w, "%s (err %v) after %d attempts\n", v, err, retry.Stats().Attempts)

	// An outage: the retries fail, the breaker opens, and calls are
	// refused at once (the fallback answers) until it lets a probe
	// through once the backend is back.
	down.Store(true)
	for range 2 {
		v, _ := ex.Do(ctx, get)
		fmt.Fprintf(w, "during the outage: %s, breaker %v\n", v, breaker.State())
	}
	down.Store(false)
	time.Sleep(150 * time.Millisecond) // past OpenFor
	v, err = ex.Do(ctx, get)
	fmt.Fprintf(w, "after it: %s (err %v), breaker %v\n", v, err, breaker.State())
	return nil
}

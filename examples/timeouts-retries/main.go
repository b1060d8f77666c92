// Command timeouts-retries calls a flaky local backend through a retry
// (honouring Retry-After), a circuit breaker and a timeout per attempt,
// with a fallback for when nothing works.
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
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
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
	retry := policy.NewRetry("backend", policy.Attempts(4), policy.Backoff(10*time.Millisecond, 100*time.Millisecond))
	ex := policy.New[string](
		policy.Fallback(func(context.Context, error) (string, error) { return "cached data", nil }),
		retry,
		policy.NewBreaker("backend"),
		policy.Timeout(50*time.Millisecond),
	)
	v, err := ex.Do(context.Background(), get)
	s := retry.Stats()
	fmt.Fprintf(w, "%s (err %v) after %d attempts\n", v, err, s.Attempts)
	return nil
}

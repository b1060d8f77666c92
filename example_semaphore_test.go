package loom_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"loom"
)

// The semaphore-limited fetch from the asyncio guide: many downloads
// started at once, at most three in flight against the server.
func ExampleSemaphore() {
	var (
		mu             sync.Mutex
		inFlight, peak int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		mu.Unlock()
		defer func() { mu.Lock(); inFlight--; mu.Unlock() }()
		time.Sleep(5 * time.Millisecond)
		fmt.Fprintf(w, "page %s", r.URL.Path)
	}))
	defer srv.Close()

	ctx := context.Background()
	sem := loom.NewSemaphore("fetch", 3)
	fetch := func(ctx context.Context, path string) (int, error) {
		if err := sem.Acquire(ctx, 1); err != nil {
			return 0, err
		}
		defer sem.Release(1)
		req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+path, nil)
		if err != nil {
			return 0, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return len(body), err
	}

	var fns []func(context.Context) (int, error)
	for i := range 12 {
		path := fmt.Sprintf("/%02d", i)
		fns = append(fns, func(ctx context.Context) (int, error) { return fetch(ctx, path) })
	}
	sizes, err := loom.Gather(ctx, fns...)
	total := 0
	for _, n := range sizes {
		total += n
	}
	fmt.Println("pages:", len(sizes), "bytes:", total, "error:", err)
	fmt.Println("never more than 3 at once:", peak <= 3)
	// Output:
	// pages: 12 bytes: 96 error: <nil>
	// never more than 3 at once: true
}

// Resize changes the limit while the semaphore is in use, for limits that
// adapt to how a backend copes.
func ExampleSemaphore_Resize() {
	sem := loom.NewSemaphore("adaptive", 2)
	_ = sem.Acquire(context.Background(), 2)
	fmt.Println("free slot:", sem.TryAcquire(1))
	_ = sem.Resize(3) // the backend is healthy: allow one more
	fmt.Println("free slot after growing:", sem.TryAcquire(1))
	fmt.Println(sem.Release(5))
	// Output:
	// free slot: false
	// free slot after growing: true
	// loom.Semaphore.Release(5) with 3 held: loom: released more than held
}

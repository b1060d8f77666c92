// Command semaphore-fetch fetches 30 pages from a local server with at most
// 5 requests in flight, the asyncio guide's semaphore pattern.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"time"

	"loom"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(w io.Writer) error {
	var mu sync.Mutex
	inFlight, peak := 0, 0
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		mu.Unlock()
		time.Sleep(10 * time.Millisecond)
		mu.Lock()
		inFlight--
		mu.Unlock()
		fmt.Fprintf(rw, "page %s", r.URL.Path)
	}))
	defer srv.Close()
	defer http.DefaultClient.CloseIdleConnections()

	sem := loom.NewSemaphore("fetch", 5)
	fetch := func(path string) func(context.Context) (int, error) {
		return func(ctx context.Context) (int, error) {
			if err := sem.Acquire(ctx, 1); err != nil {
				return 0, err
			}
			defer sem.Release(1)
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return 0, err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			return len(b), err
		}
	}
	var fns []func(context.Context) (int, error)
	for i := range 30 {
		fns = append(fns, fetch(fmt.Sprintf("/%d", i)))
	}
	sizes, err := loom.Gather(context.Background(), fns...)
	if err != nil {
		return err
	}
	total := 0
	for _, n := range sizes {
		total += n
	}
	fmt.Fprintf(w, "fetched %d pages, %d bytes, at most %d at once (limit 5)\n", len(sizes), total, peak)
	return nil
}

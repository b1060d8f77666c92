package bench

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"loom/internal/fetch"
)

// BenchmarkFetch fetches 200 pages of a local site (each page waits 2ms, as
// a remote server would) per operation: loom fetch's engine (pipeline,
// per-host limits, retries, breakers, a CPU pool) against the plain way,
// errgroup with a limit around net/http, hashing and title extraction in
// line. Both keep 64 requests in flight, with a fresh HTTP client per run.
func BenchmarkFetch(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * time.Millisecond)
		fmt.Fprintf(w, `<html><title>%s</title><a href="/x">x</a>%s</html>`, r.URL.Path, strings.Repeat("lorem ipsum ", 200))
	}))
	defer srv.Close()
	var urls []string
	for i := range 200 {
		urls = append(urls, fmt.Sprintf("%s/page/%d", srv.URL, i))
	}
	input := strings.Join(urls, "\n")
	b.Run("impl=errgroup", func(b *testing.B) {
		title := regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)
		b.ReportAllocs()
		for b.Loop() {
			// A client per run, as a fetcher program has.
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			g, ctx := errgroup.WithContext(context.Background())
			g.SetLimit(64)
			for _, u := range urls {
				g.Go(func() error {
					req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
					resp, err := client.Do(req)
					if err != nil {
						return err
					}
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil {
						return err
					}
					sum := sha256.Sum256(body)
					m := title.FindSubmatch(body)
					line, _ := json.Marshal(map[string]any{"url": u, "sha256": sum, "title": string(m[1])})
					_, err = io.Discard.Write(line)
					return err
				})
			}
			if err := g.Wait(); err != nil {
				b.Fatal(err)
			}
			client.CloseIdleConnections()
		}
	})
	b.Run("impl=loom", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, err := fetch.Run(context.Background(), strings.NewReader(input), io.Discard, io.Discard,
				fetch.Config{Concurrency: 64, PerHost: 64, Timeout: 10 * time.Second, Retries: 3, MaxBody: 1 << 20})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

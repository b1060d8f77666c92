package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"loom"
	"loom/internal/registry"
	"loom/monitor"
)

type demoConfig struct {
	pages       int
	concurrency int
	timeout     time.Duration
	monitor     string // address to serve the monitor on, if any
}

func newDemo() *cobra.Command {
	var c demoConfig
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the task runtime end to end against a local HTTP server",
		Long: `demo starts an HTTP server on loopback with slow and failing pages, then
crawls it with loom: a bounded Group fetches and hashes every page, a
Timeout bounds each request, Race picks the fastest mirror, a Scope runs a
background progress reporter, and the registry shows what ran.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if c.pages < 1 || c.concurrency < 1 || c.timeout <= 0 {
				return fmt.Errorf("--pages and --concurrency must be at least 1 and --timeout positive")
			}
			return runDemo(cmd.Context(), cmd.OutOrStdout(), c)
		},
	}
	cmd.Flags().IntVar(&c.pages, "pages", 200, "how many pages to crawl")
	cmd.Flags().IntVar(&c.concurrency, "concurrency", 16, "how many fetches at once")
	cmd.Flags().DurationVar(&c.timeout, "timeout", 200*time.Millisecond, "timeout per request")
	cmd.Flags().StringVar(&c.monitor, "monitor", "", "serve the monitor on this address (e.g. 127.0.0.1:9190) and keep it up after the crawl until Ctrl-C")
	return cmd
}

// demoServer serves /page/N: every 10th page is slow (longer than the
// demo's timeout), every 25th fails with 500, the rest return a body.
func demoServer(timeout time.Duration) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/page/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.PathValue("n"))
		if err != nil {
			http.Error(w, "bad page number", http.StatusBadRequest)
			return
		}
		switch {
		case n%25 == 0:
			http.Error(w, "injected failure", http.StatusInternalServerError)
			return
		case n%10 == 0:
			select {
			case <-time.After(3 * timeout):
			case <-r.Context().Done():
				return
			}
		}
		fmt.Fprintf(w, "<html><title>page %d</title><body>%s</body></html>", n, bytesOf(n))
	})
	mux.HandleFunc("/mirror/{delay}", func(w http.ResponseWriter, r *http.Request) {
		d, _ := time.ParseDuration(r.PathValue("delay"))
		select {
		case <-time.After(d):
			fmt.Fprintf(w, "mirror %s", d)
		case <-r.Context().Done():
		}
	})
	return mux
}

func bytesOf(n int) string {
	b := make([]byte, 512+n%1024)
	for i := range b {
		b[i] = 'a' + byte((i*n)%26)
	}
	return string(b)
}

func fetch(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return body, nil
}

type pageResult struct {
	bytes int
	hash  string
}

func runDemo(ctx context.Context, out io.Writer, c demoConfig) error {
	if c.monitor != "" {
		stopMonitor, err := startMonitor(ctx, out, c.monitor)
		if err != nil {
			return err
		}
		defer stopMonitor()
	}
	start := time.Now()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen on loopback: %w", err)
	}
	srv := &http.Server{Handler: demoServer(c.timeout), ReadHeaderTimeout: 5 * time.Second}
	bg := loom.NewScope(ctx, loom.WithName("demo-background"))
	bg.Go("http-server", func(ctx context.Context) error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	base := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c.concurrency}}
	fmt.Fprintf(out, "loom demo: crawling %d pages on %s with %d at a time, %v per request\n\n", c.pages, base, c.concurrency, c.timeout)

	var done, failed, timedOut atomic.Int64
	bg.Go("progress", func(ctx context.Context) error {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
				fmt.Fprintf(out, "  progress: %d/%d done, %d live tasks\n", done.Load(), c.pages, len(registry.Snapshot()))
			}
		}
	})

	// A supervised group: one failing page does not stop the crawl.
	crawl := loom.NewGroup(ctx, loom.WithName("crawl"), loom.WithLimit(c.concurrency), loom.Supervise())
	pages := make([]*loom.Task[pageResult], c.pages)
	for i := range pages {
		url := fmt.Sprintf("%s/page/%d", base, i+1)
		pages[i] = loom.Spawn(crawl, "fetch", func(ctx context.Context) (pageResult, error) {
			defer done.Add(1)
			body, err := loom.Timeout(ctx, c.timeout, func(ctx context.Context) ([]byte, error) {
				return fetch(ctx, client, url)
			})
			if err != nil {
				failed.Add(1)
				if errors.Is(err, loom.ErrTimeout) {
					timedOut.Add(1)
				}
				return pageResult{}, err
			}
			sum := sha256.Sum256(body)
			return pageResult{bytes: len(body), hash: hex.EncodeToString(sum[:4])}, nil
		})
	}
	crawlErr := crawl.Wait()

	// Race three mirrors; the slower two are cancelled.
	mirror := func(d time.Duration) func(context.Context) ([]byte, error) {
		return func(ctx context.Context) ([]byte, error) { return fetch(ctx, client, base+"/mirror/"+d.String()) }
	}
	fastest, raceErr := loom.Race(ctx, mirror(300*time.Millisecond), mirror(20*time.Millisecond), mirror(150*time.Millisecond))

	var total int
	for _, p := range pages {
		if r, err := p.Result(); err == nil {
			total += r.bytes
		}
	}
	elapsed := time.Since(start)

	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdownCtx)
	client.CloseIdleConnections()
	bgErr := bg.Shutdown(shutdownCtx)

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(out, "\nfirst pages:")
	fmt.Fprintln(tw, "  page\tstate\tbytes\tsha256\terror")
	for i, p := range pages[:min(12, len(pages))] {
		r, err := p.Result()
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		fmt.Fprintf(tw, "  %d\t%s\t%d\t%s\t%.60s\n", i+1, p.State(), r.bytes, r.hash, msg)
	}
	tw.Flush()

	fmt.Fprintln(out, "\nreport:")
	fmt.Fprintln(tw, "  pages fetched\t", int64(c.pages)-failed.Load(), "of", c.pages)
	fmt.Fprintln(tw, "  failed\t", failed.Load(), "(", timedOut.Load(), "timed out )")
	fmt.Fprintln(tw, "  bytes hashed\t", total)
	fmt.Fprintf(tw, "  throughput\t %.0f pages/s\n", float64(c.pages)/elapsed.Seconds())
	if raceErr == nil {
		fmt.Fprintf(tw, "  race winner\t %s\n", fastest)
	} else {
		fmt.Fprintf(tw, "  race\t failed: %v\n", raceErr)
	}
	fmt.Fprintf(tw, "  tasks recorded\t %d recent terminations kept\n", len(registry.Terminated()))
	fmt.Fprintf(tw, "  elapsed\t %v\n", elapsed.Round(time.Millisecond))
	tw.Flush()
	if bgErr != nil {
		return fmt.Errorf("background tasks: %w", bgErr)
	}
	if c.monitor != "" && ctx.Err() == nil {
		fmt.Fprintf(out, "\ncrawl done; the monitor stays up on http://%s (try: loom top %s). Ctrl-C to quit.\n", c.monitor, c.monitor)
		<-ctx.Done()
		return nil
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if crawlErr != nil && failed.Load() == 0 {
		return crawlErr
	}
	return nil
}

// startMonitor serves the monitor on addr as a task of its own, and returns
// the function that stops it.
func startMonitor(ctx context.Context, out io.Writer, addr string) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	fmt.Fprintf(out, "monitor: http://%s\n", ln.Addr())
	mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	task := loom.Go(mctx, "monitor", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, monitor.ServeListener(ctx, ln)
	})
	return func() {
		cancel()
		if _, err := task.Wait(context.Background()); err != nil {
			fmt.Fprintln(out, "monitor:", err)
		}
	}, nil
}
